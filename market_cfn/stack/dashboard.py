"""The CloudWatch dashboard: one row per stage of the data flow, top to bottom.

1 in (objects, API requests, records accepted and rejected) -> 2 ProcessingQueue ->
3 stored (points, failed messages) -> 4 AggregationQueue and aggregates written ->
dead letters -> the functions' errors, throttles and duration -> the alarms.
"""

from __future__ import annotations

import json
from typing import Any

from troposphere import Sub, Template, cloudwatch

from market_cfn.stack.monitoring import AGGREGATES_COMPUTED, NAMESPACE, POINTS_STORED
from market_cfn.stack.parameters import FUNCTION_BASE_NAMES, Params

WIDTH = 24
HEIGHT = 6
DLQS = ("ProcessingDLQ", "AggregationDLQ", "InvocationDLQ")


def _fn(base: str) -> str:
    return f"{base}-${{Env}}"


def _graph(title: str, metrics: list[list[Any]], *, stat: str = "Sum", width: int = 12) -> dict[str, Any]:
    return {
        "type": "metric",
        "width": width,
        "height": HEIGHT,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "view": "timeSeries",
            "stat": stat,
            "period": 300,
            "metrics": metrics,
        },
    }


def _text(markdown: str) -> dict[str, Any]:
    return {"type": "text", "width": WIDTH, "height": 1, "properties": {"markdown": markdown}}


def _custom(metric: str, base: str) -> list[Any]:
    return [NAMESPACE, metric, "service", _fn(base), {"label": metric}]


def _queue(metric: str, queue: str, label: str | None = None) -> list[Any]:
    return ["AWS/SQS", metric, "QueueName", f"{queue}-${{Env}}", {"label": label or queue}]


def dashboard_body(alarm_ids: list[str]) -> str:
    """The dashboard JSON with ${Env} and the pseudo parameters left for Fn::Sub."""
    api = ["AWS/ApiGateway", "{}", "ApiName", "MarketDataApi-${Env}", "Stage", "${Env}"]
    widgets = [
        _text("## 1. In: S3 objects and POST /ingest -> DataIngestion"),
        _graph(
            "Records in, accepted, rejected (DataIngestion)",
            [_custom(m, "DataIngestion") for m in ("RecordsIn", "AcceptedRecords", "RejectedRecords")],
        ),
        _graph(
            "Objects and requests in",
            [
                [
                    "AWS/Lambda",
                    "Invocations",
                    "FunctionName",
                    _fn("DataIngestion"),
                    {"label": "DataIngestion invocations"},
                ],
                [*api[:1], "Count", *api[2:], {"label": "POST /ingest requests"}],
                [*api[:1], "4XXError", *api[2:], {"label": "4XX (rejected bodies)"}],
                [*api[:1], "5XXError", *api[2:], {"label": "5XX"}],
            ],
        ),
        _text("## 2. ProcessingQueue -> DataProcessor"),
        _graph(
            "ProcessingQueue depth",
            [
                _queue("ApproximateNumberOfMessagesVisible", "ProcessingQueue", "visible"),
                _queue("ApproximateNumberOfMessagesNotVisible", "ProcessingQueue", "in flight"),
            ],
            stat="Maximum",
        ),
        _graph(
            "ProcessingQueue oldest message (s)",
            [_queue("ApproximateAgeOfOldestMessage", "ProcessingQueue", "age")],
            stat="Maximum",
        ),
        _text("## 3. Stored: DynamoDB points, PointsStored events"),
        _graph(
            "Points stored, messages received and failed (DataProcessor)",
            [
                _custom(m, "DataProcessor")
                for m in ("MessagesReceived", POINTS_STORED, "FailedMessages", "PointsStoredSentDirectly")
            ],
            width=WIDTH,
        ),
        _text("## 4. AggregationQueue -> DataAggregator -> aggregates"),
        _graph(
            "AggregationQueue depth and oldest message (s)",
            [
                _queue("ApproximateNumberOfMessagesVisible", "AggregationQueue", "visible"),
                _queue("ApproximateAgeOfOldestMessage", "AggregationQueue", "oldest (s)"),
            ],
            stat="Maximum",
        ),
        _graph(
            "Aggregates written, windows deferred, retried, dead-lettered (DataAggregator)",
            [
                _custom(m, "DataAggregator")
                for m in (AGGREGATES_COMPUTED, "WindowsDeferred", "WindowsRetried", "WindowsDeadLettered")
            ],
        ),
        _text("## Dead letters (each needs an operator: docs/operations.md, Runbook)"),
        _graph(
            "Messages in dead-letter queues",
            [_queue("ApproximateNumberOfMessagesVisible", dlq) for dlq in DLQS],
            stat="Maximum",
            width=WIDTH,
        ),
        _text("## Functions and API"),
        _graph(
            "Errors and throttles",
            [
                ["AWS/Lambda", metric, "FunctionName", _fn(base), {"label": f"{base} {metric}"}]
                for base in FUNCTION_BASE_NAMES
                for metric in ("Errors", "Throttles")
            ],
        ),
        _graph(
            "Duration, maximum (ms)",
            [["AWS/Lambda", "Duration", "FunctionName", _fn(base), {"label": base}] for base in FUNCTION_BASE_NAMES],
            stat="Maximum",
        ),
        _graph(
            "POST /ingest latency (ms)",
            [
                [*api[:1], "Latency", *api[2:], {"stat": "p50", "label": "p50"}],
                [*api[:1], "Latency", *api[2:], {"stat": "p99", "label": "p99"}],
            ],
            stat="p99",
            width=WIDTH,
        ),
        {
            "type": "alarm",
            "width": WIDTH,
            "height": HEIGHT,
            # ARNs from the alarms' names (<logical id>-<env>), not Fn::GetAtt: the dashboard
            # then renders the same on moto, which cannot create alarms from a template.
            "properties": {
                "title": "Alarms",
                "alarms": [
                    f"arn:${{AWS::Partition}}:cloudwatch:${{AWS::Region}}:${{AWS::AccountId}}:alarm:{alarm_id}-${{Env}}"
                    for alarm_id in alarm_ids
                ],
            },
        },
    ]
    return json.dumps({"widgets": widgets}, sort_keys=True, separators=(",", ":"))


def add_dashboard(t: Template, params: Params, *, alarm_ids: list[str]) -> cloudwatch.Dashboard:
    return t.add_resource(
        cloudwatch.Dashboard(
            "PipelineDashboard",
            DashboardName=params.account_name("market-data"),
            DashboardBody=Sub(dashboard_body(alarm_ids), Env=params.env_suffix.ref()),
        )
    )
