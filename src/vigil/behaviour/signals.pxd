# C layout of Assessment when compiled (setup.py): the same attributes as its __slots__.

cdef class Assessment:
    cdef public long long risk, malformed
    cdef public bint learning
    cdef public tuple signals, hits, unknown
