# C layout of BehaviourModel when compiled (setup.py), and C types for the hot locals of
# assess/learn. Only what is a plain number or a builtin container is typed; settings objects
# stay Python objects.
cimport cython
from vigil.behaviour.profile cimport Profile

cdef class BehaviourModel:
    cdef public dict _acls, _resources, _uas, w, strings
    cdef public object _day, classes, reader, settings, store
    cdef public frozenset _off, _segment_types, _segment_uids
    cdef public set _regions_ok
    cdef public double _skew, chain_s, enum_w, establish_s, learning_s, forget_s
    cdef public double quarantine_window_s, travel_kmh, travel_min_km
    cdef public long long deny_risk, enum_min, forget_days, learning_requests, min_history
    cdef public long long quarantine_after, quarantine_risk, rate_min, rate_min2, step_up_risk
    cdef public bint enforce

    @cython.locals(
        p=Profile, t=cython.double, when=cython.double, dt=cython.double, c1=cython.double, c2=cython.double, nr_c=cython.double,
        chain_t=cython.double, n=cython.longlong, it=cython.longlong, cls=cython.longlong, known_max=cython.longlong,
        top=cython.longlong, climbs=cython.longlong, chain_sens=cython.longlong, res_state=cython.int, byte=cython.longlong,
        mask=cython.int, hour_ok=cython.bint, fresh=cython.bint, novel_step=cython.bint, counted=cython.bint, tracked=cython.bint,
        learning=cython.bint, slot=cython.longlong,
    )
    cpdef tuple assess(self, Profile p, tuple action, tuple resource, dict ctx, double when, object allowed=*)
