"""DataAggregator: every 5 minutes, recompute the 5-minute windows that changed.

The AggregationQueue holds PointsStored details (via the bus rule, or sent directly by
DataProcessor while EventBridge fails): the (symbol, window start) pairs that points
were written into. Each run drains it in rounds of up to ROUND_MESSAGES messages, until
the queue is empty or less than SAFETY_MARGIN_MS of the invocation is left. Receives
long-poll RECEIVE_WAIT_SECONDS until one returns a partial batch; after that a short
poll (FINAL_POLL_WAIT_SECONDS = 0) that answers empty ends the run, so the run does
not pay a second of waiting on the empty queue at the end. A message a short poll
misses waits for the next run.

1. collect the distinct windows of the round's messages (handlers.core.window_retry);
2. a window that has not ended yet (window end > now) is sent back to the queue with
   SendMessage and DelaySeconds until its end (at most 900 s); "now" is the schedule
   event's time (never later than the clock), so a retried invocation cannot call a
   window finished too early;
3. each finished window is recomputed under optimistic concurrency control:
   a. read the stored aggregates' `version` (BatchGetItem, eventually consistent: a
      stale version only makes the conditional write in (c) fail and be retried);
   b. then Query the window's points (symbol = S, timestamp BETWEEN start AND end - 1,
      ConsistentRead, every page - never a Scan; adjacent touched windows of a symbol,
      up to MAX_WINDOWS_PER_QUERY, share one Query; up to QUERY_CONCURRENCY at once);
   c. PutItem the aggregate with version + 1 and the condition `version = <read>`
      (`attribute_not_exists(version)` for a new one). If another run replaced the
      aggregate in between, the condition fails (ConditionalCheckFailedException):
      this run's computation may be older, so it is dropped and the window redone from
      (a) with a strongly consistent read, up to STORE_ATTEMPTS times.
   Why this is safe: a run's write succeeds only if no other write happened since its
   version read, which preceded its Query; so any later successful write read the
   version after this one's write, queried after it, and saw every point this one saw.
   The point whose PointsStored message triggered a run was stored before that run
   started, so the last successful write of a window always includes every point that
   was announced (DynamoDB developer guide, "Condition expressions" and "Optimistic
   locking with version number": a conditional write is evaluated against the item's
   current state and fails with ConditionalCheckFailedException otherwise);
4. the stored bars are published as BarsComputed events on the bus, many bars per
   event (handlers.core.bars: one event per 64 KB, `symbols` for rule matching);
5. a window that failed in any step is isolated: it is sent back on its own with a
   backoff delay, or to the AggregationDLQ with its reason (handlers.core.window_retry);
   the other windows of the round complete;
6. only then are the round's messages deleted (DeleteMessageBatch). A failure of the
   round itself (receive, re-queue, dead-letter sends) leaves them in the queue: they
   come back after the visibility timeout, and after 5 receives go to AggregationDLQ.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from handlers import common
from handlers.contract import (
    AGGREGATE_KEY_SUFFIX,
    AGGREGATE_VERSION_ATTRIBUTE,
    DETAIL_TYPE_BARS_COMPUTED,
    ENV_AGGREGATION_DLQ_URL,
    ENV_AGGREGATION_QUEUE_URL,
    ENV_EVENT_BUS_NAME,
    ENV_TABLE_NAME,
    EVENT_SOURCE_AGGREGATOR,
    WINDOW_MS,
)
from handlers.core.aggregation import compute_aggregate, unstorable_reason
from handlers.core.bars import bar_json, pack_bars
from handlers.core.window_retry import Failure, WindowTask, decode_tasks, merge, plan
from handlers.core.wire import WireFormatError, event_entries_in_calls, window_start

SAFETY_MARGIN_MS = 60_000  # stop starting rounds when less than this is left
ROUND_MESSAGES = 100  # messages per round (10 ReceiveMessage calls at most)
RECEIVE_WAIT_SECONDS = 1  # long polling, until a receive returns a partial batch
FINAL_POLL_WAIT_SECONDS = 0  # then short polls: an empty answer ends the run
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds maximum
MAX_WINDOWS_PER_QUERY = 12  # adjacent touched windows read by one Query (one hour)
QUERY_CONCURRENCY = 8  # Queries in flight at once, like the processor's writes
WRITE_CONCURRENCY = 8  # conditional PutItems in flight at once
STORE_ATTEMPTS = 3  # read-version / query / conditional-write attempts per window and run
BATCH_GET_KEYS = 100  # BatchGetItem: at most 100 keys per call
# Errors of a single call that a later attempt can overcome (besides common's list).
TRANSIENT_CODES = common.RETRYABLE_CODES | {
    "TransactionConflictException",
    "ReplicatedWriteConflictException",
    "LimitExceededException",
}

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "DataAggregator"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MarketAnalytics"))
T = TypeVar("T")
Key = tuple[str, int]


def event_now_ms(event: dict[str, Any]) -> int:
    """The schedule event's time, but never later than the clock."""
    clock = int(time.time() * 1000)
    try:
        moment = datetime.fromisoformat(str(event["time"]))
    except (KeyError, ValueError):
        return clock
    return min(clock, int(moment.timestamp() * 1000))


def describe(exc: BaseException) -> tuple[str, bool]:
    """(one-line reason, permanent?) of a failure. Anything not understood is permanent:
    it goes to the dead-letter queue with its reason rather than being retried blindly."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        return f"{exc.operation_name}: {code}: {error.get('Message', '')}".strip(), code not in TRANSIENT_CODES
    if isinstance(exc, common.DeliveryError):
        return str(exc), False  # partial failures that outlasted the retries
    if isinstance(exc, ParamValidationError):
        return f"invalid request: {exc}", True
    if isinstance(exc, BotoCoreError):
        return f"{type(exc).__name__}: {exc}", False  # connection errors, timeouts
    return f"{type(exc).__name__}: {exc}", True


def _in_parallel(fn: Callable[[T], Any], items: list[T], workers: int) -> list[Any]:
    """fn over items, results (or the exception raised) in order; threads when useful."""

    def safe(item: T) -> Any:
        try:
            return fn(item)
        except Exception as exc:  # noqa: BLE001  # returned to the caller, per window
            return exc

    if len(items) <= 1 or workers <= 1:
        return [safe(item) for item in items]
    common.client("dynamodb")  # create the shared client first: client creation is not thread-safe
    with ThreadPoolExecutor(max_workers=min(workers, len(items))) as pool:
        return list(pool.map(safe, items))


# --- step (a): the stored versions --------------------------------------------------------
def aggregate_key(symbol: str, start: int) -> dict[str, Any]:
    return {"symbol": {"S": symbol + AGGREGATE_KEY_SUFFIX}, "timestamp": common.number(start)}


def read_versions(table: str, keys: list[Key], *, consistent: bool) -> tuple[dict[Key, int], dict[Key, Exception]]:
    """The stored aggregates' versions (0 when there is none), and the keys that failed."""
    ddb = common.client("dynamodb")
    versions: dict[Key, int] = {}
    failed: dict[Key, Exception] = {}
    for i in range(0, len(keys), BATCH_GET_KEYS):
        chunk = keys[i : i + BATCH_GET_KEYS]
        pending: dict[str, Any] = {
            table: {
                "Keys": [aggregate_key(*key) for key in chunk],
                "ProjectionExpression": "#s, #t, #v",
                "ExpressionAttributeNames": {"#s": "symbol", "#t": "timestamp", "#v": AGGREGATE_VERSION_ATTRIBUTE},
                "ConsistentRead": consistent,
            }
        }
        try:
            for attempt in range(common.MAX_ATTEMPTS):
                if attempt:
                    common.backoff(attempt - 1)
                response = common._call(ddb.batch_get_item, attempt, RequestItems=pending)
                if response is None:
                    continue
                for item in response.get("Responses", {}).get(table, []):
                    symbol = item["symbol"]["S"].removesuffix(AGGREGATE_KEY_SUFFIX)
                    stored = item.get(AGGREGATE_VERSION_ATTRIBUTE)
                    versions[(symbol, int(item["timestamp"]["N"]))] = int(stored["N"]) if stored else 0
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            if pending:
                raise common.DeliveryError(f"BatchGetItem: keys unprocessed after {common.MAX_ATTEMPTS} attempts")
        except Exception as exc:  # noqa: BLE001  # isolated to this chunk's windows
            failed.update({key: exc for key in chunk if key not in versions})
            continue
        for key in chunk:
            versions.setdefault(key, 0)  # no aggregate stored yet
    return versions, failed


# --- step (b): the points -----------------------------------------------------------------
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
        # Strong: the run must see the point whose PointsStored message triggered it.
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


def query_runs(pairs: list[Key]) -> list[tuple[str, int, int]]:
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


def _run_aggregates(table: str, run: tuple[str, int, int]) -> dict[Key, dict[str, Any] | None]:
    """The aggregates of one run of adjacent windows, from one Query (None: no points)."""
    symbol, first, count = run
    by_window: dict[int, list[tuple[int, Decimal, int | None]]] = {}
    for point in query_points(table, symbol, first, first + count * WINDOW_MS):
        by_window.setdefault(window_start(point[0], WINDOW_MS), []).append(point)
    return {
        (symbol, start): compute_aggregate(symbol, start, WINDOW_MS, by_window.get(start, []))
        for start in range(first, first + count * WINDOW_MS, WINDOW_MS)
    }


def recompute(table: str, pairs: list[Key]) -> tuple[dict[Key, dict[str, Any] | None], dict[Key, Exception]]:
    """The aggregates of the given windows from their stored points, and the windows whose
    Query failed (each run of windows on its own). Up to QUERY_CONCURRENCY at once: the
    function mostly waits on DynamoDB."""
    runs = query_runs(pairs)
    aggregates: dict[Key, dict[str, Any] | None] = {}
    failed: dict[Key, Exception] = {}
    results = _in_parallel(lambda r: _run_aggregates(table, r), runs, QUERY_CONCURRENCY)
    for run, result in zip(runs, results, strict=True):
        if isinstance(result, Exception):
            symbol, first, count = run
            failed.update({(symbol, first + i * WINDOW_MS): result for i in range(count)})
        else:
            aggregates.update(result)
    return aggregates, failed


# --- step (c): the conditional write ------------------------------------------------------
class UnstorableAggregate(ValueError):
    """An aggregate with a number DynamoDB's Number type cannot hold."""


def aggregate_item(agg: dict[str, Any], version: int) -> dict[str, Any]:
    item = {
        **aggregate_key(agg["symbol"], agg["window_start"]),
        "window_end": common.number(agg["window_start"] + WINDOW_MS),
        AGGREGATE_VERSION_ATTRIBUTE: common.number(version),
    }
    for field in ("open", "high", "low", "close", "count", "volume"):
        item[field] = common.number(agg[field])
    if agg["vwap"] is not None:
        item["vwap"] = common.number(agg["vwap"])
    return item


def store(table: str, agg: dict[str, Any], read_version: int) -> bool:
    """PutItem the aggregate as version read_version + 1 if the stored one is still
    read_version; False when another run replaced it first."""
    problem = unstorable_reason(agg)
    if problem is not None:
        raise UnstorableAggregate(f"aggregate cannot be stored: {problem}")
    condition = "attribute_not_exists(#v)" if read_version == 0 else "#v = :v"
    params: dict[str, Any] = {
        "TableName": table,
        "Item": aggregate_item(agg, read_version + 1),
        "ConditionExpression": condition,
        "ExpressionAttributeNames": {"#v": AGGREGATE_VERSION_ATTRIBUTE},
    }
    if read_version:
        params["ExpressionAttributeValues"] = {":v": common.number(read_version)}
    ddb = common.client("dynamodb")
    for attempt in range(common.MAX_ATTEMPTS):
        if attempt:
            common.backoff(attempt - 1)
        try:
            if common._call(ddb.put_item, attempt, **params) is not None:
                return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise
    raise common.DeliveryError(f"PutItem: throttled {common.MAX_ATTEMPTS} times")  # pragma: no cover


def aggregate_windows(table: str, tasks: list[WindowTask]) -> tuple[list[tuple[dict[str, Any], int]], list[Failure]]:
    """Recompute and store the given finished windows: (stored (aggregate, version), failures)."""
    pending = {task.key: task for task in tasks}
    stored: list[tuple[dict[str, Any], int]] = []
    failures: list[Failure] = []

    def fail(key: Key, exc: BaseException) -> None:
        reason, permanent = describe(exc)
        failures.append(Failure(pending.pop(key), reason, permanent))

    for attempt in range(STORE_ATTEMPTS):
        if not pending:
            break
        versions, read_failed = read_versions(table, sorted(pending), consistent=attempt > 0)
        for key, exc in read_failed.items():
            fail(key, exc)
        aggregates, query_failed = recompute(table, sorted(pending))
        for key, exc in query_failed.items():
            fail(key, exc)
        writes: list[tuple[dict[str, Any], int]] = []
        for key in sorted(pending):
            agg = aggregates.get(key)
            if agg is None:
                # A window without points (a hand-made message: points are never deleted).
                logger.warning("window has no points", extra={"symbol": key[0], "window_start": key[1]})
                pending.pop(key)
            else:
                writes.append((agg, versions[key]))
        results = _in_parallel(lambda w: store(table, w[0], w[1]), writes, WRITE_CONCURRENCY)
        for (agg, version), result in zip(writes, results, strict=True):
            key = (agg["symbol"], agg["window_start"])
            if isinstance(result, Exception):
                fail(key, result)
            elif result:
                stored.append((agg, version + 1))
                pending.pop(key)
            # else: a concurrent run replaced it; redo the window from its version read
    for key in list(pending):
        failures.append(
            Failure(pending.pop(key), f"replaced by concurrent runs {STORE_ATTEMPTS} times in a row", permanent=False)
        )
    return stored, failures


# --- step 4: publishing -------------------------------------------------------------------
def publish_bars(bus: str, stored: list[tuple[dict[str, Any], int]], tasks: dict[Key, WindowTask]) -> list[Failure]:
    """BarsComputed events for the stored bars; the windows of a failed call are returned."""
    bars = [
        (agg["symbol"], agg["window_start"], bar_json(agg, window_ms=WINDOW_MS, version=version))
        for agg, version in stored
    ]
    overhead = len(EVENT_SOURCE_AGGREGATOR.encode()) + len(DETAIL_TYPE_BARS_COMPUTED.encode())
    entries = []
    keys_of: dict[int, list[Key]] = {}
    for detail, keys in pack_bars(bars, overhead_bytes=overhead):
        entry = {
            "Source": EVENT_SOURCE_AGGREGATOR,
            "DetailType": DETAIL_TYPE_BARS_COMPUTED,
            "Detail": detail,
            "EventBusName": bus,
        }
        keys_of[id(entry)] = keys
        entries.append(entry)
    failures: list[Failure] = []
    for call in event_entries_in_calls(entries):
        try:
            common.put_events([call])
        except Exception as exc:  # noqa: BLE001  # isolated to this call's windows
            reason, permanent = describe(exc)
            failures.extend(
                Failure(tasks[key], f"bar stored, not published: {reason}", permanent)
                for entry in call
                for key in keys_of[id(entry)]
            )
    return failures


# --- the queue ----------------------------------------------------------------------------
def receive(queue_url: str, max_messages: int, wait_seconds: int) -> list[dict[str, Any]]:
    response = common.client("sqs").receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=max_messages,
        WaitTimeSeconds=wait_seconds,
        AttributeNames=["ApproximateReceiveCount"],
    )
    return list(response.get("Messages") or [])


class Poller:
    """Receives rounds: long polls until a batch comes back partial, then short polls."""

    def __init__(self, queue_url: str, context: Any) -> None:
        self.queue_url = queue_url
        self.context = context
        self.wait_seconds = RECEIVE_WAIT_SECONDS
        self.drained = False

    def round(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < ROUND_MESSAGES and _time_left(self.context):
            want = min(10, ROUND_MESSAGES - len(messages))
            batch = receive(self.queue_url, want, self.wait_seconds)
            messages.extend(batch)
            if not batch:
                self.drained = True
                break
            if len(batch) < want:
                self.wait_seconds = FINAL_POLL_WAIT_SECONDS
        return messages


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


def defer(queue_url: str, pairs: list[Key], now_ms: int) -> int:
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


def carry_failures(failures: list[Failure], *, queue_url: str, dlq_url: str, now_ms: int) -> tuple[int, int]:
    """Send failed windows back for a retry or to the dead-letter queue; (retried, dead)."""
    retries, dead = plan(failures, now_ms)
    sqs = common.client("sqs")
    for body, delay in retries:
        sqs.send_message(QueueUrl=queue_url, MessageBody=body, DelaySeconds=delay)
    for body, reason in dead:
        sqs.send_message(
            QueueUrl=dlq_url,
            MessageBody=body,
            MessageAttributes={"reason": {"DataType": "String", "StringValue": reason}},
        )
    for failure in failures:
        log = logger.error if failure.permanent else logger.warning
        log(
            "window failed",
            extra={
                "symbol": failure.task.symbol,
                "window_start": failure.task.start,
                "attempt": failure.task.attempt + 1,
                "reason": failure.reason,
            },
        )
    dead_count = len(dead)
    if dead_count:
        logger.error("windows dead-lettered", extra={"windows": dead_count, "reasons": sorted({r for _, r in dead})})
    return len(failures) - dead_count, dead_count


def process_round(
    messages: list[dict[str, Any]], *, now_ms: int, queue_url: str, dlq_url: str, table: str, bus: str
) -> dict[str, int]:
    tasks: list[WindowTask] = []
    readable: list[dict[str, Any]] = []
    for message in messages:
        try:
            tasks.extend(decode_tasks(message["Body"]))
            readable.append(message)
        except WireFormatError as exc:
            # Left in the queue: after 5 receives the redrive moves it to AggregationDLQ.
            logger.error("unreadable message", extra={"message_id": message.get("MessageId"), "error": str(exc)})
    windows = merge(tasks)
    unfinished = sorted(key for key in windows if key[1] + WINDOW_MS > now_ms)
    finished = [task for key, task in sorted(windows.items()) if key[1] + WINDOW_MS <= now_ms]
    stored, failures = aggregate_windows(table, finished)
    unpublished = publish_bars(bus, stored, windows)
    failures += unpublished
    retried, dead = carry_failures(failures, queue_url=queue_url, dlq_url=dlq_url, now_ms=now_ms)
    deferred = defer(queue_url, unfinished, now_ms) if unfinished else 0
    delete_messages(queue_url, readable)
    return {
        "messages": len(messages),
        "windows": len(stored) - len(unpublished),
        "deferred_windows": len(unfinished),
        "deferred_messages": deferred,
        "retried_windows": retried,
        "dead_lettered_windows": dead,
    }


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    queue_url = common.env(ENV_AGGREGATION_QUEUE_URL)
    dlq_url = common.env(ENV_AGGREGATION_DLQ_URL)
    table = common.env(ENV_TABLE_NAME)
    bus = common.env(ENV_EVENT_BUS_NAME)
    base_ms, started = event_now_ms(event), time.monotonic()
    totals = {
        "messages": 0,
        "windows": 0,
        "deferred_windows": 0,
        "deferred_messages": 0,
        "retried_windows": 0,
        "dead_lettered_windows": 0,
        "rounds": 0,
    }
    poller = Poller(queue_url, context)
    while not poller.drained and _time_left(context):
        messages = poller.round()
        if not messages:
            break
        now_ms = base_ms + int((time.monotonic() - started) * 1000)
        result = process_round(messages, now_ms=now_ms, queue_url=queue_url, dlq_url=dlq_url, table=table, bus=bus)
        for key, value in result.items():
            totals[key] += value
        totals["rounds"] += 1
    metrics.add_metric(name="AggregatesComputed", unit=MetricUnit.Count, value=totals["windows"])
    metrics.add_metric(name="WindowsDeferred", unit=MetricUnit.Count, value=totals["deferred_windows"])
    metrics.add_metric(name="WindowsRetried", unit=MetricUnit.Count, value=totals["retried_windows"])
    metrics.add_metric(name="WindowsDeadLettered", unit=MetricUnit.Count, value=totals["dead_lettered_windows"])
    logger.info("aggregation run", extra=totals)
    return totals
