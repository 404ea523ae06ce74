"""What behaviour learns from a tool call's arguments (``context.arguments``): the *places* a call
reaches, as short keys an identity's profile can remember.

An agent's tools are few; what it does with them is in the arguments: the folder it reads, the host
it calls, the table it queries. A call that reaches a place the agent never reached before is the
``new_argument`` signal (an unusual path prefix, host or table). Free text (a prompt, a message, a
query body) says nothing stable and is not learned.

:func:`argument_keys` reads the string values of the arguments, in objects and lists nested up to
:data:`MAX_DEPTH` levels (the first :data:`MAX_LIST` items of a list), each value first brought to
one spelling (Unicode NFKC, then percent-decoded until it no longer changes, at most three times),
and gives, for each value that names a place:

* a URL (``scheme://host...``; ``\\`` read as ``/``) -> ``host:<host>`` (lower case, no port, no
  credentials); a ``file:`` URL -> its path, as a path;
* a Windows share (``\\\\host\\share``) -> ``host:<host>``;
* a path (starts with ``/``, ``~``, ``./``, ``../``, a drive ``C:\\`` or holds a ``/`` and no
  blank) -> ``path:<its first two components>`` after ``..`` and ``.`` are resolved, so
  ``/srv/reports/../../etc/shadow`` (or ``/srv/reports/%2e%2e/%2e%2e/etc/shadow``) is
  ``path:/etc/shadow`` and not ``/srv/reports``;
* an e-mail address -> ``mail:@<domain>``;
* a short identifier (letters, digits, ``_ . : -``, at most :data:`MAX_IDENT` characters, at
  least one letter) -> ``<argument name>=<value>`` in lower case, e.g. ``table=sales.orders``;
* a path or URL longer than :data:`MAX_VALUE` -> ``path:?overlong`` / ``host:?overlong`` (a place
  nobody names that way; padding cannot hide it);
* anything else (numbers, booleans, free text, other long values) -> nothing.

At most :data:`MAX_KEYS` keys per call: places (paths, hosts, mail domains) first, then
identifiers, so a call cannot push its path out with identifiers. A leaf module: pure functions.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from typing import Any, Final
from urllib.parse import unquote

MAX_KEYS: Final = 8
MAX_LIST: Final = 8
MAX_IDENT: Final = 64
MAX_VALUE: Final = 2_048
MAX_DEPTH: Final = 3
PATH_DEPTH: Final = 2
_DECODE_ROUNDS: Final = 3

_URL: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.-]{0,31})://([^/?#\s]*)")
_IDENT: Final = re.compile(r"[A-Za-z0-9_.:\-]+")
_MAIL: Final = re.compile(r"[^@\s/]+@([A-Za-z0-9.-]+\.[A-Za-z]{2,})")
_DRIVE: Final = re.compile(r"[A-Za-z]:[\\/]")
_LETTER: Final = re.compile(r"[A-Za-z]")
_PLACES: Final = ("path:", "host:", "mail:")


def argument_keys(arguments: Any) -> tuple[str, ...]:
    """The place keys of a call's ``arguments`` (a JSON object; anything else gives none)."""
    if type(arguments) is not dict or not arguments:
        return ()
    found: list[str] = []
    _walk(found, "", arguments, 0)
    places = [k for k in found if k.startswith(_PLACES)]
    idents = [k for k in found if not k.startswith(_PLACES)]
    return tuple((places + idents)[:MAX_KEYS])


def _walk(found: list[str], name: str, value: Any, depth: int) -> None:
    if len(found) >= 4 * MAX_KEYS:
        return
    t = type(value)
    if t is str:
        key = place_of(name, value)
        if key is not None and key not in found:
            found.append(key)
    elif depth < MAX_DEPTH:
        if t is dict:
            for k, v in value.items():
                _walk(found, str(k), v, depth + 1)
        elif t is list:
            for v in value[:MAX_LIST]:
                _walk(found, name, v, depth + 1)


def _spelled(value: str) -> str:
    """``value`` in one spelling: NFKC (``‥`` is ``..``), then percent-decoded until stable."""
    text = unicodedata.normalize("NFKC", value)
    for _ in range(_DECODE_ROUNDS):
        if "%" not in text:
            break
        decoded = unquote(text)
        if decoded == text:
            break
        text = unicodedata.normalize("NFKC", decoded)
    return text


def place_of(name: str, value: str) -> str | None:
    """The place key of one argument value (see the module docstring), or None."""
    raw = value.strip()
    if not raw:
        return None
    if len(raw) > 4 * MAX_VALUE:
        return _overlong(raw)
    text = _spelled(raw).replace("\0", "")
    if len(text) > MAX_VALUE:
        return _overlong(text)
    if text.startswith("\\\\"):  # a Windows share: \\host\share\...
        return _host_key(text[2:].replace("\\", "/").split("/", 1)[0])
    url = _URL.match(text.replace("\\", "/"))
    if url is not None:
        if url.group(1).lower() == "file":
            rest = text.replace("\\", "/")[url.end(1) + 3 :]
            path = rest[rest.find("/") :] if "/" in rest else "/"
            return "path:" + _path_prefix(path)
        return _host_key(url.group(2))
    if _is_path(text):
        return "path:" + _path_prefix(text)
    mail = _MAIL.fullmatch(text)
    if mail is not None:
        return "mail:@" + mail.group(1).lower()
    if len(text) <= MAX_IDENT and _IDENT.fullmatch(text) and _LETTER.search(text):
        return f"{name.lower()[:MAX_IDENT]}={text.lower()}"
    return None


def _overlong(text: str) -> str | None:
    if _URL.match(text[:64].replace("\\", "/")):
        return "host:?overlong"
    if _is_path(text[:256]):
        return "path:?overlong"
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
    if value[0] in "/~" or value.startswith(("./", "../", ".\\", "..\\")) or _DRIVE.match(value):
        return True
    return ("/" in value or "\\" in value) and not any(c.isspace() for c in value)


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
        head = parts[: climb + PATH_DEPTH]
        return drive + "/".join(head) if head else drive + "."
    head = parts[:PATH_DEPTH]
    root = "" if text.startswith("~") else "/"
    return drive + root + "/".join(head)
