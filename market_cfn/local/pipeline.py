"""Run the real handlers on an in-process AWS emulation (moto): the simulate core.

Used by `python -m market_cfn simulate`, the end-to-end tests and the benchmark
(bench/). The API is small and stable:

    with Pipeline() as pipe:                       # starts mock_aws, creates resources
        pipe.put_object("AAPL/2024-06-01.csv", b"...")   # upload (no trigger yet)
        pipe.deliver_s3_events()                   # DataIngestion, once per upload
        pipe.drain_processing_queue()              # DataProcessor, batches of 10
        pipe.run_aggregator()                      # DataAggregator (schedule event)
        print(pipe.summary())                      # the simulate output document

Resources and their settings (names, queue visibility timeouts, redrive
maxReceiveCount, table keys, rule pattern, function environment and handler path)
are read from the rendered template (market_cfn.local.stackview), with the template's
default parameters, so the emulation is the stack the template describes. What the
Lambda service does is the code the `local` service runs too (market_cfn.local.runtime):
S3 -> DataIngestion (asynchronous: 2 retries, then the invocation record goes to
InvocationDLQ), the SQS event source mapping (batch size from the template, partial batch
responses honoured; here a failed message becomes visible again at once - as if its
visibility timeout had passed - and moto's redrive moves it to the DLQ after
maxReceiveCount receives), and the schedule -> DataAggregator. Unlike the `local`
service, nothing runs by itself: each step is a method call. EventBridge ->
AggregationQueue is moto's own rule delivery (which ignores the target's InputPath).

Request accounting: every AWS API call made through the pipeline's boto3 session is
reported to `on_request(call)` and appended to `pipe.calls` as an `ApiCall(actor,
service, operation, iam_action)`; `actor` is the logical ID of the function running
(e.g. "DataIngestionFunction") or "emulator" for the Lambda-service emulation itself.
Calls are counted once per API call (botocore retries of one call are not counted).
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from market_cfn.local.accounting import ApiCall, iam_action, resource_arn
from market_cfn.local.lambda_events import (
    ACCOUNT_ID,
    REGION,
    FakeLambdaContext,
    api_event,
    s3_event,
    scheduled_event,
    sqs_record,
)
from market_cfn.local.runtime import (
    AsyncInvocation,
    FunctionRuntime,
    attempt,
    patched_attr,
    patched_environ,
    poll_once,
    retries_exhausted,
)
from market_cfn.local.stackview import ASYNC_RETRIES, FUNCTIONS, StackView, load_template

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_events.type_defs import TargetTypeDef
    from mypy_boto3_sqs.literals import QueueAttributeNameType

# The queue properties copied to the emulated queue's attributes as they are.
_QUEUE_ATTRIBUTES: tuple[QueueAttributeNameType, ...] = (
    "VisibilityTimeout",
    "MessageRetentionPeriod",
    "DelaySeconds",
    "MaximumMessageSize",
)

__all__ = [
    "ACCOUNT_ID",
    "ASYNC_RETRIES",
    "FUNCTIONS",
    "REGION",
    "ApiCall",
    "FakeLambdaContext",
    "Pipeline",
    "api_event",
    "iam_action",
    "load_template",
    "resource_arn",
    "s3_event",
    "scheduled_event",
    "sqs_record",
]
MAX_DRAIN_ROUNDS = 100_000


class Pipeline:
    """The pipeline on moto, driven step by step (see the module docstring)."""

    def __init__(
        self,
        *,
        env_suffix: str = "dev",
        on_request: Callable[[ApiCall], None] | None = None,
        start_mock: bool = True,
        log_stream: Any = None,
    ) -> None:
        self.template = load_template(env_suffix)
        self.view = StackView(self.template)
        self.resources = self.view.resources
        self.resolve = self.view.resolve
        self.physical = self.view.physical
        self.on_request = on_request
        self.start_mock = start_mock
        self.log_stream = log_stream
        self.calls: list[ApiCall] = []
        self.ingestion_results: list[dict[str, Any]] = []
        self.pending_s3_events: list[dict[str, Any]] = []
        self.invocation_errors: list[str] = []
        self.runtime = FunctionRuntime(self.view, output=self._output)
        self._stack = contextlib.ExitStack()

    @property
    def actor(self) -> str:
        return self.runtime.actor

    # --- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> Pipeline:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def start(self) -> None:
        import boto3

        env = {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
        }
        self._stack.enter_context(patched_environ(env))
        if self.start_mock:
            from moto import mock_aws

            self._stack.enter_context(mock_aws())
        self.session = boto3.Session(region_name=REGION)
        self.session.events.register("provide-client-params.*.*", self._record_call)
        from handlers import common

        common.use_session(self.session)
        self._stack.callback(common.use_session, None)
        self.s3 = self.session.client("s3")
        self.sqs = self.session.client("sqs")
        self.ddb = self.session.client("dynamodb")
        self.events = self.session.client("events")
        self._create_resources()
        self._quiet_handlers()

    def stop(self) -> None:
        self._stack.close()

    def request_counts(self, *, include_emulator: bool = False) -> dict[tuple[str, str, str], int]:
        """Number of API calls per (actor, service, operation), handlers only by default."""
        return dict(
            Counter((c.actor, c.service, c.operation) for c in self.calls if include_emulator or c.actor != "emulator")
        )

    def _record_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.signing_name
        call = ApiCall(
            self.actor, service, model.name, iam_action(service, model.name, params), resource_arn(service, params)
        )
        self.calls.append(call)
        if self.on_request is not None:
            self.on_request(call)

    def _quiet_handlers(self) -> None:
        """Send the handlers' Powertools log lines to `log_stream` (default: discard)."""
        import logging

        for logical in FUNCTIONS:
            module = self.handler_module(logical)
            stream = self.log_stream if self.log_stream is not None else _Discard()
            for handler in module.logger._logger.handlers:
                if isinstance(handler, logging.StreamHandler):
                    # Assign, not setStream(): that flushes the old stream, which may be
                    # a closed capture buffer of an earlier test.
                    self._stack.callback(setattr, handler, "stream", handler.stream)
                    handler.stream = stream

    def _output(self, _logical: str, _context: FakeLambdaContext) -> contextlib.AbstractContextManager[Any]:
        """Handler stdout (the metrics' EMF lines): discarded unless a log_stream is set."""
        return contextlib.redirect_stdout(_Discard()) if self.log_stream is None else contextlib.nullcontext()

    # --- resources, from the template ------------------------------------------------
    def _of_type(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        return self.view.of_type(kind)

    def _create_resources(self) -> None:
        view, resolve = self.view, self.resolve
        view.declare_names()
        queues = dict(self._of_type("AWS::SQS::Queue"))
        # Dead-letter queues first: the others' redrive policies point at them.
        for logical in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]):
            props = queues[logical]
            attrs: dict[QueueAttributeNameType, str] = {}
            for key in _QUEUE_ATTRIBUTES:
                if key in props:
                    attrs[key] = str(props[key])
            if "RedrivePolicy" in props:
                attrs["RedrivePolicy"] = json.dumps(resolve(props["RedrivePolicy"]))
            name = self.physical[logical]["QueueName"]
            self.physical[logical]["Ref"] = self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        for logical, props in self._of_type("AWS::DynamoDB::Table"):
            self.ddb.create_table(
                TableName=view.ref(logical),
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            )
        for logical, props in self._of_type("AWS::S3::Bucket"):
            name = view.ref(logical)
            self.s3.create_bucket(Bucket=name)
            if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        for logical, _props in self._of_type("AWS::Events::EventBus"):
            self.events.create_event_bus(Name=self.physical[logical]["Name"])
        for _logical, props in view.pattern_rules():
            bus = resolve(props.get("EventBusName", "default"))
            name = resolve(props["Name"])
            self.events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]))
            targets: list[TargetTypeDef] = []
            for target in props.get("Targets", []):
                entry: TargetTypeDef = {"Id": target["Id"], "Arn": resolve(target["Arn"])}
                if "InputPath" in target:
                    entry["InputPath"] = target["InputPath"]
                targets.append(entry)
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        # The schedule rule is not created: run_aggregator() stands in for it.
        self.bucket = view.ref("DataBucket")
        self.rejects_bucket = view.ref("RejectsBucket")
        self.table = view.ref("MarketDataTable")
        self.queue_urls = {logical: view.ref(logical) for logical in queues}

    def function_env(self, logical: str) -> dict[str, str]:
        return self.view.function_env(logical)

    def handler_module(self, logical: str) -> Any:
        return self.view.handler_module(logical)

    def role_of(self, logical: str) -> str:
        return self.view.role_of(logical)

    def invoke(self, logical: str, event: dict[str, Any], *, context: Any = None) -> Any:
        """Invoke a function's real handler with its template environment."""
        return self.runtime.invoke(logical, event, context=context)

    def invoke_async(self, logical: str, event: dict[str, Any]) -> Any:
        """Asynchronous invocation: the retries of the function's EventInvokeConfig (2), then the
        invocation record goes to its on-failure destination (InvocationDLQ)."""
        invocation = AsyncInvocation(logical, event)
        for _ in range(self.view.async_config(logical).retries + 1):
            ok, result = attempt(self.invoke, invocation, self.invocation_errors)
            if ok:
                return result
        retries_exhausted(self.sqs, self.view, invocation)
        return None

    # --- the data flow ---------------------------------------------------------------
    def put_object(self, key: str, body: bytes, content_type: str | None = None) -> str | None:
        """Upload to the data bucket and queue the S3 event; return the version ID."""
        if content_type:
            response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)
        else:
            response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        version = response.get("VersionId")
        self.pending_s3_events.append(s3_event(self.bucket, key, len(body), version, response.get("ETag", "")))
        return version

    def deliver_s3_events(self) -> list[dict[str, Any]]:
        """Invoke DataIngestion once per pending S3 event; return the per-object results."""
        results = []
        while self.pending_s3_events:
            event = self.pending_s3_events.pop(0)
            outcome = self.invoke_async("DataIngestionFunction", event)
            if outcome is not None:
                results.extend(outcome.get("objects", []))
        self.ingestion_results.extend(results)
        return results

    def post_ingest(self, body: str | bytes, *, base64_encoded: bool = False) -> dict[str, Any]:
        """POST /ingest through API Gateway's proxy integration; return the response."""
        raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
        text: str | bytes = base64.b64encode(raw).decode() if base64_encoded else body
        if isinstance(text, bytes):
            text = text.decode("utf-8", "surrogateescape")
        response: dict[str, Any] = self.invoke("DataIngestionFunction", api_event(text, base64_encoded=base64_encoded))
        return response

    def drain_processing_queue(self, *, queue: str = "ProcessingQueue") -> dict[str, int]:
        """Emulate the event source mapping until the queue is empty."""
        mapping = self.view.mapping_for(queue)
        stats = {"invocations": 0, "messages": 0, "failed": 0}
        for _ in range(MAX_DRAIN_ROUNDS):
            outcome = poll_once(
                self.invoke,
                self.sqs,
                self.view,
                mapping,
                wait_seconds=0,
                failed_visibility_seconds=0,  # as if the visibility timeout had passed
                errors=self.invocation_errors,
            )
            if not outcome.received:
                break
            stats["invocations"] += 1
            stats["messages"] += outcome.received
            stats["failed"] += outcome.failed
        return stats

    def expire_visibility_timeouts(self, logical: str) -> int:
        """Make every in-flight message of a queue visible again, as when its visibility
        timeout passes (moto backend state: no API call is made). Returns how many."""
        from moto.sqs.models import sqs_backends

        name = self.physical[logical]["QueueName"]
        queue = sqs_backends[ACCOUNT_ID][REGION].queues[name]
        expired = 0
        for message in list(queue._messages):  # moto 5.2 internals
            if not message.visible and not message.delayed:
                message.visible_at = 0.0
                expired += 1
        return expired

    def run_aggregator(self, *, now: datetime | None = None) -> Any:
        """Invoke DataAggregator as the 5-minute schedule does (asynchronously)."""
        module = self.handler_module("DataAggregatorFunction")
        moment = now or datetime.now(UTC)
        (schedule,) = [s for s in self.view.schedules() if s.function == "DataAggregatorFunction"]
        with patched_attr(module, "RECEIVE_WAIT_SECONDS", 0):
            return self.invoke_async("DataAggregatorFunction", scheduled_event(moment, schedule.rule_arn))

    def run(self, files: dict[str, bytes]) -> dict[str, Any]:
        """Upload, ingest, process, aggregate; return summary()."""
        for key, body in files.items():
            self.put_object(key, body)
        self.deliver_s3_events()
        self.drain_processing_queue()
        self.run_aggregator()
        return self.summary()

    # --- reading state back ----------------------------------------------------------
    def table_items(self) -> list[dict[str, Any]]:
        """Every item of the table (a Scan: the simulator reads state, the handlers never do)."""
        from market_cfn.local.readback import table_items

        return table_items(self.ddb, self.table)

    def rejections(self) -> list[dict[str, str]]:
        """Every rejection preserved in the RejectsBucket's reports."""
        from market_cfn.local.readback import rejections

        return rejections(self.s3, self.rejects_bucket)

    def queue_depth(self, logical: str) -> int:
        from market_cfn.local.readback import queue_depth

        return queue_depth(self.sqs, self.queue_urls[logical])

    def dead_letters(self) -> int:
        return sum(
            self.queue_depth(q) for q in ("ProcessingDLQ", "AggregationDLQ", "InvocationDLQ") if q in self.queue_urls
        )

    def summary(self) -> dict[str, Any]:
        """The simulate output document (docs/local.md)."""
        from market_cfn.local.readback import aggregates_of, is_point

        items = self.table_items()
        results = self.ingestion_results
        return {
            "points_in": sum(r["records_in"] for r in results),
            "accepted": sum(r["accepted"] for r in results),
            "rejected": sum(r["rejected"] for r in results),
            "stored": sum(1 for i in items if is_point(i)),
            "rejections": self.rejections(),
            "aggregates": aggregates_of(items),
            "dead_letters": self.dead_letters(),
            # where a symbol came from when records had none (docs/input-contract.md)
            "key_symbols": [
                {"source": r["source"], "symbol": r["key_symbol"], "from": r["key_symbol_from"]}
                for r in results
                if "key_symbol" in r
            ],
        }


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
