"""The three Lambda functions, each with its own role and log group."""

from __future__ import annotations

from dataclasses import dataclass

from awacs.aws import Statement
from troposphere import GetAtt, Sub, Template, awslambda, dynamodb, events, iam, logs, sqs

from handlers import contract
from market_cfn.stack import policies
from market_cfn.stack.config import FUNCTION_TIMEOUT_SECONDS, StackConfig
from market_cfn.stack.encryption import Encryption
from market_cfn.stack.loggroups import add_log_group
from market_cfn.stack.parameters import Params
from market_cfn.stack.storage import bucket_arn, data_bucket_name, rejects_bucket_name
from market_cfn.stack.suppressions import suppress

# The newest Python Lambda runs (until 2029 per cfn-lint's runtime lifecycle data, which
# lists python3.14 with no successor) and that cfn-lint's resource schema, troposphere
# (no runtime validator) and Powertools 3.37 (classifiers up to 3.14) accept.
RUNTIME = "python3.14"
# Graviton: the handlers are pure Python (Powertools included), and arm64 GB-seconds
# cost 20% less than x86_64 (AWS Lambda pricing page).
ARCHITECTURE = "arm64"
SQS_BATCH_SIZE = 10


class EventSourceScalingConfig(awslambda.ScalingConfig):  # type: ignore[misc]  # troposphere is untyped
    """AWS::Lambda::EventSourceMapping ScalingConfig. troposphere 4.11 defines two classes
    named ScalingConfig and the later one (a web function endpoint's MaxEnvironments)
    shadows the event source mapping's; this keeps its type and takes its real property."""

    props = {"MaximumConcurrency": (int, False)}


_CHECKOV_SKIPS = {
    "CKV_AWS_115": "No reserved concurrency: new accounts have a concurrency quota of 10 and Lambda "
    "rejects any reservation there; SQS and S3 retries absorb throttling.",
    "CKV_AWS_116": "Failures have a destination without a function DLQ: DataIngestion and "
    "DataAggregator use an EventInvokeConfig on-failure destination (InvocationDLQ, which also "
    "records the error), DataProcessor is invoked synchronously by SQS, whose redrive policy "
    "moves failing messages to ProcessingDLQ.",
    "CKV_AWS_117": "Not in a VPC: the functions reach only AWS service endpoints.",
    "CKV_AWS_173": "The environment holds resource names only, no secrets; Lambda encrypts it at "
    "rest with its service key.",
}
_CFN_LINT_SKIPS = {
    "WS1004": "The log group is created by this stack and bound through LoggingConfig.LogGroup, "
    "which this rule does not read; its retention is 7 days.",
}


# Regulated profile: the services each role's calls reach the stack's key through
# (kms:ViaService). S3 GetObject/PutObject, SQS send/receive, DynamoDB reads and writes on
# a table under a customer managed key and PutEvents on an encrypted bus each need
# kms:Decrypt and/or kms:GenerateDataKey of the caller (S3 user guide "Using SSE-KMS", SQS
# developer guide "Key management", DynamoDB developer guide "Key policies for a customer
# managed key"). The Lambda service's own SQS calls (event source mapping, on-failure
# destination) use the role too.
KMS_SERVICES = {
    "DataIngestion": ("s3", "sqs"),
    "DataProcessor": ("sqs", "dynamodb", "events"),
    "DataAggregator": ("sqs", "dynamodb", "events"),
}


@dataclass(frozen=True)
class PipelineFunction:
    """A function with the role and log group it owns."""

    function: awslambda.Function
    role: iam.Role
    log_group: logs.LogGroup

    @property
    def base_name(self) -> str:
        return self.function.title.removesuffix("Function")


def _add_function(
    t: Template,
    cfg: StackConfig,
    params: Params,
    enc: Encryption,
    *,
    base_name: str,
    handler: str,
    description: str,
    statements: list[Statement],
    environment: dict[str, object],
    on_failure: sqs.Queue | None,
) -> PipelineFunction:
    log_group = add_log_group(
        t, cfg, enc, f"{base_name}LogGroup", name=Sub(f"/aws/lambda/{base_name}-${{Env}}", Env=params.env_suffix.ref())
    )
    if enc.data_key_arn is not None:
        statements = [*statements, policies.kms_via_services("UseStackKey", enc.data_key_arn, KMS_SERVICES[base_name])]
    role = t.add_resource(
        iam.Role(
            f"{base_name}Role",
            AssumeRolePolicyDocument=policies.lambda_assume_role_policy(),
            Policies=[
                policies.role_policy(
                    f"{base_name}LeastPrivilege",
                    statements + policies.runtime_statements(GetAtt(log_group, "Arn")),
                )
            ],
        )
    )
    function = awslambda.Function(
        f"{base_name}Function",
        FunctionName=params.name(base_name),
        Description=description,
        Runtime=RUNTIME,
        Architectures=[ARCHITECTURE],
        Handler=handler,
        Code=awslambda.Code(S3Bucket=params.code_bucket.ref(), S3Key=params.code_key.ref()),
        Role=GetAtt(role, "Arn"),
        MemorySize=params.memory_mb[base_name].ref(),
        Timeout=FUNCTION_TIMEOUT_SECONDS,
        TracingConfig=awslambda.TracingConfig(Mode="Active"),
        LoggingConfig=awslambda.LoggingConfig(LogGroup=log_group.ref()),
        Environment=awslambda.Environment(
            Variables={
                # The function's name, so the `service` dimension of its metrics (and the
                # alarms on them) keeps environments sharing an account apart.
                "POWERTOOLS_SERVICE_NAME": params.name(base_name),
                "POWERTOOLS_METRICS_NAMESPACE": "MarketAnalytics",
                "LOG_LEVEL": "INFO",
                **environment,
            }
        ),
    )
    suppress(function, checkov=dict(_CHECKOV_SKIPS), cfn_lint=dict(_CFN_LINT_SKIPS))
    t.add_resource(function)
    if on_failure is not None:
        # Asynchronous invocations (S3, EventBridge) that still fail after Lambda's two
        # retries go to the on-failure destination, with the error and the request.
        t.add_resource(
            awslambda.EventInvokeConfig(
                f"{base_name}AsyncConfig",
                FunctionName=function.ref(),
                Qualifier="$LATEST",
                MaximumRetryAttempts=2,
                MaximumEventAgeInSeconds=6 * 3600,
                DestinationConfig=awslambda.DestinationConfig(
                    OnFailure=awslambda.OnFailure(Destination=GetAtt(on_failure, "Arn"))
                ),
            )
        )
    return PipelineFunction(function, role, log_group)


def add_ingestion_function(
    t: Template,
    cfg: StackConfig,
    params: Params,
    enc: Encryption,
    *,
    processing_queue: sqs.Queue,
    invocation_dlq: sqs.Queue,
) -> PipelineFunction:
    """Validates raw data (S3 objects, POST /ingest bodies) and queues the valid points."""
    ingestion = _add_function(
        t,
        cfg,
        params,
        enc,
        base_name="DataIngestion",
        handler=contract.HANDLER_INGESTION,
        description="Validates market data from S3 and POST /ingest and queues the valid points.",
        statements=[
            policies.read_objects("ReadRawData", bucket_arn(data_bucket_name(params), "/*")),
            policies.list_versions("ListRawDataVersions", bucket_arn(data_bucket_name(params))),
            policies.write_objects("WriteRejectionReports", bucket_arn(rejects_bucket_name(params), "/*")),
            policies.send_messages(
                "QueuePointsAndDeadLetters", [GetAtt(processing_queue, "Arn"), GetAtt(invocation_dlq, "Arn")]
            ),
        ],
        environment={
            contract.ENV_PROCESSING_QUEUE_URL: processing_queue.ref(),
            contract.ENV_REJECTS_BUCKET: rejects_bucket_name(params),
        },
        on_failure=invocation_dlq,
    )
    suppress(
        ingestion.function,
        cfn_lint={
            "WS1002": "One ingestion path by design: S3 uploads and POST /ingest share the same "
            "validation and queueing code, so both principals invoke this function.",
        },
    )
    return ingestion


def add_processor_function(
    t: Template,
    cfg: StackConfig,
    params: Params,
    enc: Encryption,
    *,
    processing_queue: sqs.Queue,
    aggregation_queue: sqs.Queue,
    table: dynamodb.Table,
    bus: events.EventBus,
) -> PipelineFunction:
    """Stores queued points in the table and announces them on the bus (or, while
    EventBridge fails, straight to the aggregation queue)."""
    processor = _add_function(
        t,
        cfg,
        params,
        enc,
        base_name="DataProcessor",
        handler=contract.HANDLER_PROCESSOR,
        description="Stores queued market-data points in DynamoDB and publishes PointsStored events.",
        statements=[
            policies.consume_queue_by_mapping("ConsumeProcessingQueue", GetAtt(processing_queue, "Arn")),
            policies.write_items("StorePoints", GetAtt(table, "Arn")),
            policies.put_events("PublishPointsStored", GetAtt(bus, "Arn")),
            policies.send_messages("AnnounceDirectlyWhileEventsFail", [GetAtt(aggregation_queue, "Arn")]),
        ],
        environment={
            contract.ENV_TABLE_NAME: table.ref(),
            contract.ENV_EVENT_BUS_NAME: GetAtt(bus, "Name"),  # = Ref; moto resolves only this
            contract.ENV_AGGREGATION_QUEUE_URL: aggregation_queue.ref(),
            contract.ENV_POINTS_RETENTION_DAYS: params.points_retention_days.ref(),
        },
        on_failure=None,
    )
    mapping = t.add_resource(
        awslambda.EventSourceMapping(
            "DataProcessorQueueMapping",
            EventSourceArn=GetAtt(processing_queue, "Arn"),
            FunctionName=processor.function.ref(),
            BatchSize=SQS_BATCH_SIZE,
            # Only the failed messages of a batch return to the queue; the rest are
            # deleted, so one poison message does not replay its neighbours.
            FunctionResponseTypes=["ReportBatchItemFailures"],
            # At most this many concurrent invocations: on an account limited to 10
            # concurrent executions an unbounded mapping is throttled, and throttled
            # batches use up their receives (Lambda developer guide, "Configuring maximum
            # concurrency for Amazon SQS event sources").
            ScalingConfig=EventSourceScalingConfig(MaximumConcurrency=params.processor_max_concurrency.ref()),
            Enabled=True,
        )
    )
    suppress(
        mapping,
        cfn_lint={
            "ES1001": "OnFailure destinations apply to stream and Kafka sources only; for SQS the "
            "queue's redrive policy (maxReceiveCount 5 -> ProcessingDLQ) is the failure destination.",
        },
    )
    return processor


def add_aggregator_function(
    t: Template,
    cfg: StackConfig,
    params: Params,
    enc: Encryption,
    *,
    aggregation_queue: sqs.Queue,
    aggregation_dlq: sqs.Queue,
    invocation_dlq: sqs.Queue,
    table: dynamodb.Table,
    bus: events.EventBus,
) -> PipelineFunction:
    """Recomputes the 5-minute aggregates of the windows the processor touched."""
    return _add_function(
        t,
        cfg,
        params,
        enc,
        base_name="DataAggregator",
        handler=contract.HANDLER_AGGREGATOR,
        description="Recomputes per-symbol 5-minute OHLC/volume/VWAP aggregates of touched windows.",
        statements=[
            policies.drain_and_requeue("DrainAggregationQueue", GetAtt(aggregation_queue, "Arn")),
            # InvocationDLQ: the Lambda service (failed runs); AggregationDLQ: the code
            # (a window that keeps failing, with its reason).
            policies.send_messages("DeadLetters", [GetAtt(invocation_dlq, "Arn"), GetAtt(aggregation_dlq, "Arn")]),
            policies.read_points_and_versions("ReadPointsAndVersions", GetAtt(table, "Arn")),
            policies.put_items("StoreAggregatesConditionally", GetAtt(table, "Arn")),
            policies.put_events("PublishBars", GetAtt(bus, "Arn")),
        ],
        environment={
            contract.ENV_TABLE_NAME: table.ref(),
            contract.ENV_EVENT_BUS_NAME: GetAtt(bus, "Name"),  # = Ref; moto resolves only this
            contract.ENV_AGGREGATION_QUEUE_URL: aggregation_queue.ref(),
            contract.ENV_AGGREGATION_DLQ_URL: aggregation_dlq.ref(),
            contract.ENV_BARS_RETENTION_DAYS: params.bars_retention_days.ref(),
        },
        on_failure=invocation_dlq,
    )
