"""The bootstrap stack (the artifacts bucket bin/deploy uploads to) and the account's API
Gateway CloudWatch role.

One bootstrap stack per account and region (default name `market-data-bootstrap`) serves
every environment: artifacts are content-addressed (`market-data/<sha256>.zip`,
`templates/<sha256>.json`), so environments that deploy the same code share one object.

The bucket is private (all four public-access blocks, ACLs disabled), encrypted at rest
(SSE-S3), reachable over TLS only (a bucket policy denies aws:SecureTransport=false) and
versioned, so an accidental delete or overwrite of an artifact that a stack still points
at can be undone. Lifecycle: current artifacts never expire, noncurrent versions (left
only by a delete or an overwrite, which bin/deploy never does: keys name their content)
30 days after they became noncurrent, unfinished multipart uploads after 1 day. A current
object must not expire: a stack references its code and template by key until its next
successful update, and a rollback of a later update reads the old code again, so an
expired key turns a failed update into UPDATE_ROLLBACK_FAILED (NoSuchKey) however old the
stack is. Unreferenced artifacts cost cents (one zip per code change). The bucket survives the
stack's deletion (DeletionPolicy Retain): deleting a stack must not take the artifacts
of running stacks with it.

Versions: the stack's `BootstrapVersion` output says which template it runs; bin/deploy
updates an older bootstrap through the same reviewed change-set path as every stack
(`deploy_stack`), and refuses a newer one it does not know.

API Gateway writes a stage's access logs only once the account names a CloudWatch role
(API Gateway developer guide, "Set up CloudWatch logging for REST APIs in API Gateway").
The bootstrap stack holds such a role (retained on deletion), but no longer the
`AWS::ApiGateway::Account` resource (version 1 had it): that resource silently replaces
a role the account already has, for every API in the account and region. bin/deploy
instead reads the setting (`GetAccount`) and sets the bootstrap's role only when the
account names none (`UpdateAccount`), retrying while IAM propagates the new role (API
Gateway answers BadRequestException "The role ARN does not have required permissions ..."
for a few seconds after the role is created: aws/aws-cdk#2194). Removing the resource
from a version-1 stack leaves the setting in place (it was DeletionPolicy Retain).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from awacs.aws import Allow, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from botocore.exceptions import ClientError
from troposphere import GetAtt, Output, Ref, Sub, Template, iam, s3

from market_cfn.base.aws import error_code, error_message
from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError
from market_cfn.base.waits import Waits
from market_cfn.deploy.preflight import describe_stack, stack_outputs
from market_cfn.stack import policies
from market_cfn.stack.protection import protect
from market_cfn.stack.storage import INCOMPLETE_UPLOAD_DAYS, private_bucket
from market_cfn.stack.suppressions import suppress

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_apigateway.type_defs import PatchOperationTypeDef
    from mypy_boto3_cloudformation import CloudFormationClient

DEFAULT_STACK_NAME = "market-data-bootstrap"
BUCKET_OUTPUT = "ArtifactsBucketName"
VERSION_OUTPUT = "BootstrapVersion"
ROLE_OUTPUT = "ApiGatewayCloudWatchRoleArn"
# 1: bucket, role, AWS::ApiGateway::Account. 2: the Account resource removed (bin/deploy
# sets the role only where none is set), version and role outputs.
BOOTSTRAP_VERSION = 3  # 3: current artifacts no longer expire
# The in-place changes an update to this version makes (ID.PROPERTY): reviewed here, so the guard's
# allow-list of harmless changes (harmless.py) lets them through under --yes; nothing else.
UPGRADE_CHANGES = frozenset({"ArtifactsBucket.LifecycleConfiguration"})
USABLE_STATES = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
# UpdateAccount right after the role is created: bounded exponential backoff, ~2 minutes.
ROLE_PROPAGATION_DELAYS_SECONDS = (2, 4, 8, 15, 30, 30, 30)
ROLE_NOT_READY = "The role ARN does not have required permissions"
API_LOGGING_POLICY = "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
NONCURRENT_EXPIRATION_DAYS = 30


def build_bootstrap_template() -> Template:
    t = Template(
        Description="market_cfn bootstrap: the private, encrypted artifacts bucket that bin/deploy "
        "uploads Lambda code and large templates to, and a CloudWatch logging role for API Gateway "
        f"(bootstrap version {BOOTSTRAP_VERSION})."
    )
    t.set_version("2010-09-09")
    bucket = private_bucket(
        "ArtifactsBucket",
        lifecycle=s3.LifecycleConfiguration(
            Rules=[
                s3.LifecycleRule(
                    Id="ExpireNoncurrentArtifacts",
                    Status="Enabled",
                    NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                        NoncurrentDays=NONCURRENT_EXPIRATION_DAYS
                    ),
                    AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                        DaysAfterInitiation=INCOMPLETE_UPLOAD_DAYS
                    ),
                )
            ]
        ),
    )
    suppress(
        bucket,
        checkov={
            "CKV_AWS_18": "Server access logs would need a second bucket of their own; the artifacts are "
            "content-addressed and written only by bin/deploy, and CloudTrail records the S3 data events."
        },
    )
    bucket = t.add_resource(protect(bucket, retain=True))
    t.add_resource(
        s3.BucketPolicy(
            "ArtifactsBucketPolicy",
            Bucket=bucket.ref(),
            PolicyDocument=PolicyDocument(
                Version=policies.VERSION,
                Statement=[
                    policies.deny_insecure_transport(
                        "DenyInsecureTransport",
                        "s3",
                        [GetAtt(bucket, "Arn"), Sub("${Arn}/*", Arn=GetAtt(bucket, "Arn"))],
                    )
                ],
            ),
        )
    )
    role = _add_api_gateway_logging_role(t)
    t.add_output(Output(BUCKET_OUTPUT, Description="Bucket bin/deploy uploads artifacts to.", Value=Ref(bucket)))
    t.add_output(
        Output(
            ROLE_OUTPUT,
            Description="Role bin/deploy names as API Gateway's CloudWatch role where the account has none.",
            Value=GetAtt(role, "Arn"),
        )
    )
    t.add_output(Output(VERSION_OUTPUT, Description="Version of the bootstrap template.", Value=str(BOOTSTRAP_VERSION)))
    return t


def _add_api_gateway_logging_role(t: Template) -> iam.Role:
    role = iam.Role(
        "ApiGatewayCloudWatchRole",
        AssumeRolePolicyDocument=PolicyDocument(
            Version=policies.VERSION,
            Statement=[
                Statement(
                    Effect=Allow,
                    Principal=Principal("Service", ["apigateway.amazonaws.com"]),
                    Action=[AssumeRole],
                )
            ],
        ),
        ManagedPolicyArns=[Sub(API_LOGGING_POLICY)],
    )
    # Retained: the account may name it for every API in the region.
    return t.add_resource(protect(role, retain=True))


def render_bootstrap_json() -> str:
    """The bootstrap template as deterministic JSON (sorted keys), like render.render_json."""
    return json.dumps(build_bootstrap_template().to_dict(), indent=2, sort_keys=True) + "\n"


def _resources(cfn: CloudFormationClient, stack_name: str) -> dict[str, str]:
    """{logical id: physical id} of the stack's resources ({} when they cannot be listed)."""
    # DescribeStackResources, not DescribeStackResource: moto's singular call crashes on a
    # stack holding a resource type it does not implement.
    try:
        listed = cfn.describe_stack_resources(StackName=stack_name).get("StackResources", [])
    except ClientError:
        return {}
    return {r["LogicalResourceId"]: r.get("PhysicalResourceId") or "" for r in listed if r.get("LogicalResourceId")}


def _deployed_version(cfn: CloudFormationClient, stack_name: str, outputs: dict[str, str]) -> int:
    """The running bootstrap's version: its output, else its template's (moto 5 leaves stacks
    created through change sets without Outputs), else 1 (version 1 had no such output)."""
    value: object = outputs.get(VERSION_OUTPUT)
    if value is None:
        try:
            body = cfn.get_template(StackName=stack_name).get("TemplateBody")
        except ClientError:
            body = None
        if isinstance(body, str):
            try:
                body = json.loads(body)
            except ValueError:
                body = None
        if isinstance(body, dict):
            value = (body.get("Outputs", {}).get(VERSION_OUTPUT) or {}).get("Value")
    if value is None:
        return 1
    try:
        return int(str(value))
    except ValueError:
        raise DeployError(
            f"the bootstrap stack {stack_name} reports version {value!r}, which is not a number"
        ) from None


@dataclass(frozen=True)
class Bootstrap:
    """What the main deploy needs from the bootstrap stack."""

    bucket: str
    role_arn: str | None
    version: int


def read_bootstrap(cfn: CloudFormationClient, stack_name: str) -> Bootstrap | None:
    """The running bootstrap, or None when it is missing or not in a usable state."""
    stack = describe_stack(cfn, stack_name)
    if not stack or stack["StackStatus"] not in USABLE_STATES:
        return None
    outputs = stack_outputs(stack)
    resources = _resources(cfn, stack_name) if not outputs.get(BUCKET_OUTPUT) else {}
    bucket = outputs.get(BUCKET_OUTPUT) or resources.get("ArtifactsBucket")
    if not bucket:
        return None
    role_arn = outputs.get(ROLE_OUTPUT)
    if not role_arn:
        role_name = (resources or _resources(cfn, stack_name)).get("ApiGatewayCloudWatchRole")
        # arn:<partition>:cloudformation:<region>:<account>:stack/...: the role is in the same account.
        parts = str(stack.get("StackId", "")).split(":")
        if role_name and len(parts) > 4:
            role_arn = f"arn:{parts[1]}:iam::{parts[4]}:role/{role_name}"
    return Bootstrap(bucket, role_arn, _deployed_version(cfn, stack_name, outputs))


def ensure_api_gateway_logging_role(apigateway: APIGatewayClient, role_arn: str, console: Console, waits: Waits) -> str:
    """The account's API Gateway CloudWatch role after this call: the one it already names
    (never replaced), or `role_arn` set now. Retries only the documented propagation error."""
    existing = apigateway.get_account().get("cloudwatchRoleArn")
    if existing:
        if existing != role_arn:
            console.say(f"API Gateway already logs to CloudWatch with role {existing}: kept as it is.")
        return str(existing)
    console.say(f"API Gateway has no CloudWatch role in this account and region: setting {role_arn}.")
    patch: list[PatchOperationTypeDef] = [{"op": "replace", "path": "/cloudwatchRoleArn", "value": role_arn}]
    for attempt, delay in enumerate((*ROLE_PROPAGATION_DELAYS_SECONDS, None), start=1):
        try:
            apigateway.update_account(patchOperations=patch)
            return role_arn
        except ClientError as exc:
            code, message = error_code(exc), error_message(exc)
            retryable = (code == "BadRequestException" and ROLE_NOT_READY in message) or code in (
                "TooManyRequestsException",
                "ConflictException",
            )
            if not retryable:
                raise DeployError(f"API Gateway refused the CloudWatch role {role_arn}: {code}: {message}") from exc
            if delay is None:
                raise DeployError(
                    f"API Gateway still refuses the CloudWatch role {role_arn} after {attempt} attempts "
                    f"({sum(ROLE_PROPAGATION_DELAYS_SECONDS)} s): {message}"
                ) from exc
            console.say(f"  the role is not usable by API Gateway yet ({code}); retrying in {delay} s")
            waits.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover
