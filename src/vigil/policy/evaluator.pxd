# C layouts of Answer and Authorizer when compiled (setup.py), and C types for is_authorized's
# entity lookups (typed struct reads of Entity fields).
cimport cython
from vigil.policy.entities cimport Entity


cdef class Answer:
    cdef public bint allowed
    cdef public tuple policies, errors


cdef class Authorizer:
    cdef public tuple policies
    cdef public object store
    cdef public dict _by_uid, _cache, _scope_cache, _shared, _rguard_index, _order, _index
    cdef public tuple _rguards
    cdef public dict _guard_sets, _statuses
    cdef public bint _guards_read_entities
    cdef public long long _epoch

    @cython.locals(pe=Entity, re_=Entity, by_uid=dict, cached=dict, covered=set)
    cpdef object is_authorized(self, object principal, object action, object resource, object context,
                               object overlay=*, object principal_entity=*,
                               object resource_entity=*)
