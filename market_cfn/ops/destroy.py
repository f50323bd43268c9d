"""The `destroy` core: review what a stack deletion removes, empty the buckets, delete, follow.

The review is the deploy's: the deletion is described as a change set in which every
resource is Removed (PolicyAction from the deployed template's DeletionPolicy), built
with market_cfn.deploy.review.merge.build_review, so the guard's judgement of what holds data
is the same for a deploy and a destroy. Added here: what each data store holds now.

- Buckets are emptied only with --delete-data, and then completely: every object
  version and every delete marker (ListObjectVersions, every page; DeleteObjects in
  batches of at most 1,000 keys, the API's limit), because CloudFormation cannot delete
  a bucket that is not empty (DELETE_FAILED, BucketNotEmpty). A bucket kept by its
  DeletionPolicy (Retain) is never emptied.
- Without --delete-data, a stack whose doomed buckets, table or queues hold data is not
  deleted (exit 3): the deletion would destroy it, or fail half way on the buckets.
- Termination protection is lifted only after the confirmation, and said so.
- DeleteStack, then the deploy's own wait (market_cfn.deploy.preflight.wait_for_stack).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from market_cfn.base.aws import error_code
from market_cfn.base.errors import OpsError
from market_cfn.base.waits import Waits
from market_cfn.deploy.preflight import wait_for_stack
from market_cfn.deploy.review.merge import build_review
from market_cfn.deploy.review.model import Review
from market_cfn.ops.resources import Resource, Stack

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import ObjectIdentifierTypeDef
    from mypy_boto3_sqs import SQSClient

DELETE_BATCH = 1000  # DeleteObjects: at most 1,000 keys per request (S3 API reference)
COUNT_LIMIT = 100_000  # the review counts a bucket's versions up to this many
KEEPS = {"Retain": "Retain", "RetainExceptOnCreate": "Retain", "Snapshot": "Snapshot"}


def deletion_policies(stack: Stack) -> dict[str, str]:
    """Each resource's DeletionPolicy in the deployed template (absent = Delete)."""
    if not stack.template:
        raise OpsError(f"cannot read stack {stack.name}'s template as JSON: its DeletionPolicies are unknown")
    return {
        logical: str(resource.get("DeletionPolicy", "Delete"))
        for logical, resource in (stack.template.get("Resources") or {}).items()
        if isinstance(resource, dict)
    }


def review(stack: Stack) -> Review:
    """The deletion as a change set of Removes, reviewed by the deploy's machinery."""
    policies = deletion_policies(stack)
    resources = dict(stack.resources)
    if stack.unnamed:  # the endpoint did not name some: the deployed template's own list completes it
        for logical, declared in (stack.template.get("Resources") or {}).items():
            if logical not in resources and isinstance(declared, dict):
                resources[logical] = Resource(logical, str(declared.get("Type", "")), "", "(not named by the endpoint)")
    changes = []
    for resource in sorted(resources.values(), key=lambda r: r.logical_id):
        if resource.status == "DELETE_COMPLETE":
            continue
        changes.append(
            {
                "Type": "Resource",
                "ResourceChange": {
                    "Action": "Remove",
                    "LogicalResourceId": resource.logical_id,
                    "PhysicalResourceId": resource.physical_id,
                    "ResourceType": resource.resource_type,
                    "PolicyAction": KEEPS.get(policies.get(resource.logical_id, "Delete"), "Delete"),
                    "Details": [],
                },
            }
        )
    change_set = {
        "ChangeSetName": "(stack deletion)",
        "StackName": stack.name,
        "StackId": stack.stack_id,
        "Status": "-",
        "ExecutionStatus": "-",
        "Changes": changes,
        "Parameters": stack.raw.get("Parameters") or [],
    }
    return build_review(change_set)


def count_versions(s3: S3Client, bucket: str, limit: int = COUNT_LIMIT) -> tuple[int, bool]:
    """(object versions + delete markers, whether the count stopped at `limit`)."""
    total = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        total += len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))
        if total >= limit:
            return total, True
    return total, False


def holdings(clients: dict[str, Any], stack: Stack, rev: Review) -> list[dict[str, Any]]:
    """What each data store that the deletion removes holds now. `clients` maps "s3", "dynamodb" and
    "sqs" to their clients (cli/destroy.py builds it); each is typed where it is taken out."""
    rows = []
    for change in rev.changes:
        kept = change.policy_action in ("Retain", "Snapshot")
        row: dict[str, Any] = {
            "logical_id": change.logical_id,
            "type": change.resource_type,
            "physical_id": change.physical_id,
            "kept": kept,
        }
        try:
            if change.resource_type == "AWS::S3::Bucket":
                count, more = count_versions(clients["s3"], change.physical_id)
                row |= {"items": count, "holds": f"{count:,}{'+' if more else ''} object versions and delete markers"}
            elif change.resource_type == "AWS::DynamoDB::Table":
                ddb: DynamoDBClient = clients["dynamodb"]
                table = ddb.describe_table(TableName=change.physical_id)["Table"]
                probe = ddb.scan(TableName=change.physical_id, Limit=1, Select="COUNT")
                has = int(probe.get("Count", 0)) > 0 or bool(probe.get("LastEvaluatedKey"))
                row |= {
                    "items": 1 if has else 0,
                    "holds": "at least one item" if has else "no items",
                    "deletion_protection": bool(table.get("DeletionProtectionEnabled")),
                }
            elif change.resource_type == "AWS::SQS::Queue":
                sqs: SQSClient = clients["sqs"]
                attributes = sqs.get_queue_attributes(
                    QueueUrl=change.physical_id,
                    AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
                )["Attributes"]
                count = sum(int(v) for v in attributes.values())
                row |= {"items": count, "holds": f"{count} messages"}
            else:
                continue
        except ClientError as exc:
            code = error_code(exc)
            if code in ("NoSuchBucket", "ResourceNotFoundException", "AWS.SimpleQueueService.NonExistentQueue"):
                row |= {"items": 0, "holds": "already gone"}
            else:
                row |= {"items": None, "holds": f"unknown ({code})"}
        rows.append(row)
    return rows


def blockers(rows: list[dict[str, Any]], *, delete_data: bool) -> list[str]:
    """Why the deletion must not start (empty list: it may)."""
    reasons = []
    for row in rows:
        if row["kept"]:
            continue
        if row.get("deletion_protection"):
            reasons.append(
                f"{row['logical_id']} has deletion protection on; turn it off through a deploy first "
                "(destroy never lifts a table's own protection)"
            )
        if row["items"] is None:
            reasons.append(f"{row['logical_id']}: what it holds is {row['holds']}; refusing to delete it blind")
        elif row["items"] and not delete_data:
            reasons.append(f"{row['logical_id']} holds {row['holds']}; pass --delete-data to delete them with it")
    return reasons


def empty_bucket(s3: S3Client, bucket: str, *, on_deleted: Callable[[int], None] | None = None) -> int:
    """Delete every object version and delete marker; the number deleted. Fails on any error entry."""
    deleted = 0
    while True:
        keys: list[ObjectIdentifierTypeDef] = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                keys.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
        if not keys:
            return deleted
        for start in range(0, len(keys), DELETE_BATCH):
            batch = keys[start : start + DELETE_BATCH]
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise OpsError(
                    f"emptying {bucket}: {len(errors)} of {len(batch)} versions not deleted "
                    f"({first.get('Key')} {first.get('VersionId')}: {first.get('Code')} {first.get('Message', '')})"
                )
            deleted += len(batch)
            if on_deleted:
                on_deleted(len(batch))
        # List again: objects written while we deleted (uploads still arriving) are caught too.


def delete_stack(cfn: CloudFormationClient, stack: Stack, waits: Waits, token: str) -> dict[str, Any]:
    """DeleteStack and wait until it is gone (DELETE_COMPLETE) or stuck (DELETE_FAILED)."""
    cfn.delete_stack(StackName=stack.stack_id, ClientRequestToken=token)
    final = wait_for_stack(cfn, stack.stack_id, waits, what="the stack deletion")
    if final is None:
        return {"status": "DELETE_COMPLETE", "failures": []}
    failures = deletion_failures(cfn, stack, token)
    return {"status": final.get("StackStatus", ""), "reason": final.get("StackStatusReason", ""), "failures": failures}


def deletion_failures(cfn: CloudFormationClient, stack: Stack, token: str) -> list[str]:
    """The resources this deletion could not delete, newest first.

    DescribeStackEvents answers newest first, a page at a time (NextToken; CloudFormation API
    reference), and a deletion writes at least two events per resource, so its failures can be
    pages back: the pages are read back to the stack's own DELETE_IN_PROGRESS event that started
    it, and no further (older events belong to other operations)."""
    failures: list[str] = []
    for page in cfn.get_paginator("describe_stack_events").paginate(StackName=stack.stack_id):
        for event in page.get("StackEvents", []):
            if event.get("ClientRequestToken") not in (None, token):
                continue
            if event.get("LogicalResourceId") == stack.name:
                if event.get("ResourceStatus") == "DELETE_IN_PROGRESS":
                    return failures
            elif event.get("ResourceStatus") == "DELETE_FAILED":
                failures.append(f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}")
    return failures
