"""The Lambda service's part, shared by simulate's Pipeline and the `local` service: invoke a
real handler with its template environment and a context object, asynchronous invocation
(retries, then the on-failure destination), and one poll of an SQS event source mapping
(batch size, partial batch responses, what happens to failed messages).

Semantics follow the Lambda developer guide: "Asynchronous invocation" (2 retries by default,
then the invocation record to the OnFailure destination, invocation-async-retain-records.html)
and "Using Lambda with Amazon SQS" (a batch succeeds as a whole unless the function returns
`batchItemFailures`; a function error, or a failure list Lambda cannot read - an empty or
unknown itemIdentifier - fails the whole batch; failed messages are not deleted, so they come
back after the queue's visibility timeout and the redrive policy moves them to the dead-letter
queue after maxReceiveCount receives).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from market_cfn.local.lambda_events import FakeLambdaContext, invocation_record, sqs_record
from market_cfn.local.stackview import Mapping, StackView

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

Invoke = Callable[[str, dict[str, Any]], Any]
Output = Callable[[str, FakeLambdaContext], contextlib.AbstractContextManager[Any]]


def _no_output(_logical: str, _context: FakeLambdaContext) -> contextlib.AbstractContextManager[Any]:
    return contextlib.nullcontext()


class FunctionRuntime:
    """Runs handlers one invocation at a time: the handlers read their configuration from
    os.environ, which is one per process, so two invocations of different functions must not
    overlap here (Lambda gives each its own process; see docs/local.md)."""

    def __init__(self, view: StackView, *, base_env: dict[str, str] | None = None, output: Output | None = None):
        self.view = view
        self.base_env = dict(base_env or {})
        self.output = output or _no_output
        self.lock = threading.RLock()
        self.actor = "emulator"

    def context(self, logical: str) -> FakeLambdaContext:
        return FakeLambdaContext(
            function_name=self.view.ref(logical),
            timeout_ms=self.view.timeout_ms(logical),
            memory_limit_in_mb=self.view.memory_mb(logical),
            log_group_name=self.view.log_group(logical),
        )

    def environment(self, logical: str) -> dict[str, str]:
        """What the function's process sees: the variable Lambda defines that the handlers read
        (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, the function's MemorySize: Lambda developer guide,
        "Defined runtime environment variables"), then base_env, then the template's Variables."""
        defined = {"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.view.memory_mb(logical))}
        return {**defined, **self.base_env, **self.view.function_env(logical)}

    def invoke(self, logical: str, event: dict[str, Any], *, context: Any = None) -> Any:
        """Invoke a function's real handler with its template environment; errors propagate."""
        if context is None:
            context = self.context(logical)
        with self.lock:
            previous, self.actor = self.actor, logical
            try:
                with patched_environ(self.environment(logical)):
                    # The first use imports the module in the function's environment, as
                    # Lambda's init phase does (Powertools reads POWERTOOLS_SERVICE_NAME then).
                    handler = self.view.handler(logical)
                    with self.output(logical, context):
                        return handler(event, context)
            finally:
                self.actor = previous

    def init(self, logical: str) -> Any:
        """Import a function's handler module in its environment (Lambda's init phase)."""
        with self.lock, patched_environ(self.environment(logical)):
            return self.view.handler_module(logical)


# --- asynchronous invocation ------------------------------------------------------------


@dataclass
class AsyncInvocation:
    """One asynchronous invocation: the event, how often it was tried, the last error."""

    function: str
    event: dict[str, Any]
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    attempts: int = 0
    last_error: BaseException | None = None
    source: str = ""  # what asked for it (a schedule rule's logical ID, a bucket's), for bookkeeping


def attempt(invoke: Invoke, invocation: AsyncInvocation, errors: list[str]) -> tuple[bool, Any]:
    """Run one attempt; (True, result) or (False, None) with the error recorded."""
    invocation.attempts += 1
    try:
        return True, invoke(invocation.function, invocation.event)
    except Exception as exc:  # noqa: BLE001  # the Lambda service sees any error
        invocation.last_error = exc
        errors.append(f"{invocation.function} attempt {invocation.attempts}: {type(exc).__name__}: {exc}")
        return False, None


def retries_exhausted(sqs: SQSClient, view: StackView, invocation: AsyncInvocation) -> str | None:
    """Send the invocation record to the function's on-failure destination; return its queue
    logical ID (None: no destination, the event is discarded, as Lambda does)."""
    destination = view.async_config(invocation.function).on_failure
    if destination is None:
        return None
    record = invocation_record(
        view.arn(invocation.function),
        invocation.event,
        attempts=invocation.attempts,
        error=invocation.last_error,
        request_id=invocation.request_id,
    )
    sqs.send_message(QueueUrl=view.ref(destination), MessageBody=json.dumps(record, default=str))
    return destination


# --- the SQS event source mapping -------------------------------------------------------


@dataclass
class BatchOutcome:
    received: int = 0
    failed: int = 0


def failed_item_ids(response: Any, message_ids: set[str]) -> set[str]:
    """The messages a partial batch response reports as failed. A response Lambda cannot read
    (not a dict, a malformed list, an empty or unknown itemIdentifier) fails the whole batch."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set(message_ids)  # "an invalid JSON response" fails the whole batch
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return set(message_ids)
    failed = set()
    for failure in failures:
        item = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(item, str) or item not in message_ids:
            return set(message_ids)
        failed.add(item)
    return failed


def poll_once(
    invoke: Invoke,
    sqs: SQSClient,
    view: StackView,
    mapping: Mapping,
    *,
    wait_seconds: int,
    failed_visibility_seconds: int | None,
    errors: list[str],
) -> BatchOutcome:
    """Receive one batch, invoke the function, delete what succeeded. Failed messages stay in
    flight until the visibility timeout passes, or become visible after
    `failed_visibility_seconds` when it is given (the emulation's shortcut, documented)."""
    url = view.ref(mapping.queue)
    received: list[MessageTypeDef] = []
    while len(received) < mapping.batch_size:
        page = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, mapping.batch_size - len(received)),
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            WaitTimeSeconds=0 if received else wait_seconds,
        ).get("Messages", [])
        received.extend(page)
        if len(page) < 10:
            break  # the queue had no more: one ReceiveMessage per batch of up to 10, as Lambda polls
    outcome = BatchOutcome(received=len(received))
    if not received:
        return outcome
    event = {"Records": [sqs_record(m, view.arn(mapping.queue)) for m in received]}
    ids = {m["MessageId"] for m in received}
    try:
        response = invoke(mapping.function, event)
        failed = failed_item_ids(response, ids) if mapping.partial_failures else set()
    except Exception as exc:  # noqa: BLE001  # a crashed invocation fails the whole batch, as in Lambda
        errors.append(f"{mapping.function}: {type(exc).__name__}: {exc}")
        failed = ids
    done = [m for m in received if m["MessageId"] not in failed]
    for i in range(0, len(done), 10):
        chunk = done[i : i + 10]
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)]
        )
    outcome.failed = len(failed)
    if failed_visibility_seconds is not None:
        for message in received:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=failed_visibility_seconds
                )
    return outcome


# --- small helpers ----------------------------------------------------------------------


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@contextlib.contextmanager
def patched_attr(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)
