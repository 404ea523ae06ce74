# C layout of JsonlSink when compiled (setup.py): emit runs once per decision, so its state is read
# as struct fields, not through the instance dict. The counters that threads other than the
# emitting one change stay exact as before: _accepted is an itertools.count (atomic next()).

cdef class JsonlSink:
    cdef public object path
    cdef object _fd, _lines, _encoded, _accepted, _wake, _encode_lock, _write_lock, _thread
    cdef long long _accepted_n, _settled, _capacity, _half, _batch
    cdef double _interval
    cdef bint _closed
    cdef public long long dropped, written, write_errors
    cdef object __weakref__
