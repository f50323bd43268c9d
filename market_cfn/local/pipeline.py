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
are read from the rendered template, `market_cfn.stack.template.build_template(cfg)`, with
the template's default parameters, so the emulation is the stack the template
describes. What the Lambda service does is emulated here: S3 -> DataIngestion
(asynchronous: 2 retries, then the event goes to InvocationDLQ), the SQS event source
mapping (batch size from the template, partial batch responses honoured, a failed
message becomes visible again at once - as if its visibility timeout had passed - and
moto's redrive moves it to the DLQ after maxReceiveCount receives), and the schedule
-> DataAggregator. EventBridge -> AggregationQueue is moto's own rule delivery.

Request accounting: every AWS API call made through the pipeline's boto3 session is
reported to `on_request(call)` and appended to `pipe.calls` as an `ApiCall(actor,
service, operation, iam_action)`; `actor` is the logical ID of the function running
(e.g. "DataIngestionFunction") or "emulator" for the Lambda-service emulation itself.
Calls are counted once per API call (botocore retries of one call are not counted).
"""

from __future__ import annotations

import base64
import contextlib
import importlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from market_cfn.intrinsics import IntrinsicResolver

ACCOUNT_ID = "123456789012"  # moto's default account
REGION = "us-east-1"
FUNCTIONS = ("DataIngestionFunction", "DataProcessorFunction", "DataAggregatorFunction")
ASYNC_RETRIES = 2  # Lambda asynchronous invocation: 2 retries by default
MAX_DRAIN_ROUNDS = 100_000


@dataclass(frozen=True)
class ApiCall:
    actor: str
    service: str
    operation: str
    iam_action: str
    resource: str | None = None  # the ARN the call acts on, when it names one


def resource_arn(service: str, params: dict[str, Any]) -> str | None:
    """The ARN an API call is authorized against (queue, object, table, event bus)."""
    if service == "sqs" and "QueueUrl" in params:
        return f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{params['QueueUrl'].rstrip('/').rsplit('/', 1)[-1]}"
    if service == "s3" and "Bucket" in params:
        return f"arn:aws:s3:::{params['Bucket']}" + (f"/{params['Key']}" if "Key" in params else "")
    if service == "dynamodb":
        table = params.get("TableName") or next(iter(params.get("RequestItems") or {}), None)
        return f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{table}" if table else None
    if service == "events" and params.get("Entries"):
        bus = params["Entries"][0].get("EventBusName") or "default"
        return bus if bus.startswith("arn:") else f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{bus}"
    return None


def iam_action(service: str, operation: str, params: dict[str, Any]) -> str:
    """The IAM action an API call is authorized by (batch APIs use the single action)."""
    if service == "sqs" and operation.endswith("Batch"):
        return f"sqs:{operation[: -len('Batch')]}"
    if service == "s3" and operation in ("GetObject", "HeadObject"):
        return "s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject"
    if service == "s3" and operation in ("ListObjects", "ListObjectsV2"):
        return "s3:ListBucket"
    if service == "s3" and operation in ("CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
        return "s3:PutObject"  # IAM authorizes the multipart steps with s3:PutObject
    return f"{service}:{operation}"


@dataclass
class FakeLambdaContext:
    """The attributes of a Lambda context object that the handlers and Powertools use."""

    function_name: str
    timeout_ms: int = 300_000
    memory_limit_in_mb: int = 3072
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{self.function_name}"

    @property
    def function_version(self) -> str:
        return "$LATEST"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self.timeout_ms - int((time.monotonic() - self.started) * 1000))


def load_template(env_suffix: str = "dev") -> dict[str, Any]:
    """The rendered template as a dict (build_template with StackConfig(env_suffix))."""
    try:
        from market_cfn.stack.config import StackConfig
        from market_cfn.stack.template import build_template
    except ImportError as exc:  # pragma: no cover - the template ships with the package
        raise RuntimeError(f"the template builder is not available: {exc}") from exc
    return json.loads(build_template(StackConfig(env_suffix=env_suffix)).to_json())


class _Resolver(IntrinsicResolver):
    """Resolves the template's intrinsic functions to the emulated physical values."""

    def __init__(self, template: dict[str, Any], physical: dict[str, dict[str, str]]) -> None:
        self.params = {k: v.get("Default", "") for k, v in template.get("Parameters", {}).items()}
        self.pseudo = {"AWS::AccountId": ACCOUNT_ID, "AWS::Region": REGION, "AWS::Partition": "aws"}
        self.physical = physical  # logical ID -> {"Ref": ..., "Arn": ..., "Name": ...}

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.physical[name]["Ref"]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return self.physical[logical_id][attribute]


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
        self.resources = self.template["Resources"]
        self.on_request = on_request
        self.start_mock = start_mock
        self.log_stream = log_stream
        self.calls: list[ApiCall] = []
        self.actor = "emulator"
        self.ingestion_results: list[dict[str, Any]] = []
        self.pending_s3_events: list[dict[str, Any]] = []
        self.invocation_errors: list[str] = []
        self._stack = contextlib.ExitStack()

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
        self._stack.enter_context(_patched_environ(env))
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
        from collections import Counter

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

    # --- resources, from the template ------------------------------------------------
    def _of_type(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical, res in self.resources.items():
            if res["Type"] == kind:
                yield logical, res.get("Properties", {})

    def _create_resources(self) -> None:
        physical: dict[str, dict[str, str]] = {}
        resolve = self.resolve = _Resolver(self.template, physical)
        queues = dict(self._of_type("AWS::SQS::Queue"))
        # Dead-letter queues first: the others' redrive policies point at them.
        for logical in sorted(queues, key=lambda q: "RedrivePolicy" in queues[q]):
            props = queues[logical]
            name = resolve(props["QueueName"])
            attrs: dict[str, str] = {}
            for key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "MaximumMessageSize"):
                if key in props:
                    attrs[key] = str(props[key])
            if "RedrivePolicy" in props:
                attrs["RedrivePolicy"] = json.dumps(resolve(props["RedrivePolicy"]))
            url = self.sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
            arn = f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}"
            physical[logical] = {"Ref": url, "Arn": arn, "QueueName": name}
        for logical, props in self._of_type("AWS::DynamoDB::Table"):
            name = resolve(props["TableName"])
            self.ddb.create_table(
                TableName=name,
                KeySchema=props["KeySchema"],
                AttributeDefinitions=props["AttributeDefinitions"],
                BillingMode=props.get("BillingMode", "PAY_PER_REQUEST"),
            )
            physical[logical] = {"Ref": name, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"}
        for logical, props in self._of_type("AWS::S3::Bucket"):
            name = resolve(props["BucketName"])
            self.s3.create_bucket(Bucket=name)
            if props.get("VersioningConfiguration", {}).get("Status") == "Enabled":
                self.s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
            physical[logical] = {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
        for logical, props in self._of_type("AWS::Events::EventBus"):
            name = resolve(props["Name"])
            arn = self.events.create_event_bus(Name=name)["EventBusArn"]
            physical[logical] = {"Ref": arn, "Arn": arn, "Name": name}
        for logical, props in self._of_type("AWS::Lambda::Function"):
            name = resolve(props["FunctionName"])
            physical[logical] = {"Ref": name, "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"}
        for _logical, props in self._of_type("AWS::Events::Rule"):
            if "EventPattern" not in props:
                continue  # the schedule: run_aggregator() stands in for it
            bus = resolve(props.get("EventBusName", "default"))
            name = resolve(props["Name"])
            self.events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(props["EventPattern"]))
            targets = []
            for target in props.get("Targets", []):
                entry = {"Id": target["Id"], "Arn": resolve(target["Arn"])}
                if "InputPath" in target:
                    entry["InputPath"] = target["InputPath"]
                targets.append(entry)
            self.events.put_targets(Rule=name, EventBusName=bus, Targets=targets)
        self.physical = physical
        self.bucket = physical["DataBucket"]["Ref"]
        self.rejects_bucket = physical["RejectsBucket"]["Ref"]
        self.table = physical["MarketDataTable"]["Ref"]
        self.queue_urls = {logical: p["Ref"] for logical, p in physical.items() if logical in queues}

    def function_env(self, logical: str) -> dict[str, str]:
        variables = self.resources[logical]["Properties"].get("Environment", {}).get("Variables", {})
        return {k: str(self.resolve(v)) for k, v in variables.items()}

    def handler_module(self, logical: str) -> Any:
        path = self.resources[logical]["Properties"]["Handler"]
        return importlib.import_module(path.rsplit(".", 1)[0])

    def role_of(self, logical: str) -> str:
        return self.resources[logical]["Properties"]["Role"]["Fn::GetAtt"][0]

    def invoke(self, logical: str, event: dict[str, Any], *, context: Any = None) -> Any:
        """Invoke a function's real handler with its template environment."""
        path = self.resources[logical]["Properties"]["Handler"]
        handler = getattr(self.handler_module(logical), path.rsplit(".", 1)[1])
        if context is None:
            context = FakeLambdaContext(function_name=self.physical[logical]["Ref"])
        previous, self.actor = self.actor, logical
        try:
            with (
                _patched_environ(self.function_env(logical)),
                contextlib.redirect_stdout(_Discard()) if self.log_stream is None else contextlib.nullcontext(),
            ):
                return handler(event, context)
        finally:
            self.actor = previous

    def invoke_async(self, logical: str, event: dict[str, Any]) -> Any:
        """Asynchronous invocation: 2 retries, then the event goes to InvocationDLQ."""
        for attempt in range(ASYNC_RETRIES + 1):
            try:
                return self.invoke(logical, event)
            except Exception as exc:  # noqa: BLE001  # the Lambda service sees any error
                self.invocation_errors.append(f"{logical} attempt {attempt + 1}: {type(exc).__name__}: {exc}")
        dlq = self.queue_urls.get("InvocationDLQ")
        if dlq:
            self.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(event))
        return None

    # --- the data flow ---------------------------------------------------------------
    def put_object(self, key: str, body: bytes, content_type: str | None = None) -> str | None:
        """Upload to the data bucket and queue the S3 event; return the version ID."""
        extra = {"ContentType": content_type} if content_type else {}
        response = self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, **extra)
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
        return self.invoke("DataIngestionFunction", api_event(text, base64_encoded=base64_encoded))

    def drain_processing_queue(self, *, queue: str = "ProcessingQueue") -> dict[str, int]:
        """Emulate the event source mapping until the queue is empty."""
        mapping = next(
            p
            for _, p in self._of_type("AWS::Lambda::EventSourceMapping")
            if p["EventSourceArn"]["Fn::GetAtt"][0] == queue
        )
        function = mapping["FunctionName"]["Ref"]
        batch_size = int(mapping.get("BatchSize", 10))
        partial = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
        url = self.queue_urls[queue]
        arn = self.physical[queue]["Arn"]
        stats = {"invocations": 0, "messages": 0, "failed": 0}
        for _ in range(MAX_DRAIN_ROUNDS):
            received = self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=batch_size, AttributeNames=["All"], WaitTimeSeconds=0
            ).get("Messages", [])
            if not received:
                break
            event = {"Records": [sqs_record(m, arn) for m in received]}
            stats["invocations"] += 1
            stats["messages"] += len(received)
            try:
                response = self.invoke(function, event) or {}
                failed_ids = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])} if partial else set()
            except Exception as exc:  # noqa: BLE001  # a crashed invocation fails the whole batch, as in Lambda
                self.invocation_errors.append(f"{function}: {type(exc).__name__}: {exc}")
                failed_ids = {m["MessageId"] for m in received}
            done = [m for m in received if m["MessageId"] not in failed_ids]
            for i in range(0, len(done), 10):
                chunk = done[i : i + 10]
                self.sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
                )
            for message in received:
                if message["MessageId"] in failed_ids:
                    stats["failed"] += 1
                    # As if the visibility timeout had passed: visible again now.
                    self.sqs.change_message_visibility(
                        QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )
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
        with _patched_attr(module, "RECEIVE_WAIT_SECONDS", 0):
            return self.invoke_async("DataAggregatorFunction", scheduled_event(moment))

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
        from boto3.dynamodb.types import TypeDeserializer

        des = TypeDeserializer()
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"TableName": self.table, "ConsistentRead": True}
        while True:
            page = self.ddb.scan(**params)
            items.extend({k: des.deserialize(v) for k, v in it.items()} for it in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            params["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def rejections(self) -> list[dict[str, str]]:
        """Every rejection preserved in the RejectsBucket's reports."""
        found: list[dict[str, str]] = []
        paginator = self.s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.rejects_bucket, Prefix="rejects/"):
            for obj in page.get("Contents", []):
                body = self.s3.get_object(Bucket=self.rejects_bucket, Key=obj["Key"])["Body"].read()
                found.extend(json.loads(line) for line in body.splitlines() if line.strip())
        return found

    def queue_depth(self, logical: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_urls[logical],
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return sum(int(v) for v in attrs.values())

    def dead_letters(self) -> int:
        return sum(
            self.queue_depth(q) for q in ("ProcessingDLQ", "AggregationDLQ", "InvocationDLQ") if q in self.queue_urls
        )

    def summary(self) -> dict[str, Any]:
        """The simulate output document (docs/local.md)."""
        from handlers.contract import AGGREGATE_KEY_SUFFIX

        items = self.table_items()
        points = [i for i in items if not str(i["symbol"]).endswith(AGGREGATE_KEY_SUFFIX)]
        aggregates = []
        for item in items:
            if str(item["symbol"]).endswith(AGGREGATE_KEY_SUFFIX):
                aggregates.append(
                    {
                        "symbol": item["symbol"][: -len(AGGREGATE_KEY_SUFFIX)],
                        "window_start": int(item["timestamp"]),
                        **{k: _plain(item.get(k)) for k in ("open", "high", "low", "close", "count", "volume", "vwap")},
                    }
                )
        aggregates.sort(key=lambda a: (a["symbol"], a["window_start"]))
        results = self.ingestion_results
        return {
            "points_in": sum(r["records_in"] for r in results),
            "accepted": sum(r["accepted"] for r in results),
            "rejected": sum(r["rejected"] for r in results),
            "stored": len(points),
            "rejections": self.rejections(),
            "aggregates": aggregates,
            "dead_letters": self.dead_letters(),
            # where a symbol came from when records had none (docs/input-contract.md)
            "key_symbols": [
                {"source": r["source"], "symbol": r["key_symbol"], "from": r["key_symbol_from"]}
                for r in results
                if "key_symbol" in r
            ],
        }


def _plain(value: Any) -> Any:
    """A DynamoDB Decimal as a JSON number (int when integral)."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


# --- realistic Lambda events ------------------------------------------------------------
def s3_event(bucket: str, key: str, size: int, version_id: str | None, etag: str = "") -> dict[str, Any]:
    """An S3 ObjectCreated:Put notification as delivered to Lambda (key URL-encoded)."""
    obj: dict[str, Any] = {
        "key": quote_plus(key, safe="/"),
        "size": size,
        "eTag": etag.strip('"'),
        "sequencer": f"{time.time_ns():X}",
    }
    if version_id:
        obj["versionId"] = version_id
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "example"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "DataIngestion",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "EXAMPLE"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": obj,
                },
            }
        ]
    }


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """An SQS event record as the event source mapping builds it from a message."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def api_event(body: str, *, base64_encoded: bool = False, method: str = "POST") -> dict[str, Any]:
    """An API Gateway REST API proxy event for POST /ingest."""
    now = time.time()
    return {
        "resource": "/ingest",
        "path": "/ingest",
        "httpMethod": method,
        "headers": {"Content-Type": "application/json"},
        "multiValueHeaders": {"Content-Type": ["application/json"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/ingest",
            "httpMethod": method,
            "path": "/prod/ingest",
            "stage": "prod",
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(now * 1000),
            "accountId": ACCOUNT_ID,
            "identity": {"sourceIp": "127.0.0.1", "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/feeder"},
            "protocol": "HTTP/1.1",
        },
        "body": body,
        "isBase64Encoded": base64_encoded,
    }


def scheduled_event(moment: datetime) -> dict[str, Any]:
    """The EventBridge "Scheduled Event" that rate(5 minutes) sends."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/AggregationSchedule-dev"],
        "detail": {},
    }


# --- small helpers ----------------------------------------------------------------------
class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def _patched_environ(values: dict[str, str]) -> Iterator[None]:
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
def _patched_attr(obj: Any, name: str, value: Any) -> Iterator[None]:
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)
