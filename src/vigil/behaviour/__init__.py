"""Behaviour: per-identity profiles learned online, named signals, and a risk score 0..100.

``BehaviourModel`` (one per workspace generation) assesses a request against its identity's
``Profile`` and learns from it after the decision; ``ProfileBook`` holds the profiles and snapshots
them to the store. See ``docs/behaviour.md``.
"""

from vigil.behaviour.book import ProfileBook
from vigil.behaviour.model import BehaviourModel
from vigil.behaviour.profile import Profile
from vigil.behaviour.signals import DEFAULT_WEIGHTS, SIGNALS, Assessment

__all__ = ["DEFAULT_WEIGHTS", "SIGNALS", "Assessment", "BehaviourModel", "Profile", "ProfileBook"]
