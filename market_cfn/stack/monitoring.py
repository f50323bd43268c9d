"""CloudWatch: error metric filters, error alarms and dead-letter-queue alarms."""

from __future__ import annotations

from troposphere import GetAtt, If, NoValue, Ref, Template, cloudwatch, logs, sqs

from market_cfn.stack.config import StackConfig
from market_cfn.stack.functions import PipelineFunction
from market_cfn.stack.parameters import HAS_ALARM_ACTION, Params

NAMESPACE = "MarketAnalytics"
ERROR_PATTERN = "?ERROR ?Exception"
PERIOD_SECONDS = 300  # SQS publishes its metrics every 5 minutes


def _actions(params: Params) -> If:
    return If(HAS_ALARM_ACTION, [Ref(params.alarm_action_arn)], NoValue)


def _alarm_on_any(
    logical_id: str,
    params: Params,
    *,
    description: str,
    namespace: str,
    metric: str,
    statistic: str,
    dimensions: list[cloudwatch.MetricDimension] | None = None,
) -> cloudwatch.Alarm:
    """Alarm when the metric is above 0 in one 5-minute period; no data is not a breach."""
    alarm = cloudwatch.Alarm(
        logical_id,
        AlarmDescription=description,
        Namespace=namespace,
        MetricName=metric,
        Statistic=statistic,
        Period=PERIOD_SECONDS,
        EvaluationPeriods=1,
        Threshold=0,
        ComparisonOperator="GreaterThanThreshold",
        TreatMissingData="notBreaching",
        AlarmActions=_actions(params),
    )
    if dimensions:
        alarm.Dimensions = dimensions
    return alarm


def error_metric_name(fn: PipelineFunction) -> str:
    return f"{fn.base_name}ErrorCount"


def add_function_alarms(t: Template, cfg: StackConfig, params: Params, *, fn: PipelineFunction) -> cloudwatch.Alarm:
    """Count `?ERROR ?Exception` log lines into MarketAnalytics/<Function>ErrorCount and alarm
    on any; also alarm on the AWS/Lambda Errors metric, which counts timeouts and crashes
    that never reach a log line."""
    metric = error_metric_name(fn)
    t.add_resource(
        logs.MetricFilter(
            f"{fn.base_name}ErrorMetricFilter",
            LogGroupName=fn.log_group.ref(),
            FilterPattern=ERROR_PATTERN,
            MetricTransformations=[
                logs.MetricTransformation(MetricNamespace=NAMESPACE, MetricName=metric, MetricValue="1", DefaultValue=0)
            ],
        )
    )
    alarm = t.add_resource(
        _alarm_on_any(
            f"{fn.base_name}ErrorAlarm",
            params,
            description=f"{fn.base_name} logged an error or exception.",
            namespace=NAMESPACE,
            metric=metric,
            statistic="Sum",
        )
    )
    t.add_resource(
        _alarm_on_any(
            f"{fn.base_name}InvocationErrorAlarm",
            params,
            description=f"{fn.base_name} failed an invocation (error, timeout or crash).",
            namespace="AWS/Lambda",
            metric="Errors",
            statistic="Sum",
            dimensions=[cloudwatch.MetricDimension(Name="FunctionName", Value=fn.function.ref())],
        )
    )
    return alarm


def add_dead_letter_alarm(t: Template, cfg: StackConfig, params: Params, *, dlq: sqs.Queue) -> cloudwatch.Alarm:
    """Any message in a dead-letter queue needs an operator."""
    return t.add_resource(
        _alarm_on_any(
            f"{dlq.title}Alarm",
            params,
            description=f"{dlq.title} holds messages that failed processing.",
            namespace="AWS/SQS",
            metric="ApproximateNumberOfMessagesVisible",
            statistic="Maximum",
            dimensions=[cloudwatch.MetricDimension(Name="QueueName", Value=GetAtt(dlq, "QueueName"))],
        )
    )
