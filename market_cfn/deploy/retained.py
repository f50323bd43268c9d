"""Before a stack is created: do the named resources it would retain already exist?

`destroy` of an environment that retains its data (DeletionPolicy Retain: --retain-data, the
regulated profile, prod) deletes the stack and keeps its buckets, table and log groups, under
the names the template gives them. Creating the same environment again then fails late, in the
middle of the stack's creation, with "already exists" (CloudFormation creates a named resource;
it never adopts one: that takes a resource import, "Importing AWS resources into a CloudFormation
stack", CloudFormation user guide). This check reads each such name before anything is created and
names the way back (docs/deploy.md "After destroy").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, overload

from botocore.exceptions import ClientError

from market_cfn.base.aws import error_code
from market_cfn.intrinsics import IntrinsicResolver

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sts import STSClient

# The retained, named resource types the templates use, with the property that names them.
NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::DynamoDB::Table": "TableName",
    "AWS::Logs::LogGroup": "LogGroupName",
}


class _Unresolved(Exception):
    pass


class _Names(IntrinsicResolver):
    def __init__(self, parameters: Mapping[str, str], pseudo: Mapping[str, str]) -> None:
        self.values = {**pseudo, **parameters}

    def ref(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        raise _Unresolved(name)  # another resource's physical id: not known before creation

    def get_att(self, logical_id: str, attribute: str) -> Any:
        raise _Unresolved(f"{logical_id}.{attribute}")


class Clients(Protocol):
    """Makes a boto3 client by service name, typed per service so that every call on it is checked:
    the services this check reads (and sts, for the account the names are resolved in)."""

    # in the order of cli/command.py's Context.client: mypy matches one overloaded callable to another
    # overload by overload, in order
    @overload
    def __call__(self, service: Literal["dynamodb"], /) -> DynamoDBClient: ...
    @overload
    def __call__(self, service: Literal["logs"], /) -> CloudWatchLogsClient: ...
    @overload
    def __call__(self, service: Literal["s3"], /) -> S3Client: ...
    @overload
    def __call__(self, service: Literal["sts"], /) -> STSClient: ...


@dataclass(frozen=True)
class Retained:
    logical_id: str
    resource_type: str
    name: str


def retained_names(
    template: Mapping[str, Any], parameters: Mapping[str, str], *, account: str, region: str
) -> list[Retained]:
    """Every resource the template retains under a name known before creation."""
    partition = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
    defaults = {
        k: str(v["Default"])
        for k, v in (template.get("Parameters") or {}).items()
        if isinstance(v, dict) and "Default" in v
    }
    resolver = _Names(
        {**defaults, **parameters},
        {
            "AWS::AccountId": account,
            "AWS::Region": region,
            "AWS::Partition": partition,
            "AWS::URLSuffix": "amazonaws.com",
        },
    )
    found = []
    for logical_id, resource in sorted((template.get("Resources") or {}).items()):
        prop = NAME_PROPERTIES.get(resource.get("Type", ""))
        name = (resource.get("Properties") or {}).get(prop) if prop else None
        if resource.get("DeletionPolicy") != "Retain" or name is None:
            continue
        try:
            found.append(Retained(logical_id, resource["Type"], str(resolver.resolve(name))))
        except _Unresolved:
            continue
    return found


def exists(client: Clients, item: Retained) -> str | None:
    """How the resource exists ("exists", "exists in another account"), or None when it does not."""
    try:
        if item.resource_type == "AWS::S3::Bucket":
            client("s3").head_bucket(Bucket=item.name)  # S3 API reference, HeadBucket: 200, 403 or 404
            return "exists"
        if item.resource_type == "AWS::DynamoDB::Table":
            client("dynamodb").describe_table(TableName=item.name)
            return "exists"
        if item.resource_type == "AWS::Logs::LogGroup":
            # one page is enough: the results are ASCII-sorted by name (DescribeLogGroups, CloudWatch Logs
            # API reference), so the exact name, the shortest one with this prefix, comes first
            groups = client("logs").describe_log_groups(logGroupNamePrefix=item.name).get("logGroups", [])
            return "exists" if any(g.get("logGroupName") == item.name for g in groups) else None
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound", "ResourceNotFoundException"):
            return None
        if item.resource_type == "AWS::S3::Bucket" and code in ("403", "Forbidden"):
            return "exists in another account (bucket names are global)"
        raise
    raise ValueError(f"{item.logical_id}: no existence check for {item.resource_type}")  # see NAME_PROPERTIES


def conflicts(client: Clients, items: list[Retained]) -> list[str]:
    out = []
    for item in items:
        how = exists(client, item)
        if how:
            out.append(f"{item.logical_id} ({item.resource_type}) {item.name} {how}")
    return out
