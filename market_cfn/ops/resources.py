"""Find the pipeline's resources from its stack: DescribeStacks (status, outputs) and ListStackResources.

Names are never guessed: every queue URL, bucket, table, function and log group comes from
the stack's physical resource IDs (the logical IDs are the template's, which never change by
accident, STYLE.md "Stable names"). ListStackResources is used rather than
DescribeStackResources because the latter returns at most 100 resources ("only the first
100 resources will be returned", CloudFormation API reference) and has no paging.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from market_cfn.base.errors import OpsError, UsageError

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_cloudformation import CloudFormationClient

# When an endpoint reports no physical ID (moto leaves it empty for these types), the name
# the deployed template declares is used, resolved with the stack's own parameters.
NAME_PROPERTIES = {"AWS::Events::Archive": "ArchiveName", "AWS::Events::EventBus": "Name"}
FUNCTIONS = ("DataIngestion", "DataProcessor", "DataAggregator")
# Dead-letter queue -> the queue whose RedrivePolicy names it (None: Lambda/EventBridge failures).
DEAD_LETTER_QUEUES = {"ProcessingDLQ": "ProcessingQueue", "AggregationDLQ": "AggregationQueue", "InvocationDLQ": None}


@dataclass(frozen=True)
class Resource:
    logical_id: str
    resource_type: str
    physical_id: str
    status: str


@dataclass(frozen=True)
class Stack:
    name: str
    stack_id: str
    status: str
    status_reason: str
    outputs: dict[str, str]
    resources: dict[str, Resource]
    termination_protection: bool
    raw: dict[str, Any] = field(repr=False, compare=False)
    template: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)
    # Resources the endpoint listed without a logical ID (moto does so for types it does not
    # model); AWS always names them.
    unnamed: int = 0

    def declared_name(self, logical_id: str, resource_type: str) -> str:
        """The name the deployed template gives a resource, resolved with the stack's parameters."""
        from market_cfn.intrinsics import IntrinsicResolver

        prop = NAME_PROPERTIES.get(resource_type)
        resource = (self.template.get("Resources") or {}).get(logical_id) or {}
        value = (resource.get("Properties") or {}).get(prop) if prop else None
        if value is None:
            return ""
        _, _, region, account, _ = (self.stack_id.split(":", 5) + [""] * 6)[1:6]
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in self.raw.get("Parameters") or []}
        pseudo = {"AWS::Region": region, "AWS::AccountId": account, "AWS::StackName": self.name}

        class _Resolver(IntrinsicResolver):
            def ref(self, name: str) -> Any:
                if name in parameters or name in pseudo:
                    return parameters.get(name, pseudo.get(name))
                raise KeyError(name)

            def get_att(self, logical_id: str, attribute: str) -> Any:
                raise KeyError(f"{logical_id}.{attribute}")

        try:
            resolved = _Resolver().resolve(value)
        except KeyError:
            return ""
        return resolved if isinstance(resolved, str) else ""

    def physical(self, logical_id: str, resource_type: str) -> str:
        """The physical ID of one of the template's resources; fails closed when it is missing."""
        resource = self.resources.get(logical_id)
        if resource is not None and resource.resource_type == resource_type and not resource.physical_id:
            name = self.declared_name(logical_id, resource_type)
            if name:
                return name
        if resource is None or resource.resource_type != resource_type or not resource.physical_id:
            raise OpsError(
                f"stack {self.name} has no {logical_id} ({resource_type}); is it a market-data stack, fully deployed?"
            )
        return resource.physical_id

    def of_type(self, resource_type: str) -> list[Resource]:
        return sorted(
            (r for r in self.resources.values() if r.resource_type == resource_type and r.physical_id),
            key=lambda r: r.logical_id,
        )

    # The pipeline's resources, by the template's logical IDs -------------------------
    def data_bucket(self) -> str:
        return self.outputs.get("s3BucketName") or self.physical("DataBucket", "AWS::S3::Bucket")

    def rejects_bucket(self) -> str:
        return self.outputs.get("rejectsBucketName") or self.physical("RejectsBucket", "AWS::S3::Bucket")

    def table(self) -> str:
        return self.outputs.get("dynamodbTableName") or self.physical("MarketDataTable", "AWS::DynamoDB::Table")

    def queue_url(self, logical_id: str) -> str:
        return self.physical(logical_id, "AWS::SQS::Queue")  # a queue's physical ID is its URL

    def function(self, name: str) -> str:
        return self.physical(f"{name}Function", "AWS::Lambda::Function")

    def log_group(self, function: str) -> str:
        return self.physical(f"{function}LogGroup", "AWS::Logs::LogGroup")

    def event_bus(self) -> str:
        return self.outputs.get("eventBusName") or self.physical("MarketEventBus", "AWS::Events::EventBus")

    def archive(self) -> str:
        return self.physical("MarketEventArchive", "AWS::Events::Archive")


def describe(cfn: CloudFormationClient, stack_name: str) -> dict[str, Any] | None:
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            return None
        raise
    return cast("dict[str, Any]", stacks[0]) if stacks else None  # Stack.raw is plain data


def load_stack(cfn: CloudFormationClient, stack_name: str) -> Stack:
    """The stack with its outputs and every resource; a missing stack is a usage error (exit 2)."""
    raw = describe(cfn, stack_name)
    if raw is None or raw.get("StackStatus") == "DELETE_COMPLETE":
        raise UsageError(f"stack {stack_name} does not exist (pass --stack-name or --env)")
    resources: dict[str, Resource] = {}
    unnamed = 0
    for page in cfn.get_paginator("list_stack_resources").paginate(StackName=raw["StackId"]):
        for summary in page.get("StackResourceSummaries", []):
            if not summary.get("LogicalResourceId"):
                unnamed += 1
                continue
            resources[summary["LogicalResourceId"]] = Resource(
                summary["LogicalResourceId"],
                summary.get("ResourceType", ""),
                summary.get("PhysicalResourceId", ""),
                summary.get("ResourceStatus", ""),
            )
    outputs = {o["OutputKey"]: o.get("OutputValue", "") for o in raw.get("Outputs") or []}
    body = cfn.get_template(StackName=raw["StackId"]).get("TemplateBody")
    try:
        template = json.loads(body) if isinstance(body, str) else body or {}
    except ValueError:  # a YAML template: names then come from physical IDs only
        template = {}
    return Stack(
        name=raw["StackName"],
        stack_id=raw["StackId"],
        status=raw.get("StackStatus", ""),
        status_reason=raw.get("StackStatusReason", ""),
        outputs=outputs,
        resources=resources,
        termination_protection=bool(raw.get("EnableTerminationProtection")),
        raw=raw,
        template=template if isinstance(template, dict) else {},
        unnamed=unnamed,
    )
