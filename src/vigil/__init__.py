"""vigil: access control for non-human identities.

Cedar policy and learned behaviour, decided in microseconds::

    engine = vigil.Engine.from_workspace("examples/agent-fleet")
    record = engine.decide({"subject": {"type": "Agent", "id": "a"}, "action": {"name": "read"},
                            "resource": {"type": "Database", "id": "db"}, "context": {}})
    record.allowed, record.reason_codes, record.policies

Tools of an agent framework are guarded with :class:`Guard` / :func:`guard` (``vigil.guard``);
a remote vigil is asked with :class:`vigil.client.PDPClient`.
"""

import importlib
from typing import TYPE_CHECKING, Any

from vigil.engine import Engine, ReloadResult
from vigil.errors import RequestError, ValueConversionError, VigilError, WorkspaceError
from vigil.model.decision import Advice, DecisionRecord, ReasonCode

if TYPE_CHECKING:
    from vigil.toolguard import Denied, Guard, guard

__version__ = "0.1.0"

_LAZY = {"Denied": "vigil.toolguard", "Guard": "vigil.toolguard", "guard": "vigil.toolguard"}


def __getattr__(name: str) -> Any:
    # The tool guard sits above the engine (it may ask a remote PDP over HTTP): loaded on first
    # use, so `import vigil` (which every module of the library does for __version__) does not
    # pull the transports' layer into the core.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vigil' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "Advice",
    "DecisionRecord",
    "Denied",
    "Engine",
    "Guard",
    "ReasonCode",
    "ReloadResult",
    "RequestError",
    "ValueConversionError",
    "VigilError",
    "WorkspaceError",
    "__version__",
    "guard",
]
