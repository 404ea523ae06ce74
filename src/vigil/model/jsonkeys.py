"""Duplicate object keys in JSON text: refused, never resolved (orjson silently keeps the last one).

A request with ``{"subject": A, ..., "subject": B}`` could be read as A by one component (a
gateway, a log pipeline) and as B by vigil; vigil refuses it instead (``invalid_json``).

The check costs little on the common path: after orjson has parsed the text, the keys of the
parsed objects are counted and compared with the occurrences of ``":`` in the text. Every key
token in compact JSON is followed by ``":``, and a string value can only add occurrences, so equal
counts prove there was no duplicate. Only when the counts differ (a duplicate, or ``":`` inside a
string) or the text has whitespace after a quote (pretty-printed JSON, where a key may be followed
by ``" :``) is the text parsed again with the standard library to find the duplicate.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from vigil.errors import RequestError

_QUOTE_SPACE: Final = re.compile(rb'"[ \t\r\n]')


class _Duplicate(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(k)
        out[k] = v
    return out


def _count_keys(obj: Any) -> int:
    n = 0
    stack = [obj]
    pop = stack.pop
    push = stack.append
    while stack:
        v = pop()
        t = type(v)
        if t is dict:
            n += len(v)
            for x in v.values():
                tx = type(x)
                if tx is dict or tx is list:
                    push(x)
        elif t is list:
            for x in v:
                tx = type(x)
                if tx is dict or tx is list:
                    push(x)
    return n


def check_unique_keys(text: bytes | str, parsed: Any) -> None:
    """Nothing when no JSON object in ``text`` repeats a key; ``parsed`` is ``text`` already parsed
    (by orjson). Raises RequestError (``invalid_json``) naming the first repeated key otherwise, and
    when the body nests too deeply to be checked."""
    raw = text.encode("utf-8", "surrogatepass") if type(text) is str else text
    assert isinstance(raw, bytes)
    if raw.count(b'":') == _count_keys(parsed) and _QUOTE_SPACE.search(raw) is None:
        return
    try:
        json.loads(raw, object_pairs_hook=_pairs)
    except _Duplicate as d:
        raise RequestError(
            f"request body repeats the key {d.key[:64]!r} in one object", code="invalid_json"
        ) from None
    except (ValueError, RecursionError):
        # orjson accepted it, the standard library cannot read it (nesting past its depth limit):
        # unchecked is not unique, so it is refused (a duplicate could hide beside the deep part)
        raise RequestError(
            "request body nests too deeply to check for repeated keys", code="invalid_json"
        ) from None
