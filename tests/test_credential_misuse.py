"""Evidence that needs no history (issue 17): ``credential_misuse`` (a workload-bound credential
used from a workstation) and ``bad_network`` (a request from a configured known-bad network), judged
from an identity's first request and enforced while it learns. On the old behaviour neither existed
(the OTRF intrusion: 0 of 11 flagged)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

import vigil
from tests.behaviour_support import T0, TABLES, engine, habit, request, write_workspace
from vigil.behaviour.credentials import workstation
from vigil.errors import WorkspaceError
from vigil.evaluation.datasets import DatasetRun, run_otrf
from vigil.importers.cloudtrail import to_request

WHO = "data-agent-0"
CLI_MAC = "aws-cli/1.18.136 Python/3.8.5 Darwin/19.5.0 botocore/1.17.59"
SDK_LINUX = "aws-sdk-go/1.25.0 (go1.13; linux; amd64)"
DATASETS = Path(__file__).resolve().parent.parent / "vendor" / "datasets"


def test_workstation_platforms() -> None:
    assert workstation(CLI_MAC) == "Darwin/"
    assert workstation("Mozilla/5.0 (Windows NT 10.0; Win64; x64)") == "Windows NT"
    assert workstation(SDK_LINUX) is None
    assert workstation("Boto3/1.17 Python/3.8 Linux/5.4 Botocore/1.20") is None
    assert workstation(None) is None and workstation(12) is None


def test_an_instance_credential_on_a_laptop_is_stepped_up(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, {"learning_days": 7, "learning_requests": 100}))
    last = habit(e, WHO, days=10, per_day=10, tables=3)
    when = last + timedelta(minutes=15)
    req = request(WHO, "read", TABLES["data"][0], when, user_agent=CLI_MAC, credential_source="ec2_instance")
    rec = e.decide(req, now=when)
    assert not rec.allowed and "credential_misuse" in rec.signals
    # the same credential from the instance's own SDK, or a person's laptop without the marker: no signal
    for ua, source in ((SDK_LINUX, "ec2_instance"), (CLI_MAC, None)):
        when += timedelta(seconds=20)
        extra = {"credential_source": source} if source else {}
        rec = e.decide(request(WHO, "read", TABLES["data"][0], when, user_agent=ua, **extra), now=when)
        assert "credential_misuse" not in rec.signals


def test_it_is_judged_on_an_identitys_first_request(tmp_path: Path) -> None:
    e = engine(write_workspace(tmp_path, {"learning_days": 7, "learning_requests": 100}))
    req = request(WHO, "read", TABLES["data"][0], T0, user_agent=CLI_MAC, credential_source="ec2_instance")
    rec = e.decide(req, now=T0)
    assert rec.risk >= 60 and "credential_misuse" in rec.signals


def test_the_importer_marks_instance_credentials() -> None:
    record = {
        "eventTime": "2020-09-14T01:00:04Z",
        "eventSource": "s3.amazonaws.com",
        "eventName": "ListBuckets",
        "awsRegion": "us-east-1",
        "sourceIPAddress": "1.2.3.4",
        "userAgent": CLI_MAC,
        "userIdentity": {
            "type": "AssumedRole",
            "arn": "arn:aws:sts::123456789123:assumed-role/Web/i-0317f6c6b66ae9c40",
            "accountId": "123456789123",
            "sessionContext": {
                "sessionIssuer": {"arn": "arn:aws:iam::123456789123:role/Web", "type": "Role"},
                "ec2RoleDelivery": "1.0",
            },
        },
    }
    assert to_request(record)["context"]["credential_source"] == "ec2_instance"
    del record["userIdentity"]["sessionContext"]["ec2RoleDelivery"]  # type: ignore[attr-defined]
    assert "credential_source" not in to_request(record)["context"]


def test_otrf_intrusion_is_flagged_in_both_variants() -> None:
    run = DatasetRun()
    run_otrf(DATASETS, run)
    for result in run.otrf:
        assert result.malicious == 11
        assert result.true_alerts >= 8 and result.false_alerts <= 1, result.to_dict()


def test_a_known_bad_network_is_enforced_while_learning(tmp_path: Path) -> None:
    settings = {
        "learning_days": 7,
        "learning_requests": 100,
        "bad_networks": ["198.51.100.0/24", "2001:db8:bad::/48"],
    }
    e = engine(write_workspace(tmp_path, settings))
    last = habit(e, WHO, days=1, per_day=10, tables=3)  # day 1 of 7: weak signals count for little
    when = last + timedelta(minutes=10)
    rec = e.decide(request(WHO, "read", TABLES["data"][0], when, ip="198.51.100.23"), now=when)
    assert not rec.allowed and "bad_network" in rec.signals, rec.explanations()
    when += timedelta(minutes=1)
    ok = e.decide(request(WHO, "read", TABLES["data"][0], when, ip="198.51.101.23"), now=when)
    assert "bad_network" not in ok.signals


@pytest.mark.parametrize("bad", ["not-a-network", "10.0.0.0/33", ""])
def test_a_bad_bad_networks_entry_is_a_workspace_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(WorkspaceError) as info:
        vigil.Engine.from_workspace(write_workspace(tmp_path, {"bad_networks": [bad]}))
    assert info.value.code == "invalid_workspace"
    assert any("bad_networks" in p for p in info.value.problems)
