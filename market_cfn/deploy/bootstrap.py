"""The bootstrap stack: the artifacts bucket that `bin/deploy` uploads code and templates to.

One bootstrap stack per account and region (default name `market-data-bootstrap`) serves
every environment: artifacts are content-addressed (`market-data/<sha256>.zip`,
`templates/<sha256>.json`), so environments that deploy the same code share one object.

The bucket is private (all four public-access blocks, ACLs disabled), encrypted at rest
(SSE-S3), reachable over TLS only (a bucket policy denies aws:SecureTransport=false) and
versioned, so an accidental delete or overwrite of an artifact that a stack still points
at can be undone. Lifecycle: a current artifact expires a year after upload (bin/deploy
re-uploads anything missing, because it checks with HeadObject before each deploy, and a
year is far longer than any rollback needs the previous code), noncurrent versions 30
days after that, unfinished multipart uploads after 1 day. The bucket survives the
stack's deletion (DeletionPolicy Retain): deleting a stack must not take the artifacts
of running stacks with it.

The bootstrap stack also holds the one account-and-region setting the pipeline needs:
API Gateway writes a stage's access logs only once the account names a CloudWatch role
for it (API Gateway developer guide, "Set up CloudWatch logging for REST APIs in API
Gateway"). The role (trusting apigateway.amazonaws.com, with the AWS managed policy
AmazonAPIGatewayPushToCloudWatchLogs) and the AWS::ApiGateway::Account setting are
retained on deletion, so removing the bootstrap stack never breaks API logging for
other APIs in the account.
"""

from __future__ import annotations

import json
from typing import Any

from awacs.aws import Allow, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from botocore.exceptions import ClientError
from troposphere import GetAtt, Output, Ref, Sub, Template, apigateway, iam, s3

from market_cfn.deploy.changeset import ChangeSetRequest
from market_cfn.deploy.common import Console, DeployError, Refused, Waits
from market_cfn.deploy.preflight import describe_stack, stack_outputs
from market_cfn.stack import policies
from market_cfn.stack.protection import protect
from market_cfn.stack.storage import expiring_lifecycle, private_bucket
from market_cfn.stack.suppressions import suppress

DEFAULT_STACK_NAME = "market-data-bootstrap"
BUCKET_OUTPUT = "ArtifactsBucketName"
API_LOGGING_POLICY = "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
ARTIFACT_EXPIRATION_DAYS = 365
NONCURRENT_EXPIRATION_DAYS = 30


def build_bootstrap_template() -> Template:
    t = Template(
        Description="market_cfn bootstrap: the private, encrypted artifacts bucket that bin/deploy "
        "uploads Lambda code and large templates to, and API Gateway's CloudWatch logging role."
    )
    t.set_version("2010-09-09")
    bucket = private_bucket(
        "ArtifactsBucket",
        lifecycle=expiring_lifecycle(
            "ExpireOldArtifacts", days=ARTIFACT_EXPIRATION_DAYS, noncurrent_days=NONCURRENT_EXPIRATION_DAYS
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
    _add_api_gateway_logging_role(t)
    t.add_output(Output(BUCKET_OUTPUT, Description="Bucket bin/deploy uploads artifacts to.", Value=Ref(bucket)))
    return t


def _add_api_gateway_logging_role(t: Template) -> None:
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
    role = t.add_resource(protect(role, retain=True))
    account = apigateway.Account("ApiGatewayAccount", CloudWatchRoleArn=GetAtt(role, "Arn"))
    t.add_resource(protect(account, retain=True))


def render_bootstrap_json() -> str:
    """The bootstrap template as deterministic JSON (sorted keys), like render.render_json."""
    return json.dumps(build_bootstrap_template().to_dict(), indent=2, sort_keys=True) + "\n"


def _bootstrap_bucket(cfn: Any, stack_name: str) -> str | None:
    stack = describe_stack(cfn, stack_name)
    if not stack or stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"):
        return None
    bucket = stack_outputs(stack).get(BUCKET_OUTPUT)
    if bucket:
        return bucket
    # moto 5 leaves stacks created through change sets without Outputs: read the bucket's
    # physical ID instead (the output is `Ref ArtifactsBucket`, the same value).
    # (DescribeStackResources, not DescribeStackResource: moto's singular call crashes on
    # a stack holding a resource type it does not implement, like AWS::ApiGateway::Account.)
    try:
        resources = cfn.describe_stack_resources(StackName=stack_name).get("StackResources", [])
    except ClientError:
        return None
    for resource in resources:
        if resource.get("LogicalResourceId") == "ArtifactsBucket":
            return resource.get("PhysicalResourceId") or None
    return None


def ensure_bootstrap(
    cfn: Any, stack_name: str, console: Console, waits: Waits, *, assume_yes: bool, options: Any = None
) -> str:
    """The artifacts bucket's name, deploying the bootstrap stack first when it is missing."""
    from market_cfn.deploy.pipeline import DeployOptions, deploy_stack  # pipeline imports this module

    bucket = _bootstrap_bucket(cfn, stack_name)
    if bucket:
        return bucket
    console.say(f"Bootstrap stack {stack_name} has no {BUCKET_OUTPUT} output: deploying it first.")
    console.say("")
    outcome = deploy_stack(
        cfn,
        ChangeSetRequest(
            stack_name,
            {},
            template_body=render_bootstrap_json(),
            description="market_cfn bootstrap: artifacts bucket, API Gateway logging role",
            capabilities=("CAPABILITY_IAM",),
        ),
        console,
        waits,
        options=options or DeployOptions(assume_yes=assume_yes),
    )
    if outcome.result == "failed":
        raise DeployError(f"the bootstrap stack {stack_name} failed: {outcome.message}")
    if outcome.result in ("blocked", "declined"):
        raise Refused(f"the bootstrap stack {stack_name}: {outcome.message}")
    bucket = _bootstrap_bucket(cfn, stack_name)
    if not bucket:
        raise DeployError(f"the bootstrap stack {stack_name} is deployed but names no artifacts bucket")
    console.say("")
    return bucket
