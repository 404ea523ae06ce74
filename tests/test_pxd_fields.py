"""Every ``.pxd`` declares exactly the attributes its ``.py`` class has.

A compiled class takes its C layout from the ``.pxd`` beside its module (``cdef class X`` with
``cdef [public] <type> a, b``); the interpreted build takes the class from the ``.py``. If the two
lists drift, one build fails at run time where the other works (an attribute the C layout lacks
cannot be set; a declared field the code never sets reads as a default). This test compares, for
every ``cdef class`` of every ``.pxd``, its fields with the ``.py`` class's ``__slots__`` (or, for
a class without them, the ``self.<name>`` it assigns), so drift fails here, in both builds.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "vigil"
_CLASS = re.compile(r"^cdef class (\w+)[^:]*:\s*$")


def pxd_classes(text: str) -> dict[str, set[str]]:
    """``cdef class`` name -> the attribute names it declares (methods and cdef functions left out)."""
    out: dict[str, set[str]] = {}
    current: str | None = None
    for line in text.splitlines():
        m = _CLASS.match(line)
        if m:
            current = m.group(1)
            out[current] = set()
            continue
        if current is None or not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith((" ", "\t")):
            current = None
            continue
        if "(" in line:
            continue  # a method or a C function
        body = line.split("#", 1)[0]
        words = body.replace(",", " , ").split()
        if not words or words[0] != "cdef":
            continue
        # drop "cdef", visibility, and the type (one word, "long long", or a dotted/class name)
        words = words[1:]
        if words and words[0] in ("public", "readonly"):
            words = words[1:]
        if words[:2] == ["long", "long"]:
            words = words[2:]
        else:
            words = words[1:]
        names = [w for w in words if w != ","]
        out[current].update(names)
    return out


def py_attributes(tree: ast.Module, name: str) -> set[str] | None:
    """The ``.py`` class's ``__slots__`` (or the ``self.<x>`` it assigns); None: no such class."""
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            for stmt in node.body:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else []
                if isinstance(stmt, ast.AnnAssign):
                    targets = [stmt.target]
                if any(isinstance(t, ast.Name) and t.id == "__slots__" for t in targets):
                    value = ast.literal_eval(stmt.value)  # type: ignore[arg-type]
                    return {value} if isinstance(value, str) else set(value)
            assigned = set()
            for sub in ast.walk(node):
                for t in (
                    sub.targets
                    if isinstance(sub, ast.Assign)
                    else [sub.target]
                    if isinstance(sub, ast.AnnAssign | ast.AugAssign)
                    else []
                ):
                    for leaf in ast.walk(t):
                        if (
                            isinstance(leaf, ast.Attribute)
                            and isinstance(leaf.value, ast.Name)
                            and leaf.value.id == "self"
                        ):
                            assigned.add(leaf.attr)
            return assigned
    return None


PAIRS = sorted(p for p in SRC.rglob("*.pxd") if p.with_suffix(".py").exists())


def test_the_pairs_are_found() -> None:
    assert len(PAIRS) >= 8
    assert sum(len(pxd_classes(p.read_text())) for p in PAIRS) >= 10


@pytest.mark.parametrize("pxd", PAIRS, ids=lambda p: str(p.relative_to(SRC)))
def test_pxd_fields_match_the_class(pxd: Path) -> None:
    tree = ast.parse(pxd.with_suffix(".py").read_text())
    for name, fields in pxd_classes(pxd.read_text()).items():
        attrs = py_attributes(tree, name)
        assert attrs is not None, (
            f"{pxd.name}: cdef class {name} has no class in {pxd.with_suffix('.py').name}"
        )
        attrs.discard("__weakref__")
        fields.discard("__weakref__")
        assert fields == attrs, (
            f"{pxd.name}: cdef class {name}: only in the .pxd {sorted(fields - attrs)}, "
            f"only in the .py {sorted(attrs - fields)}"
        )


def test_the_parser_reads_the_declaration_forms() -> None:
    text = (
        "cdef class A:\n"
        "    cdef public object a, b\n"
        "    cdef long long c\n"
        "    cdef public Authorizer d  # a class type\n"
        "    cdef readonly double e\n"
        "    cpdef object m(self, x)\n"
        "\n"
        "cdef void f(A a) noexcept\n"
    )
    assert pxd_classes(text) == {"A": {"a", "b", "c", "d", "e"}}
