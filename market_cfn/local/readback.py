"""Reading the pipeline's state back (table items, aggregates, rejection reports, queue depths)
for simulate's summary and the local service's tests; the handlers never read state this way."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

AGGREGATE_FIELDS = ("open", "high", "low", "close", "count", "volume", "vwap")


def table_items(ddb: DynamoDBClient, table: str) -> list[dict[str, Any]]:
    """Every item of the table, as plain Python values (a Scan, every page)."""
    from boto3.dynamodb.types import TypeDeserializer

    des = TypeDeserializer()
    items: list[dict[str, Any]] = []
    params: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    while True:
        page = ddb.scan(**params)
        items.extend({k: des.deserialize(v) for k, v in it.items()} for it in page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            return items
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def is_point(item: dict[str, Any]) -> bool:
    from handlers.contract import AGGREGATE_KEY_SUFFIX

    return not str(item["symbol"]).endswith(AGGREGATE_KEY_SUFFIX)


def aggregates_of(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The 5-minute aggregates among the items, sorted by (symbol, window_start)."""
    from handlers.contract import AGGREGATE_KEY_SUFFIX

    found = [
        {
            "symbol": item["symbol"][: -len(AGGREGATE_KEY_SUFFIX)],
            "window_start": int(item["timestamp"]),
            **{k: plain(item.get(k)) for k in AGGREGATE_FIELDS},
        }
        for item in items
        if not is_point(item)
    ]
    found.sort(key=lambda a: (a["symbol"], a["window_start"]))
    return found


def rejections(s3: S3Client, bucket: str) -> list[dict[str, str]]:
    """Every rejection preserved in the rejects bucket's reports."""
    found: list[dict[str, str]] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix="rejects/"):
        for obj in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            found.extend(json.loads(line) for line in body.splitlines() if line.strip())
    return found


def queue_depth(sqs: SQSClient, url: str) -> int:
    """Visible + in flight + delayed messages of a queue."""
    attrs = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


def plain(value: Any) -> Any:
    """A DynamoDB Decimal as a JSON number (int when integral)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value
