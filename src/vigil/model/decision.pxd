# C layout of DecisionRecord when compiled (setup.py): the same attributes as its __slots__; the
# outcome, risk, latency and time are C values, the rest Python objects.

cdef class DecisionRecord:
    cdef public object _id, reason_codes, policies, errors, signals, advice, policy_revision
    cdef public object principal, action, resource, context, error, assessment, ticket, overlay, delegation
    cdef public bint allowed
    cdef public long long risk, latency_ns
    cdef public double time


cpdef DecisionRecord new_record(object id, bint allowed, object reason_codes, object policies, object errors,
                                long long risk, object signals, object advice, object policy_revision,
                                long long latency_ns, double time, object principal, object action,
                                object resource, object context, object assessment, object ticket)

cdef void _fill(DecisionRecord r, object id, bint allowed, object reason_codes, object policies,
                object errors, long long risk, object signals, object advice, object policy_revision,
                long long latency_ns, double time, object principal, object action, object resource,
                object context, object error, object assessment, object ticket) noexcept
