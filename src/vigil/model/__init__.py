"""Pure value types shared by every part of vigil (no I/O)."""

from vigil.model.decision import Advice, DecisionRecord, ReasonCode
from vigil.model.request import AccessRequest

__all__ = ["AccessRequest", "Advice", "DecisionRecord", "ReasonCode"]
