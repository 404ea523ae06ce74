"""What behaviour reads from a request's context: event time, network, region, user agent.

Each reader returns a value, or ``None`` and the reason it could not be read, so a signal that
depends on it is reported as *unknown* with that reason instead of failing. Nothing here raises on
any JSON input. Readers keep small bounded caches: the same address or user agent is parsed once.

- ``context.time``: RFC 3339 (section 5.6, offset required), read by
  :func:`vigil.model.timefmt.parse_epoch`, the one time parser. Missing: the decision time is used.
  Malformed, or further than ``max_skew_s`` from the decision time: the hour cannot be judged
  (a client-sent time is never trusted beyond the skew; replay passes the event time as ``now``).
- ``context.ip``: a string or a Cedar ``{"__extn": {"fn": "ip", "arg": ...}}``. The network is the
  /24 of an IPv4 address and the /48 of an IPv6 one.
- ``context.region``: a non-empty string of at most 64 characters.
- ``context.user_agent``: a string of at most 1,024 characters; its *family* (the product token
  before the first ``/`` or space, lower-cased: ``aws-cli``, ``boto3``) is what is learned, so a
  version upgrade is not a new client.
"""

from __future__ import annotations

import ipaddress
import re
from socket import AF_INET, inet_pton
from typing import Any, Final

from vigil.model.timefmt import TimeFormatError, parse_epoch

CACHE_LIMIT: Final = 65_536
MAX_REGION: Final = 64
MAX_USER_AGENT: Final = 1_024

BAD: Final = ""  # cached marker of a malformed address / user agent


def _quote(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class ContextReader:
    """Parses and caches the behaviour fields of request contexts (one per engine)."""

    __slots__ = ("_last_time", "_nets", "max_skew_s", "ua_cache")

    def __init__(self, max_skew_s: float) -> None:
        self.max_skew_s = max_skew_s
        self._nets: dict[str, str] = {}
        self.ua_cache: dict[str, str] = {}  # user-agent string -> family (BAD when malformed)
        self._last_time: tuple[str, float | None] = ("", None)

    # -- time --------------------------------------------------------------------------------
    def event_time(self, value: Any, when: float) -> tuple[float, str | None]:
        """``(time, None)`` or ``(when, why the hour cannot be judged)`` for ``context.time``."""
        if type(value) is not str:
            return when, f"context.time {_quote(value)} is not an RFC 3339 string"
        last = self._last_time
        if last[0] == value:
            t = last[1]
        else:
            t = _parse_time(value)
            self._last_time = (value, t)
        if t is None:
            return when, f"context.time {_quote(value)} is not an RFC 3339 date-time"
        if abs(t - when) > self.max_skew_s:
            return when, (
                f"context.time is {abs(t - when):.0f} s from the decision time "
                f"(more than {self.max_skew_s:.0f} s): not trusted"
            )
        return t, None

    # -- network -----------------------------------------------------------------------------
    def network(self, value: Any) -> str | None:
        """The network key of ``context.ip`` (``"10.40.8.0/24"``), or None when malformed."""
        text = value if type(value) is str else _extn_ip(value)
        if text is None:
            return None
        try:
            inet_pton(AF_INET, text)  # strict dotted quad (no leading zeros, 4 parts)
        except (OSError, ValueError):
            pass
        else:
            return text[: text.rfind(".")] + ".0/24"
        got = self._nets.get(text)
        if got is None:
            got = _network_key(text)
            if len(self._nets) >= CACHE_LIMIT:
                self._nets.clear()
            self._nets[text] = got
        return got or None

    @staticmethod
    def network_why(value: Any) -> str:
        return f"context.ip {_quote(value)} is not an IP address"

    # -- user agent --------------------------------------------------------------------------
    def user_agent(self, value: Any) -> str | None:
        """The user-agent family (``"aws-cli"``), or None when malformed."""
        if type(value) is not str:
            return None
        got = self.ua_cache.get(value)
        if got is None:
            got = _ua_family(value)
            if len(self.ua_cache) >= CACHE_LIMIT:
                self.ua_cache.clear()
            self.ua_cache[value] = got
        return got or None

    @staticmethod
    def user_agent_why(value: Any) -> str:
        return f"context.user_agent {_quote(value)} is not a user-agent string"

    @staticmethod
    def region_why(value: Any) -> str:
        return f"context.region {_quote(value)} is not a region name"


def region_ok(value: Any) -> bool:
    """True when ``value`` can be a region name."""
    return type(value) is str and 0 < len(value) <= MAX_REGION and value.isprintable()


def _parse_time(value: str) -> float | None:
    """Epoch seconds of an RFC 3339 ``value``, or None when it is not one."""
    try:
        return parse_epoch(value)
    except TimeFormatError:
        return None


def _extn_ip(value: Any) -> str | None:
    if type(value) is dict:
        ext = value.get("__extn")
        if type(ext) is dict and ext.get("fn") == "ip":
            arg = ext.get("arg")
            if type(arg) is str:
                return arg
    return None


def _network_key(text: str) -> str:
    if len(text) > 64:
        return BAD
    parts = text.split(".")
    if len(parts) == 4 and ":" not in text:
        last = parts[3]
        slash = last.find("/")
        if slash >= 0:
            last = last[:slash]
        if all(p.isdigit() and len(p) <= 3 and int(p) <= 255 for p in (parts[0], parts[1], parts[2], last)):
            return f"{int(parts[0])}.{int(parts[1])}.{int(parts[2])}.0/24"
        return BAD
    try:
        addr = ipaddress.ip_interface(text)
    except ValueError:
        return BAD
    if addr.version == 4:  # pragma: no cover - dotted quads are handled above
        return str(ipaddress.ip_network(f"{addr.ip}/24", strict=False))
    mapped = addr.ip.ipv4_mapped
    if mapped is not None:
        return _network_key(str(mapped))
    return str(ipaddress.ip_network(f"{addr.ip}/48", strict=False))


_UA_TOKEN: Final = re.compile(r"[A-Za-z0-9._+-]+")


def _ua_family(text: str) -> str:
    if not text or len(text) > MAX_USER_AGENT or not text.isprintable():
        return BAD
    m = _UA_TOKEN.match(text.strip())
    if m is None:
        return "other"
    return m.group(0).lower()[:64]
