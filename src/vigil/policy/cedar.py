"""Everything vigil asks of cedarpy; the only module that imports it.

cedarpy parses and validates policies, schemas and entities, renders the typed policy tree that
:mod:`vigil.policy.compiler` compiles, formats policy text, and serves as the reference semantics
for policies the compiler cannot handle (fallbacks) and in tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import cedarpy

from vigil.policy.values import EntityUid


class CedarError(Exception):
    """cedarpy refused a policy, schema or entity set; the message is one line."""


@dataclass(frozen=True, slots=True)
class PolicySource:
    """One policy file's text and where it came from."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class ParsedPolicies:
    """The whole policy set: cedarpy's handle, its typed tree and where each policy starts."""

    handle: Any
    pst: Any
    text: str
    locations: Mapping[str, tuple[str, int]]  # cedar policy id ("policy3") -> (file, line)
    # Policies cedarpy parses but cannot render as a typed tree: (cedar id, text, reason).
    untyped: tuple[tuple[str, str, str], ...] = ()


def split_statements(text: str) -> list[tuple[int, str]]:
    """Split Cedar policy text at top-level ``;`` into (first line, statement) pairs.

    Strings and ``//`` comments are respected; a trailing fragment without ``;`` is returned too,
    so a parse error in it can be located. Never raises.
    """
    out: list[tuple[int, str]] = []
    start = 0
    line = 1
    start_line: int | None = None
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
        elif c == "/" and text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                if text[i] == "\\":
                    i += 1
                elif text[i] == "\n":
                    line += 1
                i += 1
        elif c == ";":
            out.append((start_line or line, text[start : i + 1]))
            start = i + 1
            start_line = None
        elif start_line is None and not c.isspace():
            start_line = line
        i += 1
    if text[start:].strip() and start_line is not None and _has_code(text[start:]):
        out.append((start_line, text[start:]))
    return out


_ANNOTATION = re.compile(r'@\w+(\s*\(\s*"(?:[^"\\]|\\.)*"\s*\))?')
_COMMENT = re.compile(r"//[^\n]*")


def policy_effect(text: str) -> str:
    """``"permit"`` or ``"forbid"``: the effect of the one policy in ``text`` (annotations skipped)."""
    body = _ANNOTATION.sub(" ", _COMMENT.sub(" ", text)).lstrip()
    return "forbid" if body.startswith("forbid") else "permit"


def _has_code(fragment: str) -> bool:
    return any(ln.strip() and not ln.strip().startswith("//") for ln in fragment.splitlines())


def parse_policies(sources: Sequence[PolicySource]) -> ParsedPolicies:
    """Parse every file into one policy set; raises CedarError naming ``file:line`` on the first error.

    Policies are numbered ``policy0``, ``policy1``, ... across the files in the given order, as
    Cedar numbers one concatenated text.
    """
    locations: dict[str, tuple[str, int]] = {}
    statements: list[tuple[str, str]] = []
    problems: list[str] = []
    n = 0
    for src in sources:
        for line, stmt in split_statements(src.text):
            try:
                cedarpy.PolicySet.from_str(stmt)
            except ValueError as e:
                problems.append(f"{src.path}:{line}: {_one_line(e)}")
                continue
            locations[f"policy{n}"] = (src.path, line)
            statements.append((f"policy{n}", stmt))
            n += 1
    if problems:
        raise CedarError("; ".join(problems))
    text = "\n".join(s.text for s in sources)
    try:
        handle = cedarpy.PolicySet.from_str(text)
    except ValueError as e:
        raise CedarError(_one_line(e)) from None
    try:
        tree = handle.to_pst()
    except ValueError:
        tree, untyped = _tree_by_statement(statements)
        return ParsedPolicies(handle=handle, pst=tree, text=text, locations=locations, untyped=untyped)
    return ParsedPolicies(handle=handle, pst=tree, text=text, locations=locations)


def _tree_by_statement(statements: list[tuple[str, str]]) -> tuple[Any, tuple[tuple[str, str, str], ...]]:
    """The typed tree policy by policy, keeping the ones cedarpy cannot render aside."""
    import dataclasses

    from cedarpy import pst

    templates: dict[str, Any] = {}
    static: dict[str, Any] = {}
    untyped: list[tuple[str, str, str]] = []
    for cedar_id, stmt in statements:
        try:
            one = cedarpy.PolicySet.from_str(stmt).to_pst()
        except ValueError as e:
            untyped.append((cedar_id, stmt, _one_line(e)))
            continue
        for t in one.static_policies.values():
            static[cedar_id] = dataclasses.replace(t, id=cedar_id)
        for t in one.templates.values():
            templates[cedar_id] = dataclasses.replace(t, id=cedar_id)
    return pst.PolicySet(templates=templates, static_policies=static, template_links=()), tuple(untyped)


# The documented link keys (README, ``links.json``) -> cedarpy's names, which are accepted too.
_LINK_KEYS = {"template": "template_id", "id": "new_id"}


def _cedarpy_link(n: int, link: Any) -> dict[str, Any]:
    """One ``links.json`` item in cedarpy's form (``template_id``, ``new_id``, ``values``)."""
    if not isinstance(link, Mapping):
        raise CedarError(f"template link {n}: expected an object")
    out = dict(link)
    for documented, native in _LINK_KEYS.items():
        if documented in out:
            if native in out:
                raise CedarError(f"template link {n}: give {documented!r} or {native!r}, not both")
            out[native] = out.pop(documented)
    missing = [k for k in ("template", "id", "values") if _LINK_KEYS.get(k, k) not in out]
    if missing:
        raise CedarError(f"template link {n}: missing " + ", ".join(repr(k) for k in missing))
    return out


def link_templates(parsed: ParsedPolicies, links: Sequence[Mapping[str, Any]]) -> ParsedPolicies:
    """Link templates; raises CedarError.

    Each link is ``{"template": <template id or @id>, "id": <new policy id>, "values": {"?principal":
    {"type", "id"}, ...}}`` (cedarpy's own ``template_id``/``new_id`` names are accepted too).
    """
    if not links:
        return parsed
    if parsed.untyped:
        raise CedarError("template links cannot be used while some policies have no typed tree")
    batch = [_cedarpy_link(n, x) for n, x in enumerate(links, 1)]
    try:
        handle = parsed.handle.with_linked_batch(batch)
        tree = handle.to_pst()
    except (ValueError, TypeError, KeyError) as e:
        raise CedarError(f"template links: {_one_line(e)}") from None
    return ParsedPolicies(handle=handle, pst=tree, text=parsed.text, locations=parsed.locations)


def named_uids(text: str, links: Sequence[Mapping[str, Any]] = ()) -> frozenset[EntityUid]:
    """Every entity uid the policy text names, in scopes and in conditions, and every template
    link's value.

    Read from Cedar's JSON form of the policies, which cedarpy renders even for a policy it has no
    typed tree for (those are evaluated as fallbacks); a statement it cannot render names nothing.
    """
    try:
        docs: list[Any] = [json.loads(cedarpy.policies_to_json_str(text))]
    except ValueError:
        docs = []
        for _line, stmt in split_statements(text):
            try:
                docs.append(json.loads(cedarpy.policies_to_json_str(stmt)))
            except ValueError:
                continue
    stack: list[Any] = docs + [link.get("values") for link in links if isinstance(link, Mapping)]
    found: set[EntityUid] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            etype, eid = node.get("type"), node.get("id")
            if isinstance(etype, str) and isinstance(eid, str):
                found.add((etype, eid))  # a scope's entity, an `__entity` literal, a link value
            stack.extend(v for k, v in node.items() if k != "annotations")
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(found)


def parse_schema_handle(text: str) -> Any:
    """cedarpy's parsed schema; raises CedarError."""
    try:
        return cedarpy.Schema.from_str(text)
    except ValueError as e:
        raise CedarError(_one_line(e)) from None


def render_schema(text: str) -> str:
    """cedarpy's normalised rendering of a schema (it validates the text first).

    Raises CedarError with cedarpy's message when it rejects the schema (a Rust panic included), and
    when it cannot render it back (the message then starts ``cannot be rendered:``).
    """
    try:
        rendered = str(cedarpy.Schema.from_str(text))
    except Exception as exc:  # cedarpy reports bad schemas as ValueError
        raise CedarError(str(exc)) from None
    except BaseException as exc:  # a Rust panic surfaces as pyo3's PanicException
        if type(exc).__name__ != "PanicException":
            raise
        raise CedarError(f"cedarpy failed: {exc}") from None
    if rendered.startswith("<unrenderable"):
        detail = rendered.removeprefix("<unrenderable Schema:").rstrip(">")
        raise CedarError(f"cannot be rendered: {detail}")
    return rendered


def validate(parsed: ParsedPolicies, schema: Any) -> list[tuple[str, str]]:
    """Strict validation against the schema: (cedar policy id, message) for every problem."""
    result = cedarpy.validate_policies(parsed.text, schema)
    return [(err.policy_id, err.error) for err in result.errors]


def normalize_entities(
    items: list[Any], schema: Any | None, origins: Sequence[str] | None = None
) -> list[Any]:
    """Cedar's own reading of an entity list (schema-typed when ``schema`` is given, action
    entities from the schema added) as plain JSON; raises CedarError naming the first bad entity
    (prefixed with its ``origins`` entry, e.g. ``entities/a.json:12``, when given)."""
    try:
        handle = cedarpy.Entities.from_json_str(json.dumps(items), schema)
    except ValueError as e:
        found = _first_bad_entity(items, schema)
        if found is None:
            raise CedarError(_one_line(e)) from None
        index, message = found
        where = origins[index] if origins is not None and index < len(origins) else "entities"
        raise CedarError(f"{where}: {message}") from None
    rendered: list[Any] = json.loads(str(handle))
    return rendered


def _first_bad_entity(items: list[Any], schema: Any | None) -> tuple[int, str] | None:
    for index, item in enumerate(items):
        try:
            cedarpy.Entities.from_json_str(json.dumps([item]), schema)
        except ValueError as e:
            uid = item.get("uid") if isinstance(item, dict) else None
            label = f'{uid.get("type")}::"{uid.get("id")}"' if isinstance(uid, dict) else repr(item)[:60]
            return index, f"entity {label}: {_one_line(e)}"
    return None


def format_text(text: str, line_width: int = 100, indent: int = 2) -> str:
    """Cedar's canonical formatting of policy text; raises CedarError on a parse error."""
    try:
        out: str = cedarpy.format_policies(text, line_width, indent)
    except ValueError as e:
        raise CedarError(_one_line(e)) from None
    return out


class ReferenceAuthorizer:
    """cedarpy evaluating single policies: the fallback for policies the compiler does not handle."""

    def __init__(self, entities_json: list[Any], schema: Any | None) -> None:
        self._entities = cedarpy.Entities.from_json_str(json.dumps(entities_json), schema)
        self._schema = schema

    def single_policy(self, template: Any, slots: Mapping[str, EntityUid]) -> Any:
        """A cedarpy policy set holding just ``template`` (linked with ``slots`` when it has any)."""
        from cedarpy import pst

        if slots:
            values: dict[Any, Any] = {name: pst.EntityUid(_pst_type(t), i) for name, (t, i) in slots.items()}
            base_id = template.id + "__template"
            tree = pst.PolicySet(
                templates={base_id: _with_id(template, base_id)},
                static_policies={},
                template_links=(pst.TemplateLink(base_id, template.id, values),),
            )
        else:
            tree = pst.PolicySet(templates={}, static_policies={template.id: template}, template_links=())
        return cedarpy.PolicySet.from_pst(tree)

    def single_policy_text(self, text: str) -> Any:
        """A cedarpy policy set holding the one policy in ``text``."""
        return cedarpy.PolicySet.from_str(text)

    def policy_satisfied(
        self,
        policies: Any,
        principal: EntityUid,
        action: EntityUid,
        resource: EntityUid,
        context_json: Mapping[str, Any],
    ) -> tuple[bool, list[str]]:
        """(whether the one policy in ``policies`` is satisfied, error messages) from cedarpy."""
        request = {
            "principal": {"type": principal[0], "id": principal[1]},
            "action": {"type": action[0], "id": action[1]},
            "resource": {"type": resource[0], "id": resource[1]},
            "context": dict(context_json),
        }
        result = cedarpy.is_authorized(request, policies, self._entities, schema=self._schema)
        diag = result.diagnostics
        return bool(diag.reasons), list(diag.errors)


def _pst_type(name: str) -> Any:
    from cedarpy import pst

    *ns, base = name.split("::")
    return pst.EntityType(base, tuple(ns))


def _with_id(template: Any, new_id: str) -> Any:
    import dataclasses

    return dataclasses.replace(template, id=new_id)


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())
