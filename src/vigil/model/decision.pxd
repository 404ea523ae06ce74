# C layout of DecisionRecord when compiled (setup.py): the same attributes as its __slots__; the
# outcome, risk, latency and time are C values, the rest Python objects.

cdef class DecisionRecord:
    cdef public object _id, reason_codes, policies, errors, signals, advice, policy_revision
    cdef public object principal, action, resource, context, error, assessment, ticket
    cdef public bint allowed
    cdef public long long risk, latency_ns
    cdef public double time
