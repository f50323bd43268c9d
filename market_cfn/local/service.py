"""`LocalService`: the whole pipeline as a local AWS endpoint on 127.0.0.1 (moto's server), the stack
deployed into it through our own deploy path, and the real handlers wired as AWS runs them.

    with LocalService(tick_seconds=1, retry_delay_seconds=0, redelivery_delay_seconds=0) as svc:
        s3 = svc.client("s3")                 # boto3, pointed at svc.endpoint, test credentials
        s3.put_object(Bucket=svc.outputs["s3BucketName"], Key="AAPL/a.csv", Body=b"...")
        wait_for(lambda: ..., timeout=30)     # the threads below do the rest

What runs where (docs/local.md has the table): moto serves every AWS API; this service runs
the Lambda service's and the integrations' part in threads - the S3 notification (a watcher
polling ListObjectVersions), asynchronous invocation (retries, on-failure destination), the SQS
event source mapping (a poller per mapping), the schedule (every `tick_seconds`), EventBridge
rule delivery to SQS (market_cfn.local.bus), POST /ingest (market_cfn.local.apiserver) - and
sends the functions' logs to their log groups (market_cfn.local.logsink).
"""

from __future__ import annotations

import functools
import heapq
import io
import itertools
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from market_cfn.deploy.preflight import stack_resources
from market_cfn.local import motoside
from market_cfn.local.lambda_events import REGION, s3_event, scheduled_event
from market_cfn.local.runtime import AsyncInvocation, FunctionRuntime, attempt, poll_once, retries_exhausted
from market_cfn.local.stackview import Mapping, Notification, StackView

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from boto3.session import Session
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

CREDENTIALS = {"testing": "testing"}  # the access key / secret the local endpoint's clients use
LAMBDA_RETRY_DELAYS = (60.0, 120.0)  # Lambda: 1 minute before the first retry, 2 before the second
STACK_PREFIX = "market-data-"


class ServiceError(Exception):
    """The local service could not start (one line, for the command's error)."""


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll `predicate` until it returns something truthy; return it, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what or predicate!r}")
        time.sleep(interval)


class LocalService:
    """See the module docstring. Start with `with LocalService(...) as svc:` or start()/stop()."""

    def __init__(
        self,
        *,
        port: int = 0,
        api_port: int = 0,
        env: str = "dev",
        tick_seconds: float = 300.0,
        poll_seconds: float = 0.2,
        retry_delay_seconds: float | None = None,
        redelivery_delay_seconds: int | None = None,
        credentials: dict[str, str] | None = None,
        echo_logs: Any = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.port = port
        self.api_port = api_port
        self.env = env
        self.stack_name = STACK_PREFIX + env
        self.tick_seconds = tick_seconds
        self.poll_seconds = poll_seconds
        delays = LAMBDA_RETRY_DELAYS if retry_delay_seconds is None else (retry_delay_seconds,) * 2
        self.retry_delays = delays
        self.redelivery_delay_seconds = redelivery_delay_seconds
        self.credentials = dict(credentials or CREDENTIALS)
        self.echo_logs = echo_logs
        self.say = say or (lambda _line: None)
        self.errors: list[str] = []  # invocation errors and delivery problems, newest last
        self.endpoint = ""
        self.api_url = ""
        self.outputs: dict[str, str] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: Any = None
        self._api: Any = None
        self._bus: Any = None
        self._workers: dict[str, _AsyncWorker] = {}  # one asynchronous-invocation queue per function
        self._workers_lock = threading.Lock()
        self._ticks_pending: set[str] = set()  # schedule rules whose last tick has not started yet
        self._stack_gone = threading.Event()

    # --- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> LocalService:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def client(self, service: str) -> Any:
        """A boto3 client for the local endpoint with the service's test credentials."""
        return motoside.EndpointSession(self._session(), self.endpoint).client(service)

    def _session(self) -> Session:
        import boto3

        ((key, secret),) = list(self.credentials.items())[:1]
        return boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret, region_name=REGION)

    def start(self) -> None:
        motoside.quiet()
        server = motoside.moto_server(self.port)
        server.start()
        self._server = server
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.say(f"endpoint {self.endpoint}")
        self._deploy()
        self._wire()

    def stop(self) -> None:
        """Stop the threads (each finishes its current invocation), the API, then the endpoint."""
        self._stop.set()
        with self._workers_lock:
            for worker in self._workers.values():
                worker.wake()
        if self._api is not None:
            self._api.stop()
            self._api = None
        for thread in self._threads:
            thread.join()
        self._threads.clear()
        if self._bus is not None:
            self._bus.stop()
            self._bus = None
        from handlers import common

        if getattr(common, "_session", None) is getattr(self, "_handler_session", object()):
            common.use_session(None)
        from market_cfn.local.logsink import restore_stdout

        restore_stdout()
        if self._server is not None:
            self._server.stop()
            self._server = None

    # --- deploy ----------------------------------------------------------------------
    def _deploy(self) -> None:
        from market_cfn.base.aws import Where
        from market_cfn.base.console import Console
        from market_cfn.base.errors import DeployError, Refused, UsageError
        from market_cfn.base.waits import Waits
        from market_cfn.deploy.flow import PipelineDeploy, deploy_pipeline
        from market_cfn.deploy.gate import DeployOptions
        from market_cfn.stack.config import StackConfig
        from market_cfn.stack.render import render_json

        template_json = render_json(StackConfig(env_suffix=self.env))
        request = PipelineDeploy(
            stack_name=self.stack_name,
            env=self.env,
            region=REGION,
            template_json=template_json,
            # a fresh endpoint: confirmed without a prompt, nothing deployed before that could drift
            options=DeployOptions(
                assume_yes=True,
                drift_check=False,
                where=Where(region=REGION, endpoint_url=self.endpoint),  # an emulator: documented degradations
                command="python -m market_cfn local",
            ),
        )
        transcript = io.StringIO()
        console = Console(out=transcript, interactive=False)
        try:
            outcome = deploy_pipeline(
                self.client("cloudformation"), self.client("s3"), request, console, Waits(poll_seconds=0.05)
            )
        except (DeployError, UsageError, Refused) as exc:
            raise ServiceError(f"deploying {self.stack_name} into the local endpoint failed: {exc}") from exc
        if outcome.result not in ("deployed", "no-changes"):
            raise ServiceError(
                f"deploying {self.stack_name} into the local endpoint: {outcome.result} {outcome.message}"
            )
        self.say(f"deployed stack {self.stack_name} (bin/deploy's path: bootstrap, package, change set)")
        stack = self.client("cloudformation").describe_stacks(StackName=self.stack_name)["Stacks"][0]
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
        self.view = StackView(json.loads(template_json), parameters=parameters)
        sqs: SQSClient = self.client("sqs")
        self.view.declare_names(queue_url=lambda name: sqs.get_queue_url(QueueName=name)["QueueUrl"])
        self.view.declare_extras()
        # Everything else by the physical IDs moto's CloudFormation reports (an SNS topic's ARN ...).
        # (every page: DescribeStackResources stops at 100, the CloudFormation API Reference says)
        listed, _types = stack_resources(self.client("cloudformation"), self.stack_name)
        for logical, physical in listed.items():
            if logical not in self.view.physical:
                self.view.physical[logical] = {"Ref": physical, "Arn": physical}
        self._stack_outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    # --- wiring ----------------------------------------------------------------------
    def _wire(self) -> None:
        from handlers import common
        from market_cfn.local.apiserver import ApiServer, api_spec
        from market_cfn.local.bus import BusRouter
        from market_cfn.local.logsink import LogSink

        view = self.view
        self.sqs: SQSClient = self.client("sqs")
        self.s3: S3Client = self.client("s3")
        logs: CloudWatchLogsClient = self.client("logs")
        self._complete_buckets()
        motoside.detach_event_source_mappings([view.physical[m.queue]["QueueName"] for m in view.mappings()])
        self.logsink = LogSink(logs, view.log_group, view.handler_module, echo=self.echo_logs, on_error=self._error)
        (key, secret), *_ = self.credentials.items()
        base_env = {
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": key,
            "AWS_SECRET_ACCESS_KEY": secret,
        }
        self.runtime = FunctionRuntime(view, base_env=base_env, output=self.logsink.capture)
        for logical, _ in view.of_type("AWS::Lambda::Function"):
            self.runtime.init(logical)
        self._handler_session = motoside.EndpointSession(self._session(), self.endpoint)
        common.use_session(self._handler_session)
        self._bus = BusRouter(view, self.sqs, on_error=self._error)
        self._bus.install()
        notifications = view.notifications()
        if notifications:
            # The objects from before the start, listed here and not in the watcher's thread: once
            # start() returns (and `local` says Ready), every object created is new to the watcher,
            # however late its thread first runs.
            baseline = {n.bucket: {v[:3] for v in self._versions(n.bucket)} for n in notifications}
            self._spawn("local-s3", lambda: self._watch_buckets(notifications, baseline))
        for mapping in view.mappings():
            if mapping.enabled:
                self._spawn(f"local-esm-{mapping.queue}", functools.partial(self._poll_mapping, mapping))
        self._spawn("local-schedule", self._schedule)
        spec = api_spec(view)
        self._api = ApiServer(
            spec, self.runtime.invoke, credentials=self.credentials, port=self.api_port, access_log=self._access_log
        )
        self._api.start()
        self.api_url = self._api.url
        self._publish_outputs()
        names = {view.ref(f): f for f, _ in view.of_type("AWS::Lambda::Function")}
        motoside.route_lambda_invokes(names, self.runtime.invoke, self.submit)
        self._spawn("local-stack", self._watch_stack)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _error(self, message: str) -> None:
        self.errors.append(message)
        self.say(f"error: {message}")

    def _complete_buckets(self) -> None:
        """Apply what moto's CloudFormation leaves out of AWS::S3::Bucket but AWS applies and the
        pipeline relies on: VersioningConfiguration (the ingestion reads the version it was told)."""
        for logical, props in self.view.of_type("AWS::S3::Bucket"):
            status = props.get("VersioningConfiguration", {}).get("Status")
            if status:
                self.s3.put_bucket_versioning(Bucket=self.view.ref(logical), VersioningConfiguration={"Status": status})

    def _publish_outputs(self) -> None:
        """The stack's outputs, with apiGatewayUrl at the local API; moto drops outputs it cannot
        resolve, and reports none at all for a stack created by a change set, so they are
        resolved here and written into moto's stack record: DescribeStacks (the AWS CLI, the day-2 commands)
        then shows the same outputs as on AWS."""
        outputs: dict[str, str] = {}
        for key, spec in self.view.template.get("Outputs", {}).items():
            if key == "apiGatewayUrl":
                outputs[key] = self.api_url
            elif key in self._stack_outputs:
                outputs[key] = self._stack_outputs[key]
            else:
                try:
                    outputs[key] = str(self.view.resolve(spec["Value"]))
                except KeyError as exc:  # a resource moto did not create: said, not guessed
                    self._error(f"output {key} cannot be resolved locally ({exc} was not created by moto)")
        descriptions = {k: v.get("Description", "") for k, v in self.view.template["Outputs"].items()}
        motoside.record_stack_outputs(self.stack_name, outputs, descriptions)
        self.outputs = outputs

    def _access_log(self, group: str, line: str) -> None:
        try:
            self.logsink.logs.put_log_events(
                logGroupName=group,
                logStreamName=self._access_stream(group),
                logEvents=[{"timestamp": int(time.time() * 1000), "message": line}],
            )
        except Exception as exc:  # noqa: BLE001  # an access log line must not fail the request
            self._error(f"access log not written: {exc}")

    def _access_stream(self, group: str) -> str:
        stream = getattr(self, "_access_stream_name", None)
        if stream is None:
            stream = self._access_stream_name = f"local-{int(time.time())}"
            self.logsink.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        return str(stream)

    # --- the Lambda service's parts --------------------------------------------------
    def submit(self, function: str, event: dict[str, Any], *, source: str = "") -> None:
        """An asynchronous invocation (S3, the schedule), queued for the function's worker."""
        with self._workers_lock:
            worker = self._workers.get(function)
            if worker is None:
                worker = self._workers[function] = _AsyncWorker(self)
                self._spawn(f"local-async-{function}", worker.run)
        worker.submit(AsyncInvocation(function, event, source=source))

    def _watch_buckets(self, notifications: list[Notification], seen: dict[str, set[tuple[str, str, str]]]) -> None:
        """S3 -> Lambda: every object version in a notifying bucket that is not in `seen` (the
        baseline taken before start() returned) is one ObjectCreated event."""
        while not self._stop.wait(self.poll_seconds):
            if not self.active:
                continue
            for bucket in seen:
                try:
                    versions = self._versions(bucket)
                except Exception as exc:  # noqa: BLE001  # the endpoint is stopping, or a hiccup: next round
                    if not self._stop.is_set():
                        self._error(f"listing {bucket}: {exc}")
                    continue
                for key, version, etag, size, _modified in sorted(versions, key=lambda v: v[4]):
                    if (key, version, etag) in seen[bucket]:
                        continue
                    seen[bucket].add((key, version, etag))
                    name = self.view.ref(bucket)
                    for notification in notifications:
                        if notification.bucket == bucket and notification.matches("s3:ObjectCreated:Put"):
                            event = s3_event(name, key, size, version, etag, configuration_id=notification.function)
                            self.submit(notification.function, event, source=bucket)

    def _versions(self, bucket: str) -> list[tuple[str, str, str, int, datetime]]:
        found = []
        paginator = self.s3.get_paginator("list_object_versions")
        for page in paginator.paginate(Bucket=self.view.ref(bucket)):
            for v in page.get("Versions", []):
                found.append(
                    (v["Key"], v.get("VersionId") or "null", v.get("ETag", ""), v.get("Size", 0), v["LastModified"])
                )
        return found

    def _poll_mapping(self, mapping: Mapping) -> None:
        """The event source mapping: long-poll (1 s, so a stop is seen soon), invoke, delete."""
        while not self._stop.is_set():
            if not self.active:
                self._stop.wait(self.poll_seconds)
                continue
            try:
                poll_once(
                    self.runtime.invoke,
                    self.sqs,
                    self.view,
                    mapping,
                    wait_seconds=1,
                    failed_visibility_seconds=self.redelivery_delay_seconds,
                    errors=self.errors,
                )
            except Exception as exc:  # noqa: BLE001  # SQS unreachable (stopping) or a hiccup: retry
                if not self._stop.is_set():
                    self._error(f"polling {mapping.queue}: {exc}")
                    self._stop.wait(self.poll_seconds)

    @property
    def active(self) -> bool:
        """False once the stack is gone (deleted, e.g. by `destroy`): nothing is dispatched then,
        as nothing runs on AWS after a stack's deletion."""
        return not self._stack_gone.is_set()

    def _watch_stack(self) -> None:
        cfn: CloudFormationClient = self.client("cloudformation")
        while not self._stop.wait(1.0):
            try:
                stacks = cfn.describe_stacks(StackName=self.stack_name)["Stacks"]
                gone = not stacks or stacks[0]["StackStatus"] == "DELETE_COMPLETE"
            except Exception as exc:  # noqa: BLE001  # "does not exist" is the answer for a deleted stack
                gone = "does not exist" in str(exc)
            if gone and self.active:
                self._stack_gone.set()
                self.say(f"stack {self.stack_name} was deleted: the service is idle now (Ctrl-C stops it)")
                return

    def _schedule(self) -> None:
        """Each schedule rule's target, every `tick_seconds` (replacing the rule's rate)."""
        schedules = self.view.schedules()
        for schedule in schedules:
            schedule.rate_seconds  # noqa: B018  # refuses expressions other than rate()
        while not self._stop.wait(self.tick_seconds):
            for schedule in schedules if self.active else ():
                if schedule.rule in self._ticks_pending:
                    continue  # the previous tick's invocation has not even started: skip (docs/local.md)
                self._ticks_pending.add(schedule.rule)
                event = scheduled_event(datetime.now(UTC), schedule.rule_arn)
                self.submit(schedule.function, event, source=schedule.rule)


class _AsyncWorker:
    """Lambda's asynchronous invocation queue: attempts in due order, retries after the delays,
    the invocation record to the on-failure destination once retries are exhausted."""

    def __init__(self, service: LocalService) -> None:
        self.service = service
        self._heap: list[tuple[float, int, AsyncInvocation]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()

    def submit(self, invocation: AsyncInvocation, delay: float = 0.0) -> None:
        with self._cond:
            heapq.heappush(self._heap, (time.monotonic() + delay, next(self._seq), invocation))
            self._cond.notify()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def pending(self) -> int:
        with self._cond:
            return len(self._heap)

    def run(self) -> None:
        svc = self.service
        while not svc._stop.is_set():
            with self._cond:
                if not self._heap:
                    self._cond.wait(0.5)
                    continue
                due = self._heap[0][0] - time.monotonic()
                if due > 0:
                    self._cond.wait(min(due, 0.5))
                    continue
                _, _, invocation = heapq.heappop(self._heap)
            svc._ticks_pending.discard(invocation.source)
            if not svc.active:
                continue  # the stack was deleted: its functions are gone
            ok, _ = attempt(svc.runtime.invoke, invocation, svc.errors)
            if ok:
                continue
            retries = svc.view.async_config(invocation.function).retries
            if invocation.attempts <= retries:
                self.submit(invocation, svc.retry_delays[min(invocation.attempts, len(svc.retry_delays)) - 1])
                continue
            try:
                retries_exhausted(svc.sqs, svc.view, invocation)
            except Exception as exc:  # noqa: BLE001  # reported; the event is in the service's output
                svc._error(f"on-failure destination of {invocation.function} not written: {exc}")
