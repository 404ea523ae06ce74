# C types for the audit event builder when compiled (setup.py).
from vigil.model.decision cimport DecisionRecord

cpdef dict _base_event(DecisionRecord record)
