"""The identity registry: lifecycle state of the identities that act (agents, service accounts,
workloads), beside the workspace's entities (which stay the source of truth for attributes).

See ``docs/identity.md``. The pieces:

- :class:`Registry` (``registry.py``): records mirrored in memory over the state store, writes
  checked against concurrent writers, the gate the decision path reads (``inactive``,
  ``next_expiry``), usage (``last_used``, a token counter);
- ``lifecycle.py``: the transitions (suspend, resume, retire, keys, bindings) as pure functions;
- ``keys.py``: public keys from JWK or PEM, RFC 7638 thumbprints;
- ``parse.py``: operator input (uids, owners, dates, bindings) to checked values or typed errors;
- ``report.py``: the hygiene report.

The operator use cases (audited, with ``by``) are :class:`vigil.operations.identities.IdentityDesk`.
"""

from __future__ import annotations

from vigil.identity.errors import (
    BindingError,
    DateError,
    IdentityConflict,
    IdentityNotFound,
    IdentityTypeError,
    KeyFormatError,
    OwnerError,
    UidError,
)
from vigil.identity.keys import PublicKey, load_public_key, read_key_file, thumbprint
from vigil.identity.lifecycle import EXPIRED, is_active, state_at
from vigil.identity.parse import (
    parse_expiry,
    parse_external_subject,
    parse_identity_uid,
    parse_issuer,
    parse_owner,
    uid_text,
)
from vigil.identity.registry import Registry
from vigil.identity.report import FINDINGS, hygiene
from vigil.identity.settings import IdentitySettings
from vigil.store.base import (
    ACTIVE,
    IDENTITY_STATES,
    RETIRED,
    SUSPENDED,
    IdentityBinding,
    IdentityEntry,
    IdentityKey,
    IdentityUsage,
)

__all__ = [
    "ACTIVE",
    "EXPIRED",
    "FINDINGS",
    "IDENTITY_STATES",
    "RETIRED",
    "SUSPENDED",
    "BindingError",
    "DateError",
    "IdentityBinding",
    "IdentityConflict",
    "IdentityEntry",
    "IdentityKey",
    "IdentityNotFound",
    "IdentitySettings",
    "IdentityTypeError",
    "IdentityUsage",
    "KeyFormatError",
    "OwnerError",
    "PublicKey",
    "Registry",
    "UidError",
    "hygiene",
    "is_active",
    "load_public_key",
    "parse_expiry",
    "parse_external_subject",
    "parse_identity_uid",
    "parse_issuer",
    "parse_owner",
    "read_key_file",
    "state_at",
    "thumbprint",
    "uid_text",
]
