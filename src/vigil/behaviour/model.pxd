# C layout of BehaviourModel when compiled (setup.py), C signatures for its private helpers (direct
# C calls from assess/learn) and C types for the hot locals. Only plain numbers and builtin
# containers are typed; day numbers stay Python ints (one shared object per day, see assess).
cimport cython
from vigil.behaviour.profile cimport Profile
from vigil.policy.entities cimport Entity
from vigil.behaviour.signals cimport Assessment
from vigil.policy.extensions cimport IPAddr


# What the model keeps of a resource; what the detectors read of a request and learning takes
# from it (model.py describes each field).
@cython.final
cdef class ResourceInfo:
    cdef public long long h, byte
    cdef public int mask
    cdef public str rtype, seg


@cython.final
cdef class Features:
    cdef public double t, c1, c2, nr_c, chain_t
    cdef public long long it, cls, top, climbs, chain_sens
    cdef public int mask, res_state
    cdef public bint hour_ok, sens, fresh, novel_step, tracked, counted
    cdef public object day
    cdef public str net, region, ua, aname, cred, bad, cid, place
    cdef public list unknown
    cdef public tuple resource, args
    cdef public object path
    cdef public ResourceInfo ri


cdef double INFORMATIVE, RATE_TAU1, RATE_TAU2
cdef long long CAP_REGION, CAP_NET, CAP_UA, CAP_ACTION, CAP_RTYPE, CAP_SEG, CAP_ARG
cdef double _strength(double novel, double n, double scale=*)
cdef str _wide(str net)
cdef str _place(Features f)
cdef int _arg_kind(str key)
cdef double _group_strength(Profile g, Profile p, int kind, str value)
cdef double _threshold(double floor, double mean, double mad, double ratio)
cdef object _over(double points, double over)
cdef (double, double) _ewma(double mean, double mad, double sample, double a, bint capped)
cdef double _exp(double x)
@cython.locals(dt=cython.double)
cpdef double fold(double c, double ref, double d, double t, double tau)

@cython.locals(items=cython.uint[:], i=cython.Py_ssize_t)
cdef bint _recent_has(object recent, unsigned int value) except -1
cdef void _count_new(Profile p, ResourceInfo ri, double nr_c, double t)
cdef void _note_unknown(Features f, str name, str why)


@cython.final
cdef class BehaviourModel:
    cdef public dict _acls, _resources, _uas, w, strings, tool_hints, _tools
    cdef public tuple sessions, peers, bad_networks
    cdef public list rates_out, learned_out
    cdef public object _day, classes, reader, settings, store
    cdef public frozenset _off, _segment_types, _segment_uids, tool_actions
    cdef public set _regions_ok
    cdef public double _skew, chain_s, enum_w, establish_s, learning_s, forget_s, cred_window
    cdef public double quarantine_window_s, travel_kmh, travel_min_km
    cdef public long long deny_risk, enum_min, forget_days, learning_requests, min_history
    cdef public long long quarantine_after, quarantine_risk, rate_min, rate_min2, step_up_risk
    cdef public bint enforce, off

    cpdef str intern(self, str s)
    cpdef ResourceInfo resource_info(self, tuple resource)
    cdef ResourceInfo _resource_info(self, tuple resource)
    cpdef tuple tool_class(self, tuple tool, Entity entity=*)
    cpdef object work_of(self, tuple action, tuple resource, Entity entity=*)
    cpdef object work_of_profile(self, Profile p)
    cpdef object work_of_features(self, Features f)
    cpdef void note_tool(self, tuple tool, dict hints)
    cpdef void forget_tool(self, tuple tool)

    # assess = features (from the request) + judge (the detectors, one per signal family)
    @cython.locals(f=Features, a=Assessment)
    cpdef tuple assess(self, Profile p, tuple action, tuple resource, dict ctx, double when, object allowed=*,
                       Entity resource_entity=*, IPAddr ip=*, str on_behalf=*, object path=*)
    @cython.locals(f=Features, it=cython.longlong)
    cpdef Features features(self, tuple action, tuple resource, dict ctx, double when, Entity resource_entity=*,
                            IPAddr ip=*, str on_behalf=*)
    @cython.locals(t=cython.double)
    cdef void _read_time(self, Features f, object v, double when)
    @cython.locals(iptext=str)
    cdef void _read_network(self, Features f, object v, IPAddr ip)
    cdef void _read_region(self, Features f, object region)
    cdef void _read_user_agent(self, Features f, object v)
    cdef str _credential(self, object source, object user_agent)
    cdef list _misuse(self, list hits, str cred)
    cdef str _bad_network(self, object v)
    cdef list _evident(self, list hits, Features f)
    cdef list _path(self, list hits, Features f)
    cdef Assessment _judge_first(self, Profile g, Features f)
    cdef list _linked(self, list hits, Profile p, Features f)
    cpdef void link(self, Profile target, object actor, double t)
    cdef Assessment _first(self, Features f)
    @cython.locals(learning=cython.bint)
    cpdef Assessment judge(self, Profile p, Features f)
    @cython.locals(n=cython.longlong)
    cdef list _context_signals(self, list hits, Profile p, Features f)
    @cython.locals(n=cython.longlong, it=cython.longlong, slot=cython.longlong)
    cdef list _time_signals(self, list hits, Profile p, Features f)
    @cython.locals(n=cython.longlong, cls=cython.longlong, known_max=cython.longlong)
    cdef list _privilege_signals(self, list hits, Profile p, Features f)
    @cython.locals(ri=ResourceInfo, n=cython.longlong, nr_c=cython.double, dt=cython.double, counted=cython.bint,
                   tracked=cython.bint)
    cdef list _resource_signals(self, list hits, Profile p, Features f)
    @cython.locals(n=cython.longlong, known_tool=cython.bint)
    cdef list _argument_signals(self, list hits, Profile p, Features f)
    @cython.locals(t=cython.double, w=cython.double, n=cython.longlong)
    cdef list _two_places(self, list hits, Profile p, Features f)
    @cython.locals(t=cython.double)
    cpdef void note_credential(self, Profile p, Features f)
    @cython.locals(dt=cython.double, c1=cython.double, c2=cython.double)
    cdef list _rate_signals(self, list hits, Profile p, Features f)
    @cython.locals(cls=cython.longlong, sens=cython.bint, t=cython.double, chain_t=cython.double,
                   top=cython.longlong, climbs=cython.longlong, chain_sens=cython.longlong)
    cdef list _chain_signals(self, list hits, Profile p, Features f)

    @cython.locals(b=cython.double, k=cython.double, pts=cython.longlong)
    cdef Assessment _graded(self, list hits, Profile p, Features f)
    cpdef double backing(self, Profile p, double t)
    cdef object _assessment(self, list hits, int mask, list unknown, bint learning)
    cdef list _context(self, list hits, Profile p, str name, str prefix, str value, dict table, int kind, double n, double t)
    cdef list _new_resource(self, list hits, Profile p, tuple resource, ResourceInfo ri, double n, double nr_c)
    cdef list _travel(self, list hits, Profile p, str region, double t)
    cdef object _hour(self, Profile p, long long slot, long long n, long long it)
    cdef tuple _rate(self, double c1, double c2, Profile p)

    @cython.locals(t=cython.double)
    cpdef learn(self, Profile p, Features f, bint learnable, bint allowed, bint vetted=*)
    cpdef void teach(self, Profile base, Features f)
    @cython.locals(t=cython.double)
    cdef void _learn_normal(self, Profile p, Features f, bint vetted)
    @cython.locals(t=cython.double)
    cdef void _learn_values(self, Profile p, Features f, bint vetted)
    @cython.locals(ri=ResourceInfo, res_state=cython.int)
    cdef void _learn_resource(self, Profile p, Features f)
    cdef void _decay(self, Profile p, double t)
    cdef long long _known_max(self, Profile p, object day)
    cdef tuple _drift(self, long long cls, long long known_max, str aname)
    cdef list _region(self, list hits, Profile p, str region, object d, object day, long long n, double t)
    cdef void _resource_novelty(self, Profile p)
    cdef void _rotate(self, Profile p, double t)
    cdef void _learn_context(self, Profile p, str prefix, str value, dict table, long long cap, int kind,
                             object day, double t, object d, bint vetted=*)
    cdef void _widen(self, Profile p, str value, object day)
    cdef void _establish(self, Profile p, str prefix, dict table, str value, object day, long long cap)
    cdef void _fold_rate(self, Profile p, double c1, double c2, double t)
    cdef void _fold_new(self, Profile p, double c, double t)

    # sharing across processes (vigil.behaviour.shared)
    @cython.locals(t=cython.double, ls=cython.double)
    cdef void _merge(self, Profile p)
    @cython.locals(x_t=cython.double)
    cpdef void merge_remote(self, Profile p, double n, double k, double t)
    @cython.locals(bit=cython.longlong, mask=cython.int)
    cpdef bint learn_remote(self, Profile p, str prefix, object value, object day)
