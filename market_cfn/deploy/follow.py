"""Execute a change set and follow its events until the stack settles."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from market_cfn.base.console import Console, short
from market_cfn.base.errors import DeployError
from market_cfn.base.waits import Waits, poll
from market_cfn.deploy.changeset import deployed_template
from market_cfn.deploy.outputs import ResolvedOutputs, StackFacts, resolve_outputs
from market_cfn.deploy.preflight import describe_stack, stack_outputs, stack_resources
from market_cfn.deploy.review.model import ExecutionResult, Review
from market_cfn.deploy.states import CANCELLED_REASONS, SUCCESS_STATUS

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import DescribeStackEventsInputTypeDef, StackEventTypeDef, StackTypeDef

# --- Execute and follow ---------------------------------------------------------------

RESOURCE_DONE = ("_COMPLETE", "_FAILED", "DELETE_SKIPPED")


class _Look(NamedTuple):
    """What one look at an execution saw: the stack (None: gone), its status, whether it settled."""

    stack: StackTypeDef | None
    status: str
    settled: bool


def _recent_events(cfn: CloudFormationClient, stack_id: str, *, since: datetime) -> list[StackEventTypeDef]:
    """New events, newest-first pages read only as far back as the marker."""
    events = []
    kwargs: DescribeStackEventsInputTypeDef = {"StackName": stack_id}
    while True:
        page = cfn.describe_stack_events(**kwargs)
        stop = False
        for event in page.get("StackEvents", []):
            if event["Timestamp"] < since:
                stop = True
                break
            events.append(event)
        token = page.get("NextToken")
        if stop or not token:
            return events
        kwargs["NextToken"] = token


def execute_and_follow(
    cfn: CloudFormationClient, change_set: dict[str, Any], review: Review, console: Console, waits: Waits
) -> ExecutionResult:
    stack_id = change_set["StackId"]
    stack_name = change_set["StackName"]
    operation = change_set.get("ChangeSetType") or (
        "CREATE" if _stack_status(cfn, stack_id) == "REVIEW_IN_PROGRESS" else "UPDATE"
    )
    token = "market-cfn-" + uuid.uuid4().hex
    # The marker: events already there are not ours; anything stamped before the execute
    # call (less the clock-skew tolerance) is not ours either.
    before = cfn.describe_stack_events(StackName=stack_id).get("StackEvents", [])
    seen = {e["EventId"] for e in before}
    since = waits.now() - timedelta(seconds=waits.clock_skew_seconds)
    cfn.execute_change_set(ChangeSetName=change_set["ChangeSetId"], ClientRequestToken=token)
    console.say("")
    console.say(f"Executing change set {change_set['ChangeSetName']} on stack {stack_name} ...")
    total = max(len(review.changes), 1)
    done: set[str] = set()
    ours: list[StackEventTypeDef] = []
    id_width = max([len(c.logical_id) for c in review.changes] + [len(stack_name)])
    type_width = max([len(c.resource_type) for c in review.changes] + [len("AWS::CloudFormation::Stack")])
    saw_progress = False

    def look() -> _Look:
        """Print this operation's new events, then read the stack."""
        nonlocal saw_progress
        fresh = []
        for event in _recent_events(cfn, stack_id, since=since):
            if event["EventId"] in seen:
                continue
            event_token = event.get("ClientRequestToken")
            if event_token and event_token != token:
                continue
            seen.add(event["EventId"])
            fresh.append(event)
        fresh.sort(key=lambda e: e["Timestamp"])
        stack_terminal_event = None
        for event in fresh:
            ours.append(event)
            logical, status = event.get("LogicalResourceId", ""), event.get("ResourceStatus", "")
            is_stack = event.get("ResourceType") == "AWS::CloudFormation::Stack" and logical == stack_name
            if not is_stack and status.endswith(RESOURCE_DONE):
                done.add(logical)
            if is_stack:
                saw_progress |= status.endswith("_IN_PROGRESS")
                if not status.endswith("_IN_PROGRESS"):
                    stack_terminal_event = event
            line = (
                f"{event['Timestamp'].astimezone(UTC):%H:%M:%S}  [{min(len(done), total):>{len(str(total))}}/{total}]  "
                f"{logical:<{id_width}}  {event.get('ResourceType', ''):<{type_width}}  {status}"
            )
            if event.get("ResourceStatusReason"):
                line += f"  {short(event['ResourceStatusReason'], 160)}"
            console.say(console.paint(line, "31") if status.endswith("_FAILED") else line)
        stack = describe_stack(cfn, stack_id)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        saw_progress |= status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS"
        # settled: out of *_IN_PROGRESS once this operation was seen under way (or its own stack event ended it)
        settled = not status.endswith("_IN_PROGRESS") and (saw_progress or stack_terminal_event is not None)
        return _Look(stack, status, settled)

    final = poll(
        look,
        lambda seen: seen.settled,
        waits,
        timeout_seconds=waits.stack_timeout_seconds,
        timed_out=lambda seen: DeployError(
            f"stack {stack_name} is still {seen.status} after {waits.stack_timeout_seconds:.0f} s; "
            "stopped following it (the operation goes on in CloudFormation)"
        ),
    )
    stack, final_status = final.stack, final.status
    reason = stack.get("StackStatusReason", "") if stack else ""
    if not done and review.changes:
        console.say(
            f"(no per-resource events were reported for the {len(review.changes)} resource changes; "
            "a local emulation such as moto reports only the stack's own events)"
        )
    succeeded = final_status == SUCCESS_STATUS.get(operation, "")
    failures = [
        e
        for e in ours
        if e.get("ResourceStatus", "").endswith("_FAILED")
        and not any(c in (e.get("ResourceStatusReason") or "") for c in CANCELLED_REASONS)
        and not (e.get("ResourceType") == "AWS::CloudFormation::Stack" and e.get("LogicalResourceId") == stack_name)
    ]
    failures.sort(key=lambda e: e["Timestamp"])
    # the review's model holds the events as the plain dicts they are at run time
    result = ExecutionResult(final_status, succeeded, cast("list[dict[str, Any]]", failures), {}, reason)
    if succeeded:
        result.template = deployed_template(cfn, stack_id)
        resolved = resolve_outputs_locally(cfn, stack_id, stack, template=result.template)
        result.outputs, result.outputs_note = resolved.values, resolved.note()
        result.resolved_locally = list(resolved.local)
    return result


def resolve_outputs_locally(
    cfn: CloudFormationClient, stack_id: str, stack: Mapping[str, Any] | None, *, template: dict[str, Any] | None = None
) -> ResolvedOutputs:
    """Every Output the deployed template declares: reported ones as reported, the rest resolved
    from the stack's physical resource IDs (outputs.py). An endpoint that reports Outputs for
    all of them costs one GetTemplate (none when `template` is given) and nothing else."""
    template = template if template is not None else deployed_template(cfn, stack_id)
    reported = stack_outputs(stack)
    if not (template.get("Outputs") or {}).keys() - reported.keys():
        return ResolvedOutputs(values=dict(reported))
    physical, types = stack_resources(cfn, stack_id)
    parameters = {
        key: str(spec["Default"])
        for key, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    parameters.update({p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters") or []})
    return resolve_outputs(template, reported, StackFacts(stack_id, parameters, physical, types))


def _stack_status(cfn: CloudFormationClient, stack_id: str) -> str:
    stack = describe_stack(cfn, stack_id)
    return stack["StackStatus"] if stack else ""
