"""A benign AWS account in CloudTrail records: the baseline the public attack captures are injected into.

None of the public data sets holds weeks of one workload's normal calls, so this module writes
them (seeded): 40 identities of eight kinds in one account, each with its own calls, addresses,
user agent and rhythm, as genuine CloudTrail records (``userIdentity``, ``eventSource``,
``eventName``, ``requestParameters``, ...) that go through the same importer as real logs.

=============  ==========  ====================================================================
archetype      identity    calls and rhythm
=============  ==========  ====================================================================
``app``        role        S3 objects, DynamoDB items, KMS decrypt, SQS; always on, diurnal
``lambda``     role        DynamoDB updates, SNS publish, S3 reads; bursts on triggers
``ci``         role        ECR push, S3 artifacts, Lambda code, CloudFormation; weekday deploys
                           from ever-changing hosted-runner addresses
``etl``        role        Athena queries, Glue tables, S3; nightly
``ops``        IAM user    EC2/SSM/CloudWatch/Logs reads; office hours
``auditor``    role        a security scanner: broad List/Get/Describe sweeps every 6 hours
``backup``     role        RDS and EBS snapshots; nightly
``secrets``    role        Secrets Manager reads and KMS decrypts every 10 minutes
=============  ==========  ====================================================================
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

__all__ = ["ACCOUNT", "AwsFleet", "AwsIdentity", "build_aws_fleet"]

ACCOUNT: Final = "111122223333"
DAY: Final = 86_400
HOUR: Final = 3_600
START: Final = datetime(2024, 9, 2, tzinfo=UTC)  # a Monday

NAMES: Final = {
    "app": ("orders", "billing", "catalog", "search", "users"),
    "lambda": ("thumbnails", "webhooks", "notifier", "indexer", "cleanup"),
    "ci": ("web-deploy", "api-deploy", "infra-deploy", "ml-deploy", "docs-deploy"),
    "etl": ("sales-etl", "events-etl", "finance-etl", "marketing-etl", "ml-features"),
    "ops": ("ops-alice-bot", "ops-runbook", "ops-capacity", "ops-cost", "ops-oncall"),
    "auditor": ("sec-scanner", "config-audit", "cspm-reader", "inventory", "compliance"),
    "backup": ("rds-backup", "ebs-backup", "dr-backup", "logs-archive", "snapshots"),
    "secrets": ("payments-svc", "auth-svc", "mailer-svc", "reports-svc", "partner-svc"),
}

SDK_AGENTS: Final = {
    "app": "aws-sdk-java/2.20.162 Linux/5.10 OpenJDK_64-Bit_Server_VM/17",
    "lambda": "aws-sdk-nodejs/3.400.0 linux/v18.17.1 exec-env/AWS_Lambda_nodejs18.x",
    "ci": "aws-cli/2.13.25 Python/3.11.5 Linux/6.2.0-1012-azure exe/x86_64.ubuntu.22",
    "etl": "aws-sdk-go/1.45.2 (go1.21.1; linux; amd64)",
    "ops": "aws-cli/2.15.0 Python/3.11.6 Linux/5.15 botocore/2.4.5",
    "auditor": "Boto3/1.28.57 Python/3.11.5 Linux/5.10 Botocore/1.31.57",
    "backup": "aws-sdk-go-v2/1.21.0 os/linux lang/go#1.21.1",
    "secrets": "aws-sdk-java/2.20.162 Linux/5.10 OpenJDK_64-Bit_Server_VM/17",
}


@dataclass
class AwsIdentity:
    """One identity of the account: its name, archetype, region, addresses, user agent."""

    name: str
    archetype: str
    region: str
    ips: list[str]
    agent: str
    tz: int = 0

    @property
    def is_user(self) -> bool:
        return self.archetype == "ops"

    @property
    def arn(self) -> str:
        return f"arn:aws:iam::{ACCOUNT}:{'user' if self.is_user else 'role'}/{self.name}"

    def user_identity(self, session: str) -> dict[str, Any]:
        """The CloudTrail ``userIdentity`` block of a call made by this identity."""
        if self.is_user:
            return {
                "type": "IAMUser",
                "principalId": f"AIDA{zlib.crc32(self.name.encode()):012d}",
                "arn": self.arn,
                "accountId": ACCOUNT,
                "userName": self.name,
                "accessKeyId": f"AKIA{zlib.crc32(self.name.encode() + b'k'):012d}",
            }
        return {
            "type": "AssumedRole",
            "principalId": f"AROA{self.name.upper().replace('-', '')[:12]}:{session}",
            "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{self.name}/{session}",
            "accountId": ACCOUNT,
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "arn": self.arn,
                    "accountId": ACCOUNT,
                    "userName": self.name,
                },
                "attributes": {"creationDate": "2024-09-01T00:00:00Z", "mfaAuthenticated": "false"},
            },
        }


Call = tuple[str, str, dict[str, Any]]


@dataclass
class AwsFleet:
    """The account's identities and benign records, time-sorted as ``(epoch seconds, record)``."""

    identities: list[AwsIdentity]
    records: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    days: int = 21
    learning_days: int = 14
    t0: float = START.timestamp()

    @property
    def learning_end(self) -> float:
        return self.t0 + self.learning_days * DAY


class _Gen:
    def __init__(self, fleet: AwsFleet, rng: random.Random) -> None:
        self.fleet = fleet
        self.rng = rng
        self.n = 0

    def record(self, ident: AwsIdentity, t: float, call: Call, *, ip: str | None = None) -> None:
        source, name, params = call
        day = int((t - self.fleet.t0) // DAY)
        rec: dict[str, Any] = {
            "eventVersion": "1.08",
            "userIdentity": ident.user_identity(f"{ident.name}-{day}"),
            "eventTime": datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "eventSource": f"{source}.amazonaws.com",
            "eventName": name,
            "awsRegion": ident.region,
            "sourceIPAddress": ip or self.rng.choice(ident.ips),
            "userAgent": ident.agent,
            "requestParameters": params,
            "responseElements": None,
            "eventID": f"{self.rng.getrandbits(128):032x}",
            "eventType": "AwsApiCall",
            "recipientAccountId": ACCOUNT,
        }
        self.fleet.records.append((t, rec))
        self.n += 1

    def session(self, ident: AwsIdentity, t: float, calls: list[Call], gap: tuple[float, float]) -> None:
        for call in calls:
            t += self.rng.uniform(*gap)
            self.record(ident, t, call)


def _calls(ident: AwsIdentity, rng: random.Random) -> Callable[[], list[Call]]:
    """The call factory of an identity: each call returns one unit of its work (a burst or a run)."""
    n = ident.name
    a = ident.archetype

    def obj() -> str:
        return f"{n}/{rng.randrange(10_000):05d}.json"

    if a == "app":
        return lambda: [
            rng.choice(
                [
                    ("s3", "GetObject", {"bucketName": f"{n}-data", "key": obj()}),
                    ("s3", "GetObject", {"bucketName": f"{n}-data", "key": obj()}),
                    ("s3", "PutObject", {"bucketName": f"{n}-data", "key": obj()}),
                    ("dynamodb", "GetItem", {"tableName": f"{n}-items"}),
                    ("dynamodb", "Query", {"tableName": f"{n}-items"}),
                    ("dynamodb", "PutItem", {"tableName": f"{n}-items"}),
                    ("kms", "Decrypt", {"keyId": f"arn:aws:kms:{ident.region}:{ACCOUNT}:key/{n}"}),
                    (
                        "sqs",
                        "ReceiveMessage",
                        {"queueUrl": f"https://sqs.{ident.region}.amazonaws.com/{ACCOUNT}/{n}-jobs"},
                    ),
                ]
            )
        ]
    if a == "lambda":
        return lambda: [
            ("dynamodb", "GetItem", {"tableName": f"{n}-state"}),
            ("dynamodb", "UpdateItem", {"tableName": f"{n}-state"}),
            *([("s3", "GetObject", {"bucketName": f"{n}-input", "key": obj()})] * rng.randint(0, 2)),
            ("sns", "Publish", {"topicArn": f"arn:aws:sns:{ident.region}:{ACCOUNT}:{n}-done"}),
        ]
    if a == "ci":
        return lambda: [
            ("sts", "GetCallerIdentity", {}),
            ("ecr", "GetAuthorizationToken", {}),
            ("ecr", "BatchCheckLayerAvailability", {"repositoryName": n}),
            ("ecr", "PutImage", {"repositoryName": n}),
            ("s3", "PutObject", {"bucketName": f"{n}-artifacts", "key": obj()}),
            ("lambda", "UpdateFunctionCode20150331v2", {"functionName": f"{n}-fn"}),
            ("cloudformation", "DescribeStacks", {"stackName": n}),
            ("cloudformation", "UpdateStack", {"stackName": n}),
        ]
    if a == "etl":
        return lambda: [
            ("glue", "GetTable", {"databaseName": "lake", "name": f"{n}-{rng.randrange(6)}"}),
            ("athena", "StartQueryExecution", {"workGroup": n}),
            *[("athena", "GetQueryExecution", {"workGroup": n})] * rng.randint(2, 5),
            ("athena", "GetQueryResults", {"workGroup": n}),
            ("s3", "GetObject", {"bucketName": "lake-results", "key": obj()}),
            ("s3", "PutObject", {"bucketName": f"{n}-out", "key": obj()}),
        ]
    if a == "ops":
        return lambda: [
            rng.choice(
                [
                    ("ec2", "DescribeInstances", {}),
                    ("ec2", "DescribeVolumes", {}),
                    ("ec2", "DescribeSecurityGroups", {}),
                    ("monitoring", "GetMetricData", {}),
                    ("ssm", "DescribeInstanceInformation", {}),
                    ("logs", "FilterLogEvents", {"logGroupName": f"/app/{rng.choice(NAMES['app'])}"}),
                ]
            )
            for _ in range(rng.randint(5, 15))
        ]
    if a == "auditor":
        buckets = [f"{x}-data" for x in NAMES["app"]] + [f"{x}-artifacts" for x in NAMES["ci"]]
        return lambda: [
            ("iam", "ListUsers", {}),
            ("iam", "ListRoles", {}),
            ("iam", "ListPolicies", {}),
            ("iam", "GetAccountAuthorizationDetails", {}),
            ("ec2", "DescribeInstances", {}),
            ("ec2", "DescribeSecurityGroups", {}),
            ("ec2", "DescribeSnapshots", {}),
            ("s3", "ListBuckets", {}),
            *[("s3", "GetBucketPolicy", {"bucketName": b}) for b in buckets],
            *[("s3", "GetBucketAcl", {"bucketName": b}) for b in buckets],
            ("kms", "ListKeys", {}),
            ("cloudtrail", "DescribeTrails", {}),
            ("config", "DescribeConfigRules", {}),
        ]
    if a == "backup":
        return lambda: [
            ("rds", "DescribeDBInstances", {}),
            *[
                (
                    "rds",
                    "CreateDBSnapshot",
                    {"dBInstanceIdentifier": f"{x}-db", "dBSnapshotIdentifier": f"{x}-nightly"},
                )
                for x in NAMES["app"][:3]
            ],
            ("ec2", "DescribeVolumes", {}),
            *[("ec2", "CreateSnapshot", {"volumeId": f"vol-{x}"}) for x in range(3)],
            ("ec2", "DescribeSnapshots", {}),
            ("ec2", "DeleteSnapshot", {"snapshotId": f"snap-old-{rng.randrange(100)}"}),
        ]
    # secrets
    return lambda: [
        ("secretsmanager", "GetSecretValue", {"secretId": f"{n}/{rng.choice(('db', 'api'))}"}),
        ("kms", "Decrypt", {"keyId": f"arn:aws:kms:{ident.region}:{ACCOUNT}:key/{n}"}),
    ]


def build_aws_fleet(seed: int = 20240902, *, days: int = 21, learning_days: int = 14) -> AwsFleet:
    """The benign account (40 identities) and its records for ``days`` days (seeded)."""
    rng = random.Random(seed)
    identities: list[AwsIdentity] = []
    for k, (archetype, names) in enumerate(NAMES.items()):
        for j, name in enumerate(names):
            region = ("us-east-1", "us-east-1", "eu-west-1", "us-west-2", "eu-central-1")[j]
            if archetype == "ci":
                ips = [f"140.82.{rng.randrange(112, 128)}.{rng.randrange(1, 255)}" for _ in range(40)]
            elif archetype == "ops":
                ips = [f"198.51.100.{rng.randrange(10, 40)}" for _ in range(3)]
            elif archetype in ("app", "secrets", "lambda"):
                ips = [f"10.{k}.{j}.{rng.randrange(2, 250)}" for _ in range(3)]
            else:
                ips = [f"10.{k}.{j}.{rng.randrange(2, 250)}"]
            tz = {"eu-west-1": 0, "eu-central-1": 1, "us-east-1": -5, "us-west-2": -8}[region]
            identities.append(AwsIdentity(name, archetype, region, ips, SDK_AGENTS[archetype], tz))
    fleet = AwsFleet(identities, days=days, learning_days=learning_days)
    gen = _Gen(fleet, rng)
    for ident in identities:
        unit = _calls(ident, rng)
        for day in range(days):
            weekday = day % 7 < 5
            base = fleet.t0 + day * DAY - ident.tz * HOUR  # local midnight
            a = ident.archetype
            if a == "app":
                for hour in range(24):
                    for _ in range(rng.randint(2, 8) if 7 <= hour <= 20 else rng.randint(0, 3)):
                        gen.session(ident, base + hour * HOUR + rng.uniform(0, HOUR), unit(), (0, 1))
            elif a == "lambda":
                for _ in range(rng.randint(10, 30)):
                    gen.session(ident, base + rng.uniform(0, DAY), unit(), (0.05, 0.5))
            elif a == "ci" and weekday:
                for _ in range(rng.randint(1, 5)):
                    t = base + rng.uniform(9, 18) * HOUR
                    for call in unit():
                        t += rng.uniform(2, 30)
                        gen.record(
                            ident,
                            t,
                            call,
                            ip=rng.choice(ident.ips[:20] if day < fleet.learning_days else ident.ips),
                        )
            elif a == "etl":
                t = base + 2 * HOUR + rng.uniform(0, 900)
                for _ in range(rng.randint(6, 12)):
                    gen.session(ident, t, unit(), (1, 10))
                    t += rng.uniform(60, 300)
            elif a == "ops" and weekday:
                for _ in range(rng.randint(2, 6)):
                    gen.session(ident, base + rng.uniform(8.5, 17.5) * HOUR, unit(), (2, 20))
            elif a == "auditor":
                for h in (0, 6, 12, 18):
                    gen.session(ident, base + (h + rng.uniform(0, 0.2)) * HOUR, unit(), (0.2, 2))
            elif a == "backup":
                gen.session(ident, base + (1 + rng.uniform(0, 0.3)) * HOUR, unit(), (2, 30))
            elif a == "secrets":
                for slot in range(144):
                    gen.session(ident, base + slot * 600 + rng.uniform(0, 60), unit(), (0, 1))
    end = fleet.t0 + days * DAY
    fleet.records = sorted((r for r in fleet.records if fleet.t0 <= r[0] < end), key=lambda r: r[0])
    return fleet
