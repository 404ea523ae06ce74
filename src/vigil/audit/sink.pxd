# C layout of JsonlSink when compiled (setup.py): emit runs once per decision, so its state is read
# as struct fields, not through the instance dict. Counters other threads change are changed under
# a lock (dropped) or by one thread (written, write_errors under _write_lock).
cimport cython


@cython.final
cdef class JsonlSink:
    cdef public object path, file
    cdef object _lines, _encoded, _retry, _wake, _done, _cond, _encode_lock, _write_lock, _count_lock
    cdef object _thread, _cause
    cdef long long _accepted_n, _settled, _taken, _durable, _lost, _capacity, _half, _batch
    cdef double _interval, _sync_timeout, _close_timeout, _failed_at
    cdef bint _closed, _healthy, _sync
    cdef public long long dropped, written, write_errors, sync_timeouts
    cdef object __weakref__

    # called by emit and emit_event: final + inline, so C calls compiled into the callers
    cdef inline bint _refuses(self) except? -1
    cdef inline bint _accepted(self, long long k) except? -1
