"""CloudWatch: the alarm topic, error metric filters, and an alarm for every way the pipeline fails.

Every alarm notifies the stack's encrypted alarm topic (and AlarmActionArn when set) both
when it fires and when it recovers. docs/operations.md, "Runbook", says for each alarm
what it means and what to do.
"""

from __future__ import annotations

from awacs.aws import Allow, ArnLike, Condition, PolicyDocument, Principal, Statement, StringEquals
from awacs.sns import Publish
from troposphere import GetAtt, If, Ref, Sub, Template, cloudwatch, events, logs, sns, sqs

from market_cfn.stack import policies
from market_cfn.stack.config import FUNCTION_TIMEOUT_SECONDS, StackConfig
from market_cfn.stack.encryption import Encryption
from market_cfn.stack.functions import PipelineFunction
from market_cfn.stack.parameters import HAS_ALARM_ACTION, HAS_ALARM_EMAIL, Params
from market_cfn.stack.suppressions import suppress

NAMESPACE = "MarketAnalytics"
PERIOD_SECONDS = 300  # SQS publishes its metrics every 5 minutes
# Powertools Logger writes one JSON object per line with the level in `level`: match the
# field, never a substring, so a WARNING that echoes an object key such as
# "uploads/Exception-report.csv" does not count (CloudWatch Logs user guide, "Filter
# pattern syntax": JSON property selectors).
JSON_ERROR_PATTERN = '{ $.level = "ERROR" || $.level = "CRITICAL" }'
# The runtime's own lines are not JSON: an unhandled exception or a failed init is one
# log event starting with "[ERROR]" (the standard library's logger writes "[ERROR]<tab>...").
# A space-delimited pattern tests the first field only; CloudWatch Logs treats text in
# brackets as one field, so both the bracketed and the bare form are accepted. A
# Powertools line's first field is always `{"level":...`, so user data cannot match.
CRASH_PATTERN = '[level = "[ERROR]*" || level = "ERROR*", ...]'
# Metrics the handlers publish with Powertools (namespace MarketAnalytics, dimension
# `service` = the function name): read from handlers/, tested against their source.
POINTS_STORED = "PointsStored"
AGGREGATES_COMPUTED = "AggregatesComputed"
DURATION_ALARM_FRACTION = 0.8
QUEUE_AGE_THRESHOLD_SECONDS = {"ProcessingQueue": 900, "AggregationQueue": 1800}
API_LATENCY_P99_MS = 10_000
FRESHNESS_PERIOD_SECONDS = 900
FRESHNESS_PERIODS = 2


def add_alarm_topic(t: Template, cfg: StackConfig, params: Params, enc: Encryption) -> sns.Topic:
    """The encrypted topic every alarm notifies; an optional e-mail subscription."""
    topic = t.add_resource(
        sns.Topic(
            "AlarmTopic",
            TopicName=params.name("market-data-alarms"),
            DisplayName="market-data alarms",
            KmsMasterKeyId=enc.key_arn,
        )
    )
    t.add_resource(
        sns.TopicPolicy(
            "AlarmTopicPolicy",
            Topics=[topic.ref()],
            PolicyDocument=PolicyDocument(
                Version=policies.VERSION,
                Statement=[
                    # Only this account's alarms publish (CloudWatch user guide, "Amazon SNS
                    # topic policy for alarm actions": aws:SourceArn, aws:SourceAccount).
                    Statement(
                        Sid="AllowThisAccountsAlarms",
                        Effect=Allow,
                        Principal=Principal("Service", ["cloudwatch.amazonaws.com"]),
                        Action=[Publish],
                        Resource=[topic.ref()],
                        Condition=Condition(
                            [
                                ArnLike(
                                    "aws:SourceArn",
                                    Sub("arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"),
                                ),
                                StringEquals("aws:SourceAccount", Sub("${AWS::AccountId}")),
                            ]
                        ),
                    )
                ],
            ),
        )
    )
    subscription = sns.SubscriptionResource(
        "AlarmEmailSubscription",
        Condition=HAS_ALARM_EMAIL,
        TopicArn=topic.ref(),
        Protocol="email",
        Endpoint=params.alarm_email.ref(),
    )
    suppress(
        subscription,
        cfn_lint={
            "ES7000": "An alarm notice that cannot be e-mailed is not lost: the alarm's state stays on "
            "the dashboard and in CloudWatch, and the topic's other subscribers still receive it.",
        },
    )
    t.add_resource(subscription)
    return topic


class Alarms:
    """Builds alarms that all notify the same actions."""

    def __init__(self, t: Template, params: Params, topic: sns.Topic) -> None:
        self.t = t
        self.params = params
        self.actions = If(HAS_ALARM_ACTION, [topic.ref(), Ref(params.alarm_action_arn)], [topic.ref()])
        self.created: list[cloudwatch.Alarm] = []

    def add(self, logical_id: str, *, description: str, **properties: object) -> cloudwatch.Alarm:
        properties.setdefault("EvaluationPeriods", 1)
        properties.setdefault("TreatMissingData", "notBreaching")
        alarm = cloudwatch.Alarm(
            logical_id,
            AlarmName=self.params.name(logical_id),
            AlarmDescription=f"{description} Runbook: docs/operations.md#{logical_id.lower()}",
            AlarmActions=self.actions,
            OKActions=self.actions,
            **properties,
        )
        self.created.append(self.t.add_resource(alarm))
        return alarm

    def on_any(
        self,
        logical_id: str,
        *,
        description: str,
        namespace: str,
        metric: str,
        dimensions: dict[str, object],
        statistic: str = "Sum",
    ) -> cloudwatch.Alarm:
        """Above 0 in one 5-minute period; no data is not a breach."""
        properties: dict[str, object] = {}
        if dimensions:
            properties["Dimensions"] = _dimensions(dimensions)
        return self.add(
            logical_id,
            description=description,
            Namespace=namespace,
            MetricName=metric,
            Statistic=statistic,
            Period=PERIOD_SECONDS,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            **properties,
        )


def _dimensions(dimensions: dict[str, object]) -> list[cloudwatch.MetricDimension] | None:
    if not dimensions:
        return None
    return [cloudwatch.MetricDimension(Name=k, Value=v) for k, v in dimensions.items()]


def error_metric_name(fn: PipelineFunction, params: Params) -> Sub:
    """<Function>ErrorCount-<env>: environments sharing an account keep their own counts."""
    return Sub(f"{fn.base_name}ErrorCount-${{Env}}", Env=params.env_suffix.ref())


def add_function_alarms(t: Template, params: Params, alarms: Alarms, *, fn: PipelineFunction) -> None:
    """Logged errors and crashes, failed invocations, throttles, duration near the timeout."""
    metric = error_metric_name(fn, params)
    for suffix, pattern in (("ErrorMetricFilter", JSON_ERROR_PATTERN), ("CrashMetricFilter", CRASH_PATTERN)):
        t.add_resource(
            logs.MetricFilter(
                f"{fn.base_name}{suffix}",
                LogGroupName=fn.log_group.ref(),
                FilterPattern=pattern,
                MetricTransformations=[
                    logs.MetricTransformation(
                        MetricNamespace=NAMESPACE, MetricName=metric, MetricValue="1", DefaultValue=0
                    )
                ],
            )
        )
    name = {"FunctionName": fn.function.ref()}
    base = fn.base_name
    alarms.on_any(
        f"{base}ErrorAlarm",
        description=f"{base} logged an ERROR line or crashed.",
        namespace=NAMESPACE,
        metric=metric,
        dimensions={},
    )
    alarms.on_any(
        f"{base}InvocationErrorAlarm",
        description=f"{base} failed an invocation (error, timeout or crash).",
        namespace="AWS/Lambda",
        metric="Errors",
        dimensions=name,
    )
    alarms.on_any(
        f"{base}ThrottleAlarm",
        description=f"{base} invocations were throttled (concurrency limit reached).",
        namespace="AWS/Lambda",
        metric="Throttles",
        dimensions=name,
    )
    alarms.add(
        f"{base}DurationAlarm",
        description=f"{base} ran longer than {int(DURATION_ALARM_FRACTION * 100)}% of its {FUNCTION_TIMEOUT_SECONDS} s timeout.",
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Dimensions=_dimensions(name),
        Statistic="Maximum",
        Period=PERIOD_SECONDS,
        Threshold=DURATION_ALARM_FRACTION * FUNCTION_TIMEOUT_SECONDS * 1000,
        ComparisonOperator="GreaterThanThreshold",
    )


def add_queue_age_alarm(alarms: Alarms, *, queue: sqs.Queue) -> None:
    """The oldest message has waited too long: the consumer is stuck, failing or too slow."""
    threshold = QUEUE_AGE_THRESHOLD_SECONDS[queue.title]
    alarms.add(
        f"{queue.title}AgeAlarm",
        description=f"The oldest message in {queue.title} is older than {threshold // 60} minutes.",
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=_dimensions({"QueueName": GetAtt(queue, "QueueName")}),
        Statistic="Maximum",
        Period=PERIOD_SECONDS,
        Threshold=threshold,
        ComparisonOperator="GreaterThanThreshold",
    )


def add_dead_letter_alarm(alarms: Alarms, *, dlq: sqs.Queue) -> None:
    """Any message in a dead-letter queue needs an operator."""
    alarms.on_any(
        f"{dlq.title}Alarm",
        description=f"{dlq.title} holds messages that failed processing.",
        namespace="AWS/SQS",
        metric="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": GetAtt(dlq, "QueueName")},
        statistic="Maximum",
    )


def add_api_alarms(alarms: Alarms, params: Params) -> None:
    dims = {"ApiName": params.name("MarketDataApi"), "Stage": params.env_suffix.ref()}
    alarms.on_any(
        "IngestApi5XXAlarm",
        description="POST /ingest answered 5XX: callers must retry, their points are not stored yet.",
        namespace="AWS/ApiGateway",
        metric="5XXError",
        dimensions=dims,
    )
    alarms.add(
        "IngestApiLatencyAlarm",
        description=f"POST /ingest p99 latency above {API_LATENCY_P99_MS} ms for 15 minutes.",
        Namespace="AWS/ApiGateway",
        MetricName="Latency",
        Dimensions=_dimensions(dims),
        ExtendedStatistic="p99",
        Period=PERIOD_SECONDS,
        EvaluationPeriods=3,
        DatapointsToAlarm=3,
        Threshold=API_LATENCY_P99_MS,
        ComparisonOperator="GreaterThanThreshold",
    )


def _query(
    query_id: str, namespace: str, metric: str, dims: dict[str, object], period: int
) -> cloudwatch.MetricDataQuery:
    return cloudwatch.MetricDataQuery(
        Id=query_id,
        ReturnData=False,
        MetricStat=cloudwatch.MetricStat(
            Metric=cloudwatch.Metric(Namespace=namespace, MetricName=metric, Dimensions=_dimensions(dims)),
            Period=period,
            Stat="Sum",
        ),
    )


def add_rule_alarm(alarms: Alarms, *, rule: events.Rule, bus: events.EventBus | None) -> None:
    """Events the rule could not deliver: failed for good, sent to the DLQ, or lost because
    the DLQ refused them. Custom-bus rules report with EventBusName and RuleName, default-bus
    rules with RuleName only (EventBridge user guide, "Monitoring Amazon EventBridge")."""
    dims: dict[str, object] = {"RuleName": rule.Name}
    if bus is not None:
        dims = {"EventBusName": GetAtt(bus, "Name"), **dims}
    metrics = {"failed": "FailedInvocations", "dlq": "InvocationsSentToDlq", "lost": "InvocationsFailedToBeSentToDlq"}
    alarms.add(
        f"{rule.title}DeliveryAlarm",
        description=f"{rule.title} failed to deliver events (FailedInvocations, InvocationsSentToDlq or "
        "InvocationsFailedToBeSentToDlq above 0).",
        Metrics=[
            cloudwatch.MetricDataQuery(
                Id="undelivered",
                Expression="FILL(failed, 0) + FILL(dlq, 0) + FILL(lost, 0)",
                Label="Undelivered events",
                ReturnData=True,
            ),
            *(_query(qid, "AWS/Events", metric, dims, PERIOD_SECONDS) for qid, metric in metrics.items()),
        ],
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )


def add_freshness_alarm(alarms: Alarms, params: Params) -> None:
    """Points are being stored but no aggregate has been written for 30 minutes."""
    period = FRESHNESS_PERIOD_SECONDS
    alarms.add(
        "AggregationFreshnessAlarm",
        description="DataProcessor stored points but DataAggregator wrote no aggregate for "
        f"{FRESHNESS_PERIODS * period // 60} minutes.",
        Metrics=[
            cloudwatch.MetricDataQuery(
                Id="stale",
                Expression="IF(FILL(points, 0) > 0 AND FILL(aggregates, 0) == 0, 1, 0)",
                Label="Points stored without aggregates",
                ReturnData=True,
            ),
            _query("points", NAMESPACE, POINTS_STORED, {"service": params.name("DataProcessor")}, period),
            _query("aggregates", NAMESPACE, AGGREGATES_COMPUTED, {"service": params.name("DataAggregator")}, period),
        ],
        EvaluationPeriods=FRESHNESS_PERIODS,
        DatapointsToAlarm=FRESHNESS_PERIODS,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
    )
