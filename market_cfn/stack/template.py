"""build_template(cfg) -> Template: one add_* builder per concern, in the order data flows."""

from __future__ import annotations

from troposphere import GetAtt, Output, Template

from market_cfn.stack import api, events, functions, monitoring, queues, storage
from market_cfn.stack.config import StackConfig
from market_cfn.stack.parameters import add_parameters
from market_cfn.stack.tags import tag_all

DESCRIPTION = (
    "market_cfn: serverless market-data pipeline (S3 -> DataIngestion -> SQS -> DataProcessor -> "
    "DynamoDB + EventBridge -> DataAggregator 5-minute aggregates; POST /ingest)"
)


def build_template(cfg: StackConfig) -> Template:
    t = Template(Description=DESCRIPTION)
    t.set_version("2010-09-09")
    params = add_parameters(t, cfg)

    # Queues first: every function names one.
    processing_dlq = queues.add_dead_letter_queue(t, cfg, params, logical_id="ProcessingDLQ")
    processing_queue = queues.add_processing_queue(t, cfg, params, dlq=processing_dlq)
    aggregation_dlq = queues.add_dead_letter_queue(t, cfg, params, logical_id="AggregationDLQ")
    aggregation_queue = queues.add_aggregation_queue(t, cfg, params, dlq=aggregation_dlq)
    invocation_dlq = queues.add_dead_letter_queue(t, cfg, params, logical_id="InvocationDLQ")

    table = storage.add_table(t, cfg, params)
    bus = events.add_event_bus(t, cfg, params)

    # 1. S3 and POST /ingest -> DataIngestion -> ProcessingQueue (rejections -> RejectsBucket)
    ingestion = functions.add_ingestion_function(
        t, cfg, params, processing_queue=processing_queue, invocation_dlq=invocation_dlq
    )
    data_bucket = storage.add_data_bucket(t, cfg, params, ingestion_fn=ingestion.function)
    rejects_bucket = storage.add_rejects_bucket(t, cfg, params)
    rest_api = api.add_ingest_api(t, cfg, params, ingestion=ingestion)

    # 2. ProcessingQueue -> DataProcessor -> table + PointsStored events on the bus
    processor = functions.add_processor_function(
        t, cfg, params, processing_queue=processing_queue, aggregation_queue=aggregation_queue, table=table, bus=bus
    )

    # 3. bus -> AggregationQueue; every 5 minutes DataAggregator drains it
    aggregator = functions.add_aggregator_function(
        t,
        cfg,
        params,
        aggregation_queue=aggregation_queue,
        aggregation_dlq=aggregation_dlq,
        invocation_dlq=invocation_dlq,
        table=table,
        bus=bus,
    )
    schedule = events.add_aggregation_schedule(t, cfg, params, aggregator=aggregator, invocation_dlq=invocation_dlq)
    events.add_points_stored_routing(
        t,
        cfg,
        params,
        bus=bus,
        aggregation_queue=aggregation_queue,
        invocation_dlq=invocation_dlq,
        schedule_rule=schedule,
    )

    # 4. Monitoring: errors of every function, messages in every dead-letter queue.
    for fn in (ingestion, processor, aggregator):
        monitoring.add_function_alarms(t, cfg, params, fn=fn)
    for dlq in (processing_dlq, aggregation_dlq, invocation_dlq):
        monitoring.add_dead_letter_alarm(t, cfg, params, dlq=dlq)

    _add_outputs(
        t,
        {
            "apiGatewayUrl": ("Invoke URL of POST /ingest (SigV4-signed).", api.ingest_url(params, rest_api.ref())),
            "s3BucketName": ("Bucket that raw market data is uploaded to.", data_bucket.ref()),
            "rejectsBucketName": ("Bucket holding one rejection report per source object.", rejects_bucket.ref()),
            "dynamodbTableArn": ("Table of points and 5-minute aggregates.", GetAtt(table, "Arn")),
            "dynamodbTableName": ("Table of points and 5-minute aggregates.", table.ref()),
            "processingQueueUrl": ("Queue between DataIngestion and DataProcessor.", processing_queue.ref()),
            "processingDlqUrl": ("Messages DataProcessor failed 3 times.", processing_dlq.ref()),
            "aggregationQueueUrl": ("Touched (symbol, window) pairs awaiting aggregation.", aggregation_queue.ref()),
            "aggregationDlqUrl": ("Aggregation work that failed 5 times.", aggregation_dlq.ref()),
            "invocationDlqUrl": ("Failed asynchronous invocations and undeliverable events.", invocation_dlq.ref()),
            "eventBusName": ("Custom bus with PointsStored and BarsComputed events.", GetAtt(bus, "Name")),
            "dataIngestionFunctionName": ("DataIngestion function.", ingestion.function.ref()),
            "dataProcessorFunctionName": ("DataProcessor function.", processor.function.ref()),
            "dataAggregatorFunctionName": ("DataAggregator function.", aggregator.function.ref()),
        },
    )
    tag_all(t, params)
    return t


def _add_outputs(t: Template, outputs: dict[str, tuple[str, object]]) -> None:
    for name, (description, value) in outputs.items():
        t.add_output(Output(name, Description=description, Value=value))
