"""The stack's template read as the emulation needs it: which function runs which handler with
which environment, how each is invoked (event source mapping, S3 notification, schedule, API),
with every intrinsic function resolved to the emulated physical values.

Both the in-process simulation (Pipeline) and the `local` service read their wiring here, so
what runs locally is what the template says, not a second description of it. Anything the
emulation does not understand raises `WiringError` (fail closed) instead of being skipped.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from market_cfn.intrinsics import IntrinsicResolver
from market_cfn.local.lambda_events import ACCOUNT_ID, REGION

FUNCTIONS = ("DataIngestionFunction", "DataProcessorFunction", "DataAggregatorFunction")
ASYNC_RETRIES = 2  # Lambda asynchronous invocation: 2 retries unless an EventInvokeConfig says otherwise
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")


class WiringError(Exception):
    """The template asks for an integration the emulation does not implement."""


def load_template(env_suffix: str = "dev") -> dict[str, Any]:
    """The rendered template as a dict (build_template with StackConfig(env_suffix))."""
    from market_cfn.stack.config import StackConfig
    from market_cfn.stack.render import render_dict

    return json.loads(json.dumps(render_dict(StackConfig(env_suffix=env_suffix))))


@dataclass(frozen=True)
class AsyncConfig:
    retries: int
    on_failure: str | None  # logical ID of the destination queue


@dataclass(frozen=True)
class Mapping:
    """An SQS event source mapping."""

    function: str  # logical IDs
    queue: str
    batch_size: int
    partial_failures: bool
    enabled: bool


@dataclass(frozen=True)
class Notification:
    """An S3 bucket's notification to a Lambda function."""

    bucket: str  # logical IDs
    function: str
    events: tuple[str, ...]

    def matches(self, event_name: str) -> bool:
        """Does an event ("s3:ObjectCreated:Put") match one of the configured ones?"""
        for pattern in self.events:
            if pattern == event_name or (pattern.endswith(":*") and event_name.startswith(pattern[:-1])):
                return True
        return False


@dataclass(frozen=True)
class Schedule:
    rule: str  # logical IDs
    function: str
    expression: str
    rule_name: str

    @property
    def rule_arn(self) -> str:
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{self.rule_name}"

    @property
    def rate_seconds(self) -> float:
        match = _RATE.fullmatch(self.expression)
        if not match:
            raise WiringError(f"{self.rule}: schedule {self.expression!r} is not a rate() expression")
        unit = {"minute": 60, "hour": 3600, "day": 86400}[match.group(2).rstrip("s")]
        return float(int(match.group(1)) * unit)


def logical_of(value: Any) -> str:
    """The logical ID a `Ref` or `Fn::GetAtt` names."""
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        att = value["Fn::GetAtt"]
        return str(att[0] if isinstance(att, list) else att.split(".", 1)[0])
    raise WiringError(f"expected a Ref or Fn::GetAtt of a resource, got {json.dumps(value)}")


class Resolver(IntrinsicResolver):
    """Resolves the template's intrinsic functions to the emulated physical values."""

    def __init__(self, template: dict[str, Any], parameters: dict[str, str], physical: dict[str, dict[str, str]]):
        self.params = {k: str(v.get("Default", "")) for k, v in template.get("Parameters", {}).items()}
        self.params.update(parameters)
        self.pseudo = {
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Region": REGION,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.physical = physical  # logical ID -> {"Ref": ..., "Arn": ..., "Name": ...}

    def ref(self, name: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.params:
            return self.params[name]
        return self.physical[name]["Ref"]

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return self.physical[logical_id][attribute]


class StackView:
    """The template plus the physical values of its resources (see the module docstring)."""

    def __init__(self, template: dict[str, Any], *, parameters: dict[str, str] | None = None) -> None:
        self.template = template
        self.resources: dict[str, Any] = template["Resources"]
        self.physical: dict[str, dict[str, str]] = {}
        self.resolve = Resolver(template, parameters or {}, self.physical)

    # --- resources ----------------------------------------------------------------------
    def of_type(self, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical, res in self.resources.items():
            if res["Type"] == kind:
                yield logical, res.get("Properties", {})

    def props(self, logical: str) -> dict[str, Any]:
        return dict(self.resources[logical].get("Properties", {}))

    def declare_names(self, queue_url: Any = None) -> None:
        """Fill in the physical values the template names explicitly (every resource the
        emulation touches has an explicit name). `queue_url(name)` gives a queue's URL."""
        resolve = self.resolve
        for logical, props in self.of_type("AWS::SQS::Queue"):
            name = resolve(props["QueueName"])
            url = queue_url(name) if queue_url else f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{name}"
            self.physical[logical] = {"Ref": url, "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}", "QueueName": name}
        for logical, props in self.of_type("AWS::DynamoDB::Table"):
            name = resolve(props["TableName"])
            self.physical[logical] = {"Ref": name, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"}
        for logical, props in self.of_type("AWS::S3::Bucket"):
            name = resolve(props["BucketName"])
            self.physical[logical] = {"Ref": name, "Arn": f"arn:aws:s3:::{name}"}
        for logical, props in self.of_type("AWS::Events::EventBus"):
            name = resolve(props["Name"])
            arn = f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}"
            self.physical[logical] = {"Ref": arn, "Arn": arn, "Name": name}
        for logical, props in self.of_type("AWS::Lambda::Function"):
            name = resolve(props["FunctionName"])
            self.physical[logical] = {"Ref": name, "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}"}
        for logical, props in self.of_type("AWS::SNS::Topic"):  # the alarm topic (an output names it)
            name = resolve(props["TopicName"])
            arn = f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}"
            self.physical[logical] = {"Ref": arn, "Arn": arn, "TopicName": name}

    def declare_extras(self) -> None:
        """Physical values of the log groups and rules, for an emulation that has them."""
        resolve = self.resolve
        for logical, props in self.of_type("AWS::Logs::LogGroup"):
            name = resolve(props["LogGroupName"])
            arn = f"arn:aws:logs:{REGION}:{ACCOUNT_ID}:log-group:{name}:*"
            self.physical[logical] = {"Ref": name, "Arn": arn}
        for logical, props in self.of_type("AWS::Events::Rule"):
            name = resolve(props["Name"])
            self.physical[logical] = {"Ref": name, "Arn": f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{name}"}

    def number(self, value: Any) -> int:
        """An integer property, which may be a parameter (Ref) or another intrinsic."""
        resolved = self.resolve(value)
        try:
            return int(resolved)
        except (TypeError, ValueError):
            raise WiringError(f"expected a number, got {json.dumps(value)} = {resolved!r}") from None

    def ref(self, logical: str) -> str:
        return self.physical[logical]["Ref"]

    def arn(self, logical: str) -> str:
        return self.physical[logical]["Arn"]

    # --- functions ----------------------------------------------------------------------
    def function_env(self, logical: str) -> dict[str, str]:
        variables = self.props(logical).get("Environment", {}).get("Variables", {})
        return {k: str(self.resolve(v)) for k, v in variables.items()}

    def handler_module(self, logical: str) -> Any:
        path = self.props(logical)["Handler"]
        return importlib.import_module(path.rsplit(".", 1)[0])

    def handler(self, logical: str) -> Any:
        path = self.props(logical)["Handler"]
        return getattr(self.handler_module(logical), path.rsplit(".", 1)[1])

    def timeout_ms(self, logical: str) -> int:
        return self.number(self.props(logical).get("Timeout", 3)) * 1000

    def memory_mb(self, logical: str) -> int:
        return self.number(self.props(logical).get("MemorySize", 128))

    def log_group(self, logical: str) -> str:
        """LoggingConfig.LogGroup when set, else Lambda's default /aws/lambda/<name>."""
        group = self.props(logical).get("LoggingConfig", {}).get("LogGroup")
        if not group:
            return f"/aws/lambda/{self.ref(logical)}"
        if isinstance(group, dict) and "Ref" in group and group["Ref"] in self.resources:
            return str(self.resolve(self.props(group["Ref"])["LogGroupName"]))
        return str(self.resolve(group))

    def role_of(self, logical: str) -> str:
        return logical_of(self.props(logical)["Role"])

    def async_config(self, logical: str) -> AsyncConfig:
        """The function's EventInvokeConfig (retries, on-failure destination), or Lambda's defaults."""
        for _, props in self.of_type("AWS::Lambda::EventInvokeConfig"):
            if logical_of(props["FunctionName"]) != logical:
                continue
            destination = props.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            on_failure = logical_of(destination) if destination else None
            if on_failure and self.resources[on_failure]["Type"] != "AWS::SQS::Queue":
                raise WiringError(f"{logical}: on-failure destination {on_failure} is not an SQS queue")
            return AsyncConfig(self.number(props.get("MaximumRetryAttempts", ASYNC_RETRIES)), on_failure)
        return AsyncConfig(ASYNC_RETRIES, None)

    # --- how the functions are invoked --------------------------------------------------
    def mappings(self) -> list[Mapping]:
        found = []
        for logical, props in self.of_type("AWS::Lambda::EventSourceMapping"):
            queue = logical_of(props["EventSourceArn"])
            if self.resources[queue]["Type"] != "AWS::SQS::Queue":
                raise WiringError(f"{logical}: only SQS event sources are emulated")
            unknown = set(props) - {
                "BatchSize",
                "Enabled",
                "EventSourceArn",
                "FunctionName",
                "FunctionResponseTypes",
                # ScalingConfig.MaximumConcurrency (2-1000, Lambda developer guide, "Configuring maximum
                # concurrency for Amazon SQS event sources") caps concurrent invocations; the emulation
                # runs one batch of a mapping at a time, which is always within the cap.
                "ScalingConfig",
                "Tags",
            }
            if unknown:
                raise WiringError(f"{logical}: {', '.join(sorted(unknown))} not emulated")
            found.append(
                Mapping(
                    function=logical_of(props["FunctionName"]),
                    queue=queue,
                    batch_size=self.number(props.get("BatchSize", 10)),
                    partial_failures="ReportBatchItemFailures" in props.get("FunctionResponseTypes", []),
                    enabled=bool(props.get("Enabled", True)),
                )
            )
        return found

    def mapping_for(self, queue: str) -> Mapping:
        for mapping in self.mappings():
            if mapping.queue == queue:
                return mapping
        raise WiringError(f"no event source mapping reads {queue}")

    def notifications(self) -> list[Notification]:
        found = []
        for logical, props in self.of_type("AWS::S3::Bucket"):
            config = props.get("NotificationConfiguration") or {}
            for kind in set(config) - {"LambdaConfigurations"}:
                raise WiringError(f"{logical}: NotificationConfiguration.{kind} is not emulated")
            for entry in config.get("LambdaConfigurations", []):
                if "Filter" in entry:
                    raise WiringError(f"{logical}: notification filters are not emulated")
                found.append(Notification(logical, logical_of(entry["Function"]), (entry["Event"],)))
        return found

    def schedules(self) -> list[Schedule]:
        found = []
        for logical, props in self.of_type("AWS::Events::Rule"):
            if "ScheduleExpression" not in props or props.get("State", "ENABLED") != "ENABLED":
                continue
            for target in props.get("Targets", []):
                function = logical_of(target["Arn"])
                if self.resources[function]["Type"] != "AWS::Lambda::Function":
                    raise WiringError(f"{logical}: schedule target {function} is not a Lambda function")
                if {"Input", "InputPath", "InputTransformer"} & set(target):
                    raise WiringError(f"{logical}: schedule target input transformation is not emulated")
                found.append(
                    Schedule(
                        logical, function, str(self.resolve(props["ScheduleExpression"])), self.resolve(props["Name"])
                    )
                )
        return found

    def pattern_rules(self) -> Iterator[tuple[str, dict[str, Any]]]:
        for logical, props in self.of_type("AWS::Events::Rule"):
            if "EventPattern" in props:
                yield logical, props
