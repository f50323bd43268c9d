"""The events and context objects the Lambda service hands to the handlers, built as AWS builds them.

Shapes follow the AWS documentation: S3 notification records ("Event message structure",
docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html), the SQS
event source mapping's records, API Gateway's REST proxy integration input, the EventBridge
"Scheduled Event", and the asynchronous invocation record that Lambda sends to an on-failure
destination (docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html).
"""

from __future__ import annotations

import base64
import time
import traceback
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"


@dataclass
class FakeLambdaContext:
    """The attributes of a Lambda context object that the handlers and Powertools use."""

    function_name: str
    timeout_ms: int = 300_000
    memory_limit_in_mb: int = 3072
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)
    log_group_name: str = ""
    log_stream_name: str = ""

    def __post_init__(self) -> None:
        self.log_group_name = self.log_group_name or f"/aws/lambda/{self.function_name}"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


def _iso_millis(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def s3_event(
    bucket: str,
    key: str,
    size: int,
    version_id: str | None,
    etag: str = "",
    *,
    event_name: str = "ObjectCreated:Put",
    configuration_id: str = "DataIngestion",
) -> dict[str, Any]:
    """An S3 ObjectCreated notification as delivered to Lambda (key URL-encoded)."""
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "eTag": etag.strip('"'),
        "sequencer": f"{time.time_ns():X}",
    }
    if version_id and version_id != "null":
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": _iso_millis(datetime.now(UTC)),
                "eventName": event_name,
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "example"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": configuration_id,
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def _record_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """One message attribute as the SQS event record carries it: camelCase keys, binary values as
    base64 text, both list fields always present (Lambda developer guide, "Using Lambda with Amazon
    SQS", example standard queue message event), where ReceiveMessage answers PascalCase and bytes."""

    def b64(data: bytes | str) -> str:
        return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode("ascii")

    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = b64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues", []))
    out["binaryListValues"] = [b64(v) for v in value.get("BinaryListValues", [])]
    out["dataType"] = value["DataType"]
    return out


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS event record as the event source mapping builds it from a message."""
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _record_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def api_event(
    body: str | None,
    *,
    base64_encoded: bool = False,
    method: str = "POST",
    stage: str = "prod",
    headers: dict[str, str] | None = None,
    query: dict[str, list[str]] | None = None,
    identity: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An API Gateway REST API proxy event for POST /ingest."""
    now = time.time()
    headers = headers if headers is not None else {"Content-Type": "application/json"}
    single_query = {k: v[-1] for k, v in query.items()} if query else None
    return {
        "resource": "/ingest",
        "path": "/ingest",
        "httpMethod": method,
        "headers": dict(headers),
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": single_query,
        "multiValueQueryStringParameters": dict(query) if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/ingest",
            "httpMethod": method,
            "path": f"/{stage}/ingest",
            "stage": stage,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(now * 1000),
            "accountId": ACCOUNT_ID,
            "identity": identity
            if identity is not None
            else {"sourceIp": "127.0.0.1", "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/feeder"},
            "protocol": "HTTP/1.1",
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def scheduled_event(moment: datetime, rule_arn: str | None = None) -> dict[str, Any]:
    """The EventBridge "Scheduled Event" that a schedule rule sends its target."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [rule_arn or f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/AggregationSchedule-dev"],
        "detail": {},
    }


def error_payload(exc: BaseException) -> dict[str, Any]:
    """The response payload Lambda returns for an unhandled error."""
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": "",
        "stackTrace": traceback.format_tb(exc.__traceback__)[-5:],
    }


def invocation_record(
    function_arn: str, event: dict[str, Any], *, attempts: int, error: BaseException | None, request_id: str
) -> dict[str, Any]:
    """The record an asynchronous invocation's on-failure destination receives: the original
    event as requestPayload, the last error as responsePayload ("RetriesExhausted")."""
    return {
        "version": "1.0",
        "timestamp": _iso_millis(datetime.now(UTC)),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": attempts,
        },
        "requestPayload": event,
        "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
        "responsePayload": error_payload(error) if error is not None else None,
    }
