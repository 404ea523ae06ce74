"""IAM semantics the escalation graph depends on, one rule per test, on hand-written exports."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from tests.escalation_support import (
    ACCT,
    ADMIN,
    allow,
    arn,
    deny,
    doc,
    export,
    group,
    policy,
    role,
    trust,
    user,
)
from vigil.errors import PrincipalNotFoundError
from vigil.escalation import Analysis, analyse, build_graph, parse_export, paths_between, resolve

NOW = datetime(2026, 6, 1, tzinfo=UTC)
ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"


def run(data: dict[str, Any], **kw: Any) -> Analysis:
    return analyse(build_graph(parse_export(data, NOW), **kw))


def verdict(a: Analysis, kind: str, name: str) -> str:
    return a.verdict(arn(kind, name))


def methods(a: Analysis, kind: str, name: str) -> tuple[str, ...]:
    p = a.shortest(arn(kind, name))
    return p.methods if p else ()


def boss() -> dict[str, Any]:
    return user("boss", managed=(ADMIN_ARN,))


def test_admin_managed_policy_known_by_name_when_missing_from_the_export() -> None:
    a = run(export(users=[boss()]))
    assert verdict(a, "user", "boss") == "admin"


def test_create_access_key_on_an_admin_user() -> None:
    a = run(export(users=[boss(), user("dev", allow("iam:CreateAccessKey", arn("user", "boss")))]))
    assert verdict(a, "user", "dev") == "reaches_admin"
    assert methods(a, "user", "dev") == ("iam-002", "admin")


def test_explicit_deny_wins_in_the_same_and_in_another_policy() -> None:
    same = user("a", allow("iam:*"), deny("iam:*"))
    other = user("b", allow("*"), managed=("arn:aws:iam::123456789012:policy/no-iam",))
    a = run(export(users=[same, other], policies=[policy("no-iam", doc(deny("iam:*")))]))
    assert verdict(a, "user", "a") == "none"
    assert verdict(a, "user", "b") == "none"


def test_deny_on_one_resource_leaves_the_others() -> None:
    dev = user("dev", allow("iam:CreateAccessKey"), deny("iam:CreateAccessKey", arn("user", "boss")))
    a = run(export(users=[boss(), dev]))
    assert verdict(a, "user", "dev") == "none"
    dev2 = user("dev", allow("iam:CreateAccessKey"), deny("iam:CreateAccessKey", arn("user", "other")))
    assert verdict(run(export(users=[boss(), dev2])), "user", "dev") == "reaches_admin"


def test_not_action_allows_what_it_does_not_list() -> None:
    blocked = user("a", {"Effect": "Allow", "NotAction": ["iam:Put*", "iam:Attach*"], "Resource": "*"})
    a = run(export(users=[blocked]))
    # iam:CreatePolicyVersion etc. are allowed, but nothing is attached to version
    assert verdict(a, "user", "a") == "none"
    open_ = user("b", {"Effect": "Allow", "NotAction": ["iam:Attach*"], "Resource": "*"})
    a = run(export(users=[open_]))
    assert verdict(a, "user", "b") == "reaches_admin"
    assert "iam-007" in methods(a, "user", "b")


def test_not_resource_excludes_what_it_lists() -> None:
    dev = user(
        "dev", {"Effect": "Allow", "Action": "iam:CreateAccessKey", "NotResource": arn("user", "boss")}
    )
    assert verdict(run(export(users=[boss(), dev])), "user", "dev") == "none"
    dev = user("dev", {"Effect": "Allow", "Action": "iam:CreateAccessKey", "NotResource": arn("user", "x*")})
    assert verdict(run(export(users=[boss(), dev])), "user", "dev") == "reaches_admin"


def test_wildcard_resource_patterns_match_arns() -> None:
    target = role("deploy-prod", trust({"AWS": f"arn:aws:iam::{ACCT}:root"}), allow("*"))
    ok = user("ok", allow("sts:AssumeRole", "arn:aws:iam::*:role/deploy-*"))
    no = user("no", allow("sts:AssumeRole", "arn:aws:iam::*:role/build-*"))
    a = run(export(users=[ok, no], roles=[target]))
    assert verdict(a, "user", "ok") == "reaches_admin"
    assert verdict(a, "user", "no") == "none"


def test_actions_match_case_insensitively_resources_case_sensitively() -> None:
    dev = user("dev", allow("IAM:createaccesskey", arn("user", "boss")))
    assert verdict(run(export(users=[boss(), dev])), "user", "dev") == "reaches_admin"
    dev = user("dev", allow("iam:CreateAccessKey", arn("user", "BOSS")))
    assert verdict(run(export(users=[boss(), dev])), "user", "dev") == "none"


def test_trust_naming_the_account_needs_an_identity_allow() -> None:
    r = role("admin-role", trust({"AWS": f"arn:aws:iam::{ACCT}:root"}), allow("*"))
    a = run(
        export(
            users=[user("plain", allow("s3:GetObject")), user("caller", allow("sts:AssumeRole"))], roles=[r]
        )
    )
    assert verdict(a, "user", "plain") == "none"
    assert verdict(a, "user", "caller") == "reaches_admin"
    assert methods(a, "user", "caller") == ("sts-001", "admin")


def test_trust_naming_the_principal_is_enough_unless_an_identity_deny() -> None:
    r = role("admin-role", trust({"AWS": arn("user", "named")}), allow("*"))
    named = user("named")
    a = run(export(users=[named], roles=[r]))
    assert verdict(a, "user", "named") == "reaches_admin"
    named = user("named", deny("sts:AssumeRole"))
    assert verdict(run(export(users=[named], roles=[r])), "user", "named") == "none"


def test_trust_deny_and_trust_for_anyone() -> None:
    anyone = role("open", trust("*"), allow("*"))
    a = run(export(users=[user("x")], roles=[anyone]))
    assert verdict(a, "user", "x") == "reaches_admin"
    closed = role(
        "open",
        doc(
            {"Effect": "Allow", "Principal": "*", "Action": "sts:AssumeRole"},
            {"Effect": "Deny", "Principal": {"AWS": arn("user", "x")}, "Action": "sts:AssumeRole"},
        ),
        allow("*"),
    )
    assert verdict(run(export(users=[user("x")], roles=[closed])), "user", "x") == "none"


def test_assume_role_chain_through_trust_policies() -> None:
    start = role("start", trust({"AWS": arn("user", "u")}))
    mid = role("mid", trust({"AWS": arn("role", "start")}))
    end = role("end", trust({"AWS": arn("role", "mid")}), allow("*"))
    a = run(export(users=[user("u")], roles=[start, mid, end]))
    assert methods(a, "user", "u") == ("sts-001", "sts-001", "sts-001", "admin")
    found = paths_between(a.graph, arn("role", "start"), arn("role", "end"))
    assert [p.methods for p in found] == [("sts-001", "sts-001")]


def test_conditions_that_never_hold_are_ignored_and_request_conditions_make_a_path_conditional() -> None:
    never = user(
        "never",
        allow("iam:PutUserPolicy", Condition={"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}}),
    )
    always = user(
        "always",
        allow(
            "iam:PutUserPolicy", Condition={"DateGreaterThan": {"aws:TokenIssueTime": "2020-01-01T00:00:00Z"}}
        ),
    )
    mfa = user("mfa", allow("iam:PutUserPolicy", Condition={"Bool": {"aws:MultiFactorAuthPresent": "true"}}))
    a = run(export(users=[never, always, mfa]))
    assert verdict(a, "user", "never") == "none"
    assert verdict(a, "user", "always") == "reaches_admin"
    assert verdict(a, "user", "mfa") == "conditional"
    step = a.shortest(arn("user", "mfa")).steps[0]  # type: ignore[union-attr]
    assert any("aws:MultiFactorAuthPresent" in r for r in step.requires)


def test_a_conditional_deny_makes_the_path_conditional() -> None:
    u = user(
        "u",
        allow("iam:PutUserPolicy"),
        deny("iam:*", Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
    )
    assert verdict(run(export(users=[u])), "user", "u") == "conditional"


def test_group_membership_and_add_user_to_group() -> None:
    admins = group("admins", managed=(ADMIN_ARN,))
    member = user("member", groups=("admins",))
    joiner = user("joiner", allow("iam:AddUserToGroup", arn("group", "admins")))
    a = run(export(users=[member, joiner], groups=[admins]))
    assert verdict(a, "user", "member") == "admin"
    assert methods(a, "user", "joiner") == ("iam-013", "admin")


def test_put_group_policy_on_its_own_group() -> None:
    g = group("team")
    u = user("u", allow("iam:PutGroupPolicy", arn("group", "team")), groups=("team",))
    a = run(export(users=[u], groups=[g]))
    assert methods(a, "user", "u") == ("iam-011", "admin")


def test_grant_onto_another_principal_is_delegated_or_conditional_with_require_credentials() -> None:
    r = role("agent", trust({"Service": "lambda.amazonaws.com"}), allow("iam:AttachUserPolicy"))
    data = export(users=[user("someone")], roles=[r])
    assert verdict(run(data), "role", "agent") == "reaches_admin"
    narrow = run(data, require_credentials=True)
    assert verdict(narrow, "role", "agent") == "conditional"
    assert any("credentials of" in r for s in narrow.shortest(arn("role", "agent")).steps for r in s.requires)  # type: ignore[union-attr]


def test_grant_then_assume_composes_into_one_path() -> None:
    target = role("target", trust({"AWS": f"arn:aws:iam::{ACCT}:root"}))
    u = user("u", allow(["iam:AttachRolePolicy", "sts:AssumeRole"], arn("role", "target")))
    a = run(export(users=[u], roles=[target]), require_credentials=True)
    assert verdict(a, "user", "u") == "reaches_admin"
    assert methods(a, "user", "u") == ("iam-009", "sts-001", "admin")


def test_create_policy_version_only_on_customer_policies() -> None:
    own = policy("mine", doc(allow("s3:GetObject")))
    u = user("u", allow("iam:CreatePolicyVersion", "arn:aws:iam::*:policy/mine"), managed=(own["Arn"],))
    a = run(export(users=[u], policies=[own]))
    assert methods(a, "user", "u") == ("iam-001", "admin")
    aws = user("v", allow("iam:CreatePolicyVersion", "arn:aws:iam::aws:policy/*"), managed=(ADMIN_ARN,))
    assert verdict(run(export(users=[aws])), "user", "v") == "admin"
    aws = user(
        "v",
        allow("iam:CreatePolicyVersion", "arn:aws:iam::aws:policy/*"),
        managed=("arn:aws:iam::aws:policy/ReadOnlyAccess",),
    )
    assert verdict(run(export(users=[aws])), "user", "v") == "none"


def test_set_default_policy_version_needs_an_admin_version() -> None:
    one = policy("p", doc(allow("iam:SetDefaultPolicyVersion")))
    two = policy("p", doc(allow("iam:SetDefaultPolicyVersion")), ADMIN)
    for pol, want in ((one, "none"), (two, "reaches_admin")):
        u = user("u", managed=(pol["Arn"],))
        assert verdict(run(export(users=[u], policies=[pol])), "user", "u") == want


def test_pass_role_to_a_new_lambda() -> None:
    target = role("fn-admin", trust({"Service": "lambda.amazonaws.com"}), allow("*"))
    full = user("full", allow(["iam:PassRole", "lambda:CreateFunction", "lambda:InvokeFunction"]))
    half = user("half", allow(["iam:PassRole", "lambda:CreateFunction"]))
    stream = user(
        "stream", allow(["iam:PassRole", "lambda:CreateFunction", "lambda:CreateEventSourceMapping"])
    )
    other_svc = role("ec2-admin", trust({"Service": "ec2.amazonaws.com"}), allow("*"))
    a = run(export(users=[full, half, stream], roles=[target, other_svc]))
    assert methods(a, "user", "full")[0] in ("lambda-001",)
    assert verdict(a, "user", "half") == "none"
    assert verdict(a, "user", "stream") == "conditional"
    assert methods(a, "user", "stream")[0] == "lambda-002"


def test_ec2_pass_role_needs_an_instance_profile() -> None:
    u = user("u", allow(["iam:PassRole", "ec2:RunInstances"]))
    without = role("r", trust({"Service": "ec2.amazonaws.com"}), allow("*"))
    with_ = role("r", trust({"Service": "ec2.amazonaws.com"}), allow("*"), profile=True)
    assert verdict(run(export(users=[u], roles=[without])), "user", "u") == "none"
    assert methods(run(export(users=[u], roles=[with_])), "user", "u") == ("ec2-001", "admin")


def test_existing_resource_methods_are_conditional_and_name_the_resource() -> None:
    target = role("fn-admin", trust({"Service": "lambda.amazonaws.com"}), allow("*"))
    u = user("u", allow("lambda:UpdateFunctionCode"))
    a = run(export(users=[u], roles=[target]))
    assert verdict(a, "user", "u") == "conditional"
    step = a.shortest(arn("user", "u")).steps[0]  # type: ignore[union-attr]
    assert step.method == "lambda-003" and "existing Lambda function" in step.requires[0]


def test_permission_boundary_limits_and_its_removal_is_a_step() -> None:
    bound = policy("bound", doc(allow("s3:*")))
    capped = user("capped", allow("*"), boundary=bound["Arn"])
    a = run(export(users=[capped], policies=[bound]))
    assert verdict(a, "user", "capped") == "none"
    remover = user("remover", allow("iam:DeleteUserPermissionsBoundary", arn("user", "capped")))
    keys = user(
        "keys", allow(["iam:DeleteUserPermissionsBoundary", "iam:CreateAccessKey"], arn("user", "capped"))
    )
    a = run(export(users=[capped, remover, keys], policies=[bound]), require_credentials=True)
    assert verdict(a, "user", "remover") == "conditional"
    assert methods(a, "user", "keys") == ("boundary-user", "iam-002", "admin")


def test_policy_variables_resolve_to_the_caller() -> None:
    u = user("alice", allow("iam:PutUserPolicy", "arn:aws:iam::*:user/${aws:username}"))
    assert methods(run(export(users=[u])), "user", "alice") == ("iam-007", "admin")
    r = role(
        "r",
        trust({"Service": "lambda.amazonaws.com"}),
        allow("iam:PutRolePolicy", "arn:aws:iam::*:role/${aws:username}"),
    )
    assert verdict(run(export(roles=[r])), "role", "r") == "none"


def test_url_encoded_policy_documents_are_read() -> None:
    u = user("u")
    u["UserPolicyList"] = [
        {
            "PolicyName": "p",
            "PolicyDocument": "%7B%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D",
        }
    ]
    assert verdict(run(export(users=[u])), "user", "u") == "admin"


def test_resolve_names_and_errors() -> None:
    a = run(export(users=[boss()]))
    assert resolve(a.graph, "boss") == arn("user", "boss")
    with pytest.raises(PrincipalNotFoundError) as e:
        resolve(a.graph, "nobody")
    assert e.value.code == "principal_not_found"
