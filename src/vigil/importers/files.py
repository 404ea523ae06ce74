"""CloudTrail log files in, replayable JSON lines out (``vigil import cloudtrail``).

Accepted files (each may be gzip-compressed, ``.json.gz`` as CloudTrail delivers them to S3):

- a CloudTrail log file: ``{"Records": [record, ...]}``;
- a JSON array of records (``[record, ...]``, as in the Stratus Red Team detonation logs);
- JSON lines: one record per line (or one ``{"Records": [...]}`` object per line), as exported by
  Logstash, Athena or ``jq -c``; a single record object is a one-line file.

Nothing in a file stops an import: an unreadable file, a broken JSON document (one error for the
file), a line of JSON lines that is not JSON, or a record that cannot be mapped (:func:`vigil.importers.cloudtrail.to_request`) becomes one *error line*
``{"file", "line" | "record", "error": {"code", "message"}}`` and the import goes on.
"""

from __future__ import annotations

import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

import orjson

from vigil.errors import VigilError
from vigil.importers.cloudtrail import to_request

__all__ = [
    "INVALID_FILE",
    "INVALID_JSON",
    "MAX_FILE_BYTES",
    "ImportSummary",
    "ImportedRecord",
    "import_cloudtrail",
    "read_records",
    "write_workspace",
]

INVALID_FILE: Final = "invalid_file"
INVALID_JSON: Final = "invalid_json"
MAX_FILE_BYTES: Final = 1 << 30
"""Largest (decompressed) file read; a larger one is one ``invalid_file`` error line."""

_GZIP_MAGIC: Final = b"\x1f\x8b"


@dataclass(frozen=True, slots=True)
class ImportedRecord:
    """One record of one file: its ``request``, or an ``error`` ``{"code", "message"}``.

    ``where`` is ``("line", n)`` for JSON lines (1-based line number) and ``("record", n)`` for
    records of a ``Records`` array or a JSON array (1-based index); ``("file", 0)`` for a whole file.
    """

    file: str
    where: tuple[str, int]
    request: dict[str, Any] | None = None
    error: dict[str, str] | None = None

    def error_line(self) -> dict[str, Any]:
        """The error object written for a bad record."""
        out: dict[str, Any] = {"file": self.file}
        if self.where[0] != "file":
            out[self.where[0]] = self.where[1]
        out["error"] = self.error
        return out


def read_records(path: str | Path) -> Iterator[tuple[tuple[str, int], Any]]:
    """The raw records of one file, each with its place: ``(("record", 3), {...})``.

    A value that cannot be read is yielded as a :class:`VigilError` in place of the record (code
    ``invalid_file`` for the whole file, ``invalid_json`` for one line); never raises for file content.
    """
    name = str(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        yield ("file", 0), VigilError(f"cannot read {name!r}: {e.strerror or e}", code=INVALID_FILE)
        return
    if data[:2] == _GZIP_MAGIC:
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as g:
                data = g.read(MAX_FILE_BYTES + 1)
        except (OSError, EOFError, zlib.error) as e:
            yield ("file", 0), VigilError(f"{name!r} is not a readable gzip file: {e}", code=INVALID_FILE)
            return
    if len(data) > MAX_FILE_BYTES:
        yield ("file", 0), VigilError(f"{name!r} is larger than {MAX_FILE_BYTES} bytes", code=INVALID_FILE)
        return
    yield from _parse(data, name)


def _parse(data: bytes, name: str) -> Iterator[tuple[tuple[str, int], Any]]:
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            whole = _loads(data)
        except ValueError as e:
            if not _first_line_parses(data):  # a broken JSON document, not JSON lines
                yield ("file", 0), VigilError(f"{name!r} is not valid JSON: {e}", code=INVALID_JSON)
                return
        else:
            if type(whole) is list:
                yield from ((("record", i), r) for i, r in enumerate(whole, 1))
                return
            records = whole.get("Records", whole) if type(whole) is dict else whole
            if type(records) is list:
                yield from ((("record", i), r) for i, r in enumerate(records, 1))
            elif records is whole:
                yield ("record", 1), whole
            else:
                yield ("file", 0), VigilError(f"{name!r}: 'Records' must be an array", code=INVALID_FILE)
            return
    for n, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = _loads(line)
        except ValueError as e:
            yield ("line", n), VigilError(f"invalid JSON: {e}", code=INVALID_JSON)
            continue
        nested = value.get("Records") if type(value) is dict else None
        if type(nested) is list:
            yield from ((("line", n), r) for r in nested)
        else:
            yield ("line", n), value


def _first_line_parses(data: bytes) -> bool:
    for line in data.splitlines():
        if line.strip():
            try:
                _loads(line)
            except ValueError:
                return False
            return True
    return False


def _loads(data: bytes) -> Any:
    """JSON (orjson; the standard library for what orjson refuses but JSON allows, such as integers
    beyond 64 bits). Raises ValueError."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as first:
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise ValueError(str(first)) from None


def convert(file: str, items: Iterable[tuple[tuple[str, int], Any]]) -> Iterator[ImportedRecord]:
    """Map each raw record to an :class:`ImportedRecord` (never raises for record content)."""
    for where, record in items:
        if isinstance(record, VigilError):
            yield ImportedRecord(file, where, error={"code": record.code, "message": record.message})
            continue
        try:
            request = to_request(record)
            orjson.dumps(request)  # surrogates and other unencodable text end here, as an error line
        except VigilError as e:
            yield ImportedRecord(file, where, error={"code": e.code, "message": e.message})
            continue
        except (TypeError, orjson.JSONEncodeError) as e:
            yield ImportedRecord(
                file, where, error={"code": "invalid_record", "message": f"unencodable: {e}"}
            )
            continue
        yield ImportedRecord(file, where, request=request)


@dataclass
class ImportSummary:
    """What an import did: files read, requests written, bad records by code, identities seen."""

    files: int = 0
    requests: int = 0
    bad_records: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    identities: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    first_time: str = ""
    last_time: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "requests": self.requests,
            "bad_records": self.bad_records,
            "errors_by_code": dict(sorted(self.errors_by_code.items())),
            "identities": len(self.identities),
            "first_time": self.first_time,
            "last_time": self.last_time,
        }


class BinaryWriter(Protocol):
    def write(self, data: bytes, /) -> object: ...


def import_cloudtrail(
    paths: Iterable[str | Path],
    out: BinaryWriter,
    errors: BinaryWriter | None = None,
    *,
    sort: bool = True,
    on_record: Callable[[ImportedRecord], None] | None = None,
) -> ImportSummary:
    """Import CloudTrail files: one AuthZEN request line per good record to ``out``, one error line per
    bad record to ``errors`` (``None``: counted only).

    ``sort`` orders the requests by event time (stable: ties keep file order), as replay needs;
    CloudTrail delivers records roughly, not strictly, in order. Without it requests stream out in
    file order. Returns the summary; raises only for write errors (``OSError``).
    """
    summary = ImportSummary()
    pending: list[tuple[str, int, bytes]] = []
    dumps = orjson.dumps
    newline = orjson.OPT_APPEND_NEWLINE
    seq = 0
    for path in paths:
        summary.files += 1
        name = str(path)
        for item in convert(name, read_records(path)):
            if on_record is not None:
                on_record(item)
            if item.request is None:
                summary.bad_records += 1
                code = item.error["code"] if item.error else "invalid_record"
                summary.errors_by_code[code] = summary.errors_by_code.get(code, 0) + 1
                if errors is not None:
                    errors.write(dumps(item.error_line(), option=newline))
                continue
            request = item.request
            summary.requests += 1
            _note_identity(summary, request)
            line = dumps(request, option=newline)
            stamp: str = request["context"]["time"]
            if not summary.first_time or stamp < summary.first_time:
                summary.first_time = stamp
            summary.last_time = max(summary.last_time, stamp)
            if sort:
                pending.append((stamp, seq, line))
                seq += 1
            else:
                out.write(line)
    if sort:
        pending.sort(key=lambda p: (p[0], p[1]))
        for _, _, line in pending:
            out.write(line)
    return summary


def _note_identity(summary: ImportSummary, request: dict[str, Any]) -> None:
    subject = request["subject"]
    uid = (subject["type"], subject["id"])
    if uid not in summary.identities:
        props = subject.get("properties") or {}
        summary.identities[uid] = {k: props[k] for k in ("account", "principal_type") if k in props}


# -- the matching workspace ----------------------------------------------------------------------

PERMIT_ALL: Final = """\
// Written by `vigil import cloudtrail`: policy permits every call, so only behaviour decides
// (risk, step-up, quarantine). Add forbids here to test guardrails on the same history.
@id("permit-all")
permit (principal, action, resource);
"""

SETTINGS: Final = """\
# Written by `vigil import cloudtrail`. Replay the imported events here to see what vigil's
# behaviour model says about them: policy permits everything (policies/permit-all.cedar).
[behaviour]
mode = "enforce"
"""


def write_workspace(path: str | Path, identities: dict[tuple[str, str], dict[str, str]]) -> Path:
    """Write a schema-free evaluation workspace for imported events at ``path``.

    ``vigil.toml`` (behaviour enforced), ``policies/permit-all.cedar`` and ``entities/identities.json``
    (one entity per identity, with its ``account`` and ``principal_type``). Refuses a ``path`` that
    exists and is not an empty folder (raises VigilError ``invalid_output``).
    """
    root = Path(path)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise VigilError(f"workspace folder {str(root)!r} exists and is not empty", code="invalid_output")
    (root / "policies").mkdir(parents=True, exist_ok=True)
    (root / "entities").mkdir(exist_ok=True)
    (root / "vigil.toml").write_text(SETTINGS, encoding="utf-8")
    (root / "policies" / "permit-all.cedar").write_text(PERMIT_ALL, encoding="utf-8")
    entities = [
        {"uid": {"type": t, "id": i}, "attrs": attrs, "parents": []}
        for (t, i), attrs in sorted(identities.items())
    ]
    (root / "entities" / "identities.json").write_bytes(orjson.dumps(entities, option=orjson.OPT_INDENT_2))
    return root
