# C layout of Profile when compiled (setup.py): the same attributes as its __slots__, with C types
# for the counters and times so the behaviour model reads them without boxing. Times are epoch
# seconds (double); counts and day numbers fit 64 bits by far.

cdef class Profile:
    cdef public dict actions, regions, nets, uas, rtypes, segs, args
    cdef public dict cand
    cdef public long long allowed, denied, learned, n, res_n, bloom_n, rate_n, nr_n, saved
    cdef public long long max_cls, max_cls_until, chain_top, chain_climbs, chain_sens
    cdef public double first_seen, last_seen, decay_at, bloom_t, fold_at, nr_t, nr_fold_at
    cdef public double last_region_t, chain_t, link_t
    cdef public double r1, r2, r1_mean, r1_mad, r2_mean, r2_mad, r1_thr, r2_thr
    cdef public double nr_c, nr_mean, nr_mad, nr_thr
    cdef public double nov_region, nov_net, nov_ua, nov_action, nov_resource, nov_rtype, nov_seg, nov_arg
    cdef public double nov_ident, nov_for
    cdef public bytearray bloom
    cdef public object how, class_day, nr_recent, last_region, base, link_from
    cdef public str chain_last
    cdef public tuple peers
    cdef public dict creds
    cdef public list high
    cdef public bint net_wide, res_sat, quarantined, dirty
    # sharing across processes (vigil.behaviour.shared)
    cdef public object uid
    cdef public bint queued
    cdef public long long pub_n, pub_k, nr_k
    cdef public double x1, x2, xk, x_t

    cpdef double novel(self, int kind)
    cpdef void count_novel(self, int kind)
