"""Count every AWS request a botocore client makes, and what AWS would bill for it.

`AwsMeter.install()` hooks every botocore client created afterwards (and
`attach_client` hooks one made earlier) on three events:

* ``before-call.*``  a request starts: remember the parameters and the time;
* ``before-send.*``  (registered first) the request leaves the client: from here until
  ``before-parse`` the time is spent in moto, standing in for the AWS service;
* ``after-call.*``   the parsed response: count the call and convert it to billed units
  (`bench.costing`).

Inside ``with meter.invocation("DataProcessor"):`` the meter also models a Lambda
invocation: billed duration = (CPU time of the handler - CPU spent inside moto),
stretched when the function has less than one vCPU (`cpu_scale`), + the assumed
network latency of each AWS call it made (`LATENCY_MS`) + the wait of each empty long
poll, at the function's memory size; plus the bytes the handler wrote to stdout/stderr
(what Lambda ships to CloudWatch Logs) and one X-Ray trace.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field

import botocore.session

from bench import costing
from bench.costing import Usage

# Assumed round-trip latency of one AWS call made from a Lambda function in the same
# region, in milliseconds. These are assumptions, not measurements (moto answers in
# microseconds): DynamoDB advertises single-digit-millisecond latency; SQS and
# EventBridge calls usually take low tens of ms; an S3 GET pays a first-byte latency
# plus transfer time. The whole table can be scaled with `run.py --latency-scale`.
# Keys are the meter's service ids (`_SERVICE` below: EventBridge is "events"); a
# service with no entry is refused (`latency_ms` raises), never billed at a guess.
LATENCY_MS: dict[tuple[str, str], float] = {
    ("dynamodb", "BatchWriteItem"): 10.0,
    ("dynamodb", "PutItem"): 5.0,
    ("dynamodb", "UpdateItem"): 5.0,
    ("dynamodb", "GetItem"): 4.0,
    ("dynamodb", "Query"): 5.0,
    ("dynamodb", "*"): 5.0,
    ("sqs", "*"): 10.0,
    ("events", "*"): 20.0,
    ("s3", "GetObject"): 30.0,
    ("s3", "*"): 30.0,
}
S3_TRANSFER_BYTES_PER_MS = 85 * 1024 * 1024 / 1000  # ~85 MB/s for one GET stream

# Lambda writes three platform lines per invocation to the function's log group
# (START, END, REPORT); they are billed as ingested log data like the handler's own.
PLATFORM_LOG_LINES = (
    "START RequestId: 3f1c2e9a-6b7d-4c8e-9f0a-1b2c3d4e5f60 Version: $LATEST",
    "END RequestId: 3f1c2e9a-6b7d-4c8e-9f0a-1b2c3d4e5f60",
    "REPORT RequestId: 3f1c2e9a-6b7d-4c8e-9f0a-1b2c3d4e5f60\tDuration: 123.45 ms\t"
    "Billed Duration: 124 ms\tMemory Size: 3072 MB\tMax Memory Used: 160 MB\t\n"
    "XRAY TraceId: 1-6745b2c1-0a1b2c3d4e5f60718293a4b5\tSegmentId: 0a1b2c3d4e5f6071\tSampled: true",
)
PLATFORM_LOG_BYTES = costing.log_ingested_bytes(PLATFORM_LOG_LINES)

# Service ids as botocore names them in event names (hyphenized service id).
_SERVICE = {"dynamodb": "dynamodb", "sqs": "sqs", "eventbridge": "events", "s3": "s3", "cloudwatch-events": "events"}
PRICED_SERVICES = frozenset(_SERVICE.values())

# The Lambda service polls a queue that triggers a function (the event source mapping)
# with long polls of up to 20 s, from about five pollers while the queue is idle, and
# those ReceiveMessage requests are billed to the queue's owner (Lambda developer guide,
# "Using Lambda with Amazon SQS"; the number of idle pollers is not documented, five is
# the commonly observed figure). The simulator drains the queue itself, so a day of
# those polls is added as an estimate: 5 x 86,400 s / 20 s. Both pipelines have one
# such queue (ProcessingQueue; the naive processor's queue).
IDLE_POLLERS, IDLE_POLL_SECONDS = 5, 20
IDLE_POLL_REQUESTS_PER_DAY = IDLE_POLLERS * 86_400 // IDLE_POLL_SECONDS

# An event stored in the bus archive is the full event envelope (version, id, source,
# account, time, region, resources, detail-type, detail); ~250 bytes more than the
# PutEvents entry for our short sources and detail types.
EVENT_ENVELOPE_BYTES = 250


def latency_ms(service: str, operation: str, *, response_bytes: int = 0) -> float:
    """Assumed latency of one call; ValueError for a service the table does not know."""
    for key in ((service, operation), (service, "*")):
        if key in LATENCY_MS:
            base = LATENCY_MS[key]
            break
    else:
        raise ValueError(f"no latency assumption for {service}:{operation} (bench/meter.py LATENCY_MS)")
    if service == "s3" and operation == "GetObject":
        base += response_bytes / S3_TRANSFER_BYTES_PER_MS
    return base


@dataclass
class EventRoute:
    """A bus rule with an SQS target: EventBridge itself calls SendMessage per match."""

    source: str
    detail_type: str
    detail_only: bool = True  # InputPath "$.detail": the message body is the detail


# "At 1,769 MB, a function has the equivalent of one vCPU (one vCPU-second of credits
# per second)"; below it Lambda allocates CPU in proportion to memory
# (https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). The
# handlers are Python (one thread holds the GIL), so more than one vCPU does not make
# them faster: CPU time measured on one core here is stretched by 1769 / memory below
# 1,769 MB and unchanged above.
ONE_VCPU_MB = 1769


def cpu_scale(memory_mb: int) -> float:
    if memory_mb < 128:
        raise ValueError(f"Lambda memory is at least 128 MB, got {memory_mb}")
    return max(1.0, ONE_VCPU_MB / memory_mb)


def billed_ms(cpu_ms: float, latency_ms: float, memory_mb: int) -> float:
    """Modelled duration of one invocation at `memory_mb`: CPU (scaled) + waiting."""
    return cpu_ms * cpu_scale(memory_mb) + latency_ms


@dataclass
class Invocation:
    function: str
    started: float = 0.0
    moto_seconds: float = 0.0
    modeled_latency_ms: float = 0.0
    aws_calls: int = 0
    thread: int = 0
    latency_by_thread: dict = field(default_factory=dict)
    log_bytes: int = 0
    cpu_ms: float = 0.0  # handler CPU time, measured here (one core)
    duration_ms: float = 0.0  # modeled billed duration at the function's memory


@dataclass
class AwsMeter:
    """Counts requests into a `Usage`; see the module docstring."""

    usage: Usage = field(default_factory=Usage)
    memory_mb: int = 3072  # every function's memory, unless function_memory_mb names it
    function_memory_mb: dict = field(default_factory=dict)  # function name -> MB
    latency_scale: float = 1.0
    event_routes: list[EventRoute] = field(default_factory=list)
    capture_logs: bool = True
    enabled: bool = True  # False: hooks ignore calls (reading state back after a run)
    # DynamoDB items written, by kind ("point" or "aggregate": symbol with "#").
    items_written: Counter = field(default_factory=Counter)
    # Raw per-(service, operation) call counts as the hooks saw them, for cross-checks.
    calls: Counter = field(default_factory=Counter)
    failed_calls: Counter = field(default_factory=Counter)  # errors: not billed here
    invocations: list[Invocation] = field(default_factory=list)
    handler_cpu_seconds: Counter = field(default_factory=Counter)  # function -> s
    # Calls to a service the meter has no price or latency for: not billed, reported.
    unpriced_calls: Counter = field(default_factory=Counter)
    _local: threading.local = field(default_factory=threading.local)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _current: Invocation | None = None
    _orig_create_client: object = None

    # --- wiring -----------------------------------------------------------------------
    def attach_client(self, client) -> None:
        events = client.meta.events
        if getattr(events, "_bench_meter", None) is self:
            return
        events._bench_meter = self
        # register_first: see the wire-format request and response before boto3's
        # DynamoDB resource layer (if a handler uses it) turns them into Python values.
        events.register_first("before-call", self._before_call, unique_id="bench-meter-bc")
        events.register_first("before-send", self._before_send, unique_id="bench-meter-bs")
        events.register_first("before-parse", self._before_parse, unique_id="bench-meter-bp")
        events.register_first("after-call", self._after_call, unique_id="bench-meter-ac")
        events.register_first("after-call-error", self._after_call_error, unique_id="bench-meter-ace")

    def install(self) -> None:
        """Hook every botocore client created from now on, whatever session makes it."""
        if self._orig_create_client is not None:
            return
        original = botocore.session.Session.create_client
        meter = self

        def create_client(session, *args, **kwargs):
            client = original(session, *args, **kwargs)
            meter.attach_client(client)
            return client

        self._orig_create_client = original
        botocore.session.Session.create_client = create_client

    def uninstall(self) -> None:
        if self._orig_create_client is not None:
            botocore.session.Session.create_client = self._orig_create_client
            self._orig_create_client = None

    # --- hooks ------------------------------------------------------------------------
    # Each call keeps a frame: its request parameters as sent on the wire, the time
    # spent inside moto (before-send .. before-parse) and the time spent in these
    # hooks. Both are taken out of the handler's measured time: the first stands for
    # the AWS service (replaced by the latency assumption), the second is ours.
    def _stack(self) -> list:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def _before_call(self, model, params, **_):
        if not self.enabled:
            return
        t0 = time.thread_time()
        api: dict = {}
        body = params.get("body") if isinstance(params, dict) else None
        if body and model.service_model.metadata.get("protocol") == "json":
            api = json.loads(body)
        frame = {"api": api, "send": None, "moto": 0.0, "overhead": 0.0}
        self._stack().append(frame)
        frame["overhead"] += time.thread_time() - t0

    def _before_send(self, **_):
        stack = self._stack()
        if stack:
            stack[-1]["send"] = time.thread_time()

    def _before_parse(self, **_):
        stack = self._stack()
        if stack and stack[-1]["send"] is not None:
            stack[-1]["moto"] += time.thread_time() - stack[-1]["send"]
            stack[-1]["send"] = None

    def _after_call_error(self, **_):
        stack = self._stack()
        if stack:
            frame = stack.pop()
            if self._current is not None:
                with self._lock:
                    self._current.moto_seconds += frame["moto"] + frame["overhead"]

    def _after_call(self, http_response, parsed, model, **_):
        if not self.enabled:
            return
        t0 = time.thread_time()
        stack = self._stack()
        frame = stack.pop() if stack else {"api": {}, "moto": 0.0, "overhead": 0.0}
        service = _SERVICE.get(model.service_model.service_id.hyphenize(), model.service_model.service_id.hyphenize())
        op = model.name
        ok = http_response is None or http_response.status_code < 300
        if service not in PRICED_SERVICES:
            with self._lock:
                self.unpriced_calls[(service, op)] += 1
            return
        response_bytes = 0
        # One lock for all counters: the processor calls AWS from 8 threads at once, and
        # `x += n` on a shared attribute is not atomic across threads.
        with self._lock:
            if ok:
                self.calls[(service, op)] += 1
                response_bytes = self._bill(service, op, frame["api"], parsed or {})
            else:
                self.failed_calls[(service, op)] += 1
                code = ((parsed or {}).get("Error") or {}).get("Code", "")
                if service == "dynamodb" and code == "ConditionalCheckFailedException":
                    # A conditional write whose condition is false still consumes write
                    # units (DynamoDB developer guide, "Condition expressions"): at least
                    # one; the size of the item it was checked against is not seen here.
                    self.usage.requests[(service, op)] += 1
                    self.usage.ddb_wru += 1
        if self._current is not None:
            inv = self._current
            wait_ms = 0.0
            if service == "sqs" and op == "ReceiveMessage" and not (parsed or {}).get("Messages"):
                # An empty long poll answers after WaitTimeSeconds, as the handler asked
                # (no WaitTimeSeconds: the queue's ReceiveMessageWaitTimeSeconds, which
                # the template leaves at its default, 0 - a short poll). The harness
                # does not sleep through the wait (bench/speedups.py); it bills it.
                wait_ms = float(frame["api"].get("WaitTimeSeconds") or 0) * 1000
            lat = self.latency_scale * latency_ms(service, op, response_bytes=response_bytes) + wait_ms
            with self._lock:
                inv.aws_calls += 1
                tid = threading.get_ident()
                inv.latency_by_thread[tid] = inv.latency_by_thread.get(tid, 0.0) + lat
                inv.moto_seconds += frame["moto"] + frame["overhead"] + (time.thread_time() - t0)

    # --- billing ----------------------------------------------------------------------
    def _bill(self, service: str, op: str, params: dict, parsed: dict) -> int:
        """Add the billed units of one call to `usage`; return its response payload bytes."""
        u = self.usage
        u.requests[(service, op)] += 1
        if service == "sqs":
            payload = 0
            if op == "SendMessage":
                payload = costing.sqs_message_payload_bytes(
                    params.get("MessageBody", ""), params.get("MessageAttributes")
                )
            elif op == "SendMessageBatch":
                payload = sum(
                    costing.sqs_message_payload_bytes(e.get("MessageBody", ""), e.get("MessageAttributes"))
                    for e in params.get("Entries", ())
                )
            elif op == "ReceiveMessage":
                payload = sum(
                    costing.sqs_message_payload_bytes(m.get("Body", ""), m.get("MessageAttributes"))
                    for m in parsed.get("Messages", ())
                )
            u.sqs_billed_requests += costing.sqs_billed_requests(payload)
            return payload
        if service == "dynamodb":
            if op == "BatchWriteItem":
                unprocessed = parsed.get("UnprocessedItems") or {}
                for table, requests in params.get("RequestItems", {}).items():
                    left = unprocessed.get(table, [])
                    for request in requests:
                        if request in left:
                            continue  # not written; the caller re-sends it (counted then)
                        if "PutRequest" in request:
                            item = request["PutRequest"]["Item"]
                            u.ddb_wru += costing.dynamodb_write_units(costing.dynamodb_item_bytes(item))
                            self._count_item(item)
                        else:
                            u.ddb_wru += 1
            elif op == "PutItem":
                u.ddb_wru += costing.dynamodb_write_units(costing.dynamodb_item_bytes(params["Item"]))
                self._count_item(params["Item"])
            elif op in ("UpdateItem", "DeleteItem"):
                # Billed on the larger of the item before and after; we see only the
                # key and the new values, so this is a lower bound (>= 1 WRU).
                u.ddb_wru += costing.dynamodb_write_units(costing.dynamodb_item_bytes(params.get("Key", {})))
            elif op == "Query":
                size = sum(costing.dynamodb_item_bytes(i) for i in parsed.get("Items", ()))
                u.ddb_rru += costing.dynamodb_read_units(size, consistent=bool(params.get("ConsistentRead")))
                return size
            elif op == "BatchGetItem":
                # Each key is read as its own GetItem: the item's size rounded up to 4 KB,
                # a key with no item still one unit; halved when eventually consistent
                # (the default). Unprocessed keys are not read (the caller re-sends them).
                # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html
                responses = parsed.get("Responses") or {}
                unprocessed = parsed.get("UnprocessedKeys") or {}
                size = 0
                for table, request in params.get("RequestItems", {}).items():
                    consistent = bool(request.get("ConsistentRead"))
                    found = [costing.dynamodb_item_bytes(i) for i in responses.get(table, [])]
                    read = len(request.get("Keys", [])) - len(unprocessed.get(table, {}).get("Keys", []))
                    for item_bytes in found:
                        u.ddb_rru += costing.dynamodb_read_units(item_bytes, consistent=consistent)
                    u.ddb_rru += max(0, read - len(found)) * costing.dynamodb_read_units(0, consistent=consistent)
                    size += sum(found)
                return size
            elif op == "GetItem":
                size = costing.dynamodb_item_bytes(parsed.get("Item", {}))
                u.ddb_rru += costing.dynamodb_read_units(size, consistent=bool(params.get("ConsistentRead")))
                return size
            return 0
        if service == "events":
            if op == "PutEvents":
                failed = {i for i, r in enumerate(parsed.get("Entries", ())) if r.get("ErrorCode")}
                for i, entry in enumerate(params.get("Entries", ())):
                    if i in failed:
                        continue
                    size = costing.eventbridge_entry_bytes(entry)
                    u.events_billed += costing.eventbridge_billed_events(size)
                    u.events_archived_bytes += size + EVENT_ENVELOPE_BYTES
                    self._route(entry, size)
            return 0
        if service == "s3":
            tier = costing.s3_tier(op)
            if tier == "tier1":
                u.s3_tier1 += 1
            elif tier == "tier2":
                u.s3_tier2 += 1
            if op == "GetObject":
                return int(parsed.get("ContentLength") or 0)
            return 0
        return 0

    def _count_item(self, item: dict) -> None:
        symbol = item.get("symbol", {}).get("S", "")
        self.items_written["aggregate" if "#" in symbol else "point"] += 1

    def _route(self, entry: dict, size: int) -> None:
        """EventBridge delivering a matched event to an SQS target is an SQS SendMessage."""
        for route in self.event_routes:
            if entry.get("Source") == route.source and entry.get("DetailType") == route.detail_type:
                body = (
                    len(entry.get("Detail", "").encode("utf-8")) if route.detail_only else size + EVENT_ENVELOPE_BYTES
                )
                self.usage.requests[("sqs", "SendMessage (EventBridge target)")] += 1
                self.usage.sqs_billed_requests += costing.sqs_billed_requests(body)

    # --- service-side requests the harness cannot see as botocore calls -------------------
    def add_service_request(self, service: str, op: str, *, sqs_payload_bytes: int = 0) -> None:
        self.usage.requests[(service, op)] += 1
        if service == "sqs":
            self.usage.sqs_billed_requests += costing.sqs_billed_requests(sqs_payload_bytes)

    def add_idle_pollers(self) -> None:
        """A day of the SQS event source mapping's own long polls (`IDLE_POLL_REQUESTS_PER_DAY`)."""
        self.usage.requests[("sqs", "ReceiveMessage (Lambda pollers)")] += IDLE_POLL_REQUESTS_PER_DAY
        self.usage.sqs_billed_requests += IDLE_POLL_REQUESTS_PER_DAY

    # --- Lambda invocations -------------------------------------------------------------
    @contextmanager
    def invocation(self, function: str):
        """Model one Lambda invocation of `function` around the handler call.

        Handler CPU = process CPU time of the invocation (all threads) - CPU spent
        inside moto and inside these hooks. AWS latency: the assumed latency of each
        call; calls made from worker threads (the processor writes 8 chunks at once)
        overlap, so their total is divided by the number of worker threads used.
        """
        if self._current is not None:
            raise RuntimeError("invocations do not nest")
        inv = Invocation(function, thread=threading.get_ident())
        capture = _FdCapture() if self.capture_logs else None
        self._current = inv
        if capture:
            capture.start()
        cpu0 = time.process_time()
        try:
            yield inv
        finally:
            cpu = time.process_time() - cpu0
            if capture:
                inv.log_bytes = capture.stop()
            self._current = None
            handler_cpu = max(0.0, cpu - inv.moto_seconds)
            main = inv.latency_by_thread.get(inv.thread, 0.0)
            workers = [v for t, v in inv.latency_by_thread.items() if t != inv.thread]
            inv.modeled_latency_ms = main + (sum(workers) / len(workers) if workers else 0.0)
            inv.cpu_ms = handler_cpu * 1000
            memory = self.memory_of(function)
            inv.duration_ms = billed_ms(inv.cpu_ms, inv.modeled_latency_ms, memory)
            self.handler_cpu_seconds[function] += handler_cpu
            self.invocations.append(inv)
            u = self.usage
            u.lambda_invocations[function] += 1
            u.lambda_gb_seconds[function] += costing.lambda_gb_seconds(inv.duration_ms, memory)
            u.log_bytes[function] += inv.log_bytes + PLATFORM_LOG_BYTES
            u.xray_traces += 1  # Active tracing, every invocation sampled (see docs/performance.md)

    def reset(self) -> None:
        """Forget everything counted so far (e.g. the resource creation calls)."""
        self.usage = Usage()
        self.calls.clear()
        self.failed_calls.clear()
        self.invocations.clear()
        self.handler_cpu_seconds.clear()
        self.items_written.clear()

    def memory_of(self, function: str) -> int:
        return int(self.function_memory_mb.get(function, self.memory_mb))

    def add_init(self, function: str, init_ms: float) -> None:
        """Bill one cold start's INIT phase (billed for on-demand functions since 2025-08-01).

        `init_ms` is the import time measured on one core: CPU work, scaled like the
        handler's."""
        memory = self.memory_of(function)
        self.usage.lambda_gb_seconds[function] += costing.lambda_gb_seconds(billed_ms(init_ms, 0.0, memory), memory)

    def gb_seconds_at(self, function: str, memory_mb: int) -> float:
        """The GB-seconds `function`'s invocations of this run would bill at `memory_mb`."""
        return sum(
            costing.lambda_gb_seconds(billed_ms(inv.cpu_ms, inv.modeled_latency_ms, memory_mb), memory_mb)
            for inv in self.invocations
            if inv.function == function
        )


class _FdCapture:
    """Capture what is written to file descriptors 1 and 2 (how Lambda collects logs).

    Powertools' Logger keeps a reference to the sys.stdout it saw at import, so
    swapping sys.stdout would miss it; redirecting the descriptors catches every writer.
    Returns the captured bytes plus the CloudWatch per-event overhead (one event per line).
    """

    def __init__(self) -> None:
        self._file = None
        self._saved: list[int] = []

    def start(self) -> None:
        import sys

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed stream must not break the run
                pass
        self._file = tempfile.TemporaryFile()
        self._saved = [os.dup(1), os.dup(2)]
        os.dup2(self._file.fileno(), 1)
        os.dup2(self._file.fileno(), 2)

    def stop(self) -> int:
        import sys

        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001
                pass
        os.dup2(self._saved[0], 1)
        os.dup2(self._saved[1], 2)
        for fd in self._saved:
            os.close(fd)
        self._file.seek(0)
        data = self._file.read()
        self._file.close()
        lines = data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
        return len(data) + lines * costing.LOG_EVENT_OVERHEAD_BYTES
