"""Escalation paths: who can become whom, and who can reach admin (docs/escalation.md).

Public surface: :func:`load_export` / :func:`parse_export` (an AWS IAM export into an
:class:`Estate`), :func:`build_graph` (the graph of escalation steps), :func:`analyse` (verdicts and
paths to admin), :func:`paths_between` (paths to a named principal), :func:`report` (the JSON
answer of ``vigil paths``) and :func:`diff` (what a change between two exports gives away).
"""

from vigil.escalation.diff import diff
from vigil.escalation.edges import ADMIN, Edge, Graph
from vigil.escalation.graph import build_graph
from vigil.escalation.iam_export import Estate, Principal, load_export, parse_export
from vigil.escalation.query import VERDICTS, Analysis, Path, Step, analyse, paths_between, resolve
from vigil.escalation.report import principal_report, report

__all__ = [
    "ADMIN",
    "VERDICTS",
    "Analysis",
    "Edge",
    "Estate",
    "Graph",
    "Path",
    "Principal",
    "Step",
    "analyse",
    "build_graph",
    "diff",
    "load_export",
    "parse_export",
    "paths_between",
    "principal_report",
    "report",
    "resolve",
]
