# C types for the audit event builder when compiled (setup.py).
cimport cython
from vigil.model.decision cimport DecisionRecord

cpdef dict _base_event(DecisionRecord record)

@cython.locals(micros=cython.longlong, sec=cython.longlong, frac=cython.longlong)
cpdef str rfc3339(double epoch)

cpdef bint _hook_suffices(object value)

@cython.locals(subject=dict, action=dict, resource=dict, event=dict, out=list, record=DecisionRecord,
               context=object)
cpdef list encode_events(object records, object mask=*)
