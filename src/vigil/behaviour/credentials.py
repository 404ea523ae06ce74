"""``credential_misuse``: a credential bound to a workload, used from a person's workstation.

Some credentials are delivered to one workload and live there: an EC2 instance role's session
credentials (CloudTrail marks them with ``sessionContext.ec2RoleDelivery``; vigil's CloudTrail
importer sets ``context.credential_source = "ec2_instance"``), a Kubernetes pod's projected
token, a CI job's OIDC token. A PEP that knows a request's credential is such a one says so in
``context.credential_source`` (any non-empty text: ``ec2_instance``, ``pod``, ``ci_job``,
``workload``). When that request's user agent names a workstation platform (macOS, Windows, a
desktop browser), the credential has left its workload: the textbook instance-credential theft
(MITRE ATT&CK T1552.005), which needs no history to see.

This module is a leaf: reading the platform of a user agent.
"""

from __future__ import annotations

import re
from typing import Any, Final

# desktop platforms as user agents name them: AWS CLI / SDKs ("Darwin/19.5.0", "Windows/10",
# "exec-env/..."), browsers ("Macintosh; Intel Mac OS X", "Windows NT 10.0")
_WORKSTATION: Final = re.compile(r"\b(Darwin/|Windows/|Windows NT|Macintosh|Mac OS X|Win64)")
_CACHE: dict[str, str | None] = {}
_CACHE_LIMIT: Final = 4_096


def workstation(user_agent: Any) -> str | None:
    """The workstation platform a user agent names (``"Darwin/"``, ``"Windows NT"``, ...), or
    None (a server or unknown platform, or not text)."""
    if type(user_agent) is not str:
        return None
    got = _CACHE.get(user_agent, "")
    if got != "":
        return got
    m = _WORKSTATION.search(user_agent[:1_024])
    found = m.group(1) if m else None
    if len(_CACHE) < _CACHE_LIMIT:
        _CACHE[user_agent] = found
    return found


__all__ = ["workstation"]
