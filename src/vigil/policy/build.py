"""Build a ready-to-decide policy set: parse, validate, compile, index, and wire any fallbacks."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from vigil.errors import ValueConversionError
from vigil.policy import cedar
from vigil.policy.cedar import CedarError, PolicySource, ReferenceAuthorizer
from vigil.policy.compiler import CompiledPolicy, MatchFn, Scope, Unsupported, compile_policy
from vigil.policy.entities import EntityStore
from vigil.policy.entity_json import plain_entities
from vigil.policy.entity_schema import schema_entities
from vigil.policy.evaluator import Authorizer
from vigil.policy.json_values import to_json
from vigil.policy.schema import Schema, SchemaError, parse_schema
from vigil.policy.values import EntityUid, EvalError


class EntitiesNeeded(Exception):
    """A build that reuses the previous entity store needs the entities' JSON after all (a policy
    evaluated through cedarpy reads it): the caller reads them and builds again."""


class BuildError(Exception):
    """The policy set cannot be built; ``problems`` are file:line (or file: policy) messages."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Fallback:
    """A policy evaluated by cedarpy because the compiler does not handle it."""

    policy_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class PolicySet:
    """Everything needed to decide: the authorizer, the schema (if any), counts and fallbacks."""

    authorizer: Authorizer
    schema: Schema | None
    policies: tuple[CompiledPolicy, ...]
    fallbacks: tuple[Fallback, ...]
    revision: str
    locations: Mapping[str, tuple[str, int]]
    validation_warnings: tuple[str, ...]
    text: str = ""  # the policies' text, as parsed
    schema_handle: Any = None  # cedarpy's schema, to read entity changes as the workspace's were
    links: tuple[Mapping[str, Any], ...] = ()  # the template links, as given
    # What a later build may reuse: the entities' share of the revision, and each compiled policy
    # by (template, id, slot values).
    entity_digest: bytes = b""
    compiled_by_key: Mapping[Any, CompiledPolicy] = dataclasses.field(default_factory=dict)
    entities_reused: bool = False  # the store is a copy of ``previous``'s (build_policy_set)

    @property
    def store(self) -> EntityStore:
        return self.authorizer.store

    def named_uids(self) -> frozenset[EntityUid]:
        """Every entity uid the policies name (scopes, conditions, link values), fallbacks included.

        Parses the text again: for the search index, built once per policy set on first use, so
        loading and reloading do not pay for it."""
        return cedar.named_uids(self.text, self.links)


def build_policy_set(
    sources: Sequence[PolicySource],
    entity_items: list[Any],
    schema_text: str | None = None,
    links: Sequence[Mapping[str, Any]] = (),
    *,
    require_valid: bool = True,
    force_fallback: frozenset[str] = frozenset(),
    entity_origins: Sequence[str] | None = None,
    previous: PolicySet | None = None,
    reuse_entities: bool = False,
) -> PolicySet:
    """Parse, validate (when a schema is given), compile and index; raises BuildError.

    ``previous``: an earlier build whose compiled policies are reused where the template, id and
    slot values are equal (a policy change recompiles only what changed). ``reuse_entities``: the
    entities are those of ``previous`` (their files are unchanged and no batch changed its store),
    so ``entity_items`` is not read and the store is a copy of the previous one; raises
    EntitiesNeeded when a policy needs the entities' JSON (a cedarpy fallback).

    ``require_valid=False`` keeps policies that fail schema validation (Cedar still evaluates
    them); their messages land in ``validation_warnings``. ``force_fallback`` names policies to
    evaluate through cedarpy even when they compile (for tests of the fallback path).
    ``entity_origins`` gives each entity's ``file:line`` for error messages.
    """
    problems: list[str] = []
    schema_handle: Any = None
    schema: Schema | None = None
    if schema_text is not None:
        try:
            schema_handle = cedar.parse_schema_handle(schema_text)
            schema = parse_schema(schema_text)
        except (CedarError, SchemaError) as e:
            raise BuildError([f"schema.cedarschema: {e}"]) from None
    try:
        parsed = cedar.parse_policies(sources)
        parsed = cedar.link_templates(parsed, links)
    except CedarError as e:
        raise BuildError(str(e).split("; ")) from None

    warnings: list[str] = []
    if schema_handle is not None:
        for pid, message in cedar.validate(parsed, schema_handle):
            file, line = parsed.locations.get(pid, ("policies", 0))
            text = f"{file}:{line}: policy {pid}: {message}"
            (problems if require_valid else warnings).append(text)
    if problems:
        raise BuildError(problems)

    if reuse_entities and previous is not None:
        if parsed.untyped:
            raise EntitiesNeeded()
        normalized: list[Any] = []
        store = previous.store.copy()
        entity_digest = previous.entity_digest
    else:
        normalized, store = _entity_store(entity_items, schema_handle, entity_origins, schema)
        # cedarpy returns entities in no stable order: sort so the revision depends on content only.
        entity_digest = hashlib.sha256(_canonical(sorted(normalized, key=_uid_key))).digest()

    cache = previous.compiled_by_key if previous is not None else {}
    compiled, fallbacks, keys = _compile_all(parsed.pst, normalized, schema_handle, force_fallback, cache)
    if fallbacks and reuse_entities:
        raise EntitiesNeeded()
    if parsed.untyped:
        reference = _reference(normalized, schema_handle)
        for cedar_id, text, reason in parsed.untyped:
            handle = reference.single_policy_text(text)
            compiled.append(
                _fallback_from_handle(
                    handle, cedar_id, cedar_id, cedar.policy_effect(text) == "forbid", reference, reason, {}
                )
            )
            fallbacks.append(Fallback(cedar_id, f"no typed tree: {reason}"))
        order = {f"policy{i}": i for i in range(len(compiled) + len(parsed.untyped) + 1)}
        compiled.sort(key=lambda p: order.get(p.cedar_id, len(order)))
    seen: dict[str, str] = {}
    for pol in compiled:
        if pol.id in seen:
            problems.append(f"policies: duplicate policy id {pol.id!r} ({seen[pol.id]} and {pol.cedar_id})")
        seen[pol.id] = pol.cedar_id
    if problems:
        raise BuildError(problems)
    digest = hashlib.sha256()
    digest.update(parsed.text.encode())
    digest.update(entity_digest)
    digest.update((schema_text or "").encode())
    digest.update(json.dumps(list(links), sort_keys=True).encode())
    return PolicySet(
        authorizer=Authorizer(compiled, store),
        schema=schema,
        policies=tuple(compiled),
        fallbacks=tuple(fallbacks),
        revision=digest.hexdigest()[:16],
        locations=parsed.locations,
        validation_warnings=tuple(warnings),
        text=parsed.text,
        links=tuple(links),
        schema_handle=schema_handle,
        entity_digest=entity_digest,
        compiled_by_key=keys,
        entities_reused=reuse_entities and previous is not None,
    )


def _entity_store(
    items: list[Any], schema_handle: Any, origins: Sequence[str] | None, schema: Schema | None = None
) -> tuple[list[Any], EntityStore]:
    """The entities as Cedar reads them (JSON) and as a store; raises BuildError.

    Entities in the plain subset (``entity_json``) are read by vigil alone: without a schema, and
    with one when every entity conforms to it as written (``entity_schema``; the schema's action
    entities are added, as Cedar adds them). The rest are read by cedarpy first."""
    if (schema_handle is None or schema is not None) and plain_entities(items):
        if schema is not None:
            typed = schema_entities(items, schema)
            if typed is None:
                return _cedar_entity_store(items, schema_handle, origins)
            items = typed
        try:
            return items, EntityStore.from_json(items)
        except ValueConversionError:
            pass  # cedarpy says what is wrong (or accepts what vigil's reader refuses, as before)
    return _cedar_entity_store(items, schema_handle, origins)


def _cedar_entity_store(
    items: list[Any], schema_handle: Any, origins: Sequence[str] | None
) -> tuple[list[Any], EntityStore]:
    """The entities as cedarpy reads them (by the schema when given) and as a store; raises
    BuildError naming the first bad entity."""
    try:
        normalized = cedar.normalize_entities(items, schema_handle, origins)
    except CedarError as e:
        raise BuildError([str(e)]) from None
    try:
        return normalized, EntityStore.from_json(normalized)
    except ValueConversionError as e:
        raise BuildError([f"entities: {e}"]) from None


def _canonical(items: list[Any]) -> bytes:
    """The entities as JSON with sorted keys (orjson; ``json`` for what orjson cannot write)."""
    try:
        return orjson.dumps(items, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(items, sort_keys=True).encode()


def _uid_key(item: Any) -> tuple[str, str]:
    uid = item.get("uid", {}) if isinstance(item, dict) else {}
    return (str(uid.get("type", "")), str(uid.get("id", "")))


def _compile_all(
    tree: Any,
    entities: list[Any],
    schema_handle: Any,
    force_fallback: frozenset[str],
    cache: Mapping[Any, CompiledPolicy],
) -> tuple[list[CompiledPolicy], list[Fallback], dict[Any, CompiledPolicy]]:
    """Every policy compiled (``cache``'s when its template, id and slot values are equal), those
    evaluated through cedarpy instead, and the compiled ones by key for the next build."""
    keys: dict[Any, CompiledPolicy] = {}
    compiled: list[CompiledPolicy] = []
    fallbacks: list[Fallback] = []
    reference: ReferenceAuthorizer | None = None
    # (template, slot values, reported id): a static policy reports its @id (else its Cedar id); a
    # template link reports its own new id, never the template's @id (links would all share it).
    items: list[tuple[Any, Mapping[str, EntityUid], str]] = []
    items.extend((t, {}, t.annotations.get("id", t.id)) for t in tree.static_policies.values())
    for link in tree.template_links:
        template = tree.templates[link.template_id]
        linked: dict[str, EntityUid] = {name: (str(uid.type), uid.id) for name, uid in link.values.items()}
        items.append((_relabel(template, link.new_id), linked, link.new_id))
    for template, slots, pid in items:
        try:
            if template.id in force_fallback or pid in force_fallback:
                raise Unsupported("forced by configuration")
            key = (template, pid, tuple(sorted(slots.items())))
            pol = cache.get(key)
            if pol is None:
                pol = compile_policy(template, policy_id=pid, slots=slots)
            keys[key] = pol
            compiled.append(pol)
        except Unsupported as e:
            if reference is None:
                reference = _reference(entities, schema_handle)
            compiled.append(_fallback_policy(template, pid, slots, reference, str(e)))
            fallbacks.append(Fallback(pid, str(e)))
    return compiled, fallbacks, keys


def _reference(entities: list[Any], schema_handle: Any) -> ReferenceAuthorizer:
    """cedarpy's authorizer over ``entities`` for the fallback policies; raises BuildError (never
    cedarpy's ValueError) when cedarpy refuses the entities."""
    try:
        return ReferenceAuthorizer(entities, schema_handle)
    except ValueError as e:
        raise BuildError([f"entities: {str(e).splitlines()[0] if str(e) else type(e).__name__}"]) from None


def _relabel(template: Any, new_id: str) -> Any:
    return dataclasses.replace(template, id=new_id)


def _fallback_policy(
    template: Any, pid: str, slots: Mapping[str, EntityUid], reference: ReferenceAuthorizer, reason: str
) -> CompiledPolicy:
    """A policy that cedarpy evaluates (conditions and scopes) for every request."""
    handle = reference.single_policy(template, slots)
    return _fallback_from_handle(
        handle, pid, template.id, template.effect == "forbid", reference, reason, dict(template.annotations)
    )


def _fallback_from_handle(
    handle: Any,
    pid: str,
    cedar_id: str,
    forbid: bool,
    reference: ReferenceAuthorizer,
    reason: str,
    annotations: dict[str, str],
) -> CompiledPolicy:

    def match(P: Any, A: Any, R: Any, C: Any, PA: Any, RA: Any, PANC: Any, RANC: Any, E: Any) -> bool:
        satisfied, errors = reference.policy_satisfied(handle, P, A, R, to_json(C))
        if errors:
            raise EvalError("fallback", errors[0])
        return satisfied

    fn: MatchFn = match
    return CompiledPolicy(
        id=pid,
        cedar_id=cedar_id,
        forbid=forbid,
        principal=Scope("any"),
        actions=None,
        action_in=False,
        resource=Scope("any"),
        match=fn,
        fallback_reason=reason,
        annotations=annotations,
    )
