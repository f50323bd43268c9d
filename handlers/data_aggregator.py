"""DataAggregator: every 5 minutes, recompute the 5-minute windows that changed.

The AggregationQueue holds PointsStored details (via the bus rule): the (symbol,
window start) pairs that DataProcessor wrote points into. Each run drains it in
rounds of up to ROUND_MESSAGES messages, until the queue is empty or less than
SAFETY_MARGIN_MS of the invocation is left:

1. collect the distinct pairs of the round's messages;
2. a pair whose window has not ended yet (window end > now) is sent back to the queue
   with SendMessage and DelaySeconds until its end (at most 900 s), so it is computed
   once it is complete; "now" is the schedule event's time (never later than the
   clock), so a retried invocation cannot call a window finished too early;
3. each finished pair is recomputed from all its points: Query on the table's key
   (symbol = S, timestamp BETWEEN start AND end - 1), ConsistentRead, every page -
   never a Scan, so the cost follows the data touched, not the table size. Adjacent
   touched windows of a symbol (up to MAX_WINDOWS_PER_QUERY) share one Query;
   untouched windows are never read; up to QUERY_CONCURRENCY Queries run at once;
4. the aggregates are written with BatchWriteItem PutRequest at (S#5m, start) and one
   AggregateComputed event per window is published (10 per PutEvents call);
5. only then are the round's messages deleted (DeleteMessageBatch). A failure before
   that leaves them in the queue: they come back after the visibility timeout, and
   after 5 receives go to AggregationDLQ.

Idempotency: an aggregate is a pure function of the stored points of its window, and
PutRequest overwrites, so recomputing a window (duplicate or late messages) yields the
same item; a late point's PointsStored event makes its window be recomputed, for data
of any age. AggregateComputed may thus be published more than once for a window;
consumers treat it as an upsert keyed by (symbol, window_start).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from handlers import common
from handlers.contract import (
    AGGREGATE_KEY_SUFFIX,
    DETAIL_TYPE_AGGREGATE_COMPUTED,
    ENV_AGGREGATION_QUEUE_URL,
    ENV_EVENT_BUS_NAME,
    ENV_TABLE_NAME,
    EVENT_SOURCE_AGGREGATOR,
    WINDOW_MS,
)
from handlers.core.aggregation import compute_aggregate
from handlers.core.wire import WireFormatError, decode_windows, event_entries_in_calls, window_start

SAFETY_MARGIN_MS = 60_000  # stop starting rounds when less than this is left
ROUND_MESSAGES = 100  # messages per round (10 ReceiveMessage calls at most)
RECEIVE_WAIT_SECONDS = 1  # long polling, so an empty answer means an empty queue
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds maximum
MAX_WINDOWS_PER_QUERY = 12  # adjacent touched windows read by one Query (one hour)
QUERY_CONCURRENCY = 8  # Queries in flight at once, like the processor's writes

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "DataAggregator"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MarketAnalytics"))


def event_now_ms(event: dict[str, Any]) -> int:
    """The schedule event's time, but never later than the clock."""
    clock = int(time.time() * 1000)
    try:
        moment = datetime.fromisoformat(str(event["time"]))
    except (KeyError, ValueError):
        return clock
    return min(clock, int(moment.timestamp() * 1000))


def query_points(table: str, symbol: str, start: int, end: int) -> Iterator[tuple[int, Decimal, int | None]]:
    """(timestamp, price, volume) of every point of `symbol` in [start, end), oldest first."""
    ddb = common.client("dynamodb")
    params: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#s = :s AND #t BETWEEN :a AND :b",
        "ExpressionAttributeNames": {"#s": "symbol", "#t": "timestamp", "#p": "price", "#v": "volume"},
        "ExpressionAttributeValues": {
            ":s": {"S": symbol},
            ":a": {"N": str(start)},
            ":b": {"N": str(end - 1)},
        },
        "ProjectionExpression": "#t, #p, #v",
        "ConsistentRead": True,
    }
    while True:
        page = ddb.query(**params)
        for item in page.get("Items", []):
            volume = item.get("volume")
            yield int(item["timestamp"]["N"]), Decimal(item["price"]["N"]), int(volume["N"]) if volume else None
        if "LastEvaluatedKey" not in page:
            return
        params["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def query_runs(pairs: list[tuple[str, int]]) -> list[tuple[str, int, int]]:
    """Group sorted (symbol, window start) pairs into (symbol, first start, window count)
    runs of adjacent windows, at most MAX_WINDOWS_PER_QUERY long: one Query reads a run.
    Only touched windows are read - a gap between windows starts a new run."""
    runs: list[tuple[str, int, int]] = []
    for symbol, start in sorted(pairs):
        if runs:
            last_symbol, first, count = runs[-1]
            if last_symbol == symbol and start == first + count * WINDOW_MS and count < MAX_WINDOWS_PER_QUERY:
                runs[-1] = (symbol, first, count + 1)
                continue
        runs.append((symbol, start, 1))
    return runs


def _run_aggregates(table: str, run: tuple[str, int, int]) -> list[dict[str, Any]]:
    """The aggregates of one run of adjacent windows, from one Query."""
    symbol, first, count = run
    by_window: dict[int, list[tuple[int, Decimal, int | None]]] = {}
    for point in query_points(table, symbol, first, first + count * WINDOW_MS):
        by_window.setdefault(window_start(point[0], WINDOW_MS), []).append(point)
    aggregates = []
    for start in range(first, first + count * WINDOW_MS, WINDOW_MS):
        agg = compute_aggregate(symbol, start, WINDOW_MS, by_window.get(start, []))
        if agg is not None:
            aggregates.append(agg)
    return aggregates


def recompute(table: str, pairs: list[tuple[str, int]]) -> list[dict[str, Any]]:
    """The aggregates of the given finished windows, from their stored points.

    The runs' Queries are independent and the function mostly waits on DynamoDB, so up
    to QUERY_CONCURRENCY of them are in flight at once (a large backfill finishes that
    much sooner, and the invocation is billed that much shorter). Results keep the
    runs' (symbol, window) order; the first failed Query fails the round, which then
    leaves its messages in the queue.
    """
    runs = query_runs(pairs)
    if len(runs) <= 1:
        return [agg for run in runs for agg in _run_aggregates(table, run)]
    common.client("dynamodb")  # create the shared client first: client creation is not thread-safe
    with ThreadPoolExecutor(max_workers=min(QUERY_CONCURRENCY, len(runs))) as pool:
        results = list(pool.map(lambda run: _run_aggregates(table, run), runs))
    return [agg for result in results for agg in result]


def aggregate_item(agg: dict[str, Any]) -> dict[str, Any]:
    item = {
        "symbol": {"S": agg["symbol"] + AGGREGATE_KEY_SUFFIX},
        "timestamp": common.number(agg["window_start"]),
        "window_end": common.number(agg["window_start"] + WINDOW_MS),
    }
    for field in ("open", "high", "low", "close", "count", "volume"):
        item[field] = common.number(agg[field])
    if agg["vwap"] is not None:
        item["vwap"] = common.number(agg["vwap"])
    return item


def _json_number(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def aggregate_entry(agg: dict[str, Any], bus_name: str) -> dict[str, Any]:
    detail = {"v": 1, **{k: _json_number(v) for k, v in agg.items()}, "window_end": agg["window_start"] + WINDOW_MS}
    return {
        "Source": EVENT_SOURCE_AGGREGATOR,
        "DetailType": DETAIL_TYPE_AGGREGATE_COMPUTED,
        "Detail": json.dumps(detail, separators=(",", ":")),
        "EventBusName": bus_name,
    }


def receive_round(queue_url: str, context: Any) -> tuple[list[dict[str, Any]], bool]:
    """Up to ROUND_MESSAGES messages, and whether the queue answered empty."""
    sqs = common.client("sqs")
    messages: list[dict[str, Any]] = []
    while len(messages) < ROUND_MESSAGES and _time_left(context):
        response = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, ROUND_MESSAGES - len(messages)),
            WaitTimeSeconds=RECEIVE_WAIT_SECONDS,
            AttributeNames=["ApproximateReceiveCount"],
        )
        batch = response.get("Messages") or []
        messages.extend(batch)
        if not batch:
            return messages, True
    return messages, False


def _time_left(context: Any) -> bool:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining is None or remaining() > SAFETY_MARGIN_MS


def delete_messages(queue_url: str, messages: list[dict[str, Any]]) -> None:
    sqs = common.client("sqs")
    for i in range(0, len(messages), 10):
        chunk = messages[i : i + 10]
        response = sqs.delete_message_batch(
            QueueUrl=queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
        )
        if response.get("Failed"):
            # Harmless: the message comes back and its windows are recomputed identically.
            logger.warning("messages not deleted", extra={"failed": response["Failed"]})


def defer(queue_url: str, pairs: list[tuple[str, int]], now_ms: int) -> int:
    """Send unfinished windows back, delayed until they end; return messages sent."""
    by_end: dict[int, list[list[Any]]] = {}
    for symbol, start in pairs:
        by_end.setdefault(start + WINDOW_MS, []).append([symbol, start])
    sqs = common.client("sqs")
    for end, items in sorted(by_end.items()):
        delay = min(MAX_DELAY_SECONDS, max(0, math.ceil((end - now_ms) / 1000)))
        body = json.dumps({"v": 1, "points": 0, "windows": items}, separators=(",", ":"))
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay)
    return len(by_end)


def process_round(
    messages: list[dict[str, Any]], *, now_ms: int, queue_url: str, table: str, bus: str
) -> dict[str, int]:
    pairs: set[tuple[str, int]] = set()
    readable: list[dict[str, Any]] = []
    for message in messages:
        try:
            pairs.update(decode_windows(message["Body"]))
            readable.append(message)
        except WireFormatError as exc:
            # Left in the queue: after 5 receives the redrive moves it to AggregationDLQ.
            logger.error("unreadable message", extra={"message_id": message.get("MessageId"), "error": str(exc)})
    unfinished = sorted(p for p in pairs if p[1] + WINDOW_MS > now_ms)
    finished = sorted(p for p in pairs if p[1] + WINDOW_MS <= now_ms)
    aggregates = recompute(table, finished)
    common.batch_write(table, (aggregate_item(a) for a in aggregates))
    common.put_events(event_entries_in_calls([aggregate_entry(a, bus) for a in aggregates]))
    deferred = defer(queue_url, unfinished, now_ms) if unfinished else 0
    delete_messages(queue_url, readable)
    return {
        "messages": len(messages),
        "windows": len(aggregates),
        "deferred_windows": len(unfinished),
        "deferred_messages": deferred,
    }


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    queue_url = common.env(ENV_AGGREGATION_QUEUE_URL)
    table = common.env(ENV_TABLE_NAME)
    bus = common.env(ENV_EVENT_BUS_NAME)
    base_ms, started = event_now_ms(event), time.monotonic()
    totals = {"messages": 0, "windows": 0, "deferred_windows": 0, "deferred_messages": 0, "rounds": 0}
    drained = False
    while not drained and _time_left(context):
        messages, drained = receive_round(queue_url, context)
        if not messages:
            break
        now_ms = base_ms + int((time.monotonic() - started) * 1000)
        for key, value in process_round(messages, now_ms=now_ms, queue_url=queue_url, table=table, bus=bus).items():
            totals[key] += value
        totals["rounds"] += 1
    metrics.add_metric(name="AggregatesComputed", unit=MetricUnit.Count, value=totals["windows"])
    metrics.add_metric(name="WindowsDeferred", unit=MetricUnit.Count, value=totals["deferred_windows"])
    logger.info("aggregation run", extra=totals)
    return totals
