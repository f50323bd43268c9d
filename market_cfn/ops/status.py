"""The `status` core: one read-only look at the stack, its queues, alarms, aggregates and rejections.

Every figure says where it comes from, and one that cannot be read is reported as
"unknown" with the reason, never as zero:
- queue depth: SQS ApproximateNumberOfMessages (visible), ...NotVisible (in flight),
  ...Delayed - GetQueueAttributes, eventually consistent by SQS's own definition;
- oldest message age: CloudWatch `AWS/SQS ApproximateAgeOfOldestMessage` (Maximum over the
  last 15 minutes; SQS publishes queue metrics once a minute) - SQS has no API for it;
- alarms: DescribeAlarms on the stack's AWS::CloudWatch::Alarm resources;
- newest aggregate: a Query (newest first, 1 item) on `<SYMBOL>#5m` for each --symbol;
  finding it across every symbol would need a Scan of the whole table, which status
  never does; the last DataAggregator run comes from its log group instead;
- recent rejections: the newest reports in the rejects bucket (ListObjectsV2, every page).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from handlers.contract import AGGREGATE_KEY_SUFFIX
from market_cfn.ops.resources import DEAD_LETTER_QUEUES, Stack
from market_cfn.ops.values import iso_ms

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cloudwatch.type_defs import CompositeAlarmTypeDef, MetricAlarmTypeDef
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_logs.type_defs import FilteredLogEventTypeDef
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.literals import QueueAttributeFilterType

QUEUE_ATTRIBUTES: list[QueueAttributeFilterType] = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


def _why(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{exc.operation_name}: {error.get('Code')}"


def oldest_message_age(cloudwatch: CloudWatchClient, queue_name: str, now: datetime) -> dict[str, Any]:
    try:
        answer = cloudwatch.get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName="ApproximateAgeOfOldestMessage",
            Dimensions=[{"Name": "QueueName", "Value": queue_name}],
            StartTime=now - timedelta(minutes=15),
            EndTime=now,
            Period=60,
            Statistics=["Maximum"],
        )
    except ClientError as exc:
        return {"seconds": None, "note": f"unknown ({_why(exc)})"}
    points = sorted(answer.get("Datapoints", []), key=lambda d: d["Timestamp"])
    if not points:
        return {"seconds": None, "note": "unknown (no CloudWatch datapoint in the last 15 minutes)"}
    newest = points[-1]
    return {"seconds": newest.get("Maximum"), "note": f"at {newest['Timestamp'].astimezone(UTC):%H:%M:%S}Z"}


def queues(sqs: SQSClient, cloudwatch: CloudWatchClient, stack: Stack, now: datetime) -> list[dict[str, Any]]:
    rows = []
    for resource in stack.of_type("AWS::SQS::Queue"):
        url = resource.physical_id
        row: dict[str, Any] = {
            "queue": resource.logical_id,
            "name": url.rstrip("/").rsplit("/", 1)[-1],
            "dead_letter": resource.logical_id in DEAD_LETTER_QUEUES,
        }
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=QUEUE_ATTRIBUTES)["Attributes"]
            row["visible"] = int(attributes.get("ApproximateNumberOfMessages", 0))
            row["in_flight"] = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
            row["delayed"] = int(attributes.get("ApproximateNumberOfMessagesDelayed", 0))
        except ClientError as exc:
            row["visible"] = row["in_flight"] = row["delayed"] = None
            row["error"] = _why(exc)
        row["oldest_age"] = oldest_message_age(cloudwatch, row["name"], now)
        rows.append(row)
    return rows


def alarms(cloudwatch: CloudWatchClient, stack: Stack) -> list[dict[str, Any]]:
    names = [r.physical_id for r in stack.of_type("AWS::CloudWatch::Alarm")]
    found: dict[str, MetricAlarmTypeDef | CompositeAlarmTypeDef] = {}
    for start in range(0, len(names), 100):  # DescribeAlarms takes at most 100 names
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=names[start : start + 100]):
            for described in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                found[described["AlarmName"]] = described
    rows = []
    for resource in stack.of_type("AWS::CloudWatch::Alarm"):
        alarm = found.get(resource.physical_id)
        rows.append(
            {
                "alarm": resource.logical_id,
                "name": resource.physical_id,
                "state": alarm.get("StateValue") if alarm else "unknown (not found on the endpoint)",
                "reason": (alarm or {}).get("StateReason", ""),
            }
        )
    if stack.unnamed:  # an emulator that lists some resources without a name: the template's alarms
        listed = {row["alarm"] for row in rows}
        for logical, declared in sorted((stack.template.get("Resources") or {}).items()):
            if (
                isinstance(declared, dict)
                and declared.get("Type") == "AWS::CloudWatch::Alarm"
                and logical not in listed
            ):
                rows.append(
                    {"alarm": logical, "name": "", "state": "unknown (not created by the endpoint)", "reason": ""}
                )
    return rows


def newest_aggregates(ddb: DynamoDBClient, table: str, symbols: list[str]) -> list[dict[str, Any]]:
    rows = []
    for symbol in symbols:
        answer = ddb.query(
            TableName=table,
            KeyConditionExpression="#s = :s",
            ExpressionAttributeNames={"#s": "symbol"},
            ExpressionAttributeValues={":s": {"S": symbol + AGGREGATE_KEY_SUFFIX}},
            ScanIndexForward=False,
            Limit=1,
        )
        items = answer.get("Items", [])
        rows.append({"symbol": symbol, "window_start": iso_ms(int(items[0]["timestamp"]["N"])) if items else None})
    return rows


def last_aggregation_run(logs: CloudWatchLogsClient, log_group: str, now: datetime, hours: int = 24) -> dict[str, Any]:
    """The newest `aggregation run` line DataAggregator logged in the last `hours`."""
    newest: FilteredLogEventTypeDef | None = None
    kwargs: dict[str, Any] = {
        "logGroupName": log_group,
        "startTime": int((now - timedelta(hours=hours)).timestamp() * 1000),
        "filterPattern": '"aggregation run"',
    }
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            for event in page.get("events", []):
                if newest is None or event["timestamp"] >= newest["timestamp"]:
                    newest = event
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except ClientError as exc:
        return {"time": None, "note": f"unknown ({_why(exc)})"}
    if newest is None:
        return {"time": None, "note": f"no DataAggregator run logged in the last {hours} h"}
    try:
        line = json.loads(newest["message"])
    except ValueError:
        line = {}
    detail = {k: v for k, v in line.items() if k in ("windows", "deferred_windows", "messages")}
    return {"time": iso_ms(newest["timestamp"]), "note": ", ".join(f"{k} {v}" for k, v in detail.items())}


def recent_rejections(s3: S3Client, bucket: str, limit: int = 5) -> dict[str, Any]:
    reports = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="rejects/"):
            reports.extend(page.get("Contents", []))
    except ClientError as exc:
        return {"reports": None, "newest": [], "note": f"unknown ({_why(exc)})"}
    reports.sort(key=lambda o: o["LastModified"], reverse=True)
    return {
        "reports": len(reports),
        "newest": [
            {"key": o["Key"], "bytes": o.get("Size", 0), "time": o["LastModified"].astimezone(UTC).isoformat()}
            for o in reports[:limit]
        ],
        "note": "",
    }


def status(clients: dict[str, Any], stack: Stack, *, symbols: list[str], now: datetime | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain data. `clients` maps service name -> boto3 client."""
    now = now or datetime.now(UTC)
    from market_cfn.deploy.follow import resolve_outputs_locally

    # Every declared Output: those the endpoint reports, the rest resolved from physical IDs (and said so).
    resolved = resolve_outputs_locally(clients["cloudformation"], stack.stack_id, stack.raw)
    outputs, outputs_note = dict(resolved.values), resolved.note()
    try:
        alarm_rows = alarms(clients["cloudwatch"], stack)
    except ClientError as exc:
        alarm_rows = [{"alarm": "*", "name": "", "state": f"unknown ({_why(exc)})", "reason": ""}]
    return {
        "stack": {"name": stack.name, "status": stack.status, "reason": stack.status_reason},
        "outputs": outputs,
        "outputs_note": outputs_note,
        "queues": queues(clients["sqs"], clients["cloudwatch"], stack, now),
        "alarms": alarm_rows,
        "newest_aggregates": newest_aggregates(clients["dynamodb"], stack.table(), symbols),
        "last_aggregation_run": last_aggregation_run(clients["logs"], stack.log_group("DataAggregator"), now),
        "rejections": recent_rejections(clients["s3"], stack.rejects_bucket()),
    }
