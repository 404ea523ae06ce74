# C layouts of Effect and Outcome when compiled (setup.py); the behaviour model and the
# assessment are read as structs.
cimport cython
from vigil.behaviour.model cimport BehaviourModel
from vigil.behaviour.signals cimport Assessment


@cython.final
cdef class Effect:
    cdef public str kind, reason


@cython.final
cdef class Outcome:
    cdef public bint allowed, learnable
    cdef public tuple reasons, advice
    cdef public Effect effect


cpdef bint judged(Assessment a, bint known)
cpdef bint asks_approval(BehaviourModel beh, Assessment a, bint known, bint allowed)
cpdef bint counts_high(BehaviourModel beh, Assessment a, bint known)
cpdef Outcome combine(BehaviourModel beh, Assessment a, bint known, bint allowed, tuple reasons,
                      bint granted=*, long long highs=*)
cdef tuple _shadow(BehaviourModel beh, long long risk, tuple reasons, bint quarantine)
cpdef Outcome unsaved(Outcome outcome)
