"""The AWS edge shared by the three handlers: clients, bounded retries, batching.

Clients are module-level and reused across invocations, but created on first use
(`client("sqs")`) rather than at import: creating a botocore client costs about as much
as `import boto3` itself (docs/design.md "Handler runtime"), and the handler modules must import
cleanly without AWS credentials, region or environment variables. The region comes
from AWS_REGION / AWS_DEFAULT_REGION, which Lambda always sets.

`use_session(session)` makes every handler client come from the given boto3 Session:
`market_cfn.simulate` uses it to register botocore event hooks that count and check
each AWS request the handlers make.

Retries: botocore's "standard" retry mode retries throttling and 5xx errors of each
call. On top of it, the partial failures that botocore cannot see (BatchWriteItem
UnprocessedItems, SendMessageBatch Failed, PutEvents FailedEntryCount) and throttling
errors that survive botocore are retried here with capped exponential backoff and full
jitter; when they still fail, `DeliveryError` is raised so the invocation fails
loudly (S3 async retry + InvocationDLQ, SQS redrive, API 503) - nothing is dropped.
"""

from __future__ import annotations

import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, Protocol, TypeVar, overload

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from handlers.contract import TTL_ATTRIBUTE

if TYPE_CHECKING:  # test-only stubs: never imported on Lambda (nor bundled, see deploy/packaging.py)
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import WriteRequestOutputTypeDef, WriteRequestTypeDef
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

MAX_ATTEMPTS = 8  # our own attempts for partial failures (each call also has botocore's)
BACKOFF_BASE_SECONDS = 0.05
BACKOFF_CAP_SECONDS = 2.0
DDB_BATCH_ITEMS = 25  # BatchWriteItem: at most 25 put/delete requests per call
RETRYABLE_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "Throttling",
        "ThrottledException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "TooManyRequestsException",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
# An invocation that fails before adding a metric has nothing to publish: not a problem.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)
_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)

# Tests replace this with a recorder so that backoff costs no wall time.
sleep: Callable[[float], None] = time.sleep


class ClientSource(Protocol):
    """Where handler clients come from: the boto3 module, a boto3 Session, or anything with their
    `client(service_name, ...)` (market_cfn.local's EndpointSession). The service name is Any because
    the boto3 stubs type `client` once per literal service name, and `client(service)` takes any name."""

    def client(self, service_name: Any, /, *args: Any, **kwargs: Any) -> Any: ...


_session: ClientSource | None = None
_clients: dict[str, Any] = {}


class DeliveryError(RuntimeError):
    """A batch operation still failed after all retries; the invocation must fail."""


def use_session(session: ClientSource | None) -> None:
    """Create handler clients from `session` (a boto3 Session, or any ClientSource) from now on; None resets."""
    global _session
    _session = session
    _clients.clear()


# One overload per service the handlers use, in name order: a call with any other name is a type
# error, and each client returned is checked as that service's (as cli/command.py's Context.client).
@overload
def client(service: Literal["dynamodb"]) -> DynamoDBClient: ...
@overload
def client(service: Literal["events"]) -> EventBridgeClient: ...
@overload
def client(service: Literal["s3"]) -> S3Client: ...
@overload
def client(service: Literal["sqs"]) -> SQSClient: ...
def client(service: str) -> Any:
    """The shared client for `service`, created on first use."""
    found = _clients.get(service)
    if found is None:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        factory: ClientSource = _session if _session is not None else boto3
        found = _clients[service] = factory.client(service, region_name=region, config=_CONFIG)
    return found


def env(name: str) -> str:
    """A required environment variable, read at invocation time (not at import)."""
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"environment variable {name} is not set")
    return value


def backoff(attempt: int) -> None:
    """Sleep before retry number `attempt` (0-based): capped exponential, full jitter."""
    sleep(random.uniform(0, min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2**attempt)))


def _retryable(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in RETRYABLE_CODES


P = ParamSpec("P")
R = TypeVar("R")


def _call(fn: Callable[P, R], attempt: int, *args: P.args, **kwargs: P.kwargs) -> R | None:
    """Call fn; a retryable error returns None (the caller retries), others raise. Typed as `fn`
    is, so a typed client's call is checked through it."""
    try:
        return fn(*args, **kwargs)
    except ClientError as exc:
        if _retryable(exc) and attempt < MAX_ATTEMPTS - 1:
            return None
        raise


def send_message_batch(queue_url: str, bodies: list[str]) -> int:
    """SendMessageBatch (<= 10 bodies, <= 1 MiB together), retrying Failed entries.

    Returns the number of calls made. Raises DeliveryError when entries still fail.
    """
    sqs = client("sqs")
    pending = {str(i): body for i, body in enumerate(bodies)}
    calls = 0
    errors: list[str] = []
    for attempt in range(MAX_ATTEMPTS):
        if attempt:
            backoff(attempt - 1)
        calls += 1
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": key, "MessageBody": body} for key, body in pending.items()
        ]
        response = _call(sqs.send_message_batch, attempt, QueueUrl=queue_url, Entries=entries)
        if response is None:
            continue
        failed = response.get("Failed") or []
        if not failed:
            return calls
        errors = [f"{f.get('Code')}: {f.get('Message', '')}".strip() for f in failed]
        if any(f.get("SenderFault") for f in failed):
            break  # the request itself is wrong: retrying cannot help
        pending = {f["Id"]: pending[f["Id"]] for f in failed}
    raise DeliveryError(
        f"SendMessageBatch: {len(pending)} of {len(bodies)} messages not accepted "
        f"after {calls} attempts ({'; '.join(sorted(set(errors)))})"
    )


def batch_write(table_name: str, items: Iterable[dict[str, Any]], *, concurrency: int = 1) -> int:
    """BatchWriteItem PutRequests in chunks of 25, retrying UnprocessedItems.

    With `concurrency` > 1, up to that many chunks are written at once from a thread
    pool (botocore clients are thread-safe). Returns the number of calls made. Raises
    DeliveryError when items stay unprocessed after the retries.
    """
    ddb = client("dynamodb")
    calls = [0]

    def write(requests: list[WriteRequestTypeDef]) -> None:
        # UnprocessedItems has RequestItems' form (DynamoDB API Reference, BatchWriteItem), typed by
        # the stubs as the output shape; the request takes either.
        pending: Mapping[str, Sequence[WriteRequestTypeDef | WriteRequestOutputTypeDef]] = {table_name: requests}
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                backoff(attempt - 1)
            calls[0] += 1
            response = _call(ddb.batch_write_item, attempt, RequestItems=pending)
            if response is None:
                continue
            pending = response.get("UnprocessedItems") or {}
            if not pending:
                return
        left = sum(len(v) for v in pending.values())
        raise DeliveryError(f"BatchWriteItem: {left} items unprocessed after {MAX_ATTEMPTS} attempts")

    chunks: list[list[WriteRequestTypeDef]] = []
    chunk: list[WriteRequestTypeDef] = []
    for item in items:
        chunk.append({"PutRequest": {"Item": item}})
        if len(chunk) == DDB_BATCH_ITEMS:
            chunks.append(chunk)
            chunk = []
    if chunk:
        chunks.append(chunk)
    if concurrency <= 1 or len(chunks) <= 1:
        for requests in chunks:
            write(requests)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(concurrency, len(chunks))) as pool:
            for future in [pool.submit(write, requests) for requests in chunks]:
                future.result()  # re-raises the first failure
    return calls[0]


def put_events(calls_of_entries: Iterable[Sequence[PutEventsRequestEntryTypeDef]]) -> int:
    """PutEvents, one call per given list (<= 10 entries), retrying failed entries."""
    events = client("events")
    calls = 0
    for entries in calls_of_entries:
        pending = list(entries)
        errors: list[str] = []
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                backoff(attempt - 1)
            calls += 1
            response = _call(events.put_events, attempt, Entries=pending)
            if response is None:
                continue
            if not response.get("FailedEntryCount"):
                pending = []
                break
            # Results are in request order; a failed entry has an ErrorCode. A response
            # whose results do not line up with the request cannot say which entries
            # failed: send them all again rather than drop one (a repeated event is
            # harmless, see the handlers' idempotency notes).
            results = response.get("Entries") or []
            errors = [r.get("ErrorCode", "") for r in results if r.get("ErrorCode")] or ["unmatched results"]
            if len(results) == len(pending):
                pending = [e for e, r in zip(pending, results, strict=True) if r.get("ErrorCode")]
        if pending:
            raise DeliveryError(
                f"PutEvents: {len(pending)} entries failed after {calls} calls ({', '.join(sorted(set(errors)))})"
            )
    return calls


def number(value: Any) -> dict[str, str]:
    """A DynamoDB N attribute value."""
    return {"N": str(value)}


DAY_SECONDS = 86_400


def expiry(retention_env: str, now: float | None = None) -> dict[str, dict[str, str]]:
    """The TTL attribute of an item stored now and kept the days the environment variable
    `retention_env` names ({} when it is 0 or unset: kept for good). DynamoDB TTL reads epoch
    seconds in a Number attribute (developer guide, "Using time to live (TTL) in DynamoDB").
    A value that is not a whole number of days >= 0 raises: better no write than a wrong expiry."""
    raw = os.environ.get(retention_env, "0")
    if not raw.isdigit():
        raise RuntimeError(f"environment variable {retention_env} must be a whole number of days, got {raw!r}")
    days = int(raw)
    if not days:
        return {}
    return {TTL_ATTRIBUTE: number(int(time.time() if now is None else now) + days * DAY_SECONDS)}
