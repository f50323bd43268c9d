"""The aggregator's DynamoDB edge: version reads, point queries, conditional aggregate writes.

`aggregate_windows(table, tasks)` recomputes and stores finished windows under
optimistic concurrency control, each window on its own:

a. read the stored aggregates' `version` (BatchGetItem, 100 keys a call, eventually
   consistent: a stale version only makes the conditional write in (c) fail and the
   window be redone);
b. then Query the window's points (symbol = S, timestamp BETWEEN start AND end - 1,
   ConsistentRead, every page - never a Scan; adjacent touched windows of a symbol, up
   to MAX_WINDOWS_PER_QUERY, share one Query; up to QUERY_CONCURRENCY at once). The
   Query stays strongly consistent: a run must see the point whose PointsStored
   message triggered it, and nothing would trigger the window again for a point it
   missed;
c. PutItem the aggregate with version + 1 and the condition `version = <read>`
   (`attribute_not_exists(version)` for a new one). When another run replaced the
   aggregate in between, the condition fails (ConditionalCheckFailedException): this
   computation may be the older one, so it is dropped and the window redone from (a)
   with a strongly consistent read, up to STORE_ATTEMPTS times.

Why no older computation can replace a newer one: a write succeeds only if nothing was
written since its version read, which preceded its Query; so any later successful
write read the version after this write, queried after it, and saw every point this
one saw. The point whose PointsStored message started a run was stored before the run
began, so the last successful write of a window includes every announced point
(DynamoDB developer guide, "Condition expressions" and "Optimistic locking with
version number": a condition is evaluated against the item's current state, and a
failed one refuses the write with ConditionalCheckFailedException).

A window whose read, Query, computation or write fails is returned as a `Failure`
(reason, permanent or not); it never fails the other windows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from handlers import common
from handlers.contract import AGGREGATE_KEY_SUFFIX, AGGREGATE_VERSION_ATTRIBUTE, ENV_BARS_RETENTION_DAYS, WINDOW_MS
from handlers.core.aggregation import compute_aggregate, unstorable_reason
from handlers.core.window_retry import Failure, WindowTask
from handlers.core.wire import window_start

if TYPE_CHECKING:  # test-only stubs, never imported on Lambda
    from collections.abc import Mapping

    from mypy_boto3_dynamodb.type_defs import KeysAndAttributesUnionTypeDef, PutItemInputTypeDef, QueryInputTypeDef

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

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "DataAggregator"), child=True)
T = TypeVar("T")
Key = tuple[str, int]


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


def _read_versions_chunk(table: str, chunk: list[Key], consistent: bool) -> dict[Key, int]:
    """One BatchGetItem (<= 100 keys), UnprocessedKeys retried with backoff."""
    ddb = common.client("dynamodb")
    versions: dict[Key, int] = {}
    pending: Mapping[str, KeysAndAttributesUnionTypeDef] = {
        table: {
            "Keys": [aggregate_key(*key) for key in chunk],
            "ProjectionExpression": "#s, #t, #v",
            "ExpressionAttributeNames": {"#s": "symbol", "#t": "timestamp", "#v": AGGREGATE_VERSION_ATTRIBUTE},
            "ConsistentRead": consistent,
        }
    }
    for attempt in range(common.MAX_ATTEMPTS):
        if attempt:
            common.backoff(attempt - 1)
        response = common._call(ddb.batch_get_item, attempt, RequestItems=pending)
        if response is None:
            continue  # throttled: retry the same keys
        for item in response.get("Responses", {}).get(table, []):
            symbol = item["symbol"]["S"].removesuffix(AGGREGATE_KEY_SUFFIX)
            stored = item.get(AGGREGATE_VERSION_ATTRIBUTE)
            versions[(symbol, int(item["timestamp"]["N"]))] = int(stored["N"]) if stored else 0
        pending = response.get("UnprocessedKeys") or {}
        if not pending:
            return {key: versions.get(key, 0) for key in chunk}  # absent: no aggregate yet
    raise common.DeliveryError(f"BatchGetItem: keys unprocessed after {common.MAX_ATTEMPTS} attempts")


def read_versions(table: str, keys: list[Key], *, consistent: bool) -> tuple[dict[Key, int], dict[Key, Exception]]:
    """The stored aggregates' versions (0 when there is none), and the keys whose read
    failed (each BatchGetItem of 100 keys on its own; up to QUERY_CONCURRENCY at once)."""
    chunks = [keys[i : i + BATCH_GET_KEYS] for i in range(0, len(keys), BATCH_GET_KEYS)]
    versions: dict[Key, int] = {}
    failed: dict[Key, Exception] = {}
    results = _in_parallel(lambda c: _read_versions_chunk(table, c, consistent), chunks, QUERY_CONCURRENCY)
    for chunk, result in zip(chunks, results, strict=True):
        if isinstance(result, Exception):
            failed.update({key: result for key in chunk})
        else:
            versions.update(result)
    return versions, failed


# --- step (b): the points -----------------------------------------------------------------
def query_points(table: str, symbol: str, start: int, end: int) -> Iterator[tuple[int, Decimal, int | None]]:
    """(timestamp, price, volume) of every point of `symbol` in [start, end), oldest first."""
    ddb = common.client("dynamodb")
    params: QueryInputTypeDef = {
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
    item.update(common.expiry(ENV_BARS_RETENTION_DAYS))
    return item


def store(table: str, agg: dict[str, Any], read_version: int) -> bool:
    """PutItem the aggregate as version read_version + 1 if the stored one is still
    read_version; False when another run replaced it first."""
    problem = unstorable_reason(agg)
    if problem is not None:
        raise UnstorableAggregate(f"aggregate cannot be stored: {problem}")
    condition = "attribute_not_exists(#v)" if read_version == 0 else "#v = :v"
    params: PutItemInputTypeDef = {
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
