"""Decision events: versioned, masked, written off the hot path, never dropped silently."""

from vigil.audit.events import EVENT_VERSION, decision_event, encode_event, encode_events
from vigil.audit.sink import AuditSink, JsonlSink, MemorySink, NullSink

__all__ = [
    "EVENT_VERSION",
    "AuditSink",
    "JsonlSink",
    "MemorySink",
    "NullSink",
    "decision_event",
    "encode_event",
    "encode_events",
]
