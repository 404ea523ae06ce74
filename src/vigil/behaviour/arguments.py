"""What behaviour learns from a tool call's arguments (``context.arguments``): the *places* a call
reaches, as short keys an identity's profile can remember.

An agent's tools are few; what it does with them is in the arguments: the folder it reads, the host
it calls, the table it queries. A call that reaches a place the agent never reached before is the
``new_argument`` signal (an unusual path prefix, host or table). Free text (a prompt, a message, a
query body) says nothing stable and is not learned.

:func:`argument_keys` reads the top-level arguments (and the strings in a top-level list, the first
:data:`MAX_LIST` of them) and gives, for each value that names a place:

* a URL (``scheme://host...``) -> ``host:<host>`` (lower case, no port, no credentials);
* a path (starts with ``/``, ``~``, ``./``, ``../``, a drive ``C:\\`` or holds a ``/`` and no
  blank) -> ``path:<its first two components>`` after ``..`` and ``.`` are resolved, so
  ``/srv/reports/../../etc/shadow`` is ``path:/etc/shadow`` and not ``/srv/reports``;
* an e-mail address -> ``mail:@<domain>``;
* a short identifier (letters, digits, ``_ . : -``, at most :data:`MAX_IDENT` characters, at
  least one letter) -> ``<argument name>=<value>`` in lower case, e.g. ``table=sales.orders``;
* anything else (numbers, booleans, free text, long values) -> nothing.

At most :data:`MAX_KEYS` keys per call, in argument order. A leaf module: pure functions, no I/O.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Final

MAX_KEYS: Final = 8
MAX_LIST: Final = 8
MAX_IDENT: Final = 64
MAX_VALUE: Final = 2_048
PATH_DEPTH: Final = 2

_URL: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31})://([^/?#\s]*)")
_IDENT: Final = re.compile(r"[A-Za-z0-9_.:\-]+")
_MAIL: Final = re.compile(r"[^@\s/]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_DRIVE: Final = re.compile(r"[A-Za-z]:[\\/]")
_LETTER: Final = re.compile(r"[A-Za-z]")


def argument_keys(arguments: Any) -> tuple[str, ...]:
    """The place keys of a call's ``arguments`` (a JSON object; anything else gives none)."""
    if type(arguments) is not dict or not arguments:
        return ()
    keys: list[str] = []
    for name, value in arguments.items():
        if type(value) is str:
            _add(keys, str(name), value)
        elif type(value) is list:
            for item in value[:MAX_LIST]:
                if type(item) is str:
                    _add(keys, str(name), item)
        if len(keys) >= MAX_KEYS:
            return tuple(keys[:MAX_KEYS])
    return tuple(keys)


def _add(keys: list[str], name: str, value: str) -> None:
    key = place_of(name, value)
    if key is not None and key not in keys:
        keys.append(key)


def place_of(name: str, value: str) -> str | None:
    """The place key of one argument value (see the module docstring), or None."""
    value = value.strip()
    if not value or len(value) > MAX_VALUE:
        return None
    url = _URL.match(value)
    if url is not None:
        return _host_key(url.group(2))
    if _is_path(value):
        return "path:" + _path_prefix(value)
    mail = _MAIL.fullmatch(value)
    if mail is not None:
        return "mail:@" + mail.group(1).lower()
    if len(value) <= MAX_IDENT and _IDENT.fullmatch(value) and _LETTER.search(value):
        return f"{name.lower()[:MAX_IDENT]}={value.lower()}"
    return None


def _host_key(authority: str) -> str | None:
    host = authority.rpartition("@")[2]  # no credentials
    if host.startswith("["):  # an IPv6 literal: up to the bracket
        end = host.find("]")
        host = host[: end + 1] if end > 0 else host
    else:
        host = host.partition(":")[0]  # no port
    host = host.rstrip(".").lower()
    return "host:" + host if host else None


def _is_path(value: str) -> bool:
    if value[0] in "/~" or value.startswith(("./", "../")) or _DRIVE.match(value):
        return True
    return "/" in value and not any(c.isspace() for c in value)


def _path_prefix(value: str) -> str:
    """The first :data:`PATH_DEPTH` components of the resolved path (``\\`` read as ``/``)."""
    text = value.replace("\\", "/")
    drive = ""
    if _DRIVE.match(text):
        drive, text = text[:2].lower(), text[2:]
    rooted = text.startswith(("/", "~"))
    resolved = posixpath.normpath(text)
    parts = [p for p in resolved.split("/") if p and p != "."]
    if not rooted:
        # a relative path climbing out of where it starts keeps its climb: "../../etc" is not "etc"
        climb = 0
        while climb < len(parts) and parts[climb] == "..":
            climb += 1
        head = parts[: max(climb, 0) + PATH_DEPTH]
        return drive + "/".join(head) if head else drive + "."
    head = parts[:PATH_DEPTH]
    root = "" if text.startswith("~") else "/"
    return drive + root + "/".join(head)
