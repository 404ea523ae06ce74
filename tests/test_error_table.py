"""The one error table (``vigil.errors.ErrorCode``): every code vigil can raise or answer with is in it.

Two nets: a scan of the sources for every literal code (error classes' ``code = "..."``, ``code=``
keywords, the HTTP layer's ``error_body("...")`` and the CLI's ``_fail(console, "...")``), and, in
``conftest.py``, every VigilError constructed while the whole suite runs (codes computed at run time).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from vigil.errors import EXIT_STATUS, HTTP_STATUS, ErrorCode, VigilError

SRC = Path(__file__).resolve().parents[1] / "src" / "vigil"
_CODE_CALLS = {"error_body": 0, "_fail": 1}


def _constants(tree: ast.AST) -> dict[str, str]:
    """The module's top-level text constants (``INVALID_RECORD: Final = "invalid_record"``)."""
    out = {}
    for stmt in getattr(tree, "body", []):
        target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else None
        target = stmt.target if isinstance(stmt, ast.AnnAssign) else target
        value = stmt.value if isinstance(stmt, ast.Assign | ast.AnnAssign) else None
        if isinstance(target, ast.Name) and isinstance(value, ast.Constant) and isinstance(value.value, str):
            out[target.id] = value.value
    return out


def codes_in_source(tree: ast.AST) -> set[tuple[str, int]]:
    """Every error code a module names as a literal or a module constant: ``(code, line)``."""
    constants = _constants(tree)

    def _literal(node: ast.AST | None) -> str | None:
        if isinstance(node, ast.Name):
            return constants.get(node.id)
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    found: set[tuple[str, int]] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign | ast.AnnAssign)
                    and any(
                        isinstance(t, ast.Name) and t.id == "code"
                        for t in (stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target])
                    )
                    and (code := _literal(stmt.value)) is not None
                ):
                    found.add((code, stmt.lineno))
        elif isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "code" and (code := _literal(kw.value)) is not None:
                    found.add((code, node.lineno))
            name = node.func.id if isinstance(node.func, ast.Name) else None
            pos = _CODE_CALLS.get(name or "")
            if pos is not None and len(node.args) > pos and (code := _literal(node.args[pos])) is not None:
                found.add((code, node.lineno))
    return found


def test_every_literal_code_in_the_sources_is_in_the_table() -> None:
    missing = []
    scanned = 0
    for path in sorted(SRC.rglob("*.py")):
        for code, line in codes_in_source(ast.parse(path.read_text(), str(path))):
            scanned += 1
            if code not in HTTP_STATUS:
                missing.append(f"{path.relative_to(SRC)}:{line}: {code!r}")
    assert scanned > 20  # the scan sees the codes (a scan that finds nothing would pass vacuously)
    assert not missing, "codes missing from vigil.errors.ErrorCode:\n" + "\n".join(missing)


def test_the_scan_finds_a_code_the_table_lacks() -> None:
    tree = ast.parse(
        "class E(VigilError):\n    code = 'made_up_a'\n"
        "raise VigilError('x', code='made_up_b')\n"
        "error_body('made_up_c', 'm')\n_fail(console, 'made_up_d', 'm', 2)\n"
        "MADE_UP: Final = 'made_up_e'\nraise VigilError('x', code=MADE_UP)\n"
    )
    assert {c for c, _ in codes_in_source(tree)} == {f"made_up_{x}" for x in "abcde"}


def _subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


def test_every_error_class_code_is_in_the_table() -> None:
    import vigil.cli.main  # imports every transport and with them every error class
    import vigil.server.run  # noqa: F401

    classes = _subclasses(VigilError)
    assert len(classes) >= 8
    assert [c.__name__ for c in classes if c.code not in HTTP_STATUS] == []


@pytest.mark.parametrize("code", list(ErrorCode))
def test_each_code_has_a_status_of_each_kind(code: ErrorCode) -> None:
    assert code == code.value and ErrorCode(code.value) is code
    assert HTTP_STATUS[code] == code.http_status and 400 <= code.http_status < 600
    assert EXIT_STATUS[code] == code.exit_status and 1 <= code.exit_status <= 6
    # a client's mistake is a 4xx, vigil's or a dependency's a 5xx
    assert (code.http_status < 500) == (code.exit_status in (2, 3, 5, 6))
