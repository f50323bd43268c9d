"""SQS: the processing queue, the aggregation queue and the dead-letter queues."""

from __future__ import annotations

from troposphere import GetAtt, Template, sqs

from market_cfn.stack.config import FUNCTION_TIMEOUT_SECONDS, StackConfig
from market_cfn.stack.encryption import Encryption
from market_cfn.stack.parameters import Params
from market_cfn.stack.protection import protect
from market_cfn.stack.suppressions import suppress

FOUR_DAYS_SECONDS = 4 * 24 * 3600
FOURTEEN_DAYS_SECONDS = 14 * 24 * 3600  # the SQS maximum
# AWS: "set the maxReceiveCount on the source queue's redrive policy to at least 5"
# (Lambda developer guide, "Using Lambda with Amazon SQS", configuring a queue), so a
# batch Lambda received but could not run (throttled, or scaling) is not dead-lettered
# while its data is healthy. AggregationQueue gets the same: a run that times out or
# meets DynamoDB throttling must not dead-letter the windows it held.
PROCESSING_MAX_RECEIVE_COUNT = 5
AGGREGATION_MAX_RECEIVE_COUNT = 5
# AWS: "set the source queue's visibility timeout to at least six times the timeout that
# you configure on your function" (Lambda developer guide, "Using Lambda with Amazon
# SQS"), so a batch retried after throttling is not received twice at once.
PROCESSING_VISIBILITY_TIMEOUT_SECONDS = 6 * FUNCTION_TIMEOUT_SECONDS
# DataAggregator polls its queue itself: a message must stay invisible for longer than
# one run (the function timeout) so that two runs never hold the same message.
AGGREGATION_VISIBILITY_TIMEOUT_SECONDS = FUNCTION_TIMEOUT_SECONDS + 60
# DataIngestion packs points into messages of up to 1 MiB (handlers/core/wire.py), the
# SQS maximum. Set it explicitly rather than rely on a default (262,144 bytes on queues
# created before the 2025 increase): every queue, so a DLQ accepts what it is redriven.
MAXIMUM_MESSAGE_SIZE_BYTES = 1_048_576


def _queue(logical_id: str, cfg: StackConfig, enc: Encryption, **properties: object) -> sqs.Queue:
    # Queues hold data in flight, so their policies are explicit, but a queue is never
    # retained: a retained queue would block the next stack with the same name.
    if enc.data_key_arn is not None:
        return protect(
            sqs.Queue(
                logical_id,
                KmsMasterKeyId=enc.data_key_arn,
                MaximumMessageSize=MAXIMUM_MESSAGE_SIZE_BYTES,
                **properties,
            ),
            retain=False,
        )
    queue = sqs.Queue(
        logical_id, SqsManagedSseEnabled=True, MaximumMessageSize=MAXIMUM_MESSAGE_SIZE_BYTES, **properties
    )
    suppress(
        queue,
        checkov={
            "CKV_AWS_27": "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which this check does "
            "not recognise (it looks for KmsMasterKeyId only). The AWS managed aws/sqs KMS key would "
            "block EventBridge and S3 deliveries (its key policy cannot grant them) and bill every request.",
        },
    )
    return protect(queue, retain=False)


def _redrive(dlq: sqs.Queue, max_receive_count: int) -> sqs.RedrivePolicy:
    return sqs.RedrivePolicy(deadLetterTargetArn=GetAtt(dlq, "Arn"), maxReceiveCount=max_receive_count)


def add_dead_letter_queue(
    t: Template, cfg: StackConfig, params: Params, enc: Encryption, *, logical_id: str
) -> sqs.Queue:
    """A DLQ named after its logical ID, keeping messages for the 14-day maximum."""
    dlq = _queue(logical_id, cfg, enc, QueueName=params.name(logical_id), MessageRetentionPeriod=FOURTEEN_DAYS_SECONDS)
    suppress(
        dlq,
        cfn_lint={
            "ES6000": "This is a dead-letter queue, the end of the failure path: an operator "
            "inspects and redrives its messages (its alarm fires on the first one).",
        },
    )
    return t.add_resource(dlq)


def add_processing_queue(
    t: Template, cfg: StackConfig, params: Params, enc: Encryption, *, dlq: sqs.Queue
) -> sqs.Queue:
    """DataIngestion -> DataProcessor: packed batches of validated points."""
    return t.add_resource(
        _queue(
            "ProcessingQueue",
            cfg,
            enc,
            QueueName=params.name("ProcessingQueue"),
            MessageRetentionPeriod=FOUR_DAYS_SECONDS,
            VisibilityTimeout=PROCESSING_VISIBILITY_TIMEOUT_SECONDS,
            RedrivePolicy=_redrive(dlq, PROCESSING_MAX_RECEIVE_COUNT),
        )
    )


def add_aggregation_queue(
    t: Template, cfg: StackConfig, params: Params, enc: Encryption, *, dlq: sqs.Queue
) -> sqs.Queue:
    """The touched (symbol, window) pairs that DataAggregator must recompute."""
    return t.add_resource(
        _queue(
            "AggregationQueue",
            cfg,
            enc,
            QueueName=params.name("AggregationQueue"),
            MessageRetentionPeriod=FOUR_DAYS_SECONDS,
            VisibilityTimeout=AGGREGATION_VISIBILITY_TIMEOUT_SECONDS,
            RedrivePolicy=_redrive(dlq, AGGREGATION_MAX_RECEIVE_COUNT),
        )
    )
