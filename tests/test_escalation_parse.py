"""The IAM export reader: any input gives an estate or an ``invalid_iam_export`` error, never a crash."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.escalation_support import allow, export, user
from tests.vendored import DATASETS, require
from vigil.errors import IamExportError
from vigil.escalation import Estate, analyse, build_graph, parse_export, report

NOW = datetime(2026, 6, 1, tzinfo=UTC)
SNAPSHOT = DATASETS / "iam-vulnerable-authz-snapshot" / "account_authorization_details.json"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
KEYS = [
    "UserDetailList",
    "GroupDetailList",
    "RoleDetailList",
    "Policies",
    "Arn",
    "UserName",
    "RoleName",
    "GroupName",
    "PolicyArn",
    "PolicyDocument",
    "Statement",
    "Effect",
    "Action",
    "Resource",
    "Principal",
    "Condition",
    "AttachedManagedPolicies",
    "UserPolicyList",
    "AssumeRolePolicyDocument",
    "PolicyVersionList",
    "Document",
    "VersionId",
    "GroupList",
    "NotAction",
    "NotResource",
    "PermissionsBoundary",
]
iamish = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from(["Allow", "Deny", "*", "iam:*", "arn:aws:iam::1:user/x", "x"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=30,
)


def _parse(data: Any) -> None:
    """Parse ``data``; what parses is also analysed and reported (none of it may raise)."""
    try:
        estate = parse_export(data, NOW)
        assert isinstance(estate, Estate)
        report(analyse(build_graph(estate)))
    except IamExportError as e:
        assert e.code == "invalid_iam_export"
        assert e.message and "\n" not in e.message


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_value_is_an_estate_or_a_typed_error(data: Any) -> None:
    _parse(data)


@settings(max_examples=300, deadline=None)
@given(iamish)
def test_export_shaped_noise_is_an_estate_or_a_typed_error(data: Any) -> None:
    _parse(data)


def _paths(obj: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


BASE = export(users=[user("u", allow(["iam:PassRole", "s3:*"]), groups=("g",))])


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_one_field_of_a_valid_export_replaced_by_anything(data: st.DataObject) -> None:
    doc = copy.deepcopy(BASE)
    doc["RoleDetailList"] = [
        {
            "RoleName": "r",
            "Arn": "arn:aws:iam::1:role/r",
            "AssumeRolePolicyDocument": {
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]
            },
        }
    ]
    paths = [p for p in _paths(doc) if p]
    where = data.draw(st.sampled_from(paths))
    value = data.draw(json_values)
    node = doc
    for k in where[:-1]:
        node = node[k]
    node[where[-1]] = value
    _parse(doc)


def test_the_snapshot_parses() -> None:
    estate = parse_export(json.loads(require(SNAPSHOT).read_text()), NOW)
    assert len(estate.principals) == 127
    assert sum(1 for p in estate.policies.values() if not p.missing) >= 84


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([], "$ is not an object"),
        ({}, "none of UserDetailList"),
        ({"UserDetailList": {}}, "$.UserDetailList is not a list"),
        ({"UserDetailList": [{"UserName": "u"}]}, "$.UserDetailList[0].Arn"),
        ({"UserDetailList": [{"UserName": "u", "Arn": "not-an-arn"}]}, "is not an ARN"),
        (export(users=[user("u", {"Effect": "Maybe", "Action": "*", "Resource": "*"})]), "Effect 'Maybe'"),
        (
            export(users=[user("u", {"Effect": "Allow", "Resource": "*"})]),
            "exactly one of Action and NotAction",
        ),
        (export(users=[user("u", allow(5))]), "Action is not a string"),
        (export(users=[user("u"), user("u")]), "appears twice"),
        (
            export(users=[user("u", allow("*", Condition={"DateLessThan": {"aws:CurrentTime": "soon"}}))]),
            "not a date",
        ),
    ],
)
def test_bad_exports_name_the_place(data: Any, needle: str) -> None:
    with pytest.raises(IamExportError) as e:
        parse_export(data, NOW)
    assert needle in e.value.message


@pytest.mark.parametrize(
    "value", [1e308, -1e308, 10**30, "99999999999999999999", "", "2020-13-01", True, None, [], {}]
)
def test_date_values_out_of_range_or_malformed(value: Any) -> None:
    data = export(users=[user("u", allow("*", Condition={"DateLessThan": {"aws:CurrentTime": value}}))])
    _parse(data)


def test_deeply_nested_url_encoded_document() -> None:
    u = user("u")
    u["UserPolicyList"] = [{"PolicyName": "p", "PolicyDocument": "[" * 100000}]
    with pytest.raises(IamExportError):
        parse_export(export(users=[u]), NOW)
