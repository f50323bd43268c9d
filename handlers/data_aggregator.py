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
3. each finished window is recomputed from all its points and stored with a write
   conditional on the version read before the points, so an older computation never
   replaces a newer one (handlers.aggregate_store: BatchGetItem, Query, PutItem);
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
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from handlers import common
from handlers.aggregate_store import Key, aggregate_windows, describe
from handlers.contract import (
    DETAIL_TYPE_BARS_COMPUTED,
    ENV_AGGREGATION_DLQ_URL,
    ENV_AGGREGATION_QUEUE_URL,
    ENV_EVENT_BUS_NAME,
    ENV_TABLE_NAME,
    EVENT_SOURCE_AGGREGATOR,
    WINDOW_MS,
)
from handlers.core.bars import bar_json, pack_bars
from handlers.core.window_retry import Failure, WindowTask, decode_tasks, merge, plan
from handlers.core.wire import WireFormatError, event_entries_in_calls

if TYPE_CHECKING:  # test-only stubs, never imported on Lambda
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_sqs.type_defs import MessageTypeDef

SAFETY_MARGIN_MS = 60_000  # stop starting rounds when less than this is left
ROUND_MESSAGES = 100  # messages per round (10 ReceiveMessage calls at most)
# Windows per round, roughly: every window costs a conditional PutItem (8 in flight), so
# a round stays well inside the invocation whatever the messages carry.
ROUND_WINDOWS = 10_000
RECEIVE_WAIT_SECONDS = 1  # long polling, until a receive returns a partial batch
FINAL_POLL_WAIT_SECONDS = 0  # then short polls: an empty answer ends the run
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds maximum

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


# --- step 4: publishing -------------------------------------------------------------------
def publish_bars(bus: str, stored: list[tuple[dict[str, Any], int]], tasks: dict[Key, WindowTask]) -> list[Failure]:
    """BarsComputed events for the stored bars; the windows of a failed call are returned."""
    bars = [
        (agg["symbol"], agg["window_start"], bar_json(agg, window_ms=WINDOW_MS, version=version))
        for agg, version in stored
    ]
    overhead = len(EVENT_SOURCE_AGGREGATOR.encode()) + len(DETAIL_TYPE_BARS_COMPUTED.encode())
    entries: list[PutEventsRequestEntryTypeDef] = []
    keys_of: dict[int, list[Key]] = {}
    for detail, keys in pack_bars(bars, overhead_bytes=overhead):
        entry: PutEventsRequestEntryTypeDef = {
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
def receive(queue_url: str, max_messages: int, wait_seconds: int) -> list[MessageTypeDef]:
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

    def round(self) -> list[MessageTypeDef]:
        messages: list[MessageTypeDef] = []
        windows = 0
        while len(messages) < ROUND_MESSAGES and windows < ROUND_WINDOWS and _time_left(self.context):
            want = min(10, ROUND_MESSAGES - len(messages))
            batch = receive(self.queue_url, want, self.wait_seconds)
            messages.extend(batch)
            # An estimate without decoding: '"windows":[["AAPL",1717421400000],["MSFT",...]]'.
            windows += sum(str(m.get("Body", "")).count("],") + 1 for m in batch)
            if not batch:
                self.drained = True
                break
            if len(batch) < want:
                self.wait_seconds = FINAL_POLL_WAIT_SECONDS
        return messages


def _time_left(context: Any) -> bool:
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    return remaining is None or remaining() > SAFETY_MARGIN_MS


def delete_messages(queue_url: str, messages: list[MessageTypeDef]) -> None:
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
    # One line per reason (an outage fails thousands of windows the same way): ERROR for
    # permanent failures and dead letters (the error metric filter counts those).
    by_reason: dict[tuple[str, bool], list[Failure]] = {}
    for failure in failures:
        by_reason.setdefault((failure.reason, failure.permanent), []).append(failure)
    for (reason, permanent), group in sorted(by_reason.items()):
        (logger.error if permanent else logger.warning)(
            "windows failed",
            extra={
                "reason": reason,
                "permanent": permanent,
                "windows": len(group),
                "sample": [[f.task.symbol, f.task.start, f.task.attempt + 1] for f in group[:10]],
            },
        )
    dead_count = len(dead)
    if dead_count:
        logger.error("windows dead-lettered", extra={"windows": dead_count, "reasons": sorted({r for _, r in dead})})
    return len(failures) - dead_count, dead_count


def process_round(
    messages: list[MessageTypeDef], *, now_ms: int, queue_url: str, dlq_url: str, table: str, bus: str
) -> dict[str, int]:
    tasks: list[WindowTask] = []
    readable: list[MessageTypeDef] = []
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
