# C layout of BehaviourModel when compiled (setup.py), C signatures for its private helpers (direct
# C calls from assess/learn) and C types for the hot locals. Only plain numbers and builtin
# containers are typed; day numbers stay Python ints (one shared object per day, see assess).
cimport cython
from vigil.behaviour.profile cimport Profile
from vigil.policy.entities cimport Entity
from vigil.policy.extensions cimport IPAddr

cdef double INFORMATIVE, RATE_TAU1, RATE_TAU2
cdef long long CAP_REGION, CAP_NET, CAP_UA, CAP_ACTION, CAP_RTYPE, CAP_SEG
cdef double _strength(double novel, double n, double scale=*)
cdef str _wide(str net)
cdef double _threshold(double floor, double mean, double mad, double ratio)
cdef object _over(double points, double over)
cdef (double, double) _ewma(double mean, double mad, double sample, double a, bint capped)
cdef double _exp(double x)

@cython.locals(items=cython.uint[:], i=cython.Py_ssize_t)
cdef bint _recent_has(object recent, unsigned int value) except -1
cdef void _count_new(Profile p, tuple ri, double nr_c, double t)


@cython.final
cdef class BehaviourModel:
    cdef public dict _acls, _resources, _uas, w, strings
    cdef public object _day, classes, reader, settings, store
    cdef public frozenset _off, _segment_types, _segment_uids
    cdef public set _regions_ok
    cdef public double _skew, chain_s, enum_w, establish_s, learning_s, forget_s
    cdef public double quarantine_window_s, travel_kmh, travel_min_km
    cdef public long long deny_risk, enum_min, forget_days, learning_requests, min_history
    cdef public long long quarantine_after, quarantine_risk, rate_min, rate_min2, step_up_risk
    cdef public bint enforce, off

    cpdef str intern(self, str s)
    cpdef tuple resource_info(self, tuple resource)
    cdef tuple _resource_info(self, tuple resource)

    @cython.locals(
        p=Profile, t=cython.double, when=cython.double, dt=cython.double, c1=cython.double,
        c2=cython.double, nr_c=cython.double, chain_t=cython.double, n=cython.longlong,
        it=cython.longlong, cls=cython.longlong, known_max=cython.longlong, top=cython.longlong,
        climbs=cython.longlong, chain_sens=cython.longlong, res_state=cython.int,
        byte=cython.longlong, mask=cython.int, hour_ok=cython.bint, fresh=cython.bint,
        novel_step=cython.bint, counted=cython.bint, tracked=cython.bint, learning=cython.bint,
        slot=cython.longlong, iptext=str,
    )
    cpdef tuple assess(self, Profile p, tuple action, tuple resource, dict ctx, double when, object allowed=*,
                       Entity resource_entity=*, IPAddr ip=*)

    cdef object _assessment(self, list hits, int mask, list unknown, bint learning)
    cdef list _context(self, list hits, Profile p, str name, str prefix, str value, dict table, int kind, double n, double t)
    cdef list _new_resource(self, list hits, Profile p, tuple resource, tuple ri, double n, double nr_c)
    cdef list _travel(self, list hits, Profile p, str region, double t)
    cdef object _hour(self, Profile p, long long slot, long long n, long long it)
    cdef tuple _rate(self, double c1, double c2, Profile p)

    @cython.locals(t=cython.double, cls=cython.longlong, res_state=cython.int, nr_c=cython.double,
                   c1=cython.double, c2=cython.double, counted=cython.bint, tracked=cython.bint)
    cpdef learn(self, Profile p, tuple f, bint learnable, bint allowed, bint vetted=*)

    cdef void _learn_values(self, Profile p, double t, object day, str net, str region, str ua, str aname,
                            long long cls, tuple ri, int res_state, bint counted, double nr_c, bint vetted=*)
    cdef void _decay(self, Profile p, double t)
    cdef long long _known_max(self, Profile p, object day)
    cdef tuple _drift(self, long long cls, long long known_max, str aname)
    cdef list _region(self, list hits, Profile p, str region, object d, object day, long long n, double t)
    cdef void _resource_novelty(self, Profile p)
    cdef void _rotate(self, Profile p, double t)
    cdef void _learn_context(self, Profile p, str prefix, str value, dict table, long long cap, int kind,
                             object day, double t, object d, bint vetted=*)
    cdef void _widen(self, Profile p, str value, object day)
    cdef void _establish(self, dict table, str value, int kind, object day, long long cap)
    cdef void _fold_rate(self, Profile p, double c1, double c2, double t)
    cdef void _fold_new(self, Profile p, double c, double t)
