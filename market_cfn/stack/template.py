"""build_template(cfg) -> Template: one add_* builder per concern, in the order data flows."""

from __future__ import annotations

from troposphere import GetAtt, Output, Template

from market_cfn.stack import api, dashboard, encryption, events, functions, monitoring, queues, storage
from market_cfn.stack.config import StackConfig
from market_cfn.stack.parameters import add_parameters
from market_cfn.stack.tags import tag_all

DESCRIPTION = (
    "market_cfn: serverless market-data pipeline (S3 -> DataIngestion -> SQS -> DataProcessor -> "
    "DynamoDB + EventBridge -> DataAggregator 5-minute aggregates; POST /ingest)"
)


def build_template(cfg: StackConfig) -> Template:
    t = Template(Description=DESCRIPTION + (" [regulated profile]" if cfg.regulated else ""))
    t.set_version("2010-09-09")
    params = add_parameters(t, cfg)
    enc = encryption.add_key(t, cfg, params)

    # Queues first: every function names one.
    processing_dlq = queues.add_dead_letter_queue(t, cfg, params, enc, logical_id="ProcessingDLQ")
    processing_queue = queues.add_processing_queue(t, cfg, params, enc, dlq=processing_dlq)
    aggregation_dlq = queues.add_dead_letter_queue(t, cfg, params, enc, logical_id="AggregationDLQ")
    aggregation_queue = queues.add_aggregation_queue(t, cfg, params, enc, dlq=aggregation_dlq)
    invocation_dlq = queues.add_dead_letter_queue(t, cfg, params, enc, logical_id="InvocationDLQ")

    table = storage.add_table(t, cfg, params, enc)
    bus = events.add_event_bus(t, cfg, params, enc, invocation_dlq=invocation_dlq)
    access_logs = storage.add_access_logs_bucket(t, cfg, params) if cfg.regulated else None

    # 1. S3 and POST /ingest -> DataIngestion -> ProcessingQueue (rejections -> RejectsBucket)
    ingestion = functions.add_ingestion_function(
        t, cfg, params, enc, processing_queue=processing_queue, invocation_dlq=invocation_dlq
    )
    data_bucket = storage.add_data_bucket(t, cfg, params, enc, ingestion_fn=ingestion.function, access_logs=access_logs)
    rejects_bucket = storage.add_rejects_bucket(t, cfg, params, enc, access_logs=access_logs)
    history_bucket = storage.add_history_bucket(t, cfg, params, enc, access_logs=access_logs)
    rest_api = api.add_ingest_api(t, cfg, params, enc, ingestion=ingestion)

    # 2. ProcessingQueue -> DataProcessor -> table + PointsStored events on the bus
    processor = functions.add_processor_function(
        t,
        cfg,
        params,
        enc,
        processing_queue=processing_queue,
        aggregation_queue=aggregation_queue,
        table=table,
        bus=bus,
    )

    # 3. bus -> AggregationQueue; on the AggregationSchedule DataAggregator drains it
    aggregator = functions.add_aggregator_function(
        t,
        cfg,
        params,
        enc,
        aggregation_queue=aggregation_queue,
        aggregation_dlq=aggregation_dlq,
        invocation_dlq=invocation_dlq,
        table=table,
        bus=bus,
    )
    schedule = events.add_aggregation_schedule(t, cfg, params, aggregator=aggregator, invocation_dlq=invocation_dlq)
    routing = events.add_points_stored_routing(
        t,
        cfg,
        params,
        bus=bus,
        aggregation_queue=aggregation_queue,
        invocation_dlq=invocation_dlq,
        schedule_rule=schedule,
    )

    # 4. Monitoring, in the same order: every alarm notifies the alarm topic.
    topic = monitoring.add_alarm_topic(t, cfg, params, enc)
    alarms = monitoring.Alarms(t, params, topic)
    monitoring.add_api_alarms(alarms, params)
    for fn in (ingestion, processor, aggregator):
        monitoring.add_function_alarms(t, params, alarms, fn=fn)
    for queue in (processing_queue, aggregation_queue):
        monitoring.add_queue_age_alarm(alarms, queue=queue)
    for dlq in (processing_dlq, aggregation_dlq, invocation_dlq):
        monitoring.add_dead_letter_alarm(alarms, dlq=dlq)
    monitoring.add_rule_alarm(alarms, rule=routing, bus=bus)
    monitoring.add_rule_alarm(alarms, rule=schedule, bus=None)
    monitoring.add_freshness_alarm(alarms, params)
    dashboard.add_dashboard(t, params, alarm_ids=[a.title for a in alarms.created])

    _add_outputs(
        t,
        {
            "apiGatewayUrl": ("Invoke URL of POST /ingest (SigV4-signed).", api.ingest_url(params, rest_api.ref())),
            "s3BucketName": ("Bucket that raw market data is uploaded to.", data_bucket.ref()),
            "rejectsBucketName": ("Bucket holding one rejection report per source object.", rejects_bucket.ref()),
            "historyBucketName": ("The table's exports: points and bars past their TTL.", history_bucket.ref()),
            "dynamodbTableArn": ("Table of points and 5-minute aggregates.", GetAtt(table, "Arn")),
            "dynamodbTableName": ("Table of points and 5-minute aggregates.", table.ref()),
            "processingQueueUrl": ("Queue between DataIngestion and DataProcessor.", processing_queue.ref()),
            "processingDlqUrl": ("Messages DataProcessor failed 5 times.", processing_dlq.ref()),
            "aggregationQueueUrl": ("Touched (symbol, window) pairs awaiting aggregation.", aggregation_queue.ref()),
            "aggregationDlqUrl": ("Aggregation work that failed 5 times.", aggregation_dlq.ref()),
            "invocationDlqUrl": ("Failed asynchronous invocations and undeliverable events.", invocation_dlq.ref()),
            "eventBusName": ("Custom bus with PointsStored and BarsComputed events.", GetAtt(bus, "Name")),
            "dataIngestionFunctionName": ("DataIngestion function.", ingestion.function.ref()),
            "dataProcessorFunctionName": ("DataProcessor function.", processor.function.ref()),
            "dataAggregatorFunctionName": ("DataAggregator function.", aggregator.function.ref()),
            "alarmTopicArn": ("SNS topic every alarm notifies (subscribe your on-call here).", topic.ref()),
            "dashboardName": ("CloudWatch dashboard of the data flow.", params.account_name("market-data")),
        },
    )
    tag_all(t, params)
    return t


def _add_outputs(t: Template, outputs: dict[str, tuple[str, object]]) -> None:
    for name, (description, value) in outputs.items():
        t.add_output(Output(name, Description=description, Value=value))
