"""AWS CloudTrail records -> replayable AuthZEN evaluation requests.

One record (an element of a CloudTrail log file's ``Records`` array, AWS CloudTrail User Guide,
"CloudTrail record contents") becomes one AuthZEN request for ``vigil replay``:

=====================================  ===========================================================
CloudTrail                             AuthZEN request
=====================================  ===========================================================
``userIdentity``                       ``subject``: the identity, typed by ``userIdentity.type``
                                       (:data:`SUBJECT_TYPES`); an assumed-role session is its
                                       *role* (``IamRole::"arn:aws:iam::1:role/name"``), the
                                       session name goes to ``subject.properties.session_name``
``eventSource`` + ``eventName``        ``action.name`` ``"s3:GetObject"``: the service prefix is
                                       ``eventSource`` without ``.amazonaws.com`` (with the few
                                       renames of :data:`SERVICE_PREFIX`), API-version suffixes
                                       (``UpdateFunctionCode20150331v2``) are dropped;
                                       ``action.properties.access`` classifies it (:func:`access_kind`)
``resources[].ARN``                    ``resource``: ``AwsResource::"<ARN>"``; else an ARN built from
/ ``requestParameters``                an obvious request parameter (bucket and key, role name,
                                       function name, ...); else the service-level resource
                                       ``AwsResource::"arn:aws:<service>:<region>:<account>:*"``
``eventTime`` (or Logstash's           ``context.time`` (RFC 3339, UTC, ``Z``) and ``context.hour``;
``@timestamp``)                        a time without an offset (data-lake exports) is UTC
``sourceIPAddress``                    ``context.ip`` (dotted quads with leading zeros, as in
                                       scrubbed data sets, are normalised; service names such as
                                       ``ec2.amazonaws.com`` are kept verbatim)
``awsRegion`` / ``userAgent``          ``context.region`` / ``context.user_agent``
=====================================  ===========================================================

``context`` also carries ``event_source``, ``event_name`` and, when present, ``event_id``,
``read_only``, ``error_code`` (the call failed, e.g. ``AccessDenied``), ``mfa`` and
``credential_source`` (``"ec2_instance"``: an EC2 instance role's credentials, marked by
``sessionContext.ec2RoleDelivery``) and ``credential_id`` (``userIdentity.accessKeyId``: the key
or session the call was signed with, for ``credential_two_places``). Every value is a
string, a boolean or an integer, so each request converts to Cedar without loss (vigil refuses
``null`` and fractions).

:func:`to_request` raises :class:`CloudTrailError` (code ``invalid_record``) for a record it cannot
map; it raises nothing else for any JSON value.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from typing import Any, Final

from vigil.errors import VigilError
from vigil.model.timefmt import TimeFormatError, parse_datetime

__all__ = [
    "INVALID_RECORD",
    "RESOURCE_TYPE",
    "SERVICE_PREFIX",
    "SUBJECT_TYPES",
    "CloudTrailError",
    "access_kind",
    "action_name",
    "to_request",
]

INVALID_RECORD: Final = "invalid_record"
RESOURCE_TYPE: Final = "AwsResource"
MAX_ID: Final = 1024
"""Longest entity id vigil accepts (``vigil.model.request.MAX_ID``); longer ARNs are shortened."""
MAX_TEXT: Final = 4096
"""Longest context string kept (user agents, error codes); longer ones are cut."""

SUBJECT_TYPES: Final[dict[str, str]] = {
    "IAMUser": "IamUser",
    "AssumedRole": "IamRole",
    "Role": "IamRole",
    "Root": "AwsRoot",
    "AWSService": "AwsService",
    "FederatedUser": "FederatedUser",
    "AWSAccount": "AwsAccount",
}
"""``userIdentity.type`` -> subject type; any other type (``IdentityCenterUser``, ``SAMLUser``,
``WebIdentityUser``, ``Unknown``, ...) becomes ``AwsPrincipal``."""
OTHER_SUBJECT: Final = "AwsPrincipal"

SERVICE_PREFIX: Final[dict[str, str]] = {
    "monitoring": "cloudwatch",
    "email": "ses",
    "s3-control": "s3",
    "streams.dynamodb": "dynamodb",
    "elasticfilesystem": "elasticfilesystem",
    "metering-marketplace": "aws-marketplace",
}
"""Event sources whose IAM service prefix is not the host name's first label."""

_API_VERSION: Final = re.compile(r"(?:20\d{6}(?:v\d+)?|\d{4}_\d{2}_\d{2})$")
_ASSUMED: Final = re.compile(r"arn:([\w-]+):sts::(\d*):assumed-role/(.+)/([^/]*)")
_QUAD: Final = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
_TIME: Final = re.compile(r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:?\d{2})?")


class CloudTrailError(VigilError):
    """A CloudTrail record that cannot be mapped to an access request."""

    code = INVALID_RECORD


# -- actions ------------------------------------------------------------------------------------


def action_name(event_source: str, event_name: str) -> str:
    """``("s3.amazonaws.com", "GetObject")`` -> ``"s3:GetObject"`` (see the module table)."""
    host = event_source.strip().lower()
    service = host.removesuffix(".amazonaws.com").removesuffix(".amazonaws.com.cn")
    service = SERVICE_PREFIX.get(service, service) or host
    name = _API_VERSION.sub("", event_name.strip()) or event_name.strip()
    return f"{service}:{name}"


# What an API call does to privileges, by event name. The escalation-capable calls follow the
# runtime CloudTrail events of the AWS IAM privilege-escalation catalogue (pathfinding.cloud, Rhino
# Security Labs); the verb rules follow AWS's own read/list/write/permissions-management split.
_GRANT: Final = frozenset(
    {
        "AddPermission",
        "AddUserToGroup",
        "AssociateTeamMember",
        "AttachGroupPolicy",
        "AttachRolePolicy",
        "AttachUserPolicy",
        "CreateGrant",
        "CreatePolicy",
        "CreatePolicyVersion",
        "ModifyImageAttribute",
        "ModifySnapshotAttribute",
        "ModifyDBSnapshotAttribute",
        "PutBucketAcl",
        "PutBucketPolicy",
        "PutGroupPolicy",
        "PutKeyPolicy",
        "PutResourcePolicy",
        "PutRolePolicy",
        "PutUserPolicy",
        "SetDefaultPolicyVersion",
        "UpdateAssumeRolePolicy",
        "AuthorizeSecurityGroupIngress",
        "CreateTrustAnchor",
        "CreateProfile",
    }
)
_CREATE_KEY: Final = frozenset(
    {
        "CreateAccessKey",
        "CreateLoginProfile",
        "UpdateLoginProfile",
        "CreateServiceSpecificCredential",
        "UploadSSHPublicKey",
        "SendSSHPublicKey",
        "SendSerialConsoleSSHPublicKey",
        "CreateKeyPair",
        "ImportKeyPair",
        "GetFederationToken",
        "GetSessionToken",
        "CreatePresignedNotebookInstanceUrl",
    }
)
_ASSUME: Final = ("AssumeRole", "AssumeRoleWithSAML", "AssumeRoleWithWebIdentity", "AssumeRoot")
_READ_VERBS: Final = ("Get", "Describe", "Head", "Lookup", "Query", "Scan", "Select", "BatchGet", "Search")
_DELETE_VERBS: Final = ("Delete", "Remove", "Terminate", "Detach", "Deregister", "Revoke", "Disable")


def access_kind(event_name: str, read_only: bool | None = None) -> str:
    """What a call does: ``read``, ``list``, ``write``, ``delete``, ``invoke``, ``grant``,
    ``create_key`` or ``assume_role`` (the privilege ladder of vigil's example fleet).

    ``eventName`` decides (``CreateAccessKey`` -> ``create_key``, ``AttachRolePolicy`` -> ``grant``,
    ``List*`` -> ``list``, ``Get*``/``Describe*`` -> ``read``, ``Delete*`` -> ``delete``,
    ``Invoke*`` -> ``invoke``); CloudTrail's own ``readOnly`` flag settles the rest.
    """
    name = _API_VERSION.sub("", event_name) or event_name
    if name in _GRANT:
        return "grant"
    if name in _CREATE_KEY:
        return "create_key"
    if name in _ASSUME:
        return "assume_role"
    if name.startswith("List"):
        return "list"
    if name.startswith(_READ_VERBS) or name == "ConsoleLogin":
        return "read"
    if name.startswith(_DELETE_VERBS):
        return "delete"
    if name.startswith("Invoke") or name == "Invoke":
        return "invoke"
    if read_only is True:
        return "read"
    return "write"


# -- the record ---------------------------------------------------------------------------------


def to_request(record: Any) -> dict[str, Any]:
    """The AuthZEN request for one CloudTrail record; raises CloudTrailError when it cannot be mapped."""
    if type(record) is not dict:
        raise CloudTrailError(f"record must be a JSON object, got {_kind(record)}")
    source = _text(record, "eventSource")
    name = _text(record, "eventName")
    if not source or not name:
        raise CloudTrailError("record has no 'eventSource' and 'eventName' strings")
    when = _time(record)
    region = _text(record, "awsRegion")
    read_only = _flag(record.get("readOnly"))
    action = action_name(source, name)
    service = action.split(":", 1)[0]
    subject = _subject(record.get("userIdentity"), record)
    account = _account(record)
    resource = _resource(record, service, region, account, _partition(subject["id"]))

    context: dict[str, Any] = {
        "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hour": when.hour,
        "event_source": _cut(source),
        "event_name": _cut(name),
    }
    ip = _text(record, "sourceIPAddress")
    if ip:
        context["ip"] = _ip(ip)
    if region:
        context["region"] = _cut(region)
    agent = _text(record, "userAgent")
    if agent:
        context["user_agent"] = _cut(agent)
    event_id = _text(record, "eventID")
    if event_id:
        context["event_id"] = _cut(event_id)
    if read_only is not None:
        context["read_only"] = read_only
    error = _text(record, "errorCode")
    if error:
        context["error_code"] = _cut(error)
    mfa = _mfa(record.get("userIdentity"))
    if mfa is not None:
        context["mfa"] = mfa
    if _instance_credential(record.get("userIdentity")):
        context["credential_source"] = "ec2_instance"
    key = _credential_key(record.get("userIdentity"))
    if key:
        context["credential_id"] = key
    return {
        "subject": subject,
        "action": {"name": _fit(action), "properties": {"access": access_kind(name, read_only)}},
        "resource": resource,
        "context": context,
    }


def _time(record: dict[str, Any]) -> datetime:
    raw = record.get("eventTime")
    if raw is None:
        raw = record.get("@timestamp")  # CloudTrail exported through Logstash
    if type(raw) is not str:
        raise CloudTrailError("record has no 'eventTime' string")
    m = _TIME.fullmatch(raw)
    if m is None:
        raise CloudTrailError(f"'eventTime' {raw[:64]!r} is not an RFC 3339 date-time")
    date, clock, fraction, offset = m.groups()
    offset = (offset or "Z").upper()  # CloudTrail times are UTC; data-lake exports drop the "Z"
    if offset != "Z" and offset[-3] != ":":  # +0000 -> +00:00
        offset = f"{offset[:-2]}:{offset[-2:]}"
    text = f"{date}T{clock}{'.' + fraction[:6] if fraction else ''}{offset}"
    try:  # the one RFC 3339 parser (ASCII digits, bounded fields)
        return parse_datetime(text).astimezone(UTC)
    except (TimeFormatError, OverflowError):
        raise CloudTrailError(f"'eventTime' {raw[:64]!r} is not a valid date-time") from None


# -- subject ------------------------------------------------------------------------------------


def _subject(identity: Any, record: dict[str, Any]) -> dict[str, Any]:
    if type(identity) is not dict:
        raise CloudTrailError("record has no 'userIdentity' object")
    ctype = _text(identity, "type")
    arn = _text(identity, "arn")
    account = _text(identity, "accountId") or _text(record, "recipientAccountId")
    props: dict[str, Any] = {}
    if ctype:
        props["principal_type"] = _cut(ctype)
    if account:
        props["account"] = _cut(account)
    key = _text(identity, "accessKeyId")
    if key:
        props["access_key_id"] = _cut(key)

    stype = SUBJECT_TYPES.get(ctype, OTHER_SUBJECT)
    sid = ""
    if stype == "IamRole":
        sid, session = _role(identity, arn)
        if session:
            props["session_name"] = _cut(session)
    elif stype == "AwsService":
        sid = _text(identity, "invokedBy") or _text(identity, "principalId") or arn
    elif stype == "AwsAccount":
        sid = account or _text(identity, "principalId")
    elif stype == "IamUser":
        name = _text(identity, "userName")
        sid = arn or (f"arn:aws:iam::{account}:user/{name}" if name and account else "")
    elif stype == "AwsRoot":
        sid = arn or (f"arn:aws:iam::{account}:root" if account else "")
    else:
        sid = arn or _text(identity, "principalId") or _text(identity, "userName")
        issuer = _issuer(identity)
        if issuer:
            props["issuer"] = _cut(issuer)
    if not sid:
        raise CloudTrailError(f"cannot tell which identity made the call (userIdentity type {ctype!r})")
    subject: dict[str, Any] = {"type": stype, "id": _fit(sid)}
    if props:
        subject["properties"] = props
    return subject


def _role(identity: dict[str, Any], arn: str) -> tuple[str, str]:
    """(role ARN, session name) of an assumed-role identity."""
    session = ""
    m = _ASSUMED.fullmatch(arn) if arn else None
    if m:
        session = m.group(4)
    elif ":" in _text(identity, "principalId"):
        session = _text(identity, "principalId").split(":", 1)[1]
    issuer = _issuer(identity)
    if issuer:
        return issuer, session
    if m:
        partition, account, role, _ = m.groups()
        return f"arn:{partition}:iam::{account}:role/{role}", session
    return arn or _text(identity, "principalId").split(":", 1)[0], session


def _issuer(identity: dict[str, Any]) -> str:
    ctx = identity.get("sessionContext")
    issuer = ctx.get("sessionIssuer") if type(ctx) is dict else None
    return _text(issuer, "arn") if type(issuer) is dict else ""


def _instance_credential(identity: Any) -> bool:
    """Whether the call was made with an EC2 instance role's credentials (CloudTrail marks them
    with ``sessionContext.ec2RoleDelivery``): credentials delivered to one instance."""
    if type(identity) is not dict:
        return False
    ctx = identity.get("sessionContext")
    return type(ctx) is dict and bool(ctx.get("ec2RoleDelivery"))


def _credential_key(identity: Any) -> str | None:
    """The access key id the call was signed with (``AKIA...`` a user's key, ``ASIA...`` a
    session's), or None."""
    if type(identity) is not dict:
        return None
    key = _text(identity, "accessKeyId")
    return _cut(key) if key else None


def _mfa(identity: Any) -> bool | None:
    if type(identity) is not dict:
        return None
    ctx = identity.get("sessionContext")
    attrs = ctx.get("attributes") if type(ctx) is dict else None
    return _flag(attrs.get("mfaAuthenticated")) if type(attrs) is dict else None


def _partition(arn: str) -> str:
    parts = arn.split(":", 2)
    return parts[1] if len(parts) > 2 and parts[0] == "arn" and parts[1] else "aws"


def _account(record: dict[str, Any]) -> str:
    identity = record.get("userIdentity")
    account = _text(record, "recipientAccountId")
    if not account and type(identity) is dict:
        account = _text(identity, "accountId")
    return account


# -- resource -----------------------------------------------------------------------------------


def _resource(
    record: dict[str, Any], service: str, region: str, account: str, partition: str
) -> dict[str, Any]:
    arn = _listed_arn(record.get("resources"))
    if not arn:
        params = record.get("requestParameters")
        if type(params) is dict:
            arn = _param_arn(params, service, _text(record, "eventName"), region, account, partition)
    if not arn:
        scope = "" if service in _GLOBAL else region
        arn = f"arn:{partition}:{service}:{scope}:{account}:*"
    props = {"service": _cut(service)}
    parts = arn.split(":", 5)
    owner = parts[4] if len(parts) > 4 and parts[0] == "arn" else ""
    if owner or account:
        props["account"] = _cut(owner or account)
    return {"type": RESOURCE_TYPE, "id": _fit(arn), "properties": props}


_GLOBAL: Final = frozenset({"iam", "s3", "sts", "organizations", "cloudfront", "route53", "signin"})


def _listed_arn(resources: Any) -> str:
    """The first ARN named in the record's ``resources`` list (``ARN`` or ``arn``)."""
    if type(resources) is not list:
        return ""
    for item in resources:
        if type(item) is dict:
            arn = _text(item, "ARN") or _text(item, "arn")
            if arn.startswith("arn:"):
                return arn
    return ""


def _param_arn(
    params: dict[str, Any], service: str, event: str, region: str, account: str, partition: str
) -> str:
    """An ARN from an obvious request parameter, or ``""``."""
    p = _text

    def arn(svc: str, rest: str, *, scoped: bool = True, owner: str = account) -> str:
        return f"arn:{partition}:{svc}:{region if scoped else ''}:{owner}:{rest}"

    def named(value: str, svc: str, rest: str, *, scoped: bool = True) -> str:
        return value if value.startswith("arn:") else arn(svc, rest + value, scoped=scoped)

    if service == "s3":
        bucket = p(params, "bucketName")
        if bucket:
            key = p(params, "key")
            return f"arn:{partition}:s3:::{bucket}/{key}" if key else f"arn:{partition}:s3:::{bucket}"
        return ""
    if service == "iam":
        for field, kind in (
            ("userName", "user/"),
            ("roleName", "role/"),
            ("groupName", "group/"),
            ("instanceProfileName", "instance-profile/"),
        ):
            value = p(params, field)
            if value:
                return arn("iam", kind + value, scoped=False)
        return p(params, "policyArn")
    if service == "sts":
        return p(params, "roleArn")
    if service == "lambda":
        fn = p(params, "functionName")
        return named(fn, "lambda", "function:") if fn else ""
    if service == "ec2":
        instance = p(params, "instanceId") or _first_instance(params)
        if instance:
            return arn("ec2", f"instance/{instance}")
        for field, kind in (
            ("snapshotId", "snapshot/"),
            ("imageId", "image/"),
            ("volumeId", "volume/"),
            ("groupId", "security-group/"),
        ):
            value = p(params, field)
            if value:
                return arn("ec2", kind + value)
        return ""
    if service == "secretsmanager":
        secret = p(params, "secretId") or _first(params.get("secretIdList"))
        return named(secret, "secretsmanager", "secret:") if secret else ""
    if service == "ssm":
        name = p(params, "name") or _first(params.get("names"))
        if name and "Parameter" in event:
            return named(name, "ssm", "parameter" if name.startswith("/") else "parameter/")
        instance = _first(params.get("instanceIds")) or p(params, "target") or p(params, "instanceId")
        if instance.startswith("i-"):
            return arn("ec2", f"instance/{instance}")
        document = p(params, "documentName") or name
        return named(document, "ssm", "document/") if document else ""
    if service == "kms":
        key = p(params, "keyId")
        return named(key, "kms", "key/") if key else ""
    if service == "dynamodb":
        table = p(params, "tableName")
        return named(table, "dynamodb", "table/") if table else ""
    if service == "rds":
        for field, kind in (
            ("dBInstanceIdentifier", "db:"),
            ("dBSnapshotIdentifier", "snapshot:"),
            ("dBClusterIdentifier", "cluster:"),
        ):
            value = p(params, field)
            if value:
                return named(value, "rds", kind)
        return ""
    if service == "cloudtrail":
        trail = p(params, "name") or p(params, "trailName")
        return named(trail, "cloudtrail", "trail/") if trail else ""
    if service == "logs":
        group = p(params, "logGroupName")
        return arn("logs", f"log-group:{group}") if group else ""
    if service == "ecr":
        repo = p(params, "repositoryName")
        return arn("ecr", f"repository/{repo}") if repo else ""
    if service == "sns":
        return p(params, "topicArn")
    if service == "sqs":
        url = p(params, "queueUrl").rstrip("/").split("/")
        return arn("sqs", url[-1], owner=url[-2]) if len(url) >= 2 and url[-1] else ""
    if service == "bedrock":
        model = p(params, "modelId")
        return named(model, "bedrock", "foundation-model/") if model else ""
    return ""


def _first_instance(params: dict[str, Any]) -> str:
    items = params.get("instancesSet")
    items = items.get("items") if type(items) is dict else None
    if type(items) is list and items and type(items[0]) is dict:
        return _text(items[0], "instanceId")
    return ""


def _first(values: Any) -> str:
    if type(values) is list and values and type(values[0]) is str:
        return values[0]
    return ""


# -- values -------------------------------------------------------------------------------------


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    return value.strip() if type(value) is str else ""


def _flag(value: Any) -> bool | None:
    if type(value) is bool:
        return value
    if type(value) is str and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def _ip(value: str) -> str:
    """Dotted quads lose leading zeros (``075.050.255.67`` -> ``75.50.255.67``); other text is kept."""
    if _QUAD.fullmatch(value):
        octets = [int(x) for x in value.split(".")]
        if all(o <= 255 for o in octets):
            return ".".join(map(str, octets))
    return _cut(value)


def _cut(value: str) -> str:
    return value if len(value) <= MAX_TEXT else value[:MAX_TEXT]


def _fit(value: str) -> str:
    """An entity id within vigil's limit: a longer one keeps its start plus a digest of the whole."""
    if len(value) <= MAX_ID:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{value[: MAX_ID - 17]}#{digest}"


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "null" if value is None else "a number"
    )
