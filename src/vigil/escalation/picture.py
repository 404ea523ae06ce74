"""The escalation report as a picture: Graphviz DOT text and an SVG drawn here (no Graphviz needed).

Both are built from the report of :func:`vigil.escalation.report.report` (``{"principals": [...]}``
with each principal's verdict and shortest paths): the nodes are the principals on a path and
``admin``; the edges are the steps of the reported paths, each labelled with its method. Steps of
paths to admin are red, conditional steps (they need a request context, or a resource the export
cannot show) dashed orange. The SVG places each node in a column by its distance to admin (admin
rightmost), so a path reads from left to right.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from xml.sax.saxutils import escape as xml_escape

ADMIN: Final = "admin"
_RED: Final = "#c62828"
_ORANGE: Final = "#ef6c00"
_GREY: Final = "#616161"
_VERDICT_FILL: Final = {
    "admin": "#ffcdd2",
    "reaches_admin": "#ffe0b2",
    "conditional": "#fff9c4",
    "none": "#eceff1",
}
_COL_W: Final = 260
_ROW_H: Final = 70
_NODE_W: Final = 190
_NODE_H: Final = 34
_MARGIN: Final = 30


def _edges(data: Mapping[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Each (from, to) step of the reported paths once: its methods, and whether every path that
    uses it is conditional (False as soon as one unconditional path does)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in data.get("principals", []):
        for path in entry.get("paths", []):
            for step in path.get("steps", []):
                key = (step["from"], step["to"])
                e = out.setdefault(key, {"methods": [], "conditional": True})
                if step["method"] not in e["methods"]:
                    e["methods"].append(step["method"])
                if not step.get("requires"):
                    e["conditional"] = False
    return out


def _nodes(data: Mapping[str, Any], edges: Mapping[tuple[str, str], Any]) -> dict[str, dict[str, Any]]:
    """Every principal of the report or on a step, with its name, verdict and distance to admin."""
    nodes: dict[str, dict[str, Any]] = {ADMIN: {"name": "admin", "verdict": "admin", "distance": 0}}
    for entry in data.get("principals", []):
        paths = entry.get("paths") or []
        nodes[entry["id"]] = {
            "name": entry.get("name", entry["id"]),
            "verdict": entry.get("verdict", "none"),
            # steps of its shortest path (holding admin is one step to the admin node)
            "distance": len(paths[0].get("steps", [])) if paths else None,
        }
    for a, b in edges:
        for uid in (a, b):
            nodes.setdefault(uid, {"name": uid, "verdict": "none", "distance": None})
    return nodes


def to_dot(data: Mapping[str, Any]) -> str:
    """The report as Graphviz DOT (``dot -Tsvg`` renders it); paths to admin highlighted."""
    edges = _edges(data)
    nodes = _nodes(data, edges)
    lines = [
        "digraph escalation {",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica"];',
    ]
    for uid, n in nodes.items():
        fill = _VERDICT_FILL.get(n["verdict"], _VERDICT_FILL["none"])
        label = f"{n['name']}\\n{n['verdict']}" if uid != ADMIN else "admin"
        lines.append(
            f'  "{_dot_text(uid)}" [label="{_dot_text(label, keep_newline=True)}", fillcolor="{fill}"];'
        )
    for (a, b), e in edges.items():
        color = _ORANGE if e["conditional"] else _RED
        style = "dashed" if e["conditional"] else "solid"
        label = ", ".join(e["methods"])
        lines.append(
            f'  "{_dot_text(a)}" -> "{_dot_text(b)}" [label="{_dot_text(label)}", color="{color}", '
            f'fontcolor="{color}", style={style}, penwidth=2];'
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_text(text: str, *, keep_newline: bool = False) -> str:
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return out.replace("\\\\n", "\\n") if keep_newline else out.replace("\n", " ")


def to_svg(data: Mapping[str, Any]) -> str:
    """The report as an SVG picture: columns by distance to admin, admin rightmost."""
    edges = _edges(data)
    nodes = _nodes(data, edges)
    far = max((n["distance"] for n in nodes.values() if isinstance(n["distance"], int)), default=0)
    columns: dict[int, list[str]] = {}
    for uid, n in nodes.items():
        d = n["distance"] if isinstance(n["distance"], int) else far + 1
        columns.setdefault(d, []).append(uid)
    ncols = max(columns) + 1
    rows = max(len(v) for v in columns.values())
    width = max(_MARGIN * 2 + _NODE_W + (ncols - 1) * _COL_W, 560)
    height = _MARGIN * 2 + 40 + rows * _ROW_H + _ROW_H // 2
    pos: dict[str, tuple[float, float]] = {}
    for d, uids in columns.items():
        x = float(_MARGIN + (ncols - 1 - d) * _COL_W)
        for i, uid in enumerate(sorted(uids, key=lambda u: nodes[u]["name"])):
            pos[uid] = (x, float(_MARGIN + 40 + i * _ROW_H))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
        "<defs>",
    ]
    for name, color in (("red", _RED), ("orange", _ORANGE)):
        out.append(
            f'<marker id="arrow-{name}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="{color}"/></marker>'
        )
    out.append("</defs>")
    out.append(f'<rect width="{width}" height="{height}" fill="white"/>')
    out.append(
        f'<text x="{_MARGIN}" y="{_MARGIN - 8}" font-size="13" fill="{_GREY}">Escalation paths to admin '
        "(columns: steps to admin)</text>"
    )
    out.append(
        f'<text x="{_MARGIN}" y="{_MARGIN + 10}" font-size="12" fill="{_GREY}">red: a path to admin; '
        "dashed orange: conditional (needs a request context or a resource)</text>"
    )
    for (a, b), e in edges.items():
        (x1, y1), (x2, y2) = pos[a], pos[b]
        sx, sy = x1 + _NODE_W, y1 + _NODE_H / 2
        tx, ty = x2, y2 + _NODE_H / 2
        span = round((x2 - x1) / _COL_W)
        if x2 <= x1:  # a step within a column or backwards: bend around the boxes
            sx, tx = x1 + _NODE_W / 2, x2 + _NODE_W / 2
            sy, ty = y1 + _NODE_H, y2 + _NODE_H
        color, marker = (_ORANGE, "orange") if e["conditional"] else (_RED, "red")
        dash = ' stroke-dasharray="6,4"' if e["conditional"] else ""
        # one column: a gentle arc above; across columns: below the boxes in between
        bend = -18.0 if span == 1 else (_ROW_H * 0.7 * (span - 1) if span > 1 else 24.0)
        mx, my = (sx + tx) / 2, (sy + ty) / 2 + bend
        out.append(
            f'<path d="M{sx:.0f},{sy:.0f} Q{mx:.0f},{my:.0f} {tx:.0f},{ty:.0f}" fill="none" stroke="{color}" '
            f'stroke-width="2"{dash} marker-end="url(#arrow-{marker})"/>'
        )
        # the label a third of the way along the curve: labels of edges into one node stay apart
        lx = 0.4225 * sx + 0.455 * mx + 0.1225 * tx
        ly = 0.4225 * sy + 0.455 * my + 0.1225 * ty - 4
        out.append(
            f'<text x="{lx:.0f}" y="{ly:.0f}" text-anchor="middle" fill="{color}">'
            f"{xml_escape(', '.join(e['methods']))}</text>"
        )
    for uid, (x, y) in pos.items():
        n = nodes[uid]
        fill = _VERDICT_FILL.get(n["verdict"], _VERDICT_FILL["none"])
        out.append(
            f'<rect x="{x:.0f}" y="{y:.0f}" width="{_NODE_W}" height="{_NODE_H}" rx="8" fill="{fill}" stroke="{_GREY}"/>'
        )
        name = n["name"] if len(n["name"]) <= 28 else n["name"][:27] + "…"
        out.append(
            f'<text x="{x + _NODE_W / 2:.0f}" y="{y + 15:.0f}" text-anchor="middle" font-weight="bold">'
            f"{xml_escape(name)}</text>"
        )
        if uid != ADMIN:
            out.append(
                f'<text x="{x + _NODE_W / 2:.0f}" y="{y + 28:.0f}" text-anchor="middle" fill="{_GREY}">'
                f"{xml_escape(n['verdict'])}</text>"
            )
    out.append("</svg>")
    return "\n".join(out) + "\n"
