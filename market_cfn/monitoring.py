"""CloudWatch: error metric filters, error alarms and dead-letter-queue alarms."""

from __future__ import annotations

from troposphere import GetAtt, If, NoValue, Ref, Template
from troposphere import cloudwatch, logs, sqs

from market_cfn.config import StackConfig
from market_cfn.functions import PipelineFunction
from market_cfn.parameters import HAS_ALARM_ACTION, Params

NAMESPACE = "MarketAnalytics"
ERROR_PATTERN = "?ERROR ?Exception"
PERIOD_SECONDS = 300  # SQS publishes its metrics every 5 minutes


def _actions(params: Params) -> If:
    return If(HAS_ALARM_ACTION, [Ref(params.alarm_action_arn)], NoValue)


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
                logs.MetricTransformation(
                    MetricNamespace=NAMESPACE, MetricName=metric, MetricValue="1", DefaultValue=0
                )
            ],
        )
    )
    alarm = t.add_resource(
        cloudwatch.Alarm(
            f"{fn.base_name}ErrorAlarm",
            AlarmDescription=f"{fn.base_name} logged an error or exception.",
            Namespace=NAMESPACE,
            MetricName=metric,
            Statistic="Sum",
            Period=PERIOD_SECONDS,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=_actions(params),
        )
    )
    t.add_resource(
        cloudwatch.Alarm(
            f"{fn.base_name}InvocationErrorAlarm",
            AlarmDescription=f"{fn.base_name} failed an invocation (error, timeout or crash).",
            Namespace="AWS/Lambda",
            MetricName="Errors",
            Dimensions=[cloudwatch.MetricDimension(Name="FunctionName", Value=fn.function.ref())],
            Statistic="Sum",
            Period=PERIOD_SECONDS,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=_actions(params),
        )
    )
    return alarm


def add_dead_letter_alarm(t: Template, cfg: StackConfig, params: Params, *, dlq: sqs.Queue) -> cloudwatch.Alarm:
    """Any message in a dead-letter queue needs an operator."""
    return t.add_resource(
        cloudwatch.Alarm(
            f"{dlq.title}Alarm",
            AlarmDescription=f"{dlq.title} holds messages that failed processing.",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[cloudwatch.MetricDimension(Name="QueueName", Value=GetAtt(dlq, "QueueName"))],
            Statistic="Maximum",
            Period=PERIOD_SECONDS,
            EvaluationPeriods=1,
            Threshold=0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=_actions(params),
        )
    )
