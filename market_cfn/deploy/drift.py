"""Drift detection on the stateful resources before executing: what of their real state a change set
would overwrite.

AWS semantics (API reference DetectStackDrift, DescribeStackDriftDetectionStatus,
DescribeStackResourceDrifts; CloudFormation User Guide, "Detect unmanaged configuration
changes to stacks and resources with drift detection"):
- DetectStackDrift(StackName, LogicalResourceIds: 1-200 ids) starts an asynchronous
  detection and returns its StackDriftDetectionId.
- DescribeStackDriftDetectionStatus reports DetectionStatus DETECTION_IN_PROGRESS,
  DETECTION_COMPLETE or DETECTION_FAILED ("failed for at least one resource ... results
  will be available for resources on which CloudFormation successfully completed drift
  detection").
- DescribeStackResourceDrifts (paged with NextToken) returns the latest result for each
  resource; StackResourceDriftStatusFilters MODIFIED and DELETED select the drifted ones.
  A type drift detection does not support is NOT_CHECKED.
- Nested stacks are separate stacks: drift of resources inside them is not detected here
  (the nested stack resource itself is).

What happens when it cannot run: on AWS, a failure to start or finish detection is a
deploy error (fail closed: the review would otherwise claim "no drift" it never checked);
`--no-drift-check` skips it explicitly and the review says "drift: not checked". On a local
endpoint (`--endpoint-url`), an emulator that does not implement these calls (moto answers
with an HTTP 500 page) is a documented degradation: the review says drift was not checked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from market_cfn.base.aws import error_message, not_implemented
from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError
from market_cfn.base.waits import Waits, poll

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.literals import StackResourceDriftStatusType
    from mypy_boto3_cloudformation.type_defs import DescribeStackResourceDriftsInputTypeDef, StackResourceDriftTypeDef

MAX_IDS_PER_DETECTION = 200  # DetectStackDrift LogicalResourceIds, max items (service model)
DRIFTED: tuple[StackResourceDriftStatusType, ...] = ("MODIFIED", "DELETED")


@dataclass(frozen=True)
class DriftResult:
    drifted: dict[str, str] = field(default_factory=dict)  # logical id -> MODIFIED | DELETED
    checked: bool = False  # detection ran to completion for every requested resource
    note: str = ""
    differences: dict[str, list[str]] = field(default_factory=dict)  # logical id -> "path: expected -> actual"


def detect_drift(
    cfn: CloudFormationClient,
    stack_id: str,
    logical_ids: list[str],
    console: Console,
    waits: Waits,
    *,
    emulator: bool,
) -> DriftResult:
    """Run drift detection on `logical_ids` of the stack and return the drifted ones."""
    if not logical_ids:
        return DriftResult(checked=True, note="no stateful resources deployed")
    console.say(f"Detecting drift of {len(logical_ids)} stateful resource(s) ...")
    try:
        detection_ids = [
            cfn.detect_stack_drift(StackName=stack_id, LogicalResourceIds=chunk)["StackDriftDetectionId"]
            for chunk in _chunks(sorted(logical_ids), MAX_IDS_PER_DETECTION)
        ]
        complete = all([_wait_detection(cfn, detection_id, waits) for detection_id in detection_ids])
        drifts = _drifted_resources(cfn, stack_id)
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        if emulator and not_implemented(exc):
            note = "not checked: this endpoint does not implement drift detection"
            console.say(f"Drift: {note}.")
            return DriftResult(checked=False, note=note)
        reason = error_message(exc) if isinstance(exc, ClientError) else " ".join(str(exc).split())[:160]
        raise DeployError(
            f"drift detection failed: {reason} (pass --no-drift-check to deploy without it; the review will "
            "say drift was not checked)"
        ) from exc
    wanted = set(logical_ids)
    drifted: dict[str, str] = {
        d["LogicalResourceId"]: d["StackResourceDriftStatus"]
        for d in drifts
        if d["LogicalResourceId"] in wanted and d["StackResourceDriftStatus"] in DRIFTED
    }
    differences = {
        d["LogicalResourceId"]: [
            f"{p.get('PropertyPath', '')}: {p.get('ExpectedValue', '')} -> {p.get('ActualValue', '')}"
            f" ({p.get('DifferenceType', '')})"
            for p in d.get("PropertyDifferences") or []
        ]
        for d in drifts
        if d["LogicalResourceId"] in drifted
    }
    note = "" if complete else "detection failed for some resources; those are reported as not checked"
    return DriftResult(drifted, complete, note, differences)


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _wait_detection(cfn: CloudFormationClient, detection_id: str, waits: Waits) -> bool:
    """Poll until the detection finishes; True when DETECTION_COMPLETE."""
    status = poll(
        lambda: cfn.describe_stack_drift_detection_status(StackDriftDetectionId=detection_id),
        lambda seen: seen["DetectionStatus"] in ("DETECTION_COMPLETE", "DETECTION_FAILED"),
        waits,
        timeout_seconds=waits.change_set_timeout_seconds,
        timed_out=lambda seen: DeployError(
            f"drift detection {detection_id} still {seen['DetectionStatus']} after "
            f"{waits.change_set_timeout_seconds:.0f} s"
        ),
    )
    return bool(status["DetectionStatus"] == "DETECTION_COMPLETE")


def _drifted_resources(cfn: CloudFormationClient, stack_id: str) -> list[StackResourceDriftTypeDef]:
    kwargs: DescribeStackResourceDriftsInputTypeDef = {
        "StackName": stack_id,
        "StackResourceDriftStatusFilters": list(DRIFTED),
    }
    drifts: list[StackResourceDriftTypeDef] = []
    while True:
        page = cfn.describe_stack_resource_drifts(**kwargs)
        drifts.extend(page.get("StackResourceDrifts", []))
        if not page.get("NextToken"):
            return drifts
        kwargs["NextToken"] = page["NextToken"]
