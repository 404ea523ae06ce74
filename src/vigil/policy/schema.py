"""Cedar human-readable schemas (``.cedarschema``), read for schema-directed JSON parsing.

Cedar parses entity attributes, entity tags and request context *against the schema*: a bare JSON
string typed as ``decimal``/``ipaddr``/``datetime``/``duration`` becomes that extension value, a
``{"type": .., "id": ..}`` object typed as an entity type becomes an entity reference, and the
schema supplies the action entities with their action-group parents. cedarpy checks schemas but
does not expose their structure, so this module reads it:

1. :func:`parse_schema` has cedarpy validate the text (its error becomes a :class:`SchemaError`),
   then parses cedarpy's normalised rendering of it with a small tokenizer and a recursive-descent
   parser, and resolves every type reference the way Cedar does.
2. :func:`coerce_json` rewrites a JSON value, guided by a :class:`SchemaType`, into Cedar's
   explicit JSON forms (``{"__extn": ..}``, ``{"__entity": ..}``), so a schema-less reader sees
   what Cedar's schema-directed reader sees.

Name resolution follows Cedar. An unqualified name ``X`` used inside namespace ``NS`` is, in
order: the common type ``NS::X``, the entity type ``NS::X``, the common type ``X``, the entity
type ``X``, and finally the builtin ``X`` (``Long``, ``String``, ``Bool``, ``decimal``, ``ipaddr``,
``datetime``, ``duration``); user declarations therefore shadow builtins. A qualified name is taken
as written, and ``__cedar::X`` is always the builtin. Entity-type positions (``in [..]``,
``principal``, ``resource``) only consider entity types, and an action reference ``Action::"a"``
(or ``"a"``) names the action of the current namespace if it declares one, else the one in the
empty namespace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Literal, NoReturn, TypeVar

from vigil.policy.cedar import CedarError, render_schema

__all__ = [
    "MAX_DEPTH",
    "ActionInfo",
    "EntityTypeInfo",
    "Schema",
    "SchemaError",
    "SchemaType",
    "coerce_json",
    "parse_schema",
]

MAX_DEPTH: Final = 64
"""Deepest type nesting accepted. Each ``Set``/record level counts one, and so does each hop
through a common-type reference. Schemas beyond it raise :class:`SchemaError`."""

# Text nested deeper than this is refused before cedarpy sees it: cedarpy's parser overflows its
# stack (and kills the process) somewhere past two thousand levels.
_MAX_TEXT_NESTING: Final = MAX_DEPTH + 8

_T = TypeVar("_T")

TypeKind = Literal["Long", "String", "Bool", "Set", "Record", "Entity", "Extension"]


class SchemaError(Exception):
    """A schema that cedarpy rejects, or that this module cannot read.

    ``message`` is one line, lower-case, with user values quoted in backticks.
    """

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------------------------
# Public data model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SchemaType:
    """A resolved Cedar type: common types are expanded, entity types fully qualified.

    ``name`` is the entity type (``"NS::User"``) for ``Entity`` and the extension type
    (``"decimal"``, ``"ipaddr"``, ``"datetime"``, ``"duration"``) for ``Extension``. ``element`` is
    set for ``Set``; ``attributes`` (name -> (type, required)) for ``Record``.
    """

    kind: TypeKind
    name: str | None = None
    element: SchemaType | None = None
    attributes: Mapping[str, tuple[SchemaType, bool]] | None = None

    def __hash__(self) -> int:
        # Attribute *types* are left out so hashing stays linear in size even though common
        # types make the structure a DAG; equal values still hash equal.
        keys = None if self.attributes is None else tuple(sorted(self.attributes))
        return hash((self.kind, self.name, self.element, keys))


@dataclass(frozen=True, slots=True)
class EntityTypeInfo:
    """One entity type. ``attributes`` is a ``Record`` type (empty when none are declared), or
    ``None`` for an enumerated entity type, whose ids are listed in ``enum``."""

    name: str
    parents: tuple[str, ...]
    attributes: SchemaType | None
    tags: SchemaType | None
    enum: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """One action. ``uid`` is ``("Action" or "NS::Action", id)``; ``context`` is a ``Record`` type,
    or ``None`` when the action has no ``appliesTo`` (it then applies to no request)."""

    uid: tuple[str, str]
    parents: tuple[tuple[str, str], ...]
    principals: tuple[str, ...]
    resources: tuple[str, ...]
    context: SchemaType | None


@dataclass(frozen=True, slots=True)
class Schema:
    """Everything vigil needs from a schema: entity types and actions, keyed by full name."""

    entity_types: Mapping[str, EntityTypeInfo]
    actions: Mapping[tuple[str, str], ActionInfo]

    def context_type(self, action: tuple[str, str]) -> SchemaType | None:
        """The context record type of ``action``; ``None`` if it is undeclared or applies to
        nothing. Never raises."""
        info = self.actions.get(action)
        return None if info is None else info.context

    def attribute_type(self, entity_type: str, attr: str) -> SchemaType | None:
        """The declared type of ``entity_type``'s attribute ``attr``; ``None`` if the entity type
        or the attribute is undeclared. Never raises."""
        info = self.entity_types.get(entity_type)
        if info is None or info.attributes is None or info.attributes.attributes is None:
            return None
        entry = info.attributes.attributes.get(attr)
        return None if entry is None else entry[0]


_LONG: Final = SchemaType("Long")
_STRING: Final = SchemaType("String")
_BOOL: Final = SchemaType("Bool")
_EMPTY_RECORD: Final = SchemaType("Record", attributes=MappingProxyType({}))
_EXTENSIONS: Final[Mapping[str, SchemaType]] = MappingProxyType(
    {name: SchemaType("Extension", name=name) for name in ("decimal", "ipaddr", "datetime", "duration")}
)
_BUILTINS: Final[Mapping[str, SchemaType]] = MappingProxyType(
    {"Long": _LONG, "String": _STRING, "Bool": _BOOL, **_EXTENSIONS}
)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def parse_schema(text: str) -> Schema:
    """Read a Cedar human-readable schema.

    Raises :class:`SchemaError` when cedarpy rejects the text, when it nests deeper than
    :data:`MAX_DEPTH`, or when cedarpy cannot render it back to schema syntax (it declares a common
    type and an entity type with the same name). Never raises anything else.
    """
    if not isinstance(text, str):
        raise SchemaError("schema must be a string")
    _check_text_nesting(text)
    rendered = _render_with_cedarpy(text)
    try:
        declarations = _Parser(_tokenize(rendered)).schema()
        return _Resolver(declarations).schema()
    except RecursionError:  # only if the caller already sits deep in the stack
        raise SchemaError("schema nests too deeply to read here") from None


def _render_with_cedarpy(text: str) -> str:
    """Validate ``text`` with cedarpy and return its normalised rendering.

    Raises :class:`SchemaError` with cedarpy's message when it rejects the schema or cannot
    render it.
    """
    try:
        return render_schema(text)
    except CedarError as exc:
        message = str(exc)
        if message.startswith("cannot be rendered: "):
            detail = message.removeprefix("cannot be rendered: ")
            raise SchemaError(f"schema cannot be rendered by cedarpy: {_one_line(detail)}") from None
        raise SchemaError(f"invalid schema: {_one_line(message)}") from None


def _one_line(message: str) -> str:
    """``message`` folded to one line with a lower-case first letter."""
    line = "; ".join(part.strip() for part in message.splitlines() if part.strip()) or "unknown error"
    return line[0].lower() + line[1:]


def _check_text_nesting(text: str) -> None:
    """Refuse text whose brackets nest too deeply for cedarpy's parser to survive.

    Brackets inside string literals and ``//`` comments are ignored. Raises :class:`SchemaError`.
    """
    if sum(text.count(bracket) for bracket in "{[<(") <= _MAX_TEXT_NESTING:
        return  # cannot nest that deep: skip the scan
    depth = 0
    state = ""  # "" (code), '"' (in a string), "\\" (after a backslash in a string), "/" (comment)
    previous = ""
    for ch in text:
        if state == '"':
            state = "\\" if ch == "\\" else "" if ch == '"' else state
        elif state == "\\":
            state = '"'
        elif state == "/":
            state = "" if ch == "\n" else state
        elif ch == '"':
            state = '"'
        elif ch == "/" and previous == "/":
            state = "/"
        elif ch in "{[<(":
            depth += 1
            if depth > _MAX_TEXT_NESTING:
                raise SchemaError(f"schema nests deeper than {_MAX_TEXT_NESTING} brackets")
        elif ch in "}]>)":
            depth = max(depth - 1, 0)
        previous = ch if state == "" else ""


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------

TokenKind = Literal["ident", "string", "punct", "eof"]
_PUNCT: Final = frozenset("{}[]<>(),;:=?@")
_IDENT_START: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS: Final = _IDENT_START | frozenset("0123456789")
_SIMPLE_ESCAPES: Final[Mapping[str, str]] = MappingProxyType(
    {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "0": "\0", "'": "'", '"': '"'}
)


# (kind, text, offset): text is the identifier, the decoded string, or the punctuation itself.
# A plain tuple, as a schema can run to a million tokens.
_Token = tuple[TokenKind, str, int]


def _tokenize(text: str) -> list[_Token]:
    """Split schema text into tokens, ending with an ``eof`` token. Raises :class:`SchemaError`."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \n":
            i += 1
        elif ch in _IDENT_START:
            end = i + 1
            while end < n and text[end] in _IDENT_CHARS:
                end += 1
            tokens.append(("ident", text[i:end], i))
            i = end
        elif ch == '"':
            value, end = _read_string(text, i)
            tokens.append(("string", value, i))
            i = end
        elif ch == ":" and text.startswith("::", i):
            tokens.append(("punct", "::", i))
            i += 2
        elif ch in _PUNCT:
            tokens.append(("punct", ch, i))
            i += 1
        elif ch.isspace():
            i += 1
        elif text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline
        else:
            raise SchemaError(f"unexpected character `{ch}` at offset {i}")
    tokens.append(("eof", "", n))
    return tokens


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Decode the string literal opening at ``start``; return it and the index past it.

    Raises :class:`SchemaError` on an unterminated literal or a bad escape.
    """
    parts: list[str] = []
    i = start + 1
    while True:
        quote = text.find('"', i)
        if quote < 0:
            raise SchemaError(f"unterminated string at offset {start}")
        backslash = text.find("\\", i, quote)
        if backslash < 0:
            parts.append(text[i:quote])
            return "".join(parts), quote + 1
        parts.append(text[i:backslash])
        decoded, i = _read_escape(text, backslash)
        parts.append(decoded)


def _read_escape(text: str, start: int) -> tuple[str, int]:
    """Decode the escape sequence at ``start`` (a backslash). Raises :class:`SchemaError`."""
    code = text[start + 1 : start + 2]
    if code in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[code], start + 2
    if code == "u" and text.startswith("{", start + 2):
        close = text.find("}", start + 3)
        digits = text[start + 3 : close] if close > 0 else ""
        if 1 <= len(digits) <= 6 and all(c in "0123456789abcdefABCDEF" for c in digits):
            value = int(digits, 16)
            if value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
                return chr(value), close + 1
    raise SchemaError(f"invalid escape `{text[start : start + 2]}` at offset {start}")


# ---------------------------------------------------------------------------------------------
# Parser: text -> unresolved declarations
# ---------------------------------------------------------------------------------------------

Path = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class _RawName:
    path: Path


@dataclass(frozen=True, slots=True)
class _RawSet:
    element: _RawType


@dataclass(frozen=True, slots=True)
class _RawRecord:
    attributes: tuple[tuple[str, _RawType, bool], ...]


_RawType = _RawName | _RawSet | _RawRecord


@dataclass(frozen=True, slots=True)
class _RawActionRef:
    type_path: Path | None  # None: written as a bare id, meaning `Action`
    id: str


@dataclass(frozen=True, slots=True)
class _RawAppliesTo:
    principals: tuple[Path, ...]
    resources: tuple[Path, ...]
    context: _RawType | None


@dataclass(frozen=True, slots=True)
class _RawEntity:
    namespace: str
    name: str
    parents: tuple[Path, ...]
    shape: _RawType | None
    tags: _RawType | None
    enum: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class _RawAction:
    namespace: str
    id: str
    parents: tuple[_RawActionRef, ...]
    applies_to: _RawAppliesTo | None


@dataclass(frozen=True, slots=True)
class _RawCommon:
    namespace: str
    name: str
    definition: _RawType


_RawDecl = _RawEntity | _RawAction | _RawCommon


class _Parser:
    """Recursive-descent parser for schema syntax; every method raises :class:`SchemaError`.

    Written against cedarpy's normalised rendering but also accepting the looser forms people
    write (``in X`` without brackets, ``entity A {..}`` without ``=``, unquoted action names).
    """

    def __init__(self, tokens: list[_Token]) -> None:
        self._tokens = [*tokens, ("eof", "", tokens[-1][2] if tokens else 0)]
        self._pos = 0

    # -- token helpers --------------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> _Token:
        return self._tokens[self._pos + ahead]  # safe: the list ends with two `eof` tokens

    def _kind(self, ahead: int = 0) -> TokenKind:
        return self._peek(ahead)[0]

    def _advance(self) -> str:
        """Consume the next token (never the final ``eof``) and return its text."""
        kind, text, _ = self._peek()
        if kind != "eof":
            self._pos += 1
        return text

    def _fail(self, expected: str) -> NoReturn:
        kind, text, offset = self._peek()
        found = "end of input" if kind == "eof" else f"`{text}`"
        raise SchemaError(f"expected {expected}, found {found} at offset {offset}")

    def _at_punct(self, punct: str, ahead: int = 0) -> bool:
        kind, text, _ = self._peek(ahead)
        return kind == "punct" and text == punct

    def _at_keyword(self, word: str) -> bool:
        kind, text, _ = self._peek()
        return kind == "ident" and text == word

    def _accept_punct(self, punct: str) -> bool:
        if self._at_punct(punct):
            self._pos += 1
            return True
        return False

    def _accept_keyword(self, word: str) -> bool:
        if self._at_keyword(word):
            self._pos += 1
            return True
        return False

    def _expect_punct(self, punct: str) -> None:
        if not self._accept_punct(punct):
            self._fail(f"`{punct}`")

    def _expect_ident(self) -> str:
        if self._kind() != "ident":
            self._fail("an identifier")
        return self._advance()

    def _expect_string(self) -> str:
        if self._kind() != "string":
            self._fail("a string")
        return self._advance()

    def _list(self, close: str, item: Callable[[], _T]) -> list[_T]:
        """Items separated by commas (a trailing comma allowed) up to and including ``close``."""
        items: list[_T] = []
        while not self._accept_punct(close):
            items.append(item())
            if not self._accept_punct(","):
                self._expect_punct(close)
                break
        return items

    # -- declarations ---------------------------------------------------------------------------

    def schema(self) -> list[_RawDecl]:
        """The whole schema: namespaces and top-level declarations."""
        declarations: list[_RawDecl] = []
        while self._kind() != "eof":
            self._annotations()
            if self._accept_keyword("namespace"):
                declarations.extend(self._namespace())
            else:
                declarations.extend(self._declaration(""))
        return declarations

    def _namespace(self) -> list[_RawDecl]:
        name = "::".join(self._path())
        self._expect_punct("{")
        declarations: list[_RawDecl] = []
        while not self._accept_punct("}"):
            self._annotations()
            declarations.extend(self._declaration(name))
        return declarations

    def _annotations(self) -> None:
        """Skip ``@name`` and ``@name("value")`` annotations: they carry no type information."""
        while self._accept_punct("@"):
            self._expect_ident()
            if self._accept_punct("("):
                self._expect_string()
                self._expect_punct(")")

    def _declaration(self, namespace: str) -> list[_RawDecl]:
        if self._accept_keyword("entity"):
            return list(self._entity(namespace))
        if self._accept_keyword("action"):
            return list(self._action(namespace))
        if self._accept_keyword("type"):
            return [self._common_type(namespace)]
        self._fail("`entity`, `action`, `type` or `namespace`")

    def _entity(self, namespace: str) -> list[_RawEntity]:
        names = [self._expect_ident()]
        while self._accept_punct(","):
            names.append(self._expect_ident())
        parents: tuple[Path, ...] = ()
        shape: _RawType | None = None
        tags: _RawType | None = None
        enum: tuple[str, ...] | None = None
        if self._accept_keyword("enum"):
            self._expect_punct("[")
            enum = tuple(self._list("]", self._expect_string))
        else:
            if self._accept_keyword("in"):
                parents = self._entity_type_list()
            if self._accept_punct("=") or self._at_punct("{"):
                shape = self._type(1)
            if self._accept_keyword("tags"):
                tags = self._type(1)
        self._expect_punct(";")
        return [_RawEntity(namespace, name, parents, shape, tags, enum) for name in names]

    def _action(self, namespace: str) -> list[_RawAction]:
        ids = [self._action_name()]
        while self._accept_punct(","):
            ids.append(self._action_name())
        parents: tuple[_RawActionRef, ...] = ()
        applies_to: _RawAppliesTo | None = None
        if self._accept_keyword("in"):
            if self._accept_punct("["):
                parents = tuple(self._list("]", self._action_ref))
            else:
                parents = (self._action_ref(),)
        if self._accept_keyword("appliesTo"):
            applies_to = self._applies_to()
        self._expect_punct(";")
        return [_RawAction(namespace, action_id, parents, applies_to) for action_id in ids]

    def _action_name(self) -> str:
        if self._kind() == "string":
            return self._advance()
        return self._expect_ident()

    def _action_ref(self) -> _RawActionRef:
        """``"a"``, ``a``, ``Action::"a"`` or ``NS::Action::"a"``."""
        if self._kind() == "string":
            return _RawActionRef(None, self._advance())
        path = [self._expect_ident()]
        while self._accept_punct("::"):
            if self._kind() == "string":
                return _RawActionRef(tuple(path), self._advance())
            path.append(self._expect_ident())
        if len(path) > 1:
            self._fail('a quoted action id after `::`, as in `Action::"id"`')
        return _RawActionRef(None, path[0])

    def _applies_to(self) -> _RawAppliesTo:
        self._expect_punct("{")
        principals: tuple[Path, ...] = ()
        resources: tuple[Path, ...] = ()
        context: _RawType | None = None
        while not self._accept_punct("}"):
            if self._accept_keyword("principal"):
                self._expect_punct(":")
                principals = self._entity_type_list()
            elif self._accept_keyword("resource"):
                self._expect_punct(":")
                resources = self._entity_type_list()
            elif self._accept_keyword("context"):
                self._expect_punct(":")
                context = self._type(1)
            else:
                self._fail("`principal`, `resource` or `context`")
            if not self._accept_punct(","):
                self._expect_punct("}")
                break
        return _RawAppliesTo(principals, resources, context)

    def _common_type(self, namespace: str) -> _RawCommon:
        name = self._expect_ident()
        self._expect_punct("=")
        definition = self._type(1)
        self._expect_punct(";")
        return _RawCommon(namespace, name, definition)

    def _entity_type_list(self) -> tuple[Path, ...]:
        if self._accept_punct("["):
            return tuple(self._list("]", self._path))
        return (self._path(),)

    def _path(self) -> Path:
        parts = [self._expect_ident()]
        while self._at_punct("::") and self._kind(1) == "ident":
            self._pos += 1
            parts.append(self._advance())
        return tuple(parts)

    # -- types ----------------------------------------------------------------------------------

    def _type(self, depth: int) -> _RawType:
        """A type at nesting level ``depth``: ``Set<T>``, ``{ attributes }`` or a name."""
        if depth > MAX_DEPTH:
            raise SchemaError(f"types nest deeper than {MAX_DEPTH} levels")
        if self._accept_punct("{"):
            return self._record(depth)
        if self._at_keyword("Set") and self._at_punct("<", 1):
            self._pos += 2
            element = self._type(depth + 1)
            self._expect_punct(">")
            return _RawSet(element)
        return _RawName(self._path())

    def _record(self, depth: int) -> _RawRecord:
        attributes = self._list("}", lambda: self._attribute(depth))
        return _RawRecord(tuple(attributes))

    def _attribute(self, depth: int) -> tuple[str, _RawType, bool]:
        self._annotations()
        if self._kind() not in ("ident", "string"):
            self._fail("an attribute name")
        name = self._advance()
        required = not self._accept_punct("?")
        self._expect_punct(":")
        return name, self._type(depth + 1), required


# ---------------------------------------------------------------------------------------------
# Resolver: declarations -> Schema
# ---------------------------------------------------------------------------------------------


def _qualify(namespace: str, name: str) -> str:
    return f"{namespace}::{name}" if namespace else name


def _candidates(path: Path, namespace: str) -> list[str]:
    """Fully qualified names ``path`` may mean inside ``namespace``, in Cedar's order."""
    if len(path) > 1:
        return ["::".join(path)]
    if not namespace:
        return [path[0]]
    return [_qualify(namespace, path[0]), path[0]]


class _Resolver:
    """Turns declarations into a :class:`Schema`; every method raises :class:`SchemaError`."""

    def __init__(self, declarations: list[_RawDecl]) -> None:
        self._commons: dict[str, _RawCommon] = {}
        self._entities: dict[str, _RawEntity] = {}
        self._actions: dict[tuple[str, str], _RawAction] = {}
        for decl in declarations:
            self._declare(decl)
        # name -> (resolved type, height); `None` marks a common type being resolved (a cycle).
        self._resolved: dict[str, tuple[SchemaType, int] | None] = {}

    def _declare(self, decl: _RawDecl) -> None:
        if isinstance(decl, _RawAction):
            uid = (_qualify(decl.namespace, "Action"), decl.id)
            if uid in self._actions:
                raise SchemaError(f'duplicate action `{uid[0]}::"{uid[1]}"`')
            self._actions[uid] = decl
            return
        name = _qualify(decl.namespace, decl.name)
        if name in self._commons or name in self._entities:
            raise SchemaError(f"duplicate declaration of `{name}`")
        if isinstance(decl, _RawCommon):
            self._commons[name] = decl
        else:
            self._entities[name] = decl

    def schema(self) -> Schema:
        for name in self._commons:  # check every common type, even unused ones, as Cedar does
            self._common(name, 1)
        entity_types = {name: self._entity_info(name, raw) for name, raw in self._entities.items()}
        actions = {uid: self._action_info(uid, raw) for uid, raw in self._actions.items()}
        return Schema(MappingProxyType(entity_types), MappingProxyType(actions))

    def _entity_info(self, name: str, raw: _RawEntity) -> EntityTypeInfo:
        parents = tuple(self._entity_type(path, raw.namespace) for path in raw.parents)
        tags = None if raw.tags is None else self._type(raw.tags, raw.namespace, 1)[0]
        if raw.enum is not None:
            return EntityTypeInfo(name, parents, None, tags, raw.enum)
        attributes = _EMPTY_RECORD
        if raw.shape is not None:
            attributes = self._record_type(raw.shape, raw.namespace, f"attributes of `{name}`")
        return EntityTypeInfo(name, parents, attributes, tags, None)

    def _action_info(self, uid: tuple[str, str], raw: _RawAction) -> ActionInfo:
        parents = tuple(self._action_uid(ref, raw.namespace) for ref in raw.parents)
        applies = raw.applies_to
        if applies is None:
            return ActionInfo(uid, parents, (), (), None)
        principals = tuple(self._entity_type(path, raw.namespace) for path in applies.principals)
        resources = tuple(self._entity_type(path, raw.namespace) for path in applies.resources)
        context = _EMPTY_RECORD
        if applies.context is not None:
            what = f'context of `{uid[0]}::"{uid[1]}"`'
            context = self._record_type(applies.context, raw.namespace, what)
        return ActionInfo(uid, parents, principals, resources, context)

    def _record_type(self, raw: _RawType, namespace: str, what: str) -> SchemaType:
        resolved = self._type(raw, namespace, 1)[0]
        if resolved.kind != "Record":
            raise SchemaError(f"the {what} must be a record type")
        return resolved

    def _entity_type(self, path: Path, namespace: str) -> str:
        for name in _candidates(path, namespace):
            if name in self._entities:
                return name
        raise SchemaError(f"undeclared entity type `{'::'.join(path)}`")

    def _action_uid(self, ref: _RawActionRef, namespace: str) -> tuple[str, str]:
        for action_type in _candidates(ref.type_path or ("Action",), namespace):
            if (action_type, ref.id) in self._actions:
                return action_type, ref.id
        written = "::".join(ref.type_path or ("Action",))
        raise SchemaError(f'undeclared action `{written}::"{ref.id}"`')

    def _type(self, raw: _RawType, namespace: str, depth: int) -> tuple[SchemaType, int]:
        """Resolve ``raw`` (used in ``namespace``) at nesting ``depth``; return it and its height."""
        if depth > MAX_DEPTH:
            raise SchemaError(f"types nest deeper than {MAX_DEPTH} levels")
        if isinstance(raw, _RawSet):
            element, height = self._type(raw.element, namespace, depth + 1)
            return SchemaType("Set", element=element), self._checked_height(height + 1)
        if isinstance(raw, _RawRecord):
            return self._record(raw, namespace, depth)
        return self._name(raw.path, namespace, depth)

    def _record(self, raw: _RawRecord, namespace: str, depth: int) -> tuple[SchemaType, int]:
        attributes: dict[str, tuple[SchemaType, bool]] = {}
        height = 0
        for attr, attr_raw, required in raw.attributes:
            attr_type, attr_height = self._type(attr_raw, namespace, depth + 1)
            attributes[attr] = (attr_type, required)
            height = max(height, attr_height)
        record = SchemaType("Record", attributes=MappingProxyType(attributes))
        return record, self._checked_height(height + 1)

    def _name(self, path: Path, namespace: str, depth: int) -> tuple[SchemaType, int]:
        if len(path) == 2 and path[0] == "__cedar" and path[1] in _BUILTINS:
            return _BUILTINS[path[1]], 0
        for name in _candidates(path, namespace):
            if name in self._commons:
                return self._common(name, depth)
            if name in self._entities:
                return SchemaType("Entity", name=name), 0
        if len(path) == 1 and path[0] in _BUILTINS:
            return _BUILTINS[path[0]], 0
        raise SchemaError(f"undeclared type `{'::'.join(path)}`")

    def _common(self, name: str, depth: int) -> tuple[SchemaType, int]:
        """The expansion of common type ``name``; a reference counts as one level of nesting."""
        if name in self._resolved:
            done = self._resolved[name]
            if done is None:
                raise SchemaError(f"common type `{name}` refers to itself")
            return done[0], self._checked_height(done[1] + 1)
        self._resolved[name] = None
        raw = self._commons[name]
        resolved, height = self._type(raw.definition, raw.namespace, depth + 1)
        self._resolved[name] = (resolved, height)
        return resolved, self._checked_height(height + 1)

    @staticmethod
    def _checked_height(height: int) -> int:
        if height > MAX_DEPTH:
            raise SchemaError(f"types nest deeper than {MAX_DEPTH} levels")
        return height


# ---------------------------------------------------------------------------------------------
# Schema-directed JSON coercion
# ---------------------------------------------------------------------------------------------

# For each extension type, the functions Cedar accepts in JSON to build one, with their parameter
# types. Arguments are coerced too: with a schema Cedar reads
# ``{"fn": "offset", "args": ["2024-01-01", "1h"]}`` as a datetime.
_DATETIME: Final = _EXTENSIONS["datetime"]
_DURATION: Final = _EXTENSIONS["duration"]
_CONSTRUCTORS: Final[Mapping[str, Mapping[str, tuple[SchemaType, ...]]]] = MappingProxyType(
    {
        "decimal": {"decimal": (_STRING,)},
        "ipaddr": {"ip": (_STRING,)},
        "datetime": {
            "datetime": (_STRING,),
            "offset": (_DATETIME, _DURATION),
            "toDate": (_DATETIME,),
        },
        "duration": {
            "duration": (_STRING,),
            "toTime": (_DATETIME,),
            "durationSince": (_DATETIME, _DATETIME),
        },
    }
)
_PLAIN_CONSTRUCTOR: Final[Mapping[str, str]] = MappingProxyType(
    {"decimal": "decimal", "ipaddr": "ip", "datetime": "datetime", "duration": "duration"}
)
_ESCAPES: Final = ("__extn", "__entity", "__expr")
_COERCE_DEPTH_LIMIT: Final = 2 * MAX_DEPTH + 8


def coerce_json(value: Any, ty: SchemaType) -> Any:
    """Rewrite a JSON value into Cedar's explicit JSON forms as the schema type ``ty`` directs.

    * typed as an extension: a bare string ``s`` becomes ``{"__extn": {"fn": F, "arg": s}}``
      (``F`` is ``decimal``, ``ip``, ``datetime`` or ``duration``); the implicit
      ``{"fn": .., "arg"/"args": ..}`` form gains its ``__extn`` wrapper; arguments of
      ``offset``/``toDate``/``toTime``/``durationSince`` are coerced to their parameter types;
    * typed as an entity: ``{"type": t, "id": i}`` (strings; other keys ignored, as Cedar does)
      becomes ``{"__entity": {"type": t, "id": i}}``;
    * sets and records are rewritten element by element; attributes the record type does not
      declare are kept as they are.

    Anything that does not fit the type, and anything already in ``__extn``/``__entity`` form, is
    returned unchanged for the caller's validation to report. Containers are recognised by exact
    type (``dict``, ``list``, as :func:`json.loads` makes them). The input is never mutated
    (unchanged parts may be shared with it). Never raises, whatever the value or type.
    """
    return _coerce(value, ty, 0)


def _coerce(value: Any, ty: Any, depth: int) -> Any:
    if depth > _COERCE_DEPTH_LIMIT or not isinstance(ty, SchemaType):
        return value
    if ty.kind == "Extension":
        return _coerce_extension(value, ty.name, depth)
    if ty.kind == "Entity":
        return _coerce_entity(value)
    if ty.kind == "Set" and type(value) is list:
        return [_coerce(item, ty.element, depth + 1) for item in value]
    if ty.kind == "Record" and type(value) is dict:
        return _coerce_record(value, ty, depth)
    return value


def _coerce_record(value: dict[Any, Any], ty: SchemaType, depth: int) -> dict[Any, Any]:
    """``value`` with the attributes a coercion may change coerced: the same dict when none
    changed (a request's context typed by the schema on every decision: most attributes are
    Longs, Bools and Strings, which never change), else a copy."""
    out: dict[Any, Any] | None = None
    for key, attr_type in _coercible(ty):
        item = value.get(key, _ABSENT)
        if item is _ABSENT:
            continue
        if type(item) is dict and len(item) == 1:  # already explicit, the usual request: unchanged
            kind = attr_type.kind
            if kind == "Extension":
                call = item.get("__extn")
                if (
                    type(call) is dict
                    and len(call) == 2
                    and type(call.get("arg")) is str
                    and call.get("fn") == _PLAIN_CONSTRUCTOR.get(attr_type.name or "")
                ):
                    continue
            elif kind == "Entity" and "__entity" in item:
                continue
        new = _coerce(item, attr_type, depth + 1)
        if new is not item:
            if out is None:
                out = dict(value)
            out[key] = new
    return value if out is None else out


_ABSENT: Final = object()
_COERCIBLE_LIMIT: Final = 4_096
# by id() of the type, which the entry keeps alive (SchemaType's own hash sorts its attribute names)
_coercible_attrs: dict[int, tuple[SchemaType, tuple[tuple[str, SchemaType], ...]]] = {}


def _coercible(ty: SchemaType) -> tuple[tuple[str, SchemaType], ...]:
    """The attributes of record type ``ty`` whose values a coercion may rewrite (an extension, an
    entity, or a set or record holding one), with their types; kept per type (bounded)."""
    known = _coercible_attrs.get(id(ty))
    if known is not None and known[0] is ty:
        return known[1]
    attributes = ty.attributes
    found = tuple(
        (name, entry[0])
        for name, entry in (attributes.items() if isinstance(attributes, Mapping) else ())
        if type(name) is str and type(entry) is tuple and len(entry) == 2 and _may_change(entry[0], 0)
    )
    if len(_coercible_attrs) >= _COERCIBLE_LIMIT:
        _coercible_attrs.clear()
    _coercible_attrs[id(ty)] = (ty, found)
    return found


def _may_change(ty: Any, depth: int) -> bool:
    """Whether a value of type ``ty`` may be rewritten by :func:`coerce_json` (True when unsure)."""
    if not isinstance(ty, SchemaType) or depth > _COERCE_DEPTH_LIMIT:
        return True
    if ty.kind in ("Extension", "Entity"):
        return True
    if ty.kind == "Set":
        return _may_change(ty.element, depth + 1)
    if ty.kind == "Record":
        attributes = ty.attributes
        if not isinstance(attributes, Mapping):
            return False
        return any(
            type(e) is not tuple or len(e) != 2 or _may_change(e[0], depth + 1) for e in attributes.values()
        )
    return False


def _coerce_entity(value: Any) -> Any:
    if type(value) is not dict or any(key in value for key in _ESCAPES):
        return value
    entity_type, entity_id = value.get("type"), value.get("id")
    if type(entity_type) is str and type(entity_id) is str:
        return {"__entity": {"type": entity_type, "id": entity_id}}
    return value


def _coerce_extension(value: Any, extension: Any, depth: int) -> Any:
    constructors = _CONSTRUCTORS.get(extension) if type(extension) is str else None
    if constructors is None:
        return value
    if type(value) is str:
        return {"__extn": {"fn": _PLAIN_CONSTRUCTOR[extension], "arg": value}}
    if type(value) is not dict:
        return value
    if "__extn" in value:
        call = _coerce_call(value["__extn"], constructors, depth)
        return value if call is None or call == value["__extn"] else {**value, "__extn": call}
    if any(key in value for key in _ESCAPES):
        return value
    call = _coerce_call(value, constructors, depth)
    return value if call is None else {"__extn": call}


def _coerce_call(
    call: Any, constructors: Mapping[str, tuple[SchemaType, ...]], depth: int
) -> dict[str, Any] | None:
    """``{"fn": .., "arg": ..}`` or ``{"fn": .., "args": [..]}`` with its arguments coerced, or
    ``None`` if ``call`` is not a call of one of ``constructors`` with the right arity."""
    if type(call) is not dict:
        return None
    fn = call.get("fn")
    params = constructors.get(fn) if type(fn) is str else None
    if params is None:
        return None
    if "arg" in call:  # Cedar reads `arg` first when both are present
        if len(params) != 1:
            return None
        arg = call["arg"]
        if type(arg) is str and params[0] is _STRING and len(call) == 2:
            return call  # `{"fn": "ip", "arg": "10.0.0.1"}`: nothing to coerce
        return {"fn": fn, "arg": _coerce(arg, params[0], depth + 1)}
    args = call.get("args")
    if type(args) is not list or len(args) != len(params):
        return None
    return {
        "fn": fn,
        "args": [_coerce(arg, param, depth + 1) for arg, param in zip(args, params, strict=True)],
    }
