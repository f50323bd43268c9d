"""The local service's function logs: what a handler writes during an invocation (its
Powertools JSON lines, the metrics' EMF lines, anything printed) goes to the function's log
group in the local endpoint with CloudWatch Logs PutLogEvents, framed by the START / END /
REPORT lines the Lambda runtime writes, one log stream per function per service run (as one
warm execution environment), named as Lambda names them: YYYY/MM/DD/[$LATEST]<32 hex>.

An unhandled error is written as the Python runtime does: "[ERROR] Type: message" and the
traceback, as one event. "Max Memory Used" is not reported: it is not measurable in-process.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from market_cfn.local.lambda_events import FakeLambdaContext

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_logs import CloudWatchLogsClient

MAX_BATCH_EVENTS = 10_000  # PutLogEvents: at most 10,000 events and 1,048,576 bytes per call,
MAX_BATCH_BYTES = 1_048_576  # each event counting its UTF-8 bytes + 26
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD_BYTES  # larger messages are truncated, as CloudWatch Logs does


class LogSink:
    """Captures each invocation's output and ships it to CloudWatch Logs (see the module docstring).

    `handler_module(logical)` gives the function's module, whose Powertools logger's stream is
    pointed at the capture buffer during the invocation; `echo`, when given, receives every
    line too (the service's --verbose).
    """

    def __init__(
        self,
        logs: CloudWatchLogsClient,
        log_group: Callable[[str], str],
        handler_module: Callable[[str], Any],
        *,
        echo: Any = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.logs = logs
        self.log_group = log_group
        self.handler_module = handler_module
        self.echo = echo
        self.on_error = on_error or (lambda _message: None)
        self.streams: dict[str, str] = {}
        self._lock = threading.Lock()

    def stream_for(self, logical: str) -> tuple[str, str]:
        """(log group, log stream) of the function, creating the stream on first use."""
        group = self.log_group(logical)
        with self._lock:
            stream = self.streams.get(logical)
            if stream is None:
                stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
                try:
                    self.logs.create_log_group(logGroupName=group)
                except self.logs.exceptions.ResourceAlreadyExistsException:
                    pass  # the stack created it (the normal case)
                self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
                self.streams[logical] = stream
        return group, stream

    @contextlib.contextmanager
    def capture(self, logical: str, context: FakeLambdaContext) -> Iterator[None]:
        """The output context of one invocation (market_cfn.local.runtime.Output)."""
        buffer = io.StringIO()
        request_id = context.aws_request_id
        started = time.monotonic()
        lines: list[tuple[int, str]] = [(_now_ms(), f"START RequestId: {request_id} Version: $LATEST")]
        handlers = [
            h for h in self.handler_module(logical).logger._logger.handlers if isinstance(h, logging.StreamHandler)
        ]
        saved = [h.stream for h in handlers]
        for handler in handlers:
            handler.stream = buffer
        try:
            with _stdout_to(buffer):
                yield
        except BaseException as exc:
            error = f"[ERROR] {type(exc).__name__}: {exc}\n" + "".join(traceback.format_tb(exc.__traceback__))
            self._collect(buffer, lines)
            lines.append((_now_ms(), error.rstrip("\n")))
            raise
        finally:
            for handler, stream in zip(handlers, saved, strict=True):
                handler.stream = stream
            self._collect(buffer, lines)
            duration = (time.monotonic() - started) * 1000
            lines.append((_now_ms(), f"END RequestId: {request_id}"))
            lines.append(
                (
                    _now_ms(),
                    f"REPORT RequestId: {request_id}\tDuration: {duration:.2f} ms\t"
                    f"Billed Duration: {max(1, int(duration + 0.999))} ms\tMemory Size: {context.memory_limit_in_mb} MB",
                )
            )
            self.ship(logical, lines)

    def _collect(self, buffer: io.StringIO, lines: list[tuple[int, str]]) -> None:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        stamp = _now_ms()
        lines.extend((stamp, line) for line in text.splitlines() if line.strip())

    def ship(self, logical: str, lines: list[tuple[int, str]]) -> None:
        """PutLogEvents in batches within the service limits; a failure is reported, not raised
        (the invocation's outcome must not depend on its logging)."""
        if self.echo is not None:
            for _, line in lines:
                print(line, file=self.echo, flush=True)
        try:
            group, stream = self.stream_for(logical)
            for batch in batches([(t, _truncate(m)) for t, m in lines]):
                self.logs.put_log_events(
                    logGroupName=group,
                    logStreamName=stream,
                    logEvents=[{"timestamp": t, "message": m} for t, m in batch],
                )
        except Exception as exc:  # noqa: BLE001  # reported on the service's own output
            self.on_error(f"logs for {logical} not written: {type(exc).__name__}: {exc}")


class _ThreadStdout:
    """sys.stdout while the service runs: writes of a thread that is running a handler go to
    that invocation's buffer, every other thread's to the real stdout (redirect_stdout would
    capture the whole process's output, e.g. the service's own messages)."""

    def __init__(self, original: Any) -> None:
        self.original = original
        self.local = threading.local()

    def _target(self) -> Any:
        return getattr(self.local, "buffer", None) or self.original

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


_router_lock = threading.Lock()


@contextlib.contextmanager
def _stdout_to(buffer: io.StringIO) -> Iterator[None]:
    """Route this thread's sys.stdout writes to `buffer` for the duration."""
    with _router_lock:
        router = sys.stdout
        if not isinstance(router, _ThreadStdout):
            router = sys.stdout = _ThreadStdout(sys.stdout)
    previous = getattr(router.local, "buffer", None)
    router.local.buffer = buffer
    try:
        yield
    finally:
        router.local.buffer = previous


def restore_stdout() -> None:
    """Undo the routing (the service's stop)."""
    with _router_lock:
        if isinstance(sys.stdout, _ThreadStdout):
            sys.stdout = sys.stdout.original


def batches(events: list[tuple[int, str]]) -> Iterator[list[tuple[int, str]]]:
    """Split events into PutLogEvents calls: <= 10,000 events and <= 1 MiB with overheads."""
    batch: list[tuple[int, str]] = []
    size = 0
    for stamp, message in events:
        cost = len(message.encode("utf-8")) + EVENT_OVERHEAD_BYTES
        if batch and (len(batch) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((stamp, message))
        size += cost
    if batch:
        yield batch


def _truncate(message: str) -> str:
    raw = message.encode("utf-8")
    return message if len(raw) <= MAX_EVENT_BYTES else raw[:MAX_EVENT_BYTES].decode("utf-8", "ignore")


def _now_ms() -> int:
    return int(time.time() * 1000)
