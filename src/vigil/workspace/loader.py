"""Load and validate a workspace folder as a whole (ARCHITECTURE section 4).

Layout: ``vigil.toml``; ``policies/*.cedar``; optional ``schema.cedarschema``; ``entities/*.json``
(Cedar entity JSON arrays); optional ``links.json`` (template links). Files are read in sorted
order. Any problem refuses the whole workspace with every file:line message found.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter
from typing import Any

import orjson

from vigil.errors import VigilError, WorkspaceError
from vigil.escalation.iam_export import load_export
from vigil.escalation.reach import ReachTable, aws_reach, reach_table, with_aws
from vigil.policy.build import BuildError, EntitiesNeeded, PolicySet, build_policy_set
from vigil.policy.cedar import CedarError, PolicySource, parse_policies
from vigil.workspace.settings import Settings, parse_settings

MAX_FILE_BYTES = 256 * 1024 * 1024
_LONG_DIGITS = re.compile(r"[0-9]{20}")


@dataclass(frozen=True, slots=True)
class Workspace:
    """A validated, compiled workspace."""

    path: Path
    settings: Settings
    policy_set: PolicySet
    policy_files: tuple[str, ...]
    entity_files: tuple[str, ...]
    has_schema: bool
    # SHA-256 of the entity files' names and bytes and the schema: a reload whose digest is equal
    # reuses the entities instead of reading them again ("" : not known).
    entity_source_digest: str = ""
    # each identity's escalation reach ([escalation] reach = true), else None
    reach: ReachTable | None = None

    @property
    def revision(self) -> str:
        return self.policy_set.revision


def load_workspace(
    path: str | Path, previous: Workspace | None = None, *, batches_logged: bool = False
) -> Workspace:
    """Read, validate and compile the workspace at ``path``; raises WorkspaceError listing every
    problem.

    ``previous``: the workspace loaded from ``path`` before (a reload). Its compiled policies are
    reused where unchanged, and when the entity files and the schema are byte for byte the same
    and no entity batch changed its store since, its entities too (a policy change then costs
    the policies' parse and what changed, not the estate). ``batches_logged``: every batch that
    changed it is in the change log and the caller replays the log onto the new store
    ([cluster]; ``PolicySet.entities_reused`` says whether it was reused): then the entities are
    reused despite the batches."""
    root = Path(path)
    if not root.is_dir():
        raise WorkspaceError(f"workspace {str(root)!r} is not a directory", [f"{root}: not a directory"])
    problems: list[str] = []
    settings = _settings(root, problems)
    sources = _policies(root, problems)
    schema_text = (
        _read(root / "schema.cedarschema", root, problems) if (root / "schema.cedarschema").exists() else None
    )
    entity_sources = _read_entity_files(root)
    source_digest = _entity_source_digest(entity_sources, schema_text)
    reusable = (
        previous is not None
        and source_digest != ""
        and previous.entity_source_digest == source_digest
        and (previous.policy_set.store.changes == 0 or batches_logged)
    )
    if reusable:
        assert previous is not None
        entities: list[Any] = []
        entity_files, origins = list(previous.entity_files), None
    else:
        entities, entity_files, origins = _entities(root, entity_sources, problems)
    links = _links(root, problems)
    if problems:
        # Report policy syntax errors too, so one `vigil check` shows everything it can.
        try:
            parse_policies(sources)
        except CedarError as e:
            problems.extend(p for p in str(e).split("; ") if p not in problems)
        raise WorkspaceError(f"workspace {str(root)!r} is invalid: {problems[0]}", problems)
    last = previous.policy_set if previous is not None else None
    try:
        try:
            policy_set = build_policy_set(
                sources,
                entities,
                schema_text,
                links,
                entity_origins=origins,
                previous=last,
                reuse_entities=reusable,
            )
        except EntitiesNeeded:
            entities, entity_files, origins = _entities(root, entity_sources, problems)
            if problems:
                raise WorkspaceError(f"workspace {str(root)!r} is invalid: {problems[0]}", problems) from None
            policy_set = build_policy_set(
                sources, entities, schema_text, links, entity_origins=origins, previous=last
            )
    except BuildError as e:
        raise WorkspaceError(f"workspace {str(root)!r} is invalid: {e.problems[0]}", e.problems) from None
    settings = settings or Settings()
    reach = workspace_reach(policy_set, settings, root)
    return Workspace(
        path=root,
        settings=settings,
        policy_set=policy_set,
        policy_files=tuple(s.path for s in sources),
        entity_files=tuple(entity_files),
        has_schema=schema_text is not None,
        entity_source_digest=source_digest,
        reach=reach,
    )


def workspace_reach(policy_set: PolicySet, settings: Settings, root: Path) -> ReachTable | None:
    """Each identity's escalation reach when ``[escalation] reach`` is on (else None).

    Raises WorkspaceError naming the problem when it cannot be computed (a ``context_guards``
    entry that is no forbid; more checks than ``reach_max_checks``, whose code
    ``escalation_too_large`` the problem text carries)."""
    esc = settings.escalation
    if not esc.reach:
        return None
    try:
        table = reach_table(policy_set.policies, policy_set.store, esc, settings.identity.types)
    except VigilError as e:
        problem = f"vigil.toml: [escalation] reach: {e.message} ({e.code})"
        raise WorkspaceError(f"workspace {str(root)!r} is invalid: {problem}", [problem]) from None
    if not esc.aws_iam:
        return table
    t0 = perf_counter()
    try:
        # the export's policies are judged as of now (a condition on aws:CurrentTime)
        aws, steps = aws_reach(load_export(root / esc.aws_iam, datetime.now(UTC)))
    except VigilError as e:
        problem = f"vigil.toml: [escalation] aws_iam: {esc.aws_iam}: {e.message} ({e.code})"
        raise WorkspaceError(f"workspace {str(root)!r} is invalid: {problem}", [problem]) from None
    return with_aws(table, aws, steps, perf_counter() - t0)


def _entity_source_digest(files: EntityFiles, schema_text: str | None) -> str:
    """SHA-256 over the entity files' names and bytes and the schema text; "" when a file could
    not be read (the full load then reports it)."""
    digest = hashlib.sha256((schema_text or "").encode())
    for f, data in files:
        if data is None:
            return ""
        digest.update(f"\0{f.name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()


def _rel(root: Path, p: Path) -> str:
    try:
        return str(p.relative_to(root))
    except ValueError:
        return str(p)


def _read(p: Path, root: Path, problems: list[str]) -> str | None:
    """The file's text; None with the reason in ``problems`` (too large, unreadable, not UTF-8)."""
    try:
        if p.stat().st_size > MAX_FILE_BYTES:
            problems.append(f"{_rel(root, p)}: file larger than {MAX_FILE_BYTES} bytes")
            return None
        data = p.read_bytes()
    except OSError as e:
        problems.append(f"{_rel(root, p)}: cannot read: {e.strerror}")
        return None
    return _decode(p, data, root, problems)


def _settings(root: Path, problems: list[str]) -> Settings | None:
    p = root / "vigil.toml"
    if not p.exists():
        return Settings()
    text = _read(p, root, problems)
    if text is None:
        return None
    try:
        return parse_settings(text, "vigil.toml")
    except WorkspaceError as e:
        problems.extend(e.problems)
        return None


def _policies(root: Path, problems: list[str]) -> list[PolicySource]:
    folder = root / "policies"
    files = sorted(folder.glob("*.cedar")) if folder.is_dir() else []
    if not files:
        problems.append("policies/: no *.cedar files")
    out = []
    for f in files:
        text = _read(f, root, problems)
        if text is not None:
            out.append(PolicySource(_rel(root, f), text))
    return out


def _json_file(p: Path, root: Path, problems: list[str]) -> Any:
    text = _read(p, root, problems)
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        problems.append(f"{_rel(root, p)}:{e.lineno}: invalid JSON: {e.msg}")
        return None


EntityFiles = list[tuple[Path, bytes | None]]


def _read_entity_files(root: Path) -> EntityFiles:
    """Each ``entities/*.json`` file with its bytes (None: too large or unreadable; the parse
    step reports why). Read once: the digest and the entities come from the same bytes."""
    folder = root / "entities"
    out: EntityFiles = []
    for f in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            data = None if f.stat().st_size > MAX_FILE_BYTES else f.read_bytes()
        except OSError:
            data = None
        out.append((f, data))
    return out


def _entities(root: Path, files: EntityFiles, problems: list[str]) -> tuple[list[Any], list[str], list[str]]:
    """Every entity of the entity files (as :func:`_read_entity_files` read them), the files read,
    and each entity's ``file:line``."""
    items: list[Any] = []
    names = []
    origins: list[str] = []
    for f, data in files:
        text = _read(f, root, problems) if data is None else _decode(f, data, root, problems)
        if text is None:
            continue
        try:
            parsed = _loads(text)
        except json.JSONDecodeError as e:
            problems.append(f"{_rel(root, f)}:{e.lineno}: invalid JSON: {e.msg}")
            continue
        if not isinstance(parsed, list):
            problems.append(f"{_rel(root, f)}:1: expected a JSON array of entities")
            continue
        items.extend(parsed)
        name = _rel(root, f)
        names.append(name)
        origins.extend(f"{name}:{line}" for line in _item_lines(text, parsed))
    return items, names, origins


def _decode(f: Path, data: bytes, root: Path, problems: list[str]) -> str | None:
    """The bytes as ``read_text`` reads a file (UTF-8, universal newlines); None with the reason
    in ``problems``."""
    try:
        return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    except UnicodeDecodeError:
        problems.append(f"{_rel(root, f)}: not valid UTF-8")
        return None


def _loads(text: str) -> Any:
    """``json.loads(text)``, by orjson when it reads the text the same way (several times faster on
    a large estate); whatever orjson reads otherwise (20 digits or more: a number orjson would make
    a float) or refuses (lone surrogates, ``NaN``, an error to report) is read by ``json``, so
    values and messages are ``json``'s."""
    if _LONG_DIGITS.search(text) is not None:
        return json.loads(text)
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _item_lines(text: str, data: list[Any]) -> list[int]:
    """The line where each entity of ``data`` starts in ``text`` (best effort: its uid's id)."""
    lines = []
    pos = 0
    line = 1
    for item in data:
        uid = item.get("uid") if isinstance(item, dict) else None
        eid = uid.get("id") if isinstance(uid, dict) else None
        found = text.find(json.dumps(eid), pos) if isinstance(eid, str) else -1
        if found >= 0:
            line += text.count("\n", pos, found)  # count only the new stretch: linear overall
            pos = found
        lines.append(line)
    return lines


def _links(root: Path, problems: list[str]) -> list[Any]:
    p = root / "links.json"
    if not p.exists():
        return []
    data = _json_file(p, root, problems)
    if data is None:
        return []
    if not isinstance(data, list):
        problems.append("links.json:1: expected a JSON array of template links")
        return []
    return data


def entity_uids(path: str | Path) -> list[tuple[str, str]]:
    """The uid of every entity in the workspace's ``entities/*.json``, read without compiling the
    policies (the identity report's view of the entities); raises WorkspaceError when a file
    cannot be read. Items without a ``uid`` of two strings are skipped (``vigil check`` reports them)."""
    root = Path(path)
    problems: list[str] = []
    items, _, _ = _entities(root, _read_entity_files(root), problems)
    if problems:
        raise WorkspaceError(f"cannot read the entities of {str(root)!r}: {problems[0]}", problems)
    out = []
    for item in items:
        uid = item.get("uid") if isinstance(item, dict) else None
        if isinstance(uid, dict) and type(uid.get("type")) is str and type(uid.get("id")) is str:
            out.append((uid["type"], uid["id"]))
    return out
