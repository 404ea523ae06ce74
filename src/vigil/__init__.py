"""vigil: access control for non-human identities.

Cedar policy and learned behaviour, decided in microseconds::

    engine = vigil.Engine.from_workspace("examples/agent-fleet")
    record = engine.decide({"subject": {"type": "Agent", "id": "a"}, "action": {"name": "read"},
                            "resource": {"type": "Database", "id": "db"}, "context": {}})
    record.allowed, record.reason_codes, record.policies
"""

from vigil.engine import Engine, ReloadResult
from vigil.errors import RequestError, ValueConversionError, VigilError, WorkspaceError
from vigil.model.decision import Advice, DecisionRecord, ReasonCode

__version__ = "0.1.0"

__all__ = [
    "Advice",
    "DecisionRecord",
    "Engine",
    "ReasonCode",
    "ReloadResult",
    "RequestError",
    "ValueConversionError",
    "VigilError",
    "WorkspaceError",
    "__version__",
]
