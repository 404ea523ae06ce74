"""The escalation methods as rules: which permissions on which targets give which step.

Method ids are those of the catalogue ``iam-privesc-methods.json`` (pathfinding.cloud ids without
the ``pathfinding:`` prefix, Rhino numbers as ``rhino:N``). Four shapes:

* **become** a user (:data:`USER_CREDENTIALS`): new credentials for another user.
* **grant** (:data:`GRANT_USER`, :data:`GRANT_ROLE`, :data:`GRANT_GROUP`, policy versions):
  write permissions onto a principal; a step to admin once the actor can act as that principal.
* **pass a role** to a new service resource (:data:`PASS_ROLE`): become any role that trusts the
  service and that the actor may pass.
* **an existing resource** running as a role (:data:`EXISTING`): conditional on a resource the
  export cannot show; the step names it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PassRoleMethod:
    """``iam:PassRole`` on a role trusting one of ``services`` plus ``actions`` (on a new resource).
    ``requires`` names a resource the export cannot show (empty: none needed), unless the actor
    also holds every action of ``unless`` (it can create the resource)."""

    id: str
    services: tuple[str, ...]
    actions: tuple[str, ...]
    requires: str = ""
    unless: tuple[str, ...] = ()
    instance_profile: bool = False


@dataclass(frozen=True, slots=True)
class ExistingMethod:
    """``actions`` on an existing resource that runs as a role trusting one of ``services``;
    always conditional on that resource (``requires``)."""

    id: str
    services: tuple[str, ...]
    actions: tuple[str, ...]
    requires: str
    instance_profile: bool = False


# method id, action on the target user
USER_CREDENTIALS: tuple[tuple[str, str], ...] = (
    ("iam-002", "iam:CreateAccessKey"),
    ("iam-004", "iam:CreateLoginProfile"),
    ("iam-006", "iam:UpdateLoginProfile"),
)
GRANT_USER: tuple[tuple[str, str], ...] = (
    ("iam-007", "iam:PutUserPolicy"),
    ("iam-008", "iam:AttachUserPolicy"),
)
GRANT_ROLE: tuple[tuple[str, str], ...] = (
    ("iam-005", "iam:PutRolePolicy"),
    ("iam-009", "iam:AttachRolePolicy"),
)
GRANT_GROUP: tuple[tuple[str, str], ...] = (
    ("iam-011", "iam:PutGroupPolicy"),
    ("iam-010", "iam:AttachGroupPolicy"),
)
# removing or replacing a permission boundary that holds an otherwise-admin principal back
BOUNDARY_USER: tuple[tuple[str, str], ...] = (
    ("boundary-user", "iam:DeleteUserPermissionsBoundary"),
    ("boundary-user", "iam:PutUserPermissionsBoundary"),
)
BOUNDARY_ROLE: tuple[tuple[str, str], ...] = (
    ("boundary-role", "iam:DeleteRolePermissionsBoundary"),
    ("boundary-role", "iam:PutRolePermissionsBoundary"),
)
CREATE_POLICY_VERSION = ("iam-001", "iam:CreatePolicyVersion")
SET_DEFAULT_VERSION = ("rhino:2", "iam:SetDefaultPolicyVersion")
ASSUME_ROLE = ("sts-001", "sts:AssumeRole")
UPDATE_TRUST = ("iam-012", "iam:UpdateAssumeRolePolicy")
ADD_TO_GROUP = ("iam-013", "iam:AddUserToGroup")

_LAMBDA = ("lambda.amazonaws.com",)
_EC2 = ("ec2.amazonaws.com",)
_ECS = ("ecs-tasks.amazonaws.com",)
_GLUE = ("glue.amazonaws.com",)
_SAGEMAKER = ("sagemaker.amazonaws.com",)
_CODEBUILD = ("codebuild.amazonaws.com",)
_CFN = ("cloudformation.amazonaws.com",)
_BEDROCK = ("bedrock-agentcore.amazonaws.com",)
_APPRUNNER = ("tasks.apprunner.amazonaws.com",)

PASS_ROLE: tuple[PassRoleMethod, ...] = (
    PassRoleMethod("apprunner-001", _APPRUNNER, ("apprunner:CreateService",)),
    PassRoleMethod(
        "bedrock-001",
        _BEDROCK,
        (
            "bedrock-agentcore:CreateCodeInterpreter",
            "bedrock-agentcore:StartCodeInterpreterSession",
            "bedrock-agentcore:InvokeCodeInterpreter",
        ),
    ),
    PassRoleMethod("cloudformation-001", _CFN, ("cloudformation:CreateStack",)),
    PassRoleMethod(
        "cloudformation-003", _CFN, ("cloudformation:CreateStackSet", "cloudformation:CreateStackInstances")
    ),
    PassRoleMethod(
        "cloudformation-004",
        _CFN,
        ("cloudformation:UpdateStackSet",),
        requires="an existing CloudFormation StackSet",
    ),
    PassRoleMethod("codebuild-001", _CODEBUILD, ("codebuild:CreateProject", "codebuild:StartBuild")),
    PassRoleMethod("codebuild-004", _CODEBUILD, ("codebuild:CreateProject", "codebuild:StartBuildBatch")),
    PassRoleMethod(
        "datapipeline-001",
        ("datapipeline.amazonaws.com", "elasticmapreduce.amazonaws.com"),
        (
            "datapipeline:CreatePipeline",
            "datapipeline:PutPipelineDefinition",
            "datapipeline:ActivatePipeline",
        ),
    ),
    PassRoleMethod("ec2-001", _EC2, ("ec2:RunInstances",), instance_profile=True),
    PassRoleMethod("ec2-003", _EC2, ("ec2:RequestSpotInstances",), instance_profile=True),
    PassRoleMethod("ecs-001", _ECS, ("ecs:CreateCluster", "ecs:RegisterTaskDefinition", "ecs:CreateService")),
    PassRoleMethod("ecs-002", _ECS, ("ecs:CreateCluster", "ecs:RegisterTaskDefinition", "ecs:RunTask")),
    PassRoleMethod(
        "ecs-003",
        _ECS,
        ("ecs:RegisterTaskDefinition", "ecs:CreateService"),
        requires="an existing ECS cluster",
        unless=("ecs:CreateCluster",),
    ),
    PassRoleMethod(
        "ecs-004",
        _ECS,
        ("ecs:RegisterTaskDefinition", "ecs:RunTask"),
        requires="an existing ECS cluster",
        unless=("ecs:CreateCluster",),
    ),
    PassRoleMethod(
        "ecs-005",
        _ECS,
        ("ecs:RegisterTaskDefinition", "ecs:StartTask"),
        requires="an existing ECS cluster with a registered container instance",
    ),
    PassRoleMethod("glue-001", _GLUE, ("glue:CreateDevEndpoint",)),
    PassRoleMethod("glue-003", _GLUE, ("glue:CreateJob", "glue:StartJobRun")),
    PassRoleMethod("glue-004", _GLUE, ("glue:CreateJob", "glue:CreateTrigger")),
    PassRoleMethod(
        "glue-005", _GLUE, ("glue:UpdateJob", "glue:StartJobRun"), requires="an existing Glue job"
    ),
    PassRoleMethod(
        "glue-006", _GLUE, ("glue:UpdateJob", "glue:CreateTrigger"), requires="an existing Glue job"
    ),
    PassRoleMethod("lambda-001", _LAMBDA, ("lambda:CreateFunction", "lambda:InvokeFunction")),
    PassRoleMethod(
        "lambda-002",
        _LAMBDA,
        ("lambda:CreateFunction", "lambda:CreateEventSourceMapping"),
        requires="an existing event source (DynamoDB or Kinesis stream, SQS queue) to trigger the function",
        unless=("dynamodb:CreateTable",),
    ),
    PassRoleMethod("lambda-006", _LAMBDA, ("lambda:CreateFunction", "lambda:AddPermission")),
    PassRoleMethod("sagemaker-001", _SAGEMAKER, ("sagemaker:CreateNotebookInstance",)),
    PassRoleMethod("sagemaker-002", _SAGEMAKER, ("sagemaker:CreateTrainingJob",)),
    PassRoleMethod("sagemaker-003", _SAGEMAKER, ("sagemaker:CreateProcessingJob",)),
    PassRoleMethod("rhino:24", ("codestar.amazonaws.com",), ("codestar:CreateProject",)),
)

EXISTING: tuple[ExistingMethod, ...] = (
    ExistingMethod(
        "apprunner-002", _APPRUNNER, ("apprunner:UpdateService",), "an existing App Runner service"
    ),
    ExistingMethod(
        "bedrock-002",
        _BEDROCK,
        ("bedrock-agentcore:StartCodeInterpreterSession", "bedrock-agentcore:InvokeCodeInterpreter"),
        "an existing Bedrock AgentCore code interpreter",
    ),
    ExistingMethod(
        "cloudformation-002", _CFN, ("cloudformation:UpdateStack",), "an existing CloudFormation stack"
    ),
    ExistingMethod(
        "cloudformation-005",
        _CFN,
        ("cloudformation:CreateChangeSet", "cloudformation:ExecuteChangeSet"),
        "an existing CloudFormation stack",
    ),
    ExistingMethod("codebuild-002", _CODEBUILD, ("codebuild:StartBuild",), "an existing CodeBuild project"),
    ExistingMethod(
        "codebuild-003",
        _CODEBUILD,
        ("codebuild:StartBuildBatch",),
        "an existing CodeBuild project (batch builds)",
    ),
    ExistingMethod(
        "ec2instanceconnect-003",
        _EC2,
        ("ec2-instance-connect:SendSSHPublicKey",),
        "a reachable EC2 instance with EC2 Instance Connect",
        instance_profile=True,
    ),
    ExistingMethod(
        "ec2-002",
        _EC2,
        ("ec2:ModifyInstanceAttribute", "ec2:StopInstances", "ec2:StartInstances"),
        "an existing EC2 instance",
        instance_profile=True,
    ),
    ExistingMethod(
        "ec2-004",
        _EC2,
        ("ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate"),
        "an existing launch template used by an Auto Scaling group",
        instance_profile=True,
    ),
    ExistingMethod("glue-002", _GLUE, ("glue:UpdateDevEndpoint",), "an existing Glue development endpoint"),
    ExistingMethod(
        "lambda-003", _LAMBDA, ("lambda:UpdateFunctionCode",), "an existing Lambda function that is invoked"
    ),
    ExistingMethod(
        "lambda-004",
        _LAMBDA,
        ("lambda:UpdateFunctionCode", "lambda:InvokeFunction"),
        "an existing Lambda function",
    ),
    ExistingMethod(
        "lambda-005",
        _LAMBDA,
        ("lambda:UpdateFunctionCode", "lambda:AddPermission"),
        "an existing Lambda function",
    ),
    ExistingMethod(
        "rhino:26",
        _LAMBDA,
        ("lambda:UpdateFunctionConfiguration",),
        "an existing Lambda function that is invoked",
    ),
    ExistingMethod(
        "sagemaker-004",
        _SAGEMAKER,
        ("sagemaker:CreatePresignedNotebookInstanceUrl",),
        "an existing SageMaker notebook instance in service",
    ),
    ExistingMethod(
        "sagemaker-005",
        _SAGEMAKER,
        (
            "sagemaker:CreateNotebookInstanceLifecycleConfig",
            "sagemaker:StopNotebookInstance",
            "sagemaker:UpdateNotebookInstance",
            "sagemaker:StartNotebookInstance",
        ),
        "an existing SageMaker notebook instance",
    ),
    ExistingMethod(
        "ssm-001",
        _EC2,
        ("ssm:StartSession",),
        "an SSM-managed EC2 instance running as the role",
        instance_profile=True,
    ),
    ExistingMethod(
        "ssm-002",
        _EC2,
        ("ssm:SendCommand",),
        "an SSM-managed EC2 instance running as the role",
        instance_profile=True,
    ),
    ExistingMethod(
        "rhino:23",
        ("codestar.amazonaws.com",),
        ("codestar:CreateProjectFromTemplate",),
        "AWS CodeStar (closed)",
    ),
)

# Admin-equivalent: every one of these allowed on any IAM resource, including an action name no
# policy can list by name (only a wildcard covers it), i.e. iam:* in effect.
ADMIN_PROBE_ACTIONS: tuple[str, ...] = (
    "iam:VigilProbeAnyAction",
    "iam:AttachUserPolicy",
    "iam:AttachRolePolicy",
    "iam:AttachGroupPolicy",
    "iam:PutUserPolicy",
    "iam:PutRolePolicy",
    "iam:PutGroupPolicy",
    "iam:CreatePolicyVersion",
    "iam:CreateAccessKey",
    "iam:UpdateAssumeRolePolicy",
    "iam:PassRole",
    "iam:CreateUser",
    "iam:CreateRole",
)

# Methods of the catalogue the analyser deliberately does not turn into edges, and why.
NOT_MODELLED: dict[str, str] = {
    "iam-003": "same step as iam-002 (create a key after deleting one); reported as iam-002",
    "rhino:25": "CodeStar team membership gives project permissions, not a principal",
}

# Catalogue ids that are covered by composing a grant with a become step (see graph.py).
COMPOSED: dict[str, str] = {
    "iam-014": "iam-009 (grant to role) + sts-001 (assume it)",
    "iam-015": "iam-008 (grant to user) + iam-002 (create its key)",
    "iam-016": "iam-001 (new version of a policy the role has) + sts-001",
    "iam-017": "iam-005 (grant to role) + sts-001",
    "iam-018": "iam-007 (grant to user) + iam-002",
    "iam-019": "iam-009 + iam-012 (rewrite trust, then assume)",
    "iam-020": "iam-001 + iam-012",
    "iam-021": "iam-005 + iam-012",
}
