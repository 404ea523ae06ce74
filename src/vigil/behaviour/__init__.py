"""Behaviour: what each identity usually does. (The full profiles and signals come later.)"""

from vigil.behaviour.activity import ActivityLog, IdentityActivity

__all__ = ["ActivityLog", "IdentityActivity"]
