"""EventBridge: the custom bus, its archive, the 5-minute schedule and the routing rule."""

from __future__ import annotations

from awacs.aws import PolicyDocument
from troposphere import GetAtt, Template, awslambda, events, sqs

from handlers import contract
from market_cfn.stack import policies
from market_cfn.stack.config import StackConfig
from market_cfn.stack.encryption import Encryption
from market_cfn.stack.functions import PipelineFunction
from market_cfn.stack.parameters import Params

ARCHIVE_RETENTION_DAYS = 7


def add_event_bus(
    t: Template, cfg: StackConfig, params: Params, enc: Encryption, *, invocation_dlq: sqs.Queue
) -> events.EventBus:
    """The custom bus; its archive keeps every event (processor and aggregator) for replay,
    so even an event no rule matches is never published into the void. Regulated: both
    under the stack's key (EventBridge user guide, "Encrypting EventBridge archives"
    recommends the bus's key for its archives too), and the bus has a dead-letter queue:
    with a customer managed key, an event that meets a non-retriable KMS error on the bus
    (the key disabled or its policy changed) goes to the bus's DLQ or is lost ("Using
    dead-letter queues to capture encrypted event errors in EventBridge"; "Encrypting
    EventBridge event buses with AWS KMS keys": "We strongly recommend specifying a DLQ for
    event buses"). It is InvocationDLQ, already alarmed and already open to EventBridge
    under the key (encryption.EVENTS_TARGET_QUEUES); its queue policy names the bus."""
    bus = events.EventBus("MarketEventBus", Name=params.name("market-data"))
    archive = events.Archive(
        "MarketEventArchive",
        ArchiveName=params.name("market-data"),
        SourceArn=GetAtt(bus, "Arn"),
        RetentionDays=ARCHIVE_RETENTION_DAYS,
        Description="Every event on the market-data bus, replayable for 7 days.",
    )
    if enc.data_key_arn is not None:
        bus.KmsKeyIdentifier = enc.data_key_arn
        bus.DeadLetterConfig = events.DeadLetterConfig(Arn=GetAtt(invocation_dlq, "Arn"))
        archive.KmsKeyIdentifier = enc.data_key_arn
    t.add_resource(bus)
    t.add_resource(archive)
    return bus


def _retry(max_attempts: int, max_age_seconds: int) -> events.RetryPolicy:
    return events.RetryPolicy(MaximumRetryAttempts=max_attempts, MaximumEventAgeInSeconds=max_age_seconds)


def add_aggregation_schedule(
    t: Template, cfg: StackConfig, params: Params, *, aggregator: PipelineFunction, invocation_dlq: sqs.Queue
) -> events.Rule:
    """The AggregationSchedule parameter (default every 5 minutes) on the default bus -> DataAggregator."""
    rule = t.add_resource(
        events.Rule(
            "AggregationScheduleRule",
            Name=params.name("DataAggregatorSchedule"),
            Description="Runs DataAggregator on the AggregationSchedule (default every 5 minutes).",
            ScheduleExpression=params.aggregation_schedule.ref(),
            State="ENABLED",
            Targets=[
                events.Target(
                    Id="DataAggregator",
                    Arn=GetAtt(aggregator.function, "Arn"),
                    DeadLetterConfig=events.DeadLetterConfig(Arn=GetAtt(invocation_dlq, "Arn")),
                    # A run older than one period is superseded by the next one.
                    RetryPolicy=_retry(max_attempts=10, max_age_seconds=300),
                )
            ],
        )
    )
    t.add_resource(
        awslambda.Permission(
            "DataAggregatorSchedulePermission",
            FunctionName=aggregator.function.ref(),
            Action="lambda:InvokeFunction",
            Principal="events.amazonaws.com",
            SourceArn=GetAtt(rule, "Arn"),
        )
    )
    return rule


def add_points_stored_routing(
    t: Template,
    cfg: StackConfig,
    params: Params,
    *,
    bus: events.EventBus,
    aggregation_queue: sqs.Queue,
    invocation_dlq: sqs.Queue,
    schedule_rule: events.Rule,
) -> events.Rule:
    """PointsStored events on the custom bus -> AggregationQueue (the aggregator's to-do list)."""
    rule = t.add_resource(
        events.Rule(
            "PointsStoredRule",
            Name=params.name("PointsStoredToAggregation"),
            Description="Routes the processor's PointsStored events to the aggregation queue.",
            # GetAtt Name, not Ref: the same bus name in CloudFormation, and moto (which
            # resolves Ref of an EventBus to its model object) can create the rule too.
            EventBusName=GetAtt(bus, "Name"),
            EventPattern={
                "source": [contract.EVENT_SOURCE_PROCESSOR],
                "detail-type": [contract.DETAIL_TYPE_POINTS_STORED],
            },
            State="ENABLED",
            Targets=[
                events.Target(
                    Id="AggregationQueue",
                    Arn=GetAtt(aggregation_queue, "Arn"),
                    # The queue message is the event's detail: the touched windows.
                    InputPath="$.detail",
                    DeadLetterConfig=events.DeadLetterConfig(Arn=GetAtt(invocation_dlq, "Arn")),
                    RetryPolicy=_retry(max_attempts=185, max_age_seconds=86400),
                )
            ],
        )
    )
    t.add_resource(
        sqs.QueuePolicy(
            "AggregationQueuePolicy",
            Queues=[aggregation_queue.ref()],
            PolicyDocument=PolicyDocument(
                Version=policies.VERSION,
                Statement=[
                    policies.allow_service_send(
                        "AllowPointsStoredRule",
                        "events.amazonaws.com",
                        GetAtt(aggregation_queue, "Arn"),
                        [GetAtt(rule, "Arn")],
                    )
                ],
            ),
        )
    )
    # EventBridge sends events it could not deliver to the rules' DLQ with its own
    # service principal, so the DLQ needs a resource policy naming both rules (and, where
    # the bus has InvocationDLQ as its own DLQ, the bus: the source of those events).
    t.add_resource(
        sqs.QueuePolicy(
            "InvocationDLQPolicy",
            Queues=[invocation_dlq.ref()],
            PolicyDocument=PolicyDocument(
                Version=policies.VERSION,
                Statement=[
                    policies.allow_service_send(
                        "AllowRuleDeadLetters",
                        "events.amazonaws.com",
                        GetAtt(invocation_dlq, "Arn"),
                        [GetAtt(rule, "Arn"), GetAtt(schedule_rule, "Arn")]
                        + ([GetAtt(bus, "Arn")] if "DeadLetterConfig" in bus.properties else []),
                    )
                ],
            ),
        )
    )
    return rule
