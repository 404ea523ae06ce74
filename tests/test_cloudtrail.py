"""vigil.importers: CloudTrail records -> AuthZEN requests; files in every CloudTrail shape; the CLI.

Robustness is a property: any JSON value (or any bytes in a file) yields requests or error lines,
never an exception, and every request it yields is one the engine decides without a RequestError.
"""

from __future__ import annotations

import copy
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from tests import vendored
from tests.profiles import examples
from vigil import Engine
from vigil.audit import NullSink
from vigil.cli.main import app
from vigil.importers import (
    CloudTrailError,
    access_kind,
    action_name,
    import_cloudtrail,
    read_records,
    to_request,
    write_workspace,
)
from vigil.model.request import parse_authzen

DATASETS = vendored.DATASETS
runner = CliRunner()

ROLE_CALL: dict[str, Any] = {
    "eventVersion": "1.09",
    "userIdentity": {
        "type": "AssumedRole",
        "principalId": "AROAEXAMPLE:i-0abc",
        "arn": "arn:aws:sts::111122223333:assumed-role/orders-app/i-0abc",
        "accountId": "111122223333",
        "accessKeyId": "ASIAEXAMPLE",
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": "AROAEXAMPLE",
                "arn": "arn:aws:iam::111122223333:role/service/orders-app",
                "accountId": "111122223333",
                "userName": "orders-app",
            },
            "attributes": {"creationDate": "2024-09-02T00:00:00Z", "mfaAuthenticated": "false"},
        },
    },
    "eventTime": "2024-09-08T03:12:45Z",
    "eventSource": "s3.amazonaws.com",
    "eventName": "GetObject",
    "awsRegion": "eu-west-1",
    "sourceIPAddress": "075.050.255.067",
    "userAgent": "aws-cli/2.15.0 Python/3.11.6 Darwin/23.0",
    "requestParameters": {"bucketName": "orders-data", "key": "2024/09/08.json"},
    "responseElements": None,
    "eventID": "e1",
    "readOnly": True,
    "eventType": "AwsApiCall",
    "recipientAccountId": "111122223333",
}


def call(**changes: Any) -> dict[str, Any]:
    record = copy.deepcopy(ROLE_CALL)
    for key, value in changes.items():
        if value is None:
            record.pop(key, None)
        else:
            record[key] = value
    return record


# -- one record -----------------------------------------------------------------------------------


def test_assumed_role_session_is_its_role_with_the_session_name() -> None:
    req = to_request(ROLE_CALL)
    assert req["subject"] == {
        "type": "IamRole",
        "id": "arn:aws:iam::111122223333:role/service/orders-app",
        "properties": {
            "principal_type": "AssumedRole",
            "account": "111122223333",
            "access_key_id": "ASIAEXAMPLE",
            "session_name": "i-0abc",
        },
    }
    assert req["action"] == {"name": "s3:GetObject", "properties": {"access": "read"}}
    assert req["resource"]["id"] == "arn:aws:s3:::orders-data/2024/09/08.json"
    assert req["context"] == {
        "time": "2024-09-08T03:12:45Z",
        "hour": 3,
        "event_source": "s3.amazonaws.com",
        "event_name": "GetObject",
        "ip": "75.50.255.67",
        "region": "eu-west-1",
        "user_agent": "aws-cli/2.15.0 Python/3.11.6 Darwin/23.0",
        "event_id": "e1",
        "read_only": True,
        "mfa": False,
        "credential_id": "ASIAEXAMPLE",
    }


def test_assumed_role_without_session_issuer_derives_the_role_arn() -> None:
    identity = {"type": "AssumedRole", "arn": "arn:aws:sts::1:assumed-role/r/sess", "accountId": "1"}
    req = to_request(call(userIdentity=identity))
    assert req["subject"]["id"] == "arn:aws:iam::1:role/r"
    assert req["subject"]["properties"]["session_name"] == "sess"


@pytest.mark.parametrize(
    ("identity", "expected"),
    [
        (
            {"type": "IAMUser", "arn": "arn:aws:iam::1:user/pedro", "userName": "pedro"},
            ("IamUser", "arn:aws:iam::1:user/pedro"),
        ),
        (
            {"type": "IAMUser", "userName": "pedro", "accountId": "1"},
            ("IamUser", "arn:aws:iam::1:user/pedro"),
        ),
        (
            {"type": "Root", "arn": "arn:aws:iam::1:root", "accountId": "1"},
            ("AwsRoot", "arn:aws:iam::1:root"),
        ),
        ({"type": "Root", "accountId": "1"}, ("AwsRoot", "arn:aws:iam::1:root")),
        ({"type": "AWSService", "invokedBy": "ec2.amazonaws.com"}, ("AwsService", "ec2.amazonaws.com")),
        ({"type": "AWSAccount", "accountId": "999", "principalId": "AIDA:x"}, ("AwsAccount", "999")),
        (
            {"type": "FederatedUser", "arn": "arn:aws:sts::1:federated-user/bob", "accountId": "1"},
            ("FederatedUser", "arn:aws:sts::1:federated-user/bob"),
        ),
        ({"type": "IdentityCenterUser", "principalId": "abc", "accountId": "1"}, ("AwsPrincipal", "abc")),
    ],
)
def test_principal_types(identity: dict[str, Any], expected: tuple[str, str]) -> None:
    subject = to_request(call(userIdentity=identity))["subject"]
    assert (subject["type"], subject["id"]) == expected


@pytest.mark.parametrize(
    ("source", "name", "expected"),
    [
        ("s3.amazonaws.com", "GetObject", "s3:GetObject"),
        ("iam.amazonaws.com", "CreateAccessKey", "iam:CreateAccessKey"),
        ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2", "lambda:UpdateFunctionCode"),
        ("lambda.amazonaws.com", "CreateFunction20150331", "lambda:CreateFunction"),
        ("monitoring.amazonaws.com", "GetMetricData", "cloudwatch:GetMetricData"),
        ("ec2-instance-connect.amazonaws.com", "SendSSHPublicKey", "ec2-instance-connect:SendSSHPublicKey"),
        ("custom.example.com", "Do", "custom.example.com:Do"),
    ],
)
def test_action_names(source: str, name: str, expected: str) -> None:
    assert action_name(source, name) == expected


@pytest.mark.parametrize(
    ("name", "read_only", "kind"),
    [
        ("GetObject", None, "read"),
        ("DescribeInstances", None, "read"),
        ("ListBuckets", None, "list"),
        ("PutObject", None, "write"),
        ("DeleteTrail", None, "delete"),
        ("AttachUserPolicy", None, "grant"),
        ("UpdateAssumeRolePolicy", None, "grant"),
        ("AddPermission20150331v2", None, "grant"),
        ("CreateAccessKey", None, "create_key"),
        ("CreateLoginProfile", None, "create_key"),
        ("AssumeRole", None, "assume_role"),
        ("InvokeModel", None, "invoke"),
        ("StartQueryExecution", True, "read"),
        ("StartQueryExecution", False, "write"),
    ],
)
def test_access_kinds(name: str, read_only: bool | None, kind: str) -> None:
    assert access_kind(name, read_only) == kind


def test_resource_from_resources_list_first_arn() -> None:
    resources = [
        {"ARNPrefix": "arn:aws:s3:::b/", "type": "AWS::S3::Object"},
        {"ARN": "arn:aws:s3:::b", "accountId": "1", "type": "AWS::S3::Bucket"},
    ]
    req = to_request(call(resources=resources, requestParameters=None))
    assert req["resource"] == {
        "type": "AwsResource",
        "id": "arn:aws:s3:::b",
        "properties": {"service": "s3", "account": "111122223333"},
    }


@pytest.mark.parametrize(
    ("source", "name", "params", "expected"),
    [
        (
            "iam.amazonaws.com",
            "AttachUserPolicy",
            {"userName": "u", "policyArn": "arn:aws:iam::aws:policy/Admin"},
            "arn:aws:iam::111122223333:user/u",
        ),
        (
            "iam.amazonaws.com",
            "CreatePolicy",
            {"policyArn": "arn:aws:iam::1:policy/p"},
            "arn:aws:iam::1:policy/p",
        ),
        ("sts.amazonaws.com", "AssumeRole", {"roleArn": "arn:aws:iam::1:role/x"}, "arn:aws:iam::1:role/x"),
        (
            "lambda.amazonaws.com",
            "Invoke",
            {"functionName": "fn"},
            "arn:aws:lambda:eu-west-1:111122223333:function:fn",
        ),
        (
            "ec2.amazonaws.com",
            "StopInstances",
            {"instancesSet": {"items": [{"instanceId": "i-1"}]}},
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-1",
        ),
        (
            "secretsmanager.amazonaws.com",
            "GetSecretValue",
            {"secretId": "db/pw"},
            "arn:aws:secretsmanager:eu-west-1:111122223333:secret:db/pw",
        ),
        (
            "ssm.amazonaws.com",
            "GetParameter",
            {"name": "/a/b"},
            "arn:aws:ssm:eu-west-1:111122223333:parameter/a/b",
        ),
        (
            "ssm.amazonaws.com",
            "SendCommand",
            {"instanceIds": ["i-9"], "documentName": "AWS-RunShellScript"},
            "arn:aws:ec2:eu-west-1:111122223333:instance/i-9",
        ),
        (
            "dynamodb.amazonaws.com",
            "GetItem",
            {"tableName": "t"},
            "arn:aws:dynamodb:eu-west-1:111122223333:table/t",
        ),
        (
            "sqs.amazonaws.com",
            "ReceiveMessage",
            {"queueUrl": "https://sqs.eu-west-1.amazonaws.com/444/q"},
            "arn:aws:sqs:eu-west-1:444:q",
        ),
        ("ec2.amazonaws.com", "DescribeInstances", {}, "arn:aws:ec2:eu-west-1:111122223333:*"),
        ("iam.amazonaws.com", "ListUsers", None, "arn:aws:iam::111122223333:*"),
    ],
)
def test_resource_from_request_parameters_or_the_service(
    source: str, name: str, params: dict[str, Any] | None, expected: str
) -> None:
    record = call(eventSource=source, eventName=name, requestParameters=params)
    if params is None:
        record["requestParameters"] = None
    assert to_request(record)["resource"]["id"] == expected


def test_logstash_timestamp_offsets_and_read_only_strings() -> None:
    req = to_request(
        call(eventTime=None, **{"@timestamp": "2020-09-14T02:44:20.000+02:00"}, readOnly="false")
    )
    assert req["context"]["time"] == "2020-09-14T00:44:20Z"
    assert req["context"]["read_only"] is False
    assert req["action"]["properties"]["access"] == "read"  # the verb wins over the flag


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2022-12-11 19:42:55", "2022-12-11T19:42:55Z"),
        ("2025-01-20 16:52:14.000000000", "2025-01-20T16:52:14Z"),
        ("2024-09-08T05:12:45+0200", "2024-09-08T03:12:45Z"),
        ("2024-09-08t03:12:45.5z", "2024-09-08T03:12:45Z"),
    ],
)
def test_event_time_forms(raw: str, expected: str) -> None:
    assert to_request(call(eventTime=raw))["context"]["time"] == expected


def test_failed_calls_keep_their_error_code() -> None:
    req = to_request(call(errorCode="AccessDenied", errorMessage="no"))
    assert req["context"]["error_code"] == "AccessDenied"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ([], "must be a JSON object"),
        (None, "must be a JSON object"),
        ({}, "'eventSource' and 'eventName'"),
        ({"eventSource": "s3.amazonaws.com", "eventName": "X"}, "'eventTime'"),
        (call(eventTime="yesterday"), "not an RFC 3339"),
        (call(eventTime="2024-02-30T00:00:00Z"), "not a valid date-time"),
        (call(userIdentity=None), "no 'userIdentity'"),
        (call(userIdentity={"type": "Unknown"}), "cannot tell which identity"),
    ],
)
def test_unmappable_records_raise_cloudtrail_error(record: Any, message: str) -> None:
    with pytest.raises(CloudTrailError, match=message) as info:
        to_request(record)
    assert info.value.code == "invalid_record"


def test_overlong_ids_are_shortened_with_a_digest() -> None:
    a = to_request(call(requestParameters={"bucketName": "b", "key": "k" * 3000}))["resource"]["id"]
    b = to_request(call(requestParameters={"bucketName": "b", "key": "k" * 2999 + "j"}))["resource"]["id"]
    assert len(a) == len(b) == 1024 and a != b


# -- robustness (properties) -----------------------------------------------------------------------

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
json_values = st.recursive(
    json_leaf,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=12), kids, max_size=5),
    max_leaves=20,
)
FIELDS = [*sorted(ROLE_CALL), "@timestamp", "resources", "errorCode", "invokedBy"]


@st.composite
def mutated_records(draw: st.DrawFn) -> Any:
    """A real record with some fields dropped or replaced by arbitrary JSON (nested ones too)."""
    record = copy.deepcopy(ROLE_CALL)
    for key in draw(st.lists(st.sampled_from(FIELDS), max_size=5)):
        if draw(st.booleans()):
            record.pop(key, None)
        else:
            record[key] = draw(json_values)
    identity = record.get("userIdentity")
    if isinstance(identity, dict):
        for key in draw(
            st.lists(
                st.sampled_from(["type", "arn", "accountId", "sessionContext", "userName", "principalId"]),
                max_size=3,
            )
        ):
            identity[key] = draw(
                json_values | st.sampled_from(["AssumedRole", "IAMUser", "Root", "AWSService"])
            )
    return record


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    root = write_workspace(tmp_path_factory.mktemp("ct") / "ws", {})
    with Engine.from_workspace(root, audit=NullSink()) as e:
        yield e


def _check(record: Any, engine: Engine) -> None:
    try:
        request = to_request(record)
    except CloudTrailError:
        return
    orjson.dumps(request)
    parse_authzen(request)
    # The workspace has no identities: every mapped request is decided (never a RequestError) and
    # denied as an unknown identity.
    record = engine.decide(request)
    assert not record.allowed
    assert record.reason_codes == ("unknown_identity",), record.reason_codes


@settings(max_examples=examples(300))
@given(record=json_values | mutated_records())
def test_any_json_maps_or_raises_cloudtrail_error(record: Any, engine: Engine) -> None:
    _check(record, engine)


@settings(max_examples=examples(150))
@given(data=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_file_content_gives_records_or_errors(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("raw") / "f.json"
    for content in (data, gzip.compress(data)):
        path.write_bytes(content)
        out, err = io.BytesIO(), io.BytesIO()
        summary = import_cloudtrail([path], out, err)
        assert summary.requests == len(out.getvalue().splitlines())
        assert summary.bad_records == len(err.getvalue().splitlines())
        for line in err.getvalue().splitlines():
            assert set(json.loads(line)["error"]) == {"code", "message"}


@settings(max_examples=examples(100))
@given(
    records=st.lists(json_values | mutated_records(), max_size=6),
    shape=st.sampled_from(["records", "array", "lines"]),
)
def test_every_record_of_a_file_is_one_request_or_one_error_line(
    tmp_path_factory: pytest.TempPathFactory, records: list[Any], shape: str
) -> None:
    path = tmp_path_factory.mktemp("files") / "trail.json"
    if shape == "records":
        path.write_text(json.dumps({"Records": records}))
    elif shape == "array":
        path.write_text(json.dumps(records))
    else:
        path.write_text("\n".join(json.dumps(r) for r in records))
    out, err = io.BytesIO(), io.BytesIO()
    summary = import_cloudtrail([path], out, err)
    assert summary.requests + summary.bad_records == _expected(records, shape)


def _expected(records: list[Any], shape: str) -> int:
    """How many records a file of ``records`` holds (a one-line file is parsed as one JSON document)."""
    if shape != "lines":
        return len(records)
    if len(records) == 1:
        only = records[0]
        inner = only.get("Records", only) if isinstance(only, dict) else only
        return len(inner) if isinstance(inner, list) else 1
    return sum(
        len(r["Records"]) if isinstance(r, dict) and isinstance(r.get("Records"), list) else 1
        for r in records
    )


# -- files ----------------------------------------------------------------------------------------


def test_file_shapes(tmp_path: Path) -> None:
    a, b = (
        call(eventID="a", eventTime="2024-09-08T03:00:02Z"),
        call(eventID="b", eventTime="2024-09-08T03:00:01Z"),
    )
    (tmp_path / "records.json").write_bytes(orjson.dumps({"Records": [a, b]}))
    (tmp_path / "array.json").write_bytes(orjson.dumps([a]))
    (tmp_path / "lines.jsonl").write_bytes(orjson.dumps(a) + b"\n\n" + orjson.dumps(b) + b"\n")
    (tmp_path / "one.json").write_bytes(orjson.dumps(b))
    (tmp_path / "trail.json.gz").write_bytes(gzip.compress(orjson.dumps({"Records": [a]})))
    (tmp_path / "broken.json.gz").write_bytes(gzip.compress(b"{}")[:-6])
    (tmp_path / "bad-records.json").write_bytes(b'{"Records": 5}')
    (tmp_path / "empty.json").write_bytes(b"")
    files = sorted(tmp_path.iterdir())
    out, err = io.BytesIO(), io.BytesIO()
    summary = import_cloudtrail(files, out, err)
    ids = [json.loads(line)["context"]["event_id"] for line in out.getvalue().splitlines()]
    assert len(ids) == 7 and ids == sorted(ids, key=lambda i: {"a": 2, "b": 1}[i])  # sorted by time
    errors = [json.loads(line) for line in err.getvalue().splitlines()]
    assert [(Path(e["file"]).name, e["error"]["code"]) for e in errors] == [
        ("bad-records.json", "invalid_file"),
        ("broken.json.gz", "invalid_file"),
    ]
    assert summary.files == 8 and summary.requests == 7 and summary.bad_records == 2
    unsorted = io.BytesIO()
    import_cloudtrail([tmp_path / "records.json"], unsorted, sort=False)
    assert [json.loads(x)["context"]["event_id"] for x in unsorted.getvalue().splitlines()] == ["a", "b"]


def test_missing_file_is_one_error(tmp_path: Path) -> None:
    items = list(read_records(tmp_path / "nope.json"))
    assert len(items) == 1 and items[0][0] == ("file", 0)


def test_written_workspace_decides_every_imported_request(tmp_path: Path) -> None:
    (tmp_path / "t.json").write_bytes(
        orjson.dumps({"Records": [ROLE_CALL, call(userIdentity={"type": "Root", "accountId": "1"})]})
    )
    out = io.BytesIO()
    summary = import_cloudtrail([tmp_path / "t.json"], out)
    root = write_workspace(tmp_path / "ws", summary.identities)
    assert 'mode = "enforce"' in (root / "vigil.toml").read_text()
    with Engine.from_workspace(root, audit=NullSink()) as engine:
        records = [engine.decide(json.loads(line)) for line in out.getvalue().splitlines()]
    assert all(r.allowed and r.policies == ("permit-all",) for r in records)
    with pytest.raises(Exception, match="not empty"):
        write_workspace(root, {})


def test_every_vendored_cloudtrail_record_imports() -> None:
    vendored.require(DATASETS / "stratus-red-team-detonations")
    vendored.require(DATASETS / "otrf-security-datasets" / "aws-ec2-proxy-s3-exfiltration")
    files = sorted((DATASETS / "stratus-red-team-detonations" / "events").glob("*.json"))
    files.append(DATASETS / "otrf-security-datasets" / "aws-ec2-proxy-s3-exfiltration" / "events.jsonl")
    out, err = io.BytesIO(), io.BytesIO()
    summary = import_cloudtrail(files, out, err)
    assert (summary.requests, summary.bad_records) == (413, 0), err.getvalue()[:500]
    actions = {json.loads(line)["action"]["name"] for line in out.getvalue().splitlines()}
    assert {
        "iam:CreateAccessKey",
        "s3:ListBuckets",
        "lambda:UpdateFunctionCode",
        "sts:GetFederationToken",
    } <= actions


# -- CLI ------------------------------------------------------------------------------------------


def test_cli_import_writes_requests_errors_and_workspace(tmp_path: Path) -> None:
    src = tmp_path / "trail.json"
    src.write_bytes(orjson.dumps({"Records": [ROLE_CALL, 7]}))
    out, errs, ws = tmp_path / "events.jsonl", tmp_path / "errors.jsonl", tmp_path / "ws"
    result = runner.invoke(
        app,
        [
            "import",
            "cloudtrail",
            str(src),
            "--output",
            str(out),
            "--errors",
            str(errs),
            "--workspace",
            str(ws),
        ],
    )
    assert result.exit_code == 1, result.output
    assert len(out.read_text().splitlines()) == 1
    assert json.loads(errs.read_text())["record"] == 2
    assert (ws / "entities" / "identities.json").exists()
    replay = runner.invoke(
        app, ["replay", "--workspace", str(ws), "--input", str(out), "--output", str(tmp_path / "d.jsonl")]
    )
    assert replay.exit_code == 0, replay.output
    again = runner.invoke(app, ["import", "cloudtrail", str(src), "-o", str(out), "--workspace", str(ws)])
    assert again.exit_code == 2 and "not empty" in again.output
    clobber = runner.invoke(app, ["import", "cloudtrail", str(src), "-o", str(src)])
    assert clobber.exit_code == 2 and "input files" in clobber.output
    assert json.loads(src.read_text())["Records"][1] == 7


def test_cli_import_clean_file_exits_zero(tmp_path: Path) -> None:
    src = tmp_path / "trail.jsonl"
    src.write_bytes(orjson.dumps(ROLE_CALL) + b"\n")
    result = runner.invoke(app, ["import", "cloudtrail", str(src), "-o", str(tmp_path / "o.jsonl")])
    assert result.exit_code == 0, result.output
    assert "imported 1 request" in result.output
