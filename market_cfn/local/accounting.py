"""Request accounting for the emulation: each AWS API call as the IAM action and resource it is
authorized by, so tests can compare what the handlers do with what their roles grant."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from market_cfn.local.lambda_events import ACCOUNT_ID, REGION


@dataclass(frozen=True)
class ApiCall:
    actor: str
    service: str
    operation: str
    iam_action: str
    resource: str | None = None  # the ARN the call acts on, when it names one


def resource_arn(service: str, params: dict[str, Any]) -> str | None:
    """The ARN an API call is authorized against (queue, object, table, event bus)."""
    if service == "sqs" and "QueueUrl" in params:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{params['QueueUrl'].rstrip('/').rsplit('/', 1)[-1]}"
    if service == "s3" and "Bucket" in params:
        return f"arn:aws:s3:::{params['Bucket']}" + (f"/{params['Key']}" if "Key" in params else "")
    if service == "dynamodb":
        table = params.get("TableName") or next(iter(params.get("RequestItems") or {}), None)
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}" if table else None
    if service == "events" and params.get("Entries"):
        bus = params["Entries"][0].get("EventBusName") or "default"
        return bus if bus.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{bus}"
    return None


def iam_action(service: str, operation: str, params: dict[str, Any]) -> str:
    """The IAM action an API call is authorized by (batch APIs use the single action)."""
    if service == "sqs" and operation.endswith("Batch"):
        return f"sqs:{operation[: -len('Batch')]}"
    if service == "s3" and operation in ("GetObject", "HeadObject"):
        return "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
    if service == "s3" and operation in ("ListObjects", "ListObjectsV2"):
        return "s3:ListBucket"
    if service == "s3" and operation == "ListObjectVersions":
        return "s3:ListBucketVersions"
    if service == "s3" and operation in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        return "s3:PutObject"  # IAM authorizes the multipart steps with s3:PutObject
    return f"{service}:{operation}"
