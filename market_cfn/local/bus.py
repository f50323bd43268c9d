"""EventBridge rule delivery to SQS targets for the local service, as AWS does it: the event
pattern (exact values, per field), the target's InputPath, the target's RetryPolicy, and its
DeadLetterConfig queue for events that could not be delivered.

moto matches and delivers rules itself but ignores a target's InputPath (it sends the whole
event), so the service takes delivery over for the stack's pattern rules: it replaces the
`send_to_targets` of those rule objects in moto's in-process backend with `BusRouter.accept`,
which queues the event for the router thread. Rules, targets and archives stay as deployed
(ListTargetsByRule shows them; moto's archive rule keeps archiving). This hook depends on
moto 5's EventBridge backend layout; when it is not there the service refuses to start.

References: "Amazon EventBridge event patterns" (exact matching, AND across fields, OR within
a list), "Transforming target input" (InputPath is a JSONPath into the event), "Using
dead-letter queues to process undelivered events" (the DLQ message body is the event, with
RULE_ARN, TARGET_ARN, ERROR_CODE, ERROR_MESSAGE message attributes).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from market_cfn.local.lambda_events import ACCOUNT_ID, REGION
from market_cfn.local.stackview import StackView, WiringError, logical_of

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueTypeDef

DELIVERY_ATTEMPTS = 3  # tries per event before its DeadLetterConfig (RetryPolicy caps it lower)


@dataclass(frozen=True)
class Target:
    rule_arn: str
    arn: str
    queue_url: str
    input_path: str | None
    dead_letter_url: str | None
    attempts: int


def matches(pattern: Any, event: Any) -> bool:
    """An event pattern of exact values: every field of the pattern must match."""
    if not isinstance(pattern, dict) or not isinstance(event, dict):
        return False
    for key, wanted in pattern.items():
        if key not in event:
            return False
        value = event[key]
        if isinstance(wanted, dict):
            if not matches(wanted, value):
                return False
        elif isinstance(value, list):
            if not any(v in wanted for v in value):
                return False
        elif value not in wanted:
            return False
    return True


def check_pattern(rule: str, pattern: Any) -> None:
    """Refuse patterns beyond exact matching (prefix, numeric, anything-but, exists ...)."""
    if not isinstance(pattern, dict):
        raise WiringError(f"{rule}: event pattern must be an object")
    for key, wanted in pattern.items():
        if isinstance(wanted, dict):
            check_pattern(rule, wanted)
        elif not isinstance(wanted, list) or any(isinstance(v, dict | list) for v in wanted):
            raise WiringError(f"{rule}: pattern field {key!r} uses matching the local service does not emulate")


def select(event: dict[str, Any], path: str | None) -> Any:
    """InputPath: "$" or a dotted path such as "$.detail"."""
    if path is None or path == "$":
        return event
    if not path.startswith("$.") or any(c in path for c in "[]*?@"):
        raise WiringError(f"InputPath {path!r} is not emulated (only $ and $.a.b)")
    value: Any = event
    for part in path[2:].split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


class BusRouter:
    """Delivers the stack's pattern rules to their SQS targets from one thread."""

    def __init__(self, view: StackView, sqs: SQSClient, *, on_error: Callable[[str], None]) -> None:
        self.view = view
        self.sqs = sqs
        self.on_error = on_error
        self.rules: dict[str, tuple[str, dict[str, Any], list[Target]]] = {}  # name -> (bus, pattern, targets)
        self.delivered = 0
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="local-bus", daemon=True)
        for logical, props in view.pattern_rules():
            if props.get("State", "ENABLED") != "ENABLED":
                continue
            check_pattern(logical, props["EventPattern"])
            targets = []
            for target in props.get("Targets", []):
                dest = logical_of(target["Arn"])
                if view.resources[dest]["Type"] != "AWS::SQS::Queue":
                    raise WiringError(f"{logical}: only SQS targets are emulated, not {dest}")
                if {"Input", "InputTransformer"} & set(target):
                    raise WiringError(f"{logical}: Input/InputTransformer on target {target['Id']} are not emulated")
                select({}, target.get("InputPath"))  # refuses paths it cannot evaluate
                dlq = target.get("DeadLetterConfig", {}).get("Arn")
                retries = view.number(target.get("RetryPolicy", {}).get("MaximumRetryAttempts", DELIVERY_ATTEMPTS))
                targets.append(
                    Target(
                        rule_arn=view.arn(logical),
                        arn=view.arn(dest),
                        queue_url=view.ref(dest),
                        input_path=target.get("InputPath"),
                        dead_letter_url=view.ref(logical_of(dlq)) if dlq else None,
                        attempts=min(DELIVERY_ATTEMPTS, retries + 1),
                    )
                )
            bus = str(view.resolve(props.get("EventBusName", "default")))
            self.rules[str(view.resolve(props["Name"]))] = (bus, props["EventPattern"], targets)

    def install(self) -> None:
        """Take delivery of the stack's rules over from moto (see the module docstring)."""
        try:
            from moto.events.models import events_backends

            backend = events_backends[ACCOUNT_ID][REGION]
            for name, (bus, _pattern, _targets) in self.rules.items():
                rule = backend.event_buses[bus].rules[name]
                if not callable(getattr(rule, "send_to_targets", None)):
                    raise AttributeError("send_to_targets")
                setattr(rule, "send_to_targets", self._hook(name))  # noqa: B010  # an instance attribute shadows the method
        except (ImportError, KeyError, AttributeError) as exc:
            raise WiringError(
                f"cannot take over EventBridge delivery in this moto version ({type(exc).__name__}: {exc})"
            ) from exc
        self._thread.start()

    def _hook(self, name: str) -> Callable[..., None]:
        def send_to_targets(event: dict[str, Any], transform_input: bool = True) -> None:
            self._queue.put((name, dict(event)))

        return send_to_targets

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def wait_idle(self) -> None:
        self._queue.join()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                name, event = item
                self.deliver(name, event)
            except Exception as exc:  # noqa: BLE001  # the router thread must survive one bad event
                self.on_error(f"event delivery failed: {type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    def deliver(self, name: str, raw: dict[str, Any]) -> None:
        _bus, pattern, targets = self.rules[name]
        event = normalized(raw)
        if not matches(pattern, event):
            return
        for target in targets:
            body = json.dumps(select(event, target.input_path))
            error: Exception | None = None
            for _ in range(target.attempts):
                try:
                    self.sqs.send_message(QueueUrl=target.queue_url, MessageBody=body)
                    self.delivered += 1
                    error = None
                    break
                except Exception as exc:  # noqa: BLE001  # retried, then dead-lettered
                    error = exc
            if error is not None:
                self.dead_letter(target, event, error)

    def dead_letter(self, target: Target, event: dict[str, Any], error: Exception) -> None:
        if target.dead_letter_url is None:
            self.on_error(f"event {event.get('id')} dropped: {target.arn} failed ({error}) and has no DLQ")
            return

        def attr(value: str) -> MessageAttributeValueTypeDef:
            return {"DataType": "String", "StringValue": value[:256]}

        self.sqs.send_message(
            QueueUrl=target.dead_letter_url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "RULE_ARN": attr(target.rule_arn),
                "TARGET_ARN": attr(target.arn),
                "ERROR_CODE": attr("SQSError"),
                "ERROR_MESSAGE": attr(str(error) or type(error).__name__),
            },
        )


def normalized(raw: dict[str, Any]) -> dict[str, Any]:
    """moto's internal event as EventBridge delivers it: time as ISO 8601, no internal keys."""
    event = {k: v for k, v in raw.items() if k not in ("ingestion-time",)}
    stamp = event.get("time")
    if isinstance(stamp, int | float):
        event["time"] = datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(stamp, datetime):
        event["time"] = stamp.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return event
