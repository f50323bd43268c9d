"""Change sets: create, wait, describe every page, delete."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from market_cfn.deploy.common import MASK, NO_CHANGES_REASONS, Console, DeployError, Waits, _error_code, _error_message
from market_cfn.deploy.preflight import _has_resources, describe_stack

# --- Change sets ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeSetRequest:
    stack_name: str
    parameters: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)
    template_body: str | None = None
    template_url: str | None = None
    description: str = "market_cfn deploy"
    capabilities: tuple[str, ...] = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
    # The new template's parameters and their defaults (None: no default). On an UPDATE, a
    # parameter the stack already has and the command line does not set keeps its
    # previous value, as `aws cloudformation deploy` does: a redeploy without
    # `--parameter AlarmActionArn=...` must not silently switch the alarms' notifications off.
    template_parameters: dict[str, str | None] = field(default_factory=dict)


def change_set_name(now: datetime) -> str:
    # Must start with a letter and hold only letters, digits and hyphens (CreateChangeSet).
    return "deploy-" + now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def change_set_parameters(request: ChangeSetRequest, previous: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """The Parameters of CreateChangeSet: the given values, then the previous value of each
    parameter of the new template that the existing stack has and nobody set now.

    A previous value equal to the new template's default is left to the default; another
    is passed as itself when DescribeStacks shows it, so an unchanged redeploy sends
    exactly the same parameters as the deploy before it (emulators compare them to find
    "no changes"); a NoEcho value, which DescribeStacks masks, is kept with UsePreviousValue.
    """
    previous = previous or {}
    given = [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(request.parameters.items())]
    kept = []
    for key in sorted((previous.keys() & request.template_parameters.keys()) - request.parameters.keys()):
        value = previous[key]
        if value == request.template_parameters[key]:
            continue  # the default gives the same value; sending nothing keeps requests identical
        if value == MASK:
            kept.append({"ParameterKey": key, "UsePreviousValue": True})
        else:
            kept.append({"ParameterKey": key, "ParameterValue": value})
    return given + kept


def create_change_set(
    cfn: Any, request: ChangeSetRequest, *, change_set_type: str, name: str, previous: dict[str, str] | None = None
) -> str | None:
    """Create the change set and return its ARN; None when CloudFormation says nothing changed.

    `previous`: the parameters of the stack being updated, as DescribeStacks shows them.
    """
    kwargs: dict[str, Any] = {
        "StackName": request.stack_name,
        "ChangeSetName": name,
        "ChangeSetType": change_set_type,
        "Capabilities": list(request.capabilities),
        "Parameters": change_set_parameters(request, previous),
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(request.tags.items())],
        "Description": request.description[:1024],
        "ClientToken": uuid.uuid4().hex,
    }
    if request.template_url:
        kwargs["TemplateURL"] = request.template_url
    else:
        kwargs["TemplateBody"] = request.template_body
    try:
        return cfn.create_change_set(**kwargs)["Id"]
    except ClientError as exc:
        # Real CloudFormation creates a FAILED change set when nothing changed; some
        # emulations (moto) refuse the CreateChangeSet call itself with this message.
        if _error_code(exc) == "ValidationError" and any(r in _error_message(exc) for r in NO_CHANGES_REASONS):
            return None
        if _error_code(exc) in ("ValidationError", "InsufficientCapabilitiesException", "LimitExceededException"):
            raise DeployError(f"CloudFormation rejected the change set: {_error_message(exc)}") from exc
        raise


def wait_for_change_set(cfn: Any, arn: str, waits: Waits) -> dict[str, Any]:
    """Poll DescribeChangeSet until creation finishes (CREATE_COMPLETE or FAILED)."""
    deadline = waits.clock() + waits.change_set_timeout_seconds
    while True:
        response = cfn.describe_change_set(ChangeSetName=arn)
        if response["Status"] in ("CREATE_COMPLETE", "FAILED", "DELETE_COMPLETE", "DELETE_FAILED"):
            return response
        if waits.clock() >= deadline:
            raise DeployError(
                f"change set {arn} is still {response['Status']} after {waits.change_set_timeout_seconds:.0f} s; "
                "giving up (it was left in place: inspect it in the console, or delete it)"
            )
        waits.sleep(waits.poll_seconds)


def is_no_changes(change_set: dict[str, Any]) -> bool:
    reason = change_set.get("StatusReason") or ""
    return change_set["Status"] == "FAILED" and any(r in reason for r in NO_CHANGES_REASONS)


def describe_change_set_all(cfn: Any, arn: str) -> dict[str, Any]:
    """DescribeChangeSet with IncludePropertyValues, every page merged into one response."""
    kwargs = {"ChangeSetName": arn, "IncludePropertyValues": True}
    merged: dict[str, Any] | None = None
    while True:
        page = cfn.describe_change_set(**kwargs)
        if merged is None:
            merged = dict(page)
            merged["Changes"] = list(page.get("Changes", []))
        else:
            merged["Changes"].extend(page.get("Changes", []))
        token = page.get("NextToken")
        if not token:
            merged.pop("NextToken", None)
            return merged
        kwargs["NextToken"] = token


def delete_change_set(cfn: Any, change_set: dict[str, Any], console: Console) -> None:
    """Delete a change set, and the empty stack a never-executed CREATE change set leaves."""
    cfn.delete_change_set(ChangeSetName=change_set["ChangeSetId"])
    console.say(f"Deleted change set {change_set['ChangeSetName']}.")
    stack = describe_stack(cfn, change_set["StackId"])
    if stack and stack["StackStatus"] == "REVIEW_IN_PROGRESS" and not _has_resources(cfn, change_set["StackId"]):
        cfn.delete_stack(StackName=change_set["StackId"])
        console.say(f"Deleted the empty stack {change_set['StackName']} (REVIEW_IN_PROGRESS) it was created for.")
