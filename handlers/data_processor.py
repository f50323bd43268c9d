"""DataProcessor: ProcessingQueue batches -> DynamoDB points -> PointsStored events.

Each SQS message (a v1 body, see handlers.core.wire) is one unit of work, handled by
`record_handler` under Powertools' BatchProcessor: its points are written with
BatchWriteItem (PutRequest, 25 per call, UnprocessedItems retried with backoff), then
one PointsStored event per message names the (symbol, 5-minute window) pairs it
touched, so the aggregator recomputes exactly those. A message that fails (unreadable
body, writes still unprocessed after the retries, events still failing) is reported in
`batchItemFailures` alone; its neighbours are deleted by the event source mapping.
After the queue's maxReceiveCount (5) receives the redrive policy moves it to ProcessingDLQ.

Every stored point reaches the aggregator, even while EventBridge fails: a PutEvents
call whose entries still fail after the retries (or that raises) does not fail the
message - its points are already stored, and redelivering it would only rewrite them
and, after maxReceiveCount (5) receives, strand them in ProcessingDLQ unaggregated. Instead the details
of that call are sent straight to the AggregationQueue (SendMessageBatch), which is
exactly what the PointsStoredRule target delivers (InputPath $.detail). Only when that
fails too does the message fail (and come back).

Idempotency: a point's key is (symbol, timestamp), and PutRequest overwrites, so a
re-delivered message stores the same items again; a repeated PointsStored event only
makes the aggregator recompute a window from the same points.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from handlers import common
from handlers.contract import (
    DETAIL_TYPE_POINTS_STORED,
    ENV_AGGREGATION_QUEUE_URL,
    ENV_EVENT_BUS_NAME,
    ENV_POINTS_RETENTION_DAYS,
    ENV_TABLE_NAME,
    EVENT_SOURCE_PROCESSOR,
    WINDOW_MS,
)
from handlers.core.points import Point
from handlers.core.wire import (
    MAX_BATCH_BYTES,
    MAX_BATCH_ENTRIES,
    decode_message,
    encode_windows_details,
    event_entries_in_calls,
    windows_of,
)

if TYPE_CHECKING:  # test-only stubs, never imported on Lambda
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "DataProcessor"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MarketAnalytics"))
# A full message holds ~33,000 points = ~1,300 BatchWriteItem calls: write 8 at a time.
WRITE_CONCURRENCY = 8
_processor: Any = None


def batch_processor() -> Any:
    """Powertools' SQS BatchProcessor, built on the first invocation.

    Importing aws_lambda_powertools.utilities.batch costs ~30 ms (it imports asyncio and
    every event data class), which would put this module's import above the cold-start
    budget (docs/design.md "Handler runtime"); like the clients, it is paid once, on first use.
    """
    global _processor
    if _processor is None:
        from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType

        # Report every failure in batchItemFailures, even when the whole batch failed.
        _processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return _processor


def point_item(point: Point, expiry: dict[str, Any] | None = None) -> dict[str, Any]:
    """The DynamoDB item of a point (low-level attribute values), with its TTL attribute
    (`common.expiry`, computed once per batch) when given."""
    item: dict[str, Any] = {
        "symbol": {"S": point.symbol},
        "timestamp": common.number(point.timestamp),
        "price": common.number(point.price),
    }
    if point.volume is not None:
        item["volume"] = common.number(point.volume)
    if expiry:
        item.update(expiry)
    return item


def points_stored_entries(points: list[Point], bus_name: str) -> list[PutEventsRequestEntryTypeDef]:
    return [
        {
            "Source": EVENT_SOURCE_PROCESSOR,
            "DetailType": DETAIL_TYPE_POINTS_STORED,
            "Detail": detail,
            "EventBusName": bus_name,
        }
        for detail in encode_windows_details(windows_of(points, WINDOW_MS), len(points))
    ]


def announce(entries: list[PutEventsRequestEntryTypeDef]) -> int:
    """Publish PointsStored entries; a call that still fails goes to the AggregationQueue
    directly. Returns how many details took the direct path."""
    direct: list[str] = []
    for call in event_entries_in_calls(entries):
        try:
            common.put_events([call])
        except (common.DeliveryError, ClientError, BotoCoreError) as exc:
            logger.warning("PointsStored not published; sending the windows directly", extra={"error": str(exc)})
            direct.extend(entry["Detail"] for entry in call)
    if direct:
        queue_url = common.env(ENV_AGGREGATION_QUEUE_URL)
        batch: list[str] = []
        for detail in direct:  # each < 200 KB; a batch: <= 10 bodies, <= 1 MiB together
            if batch and (len(batch) == MAX_BATCH_ENTRIES or sum(map(len, batch)) + len(detail) > MAX_BATCH_BYTES):
                common.send_message_batch(queue_url, batch)
                batch = []
            batch.append(detail)
        common.send_message_batch(queue_url, batch)
        metrics.add_metric(name="PointsStoredSentDirectly", unit=MetricUnit.Count, value=len(direct))
    return len(direct)


def record_handler(record: Any) -> int:
    """Store one message's points and announce them; raise to fail this message only."""
    points = decode_message(record["body"])
    ttl = common.expiry(ENV_POINTS_RETENTION_DAYS)
    common.batch_write(common.env(ENV_TABLE_NAME), (point_item(p, ttl) for p in points), concurrency=WRITE_CONCURRENCY)
    announce(points_stored_entries(points, common.env(ENV_EVENT_BUS_NAME)))
    metrics.add_metric(name="PointsStored", unit=MetricUnit.Count, value=len(points))
    return len(points)


def _record_handler(record: Any) -> int:
    try:
        return record_handler(record.raw_event)
    except Exception:
        receives = record.attributes.approximate_receive_count
        logger.exception("message failed", extra={"message_id": record.message_id, "receive_count": receives})
        metrics.add_metric(name="FailedMessages", unit=MetricUnit.Count, value=1)
        raise


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=len(event.get("Records") or []))
    from aws_lambda_powertools.utilities.batch import process_partial_response

    return process_partial_response(  # type: ignore[return-value]  # a TypedDict, i.e. a dict
        event=event, record_handler=_record_handler, processor=batch_processor(), context=context
    )
