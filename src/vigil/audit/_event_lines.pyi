"""Types of the C writer of audit event lines (``_event_lines.pyx``; built only when compiled)."""

from collections.abc import Callable, Sequence

from vigil.model.decision import DecisionRecord

def encode_chunk(records: Sequence[DecisionRecord], fallback: Callable[[DecisionRecord], bytes]) -> bytes: ...
