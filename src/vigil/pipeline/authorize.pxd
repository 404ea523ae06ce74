# C layout of Verdict when compiled (setup.py): the engine reads its fields as a struct; one per
# decision, so it is kept on a free list and out of the cyclic garbage collector (it holds
# tuples of strings only). The authorizer and its answer are read as structs.
cimport cython
from vigil.policy.evaluator cimport Answer, Authorizer


@cython.final
@cython.freelist(8)
@cython.no_gc
cdef class Verdict:
    cdef public bint allowed
    cdef public tuple reasons, policies, errors


cpdef Verdict authorize(Authorizer authorizer, object principal, object action, object resource,
                        object context, object overlay=*, object principal_entity=*,
                        object resource_entity=*)
cpdef Verdict verdict(Answer answer)
@cython.locals(v=Verdict)
cdef Verdict _verdict(bint allowed, tuple reasons, tuple policies, tuple errors)
cdef Verdict _with_errors(bint allowed, tuple policies, tuple errors)
