"""Preflight: make the stack ready for a change set (wait, refuse a broken stack, clear a dead one)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from market_cfn.base.aws import error_code, error_message
from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError, Refused
from market_cfn.base.waits import Waits, poll
from market_cfn.deploy.states import UNRECOVERABLE_STATUSES

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.type_defs import ListStackResourcesInputTypeDef, StackTypeDef

# --- Stacks ---------------------------------------------------------------------------


def describe_stack(cfn: CloudFormationClient, stack_name: str) -> StackTypeDef | None:
    """The stack, or None when it does not exist."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if error_code(exc) == "ValidationError" and "does not exist" in error_message(exc):
            return None
        raise
    return stacks[0] if stacks else None


def stack_outputs(stack: Mapping[str, Any] | None) -> dict[str, str]:
    return {o["OutputKey"]: o.get("OutputValue", "") for o in (stack or {}).get("Outputs") or []}


def stack_resources(cfn: CloudFormationClient, stack: str) -> tuple[dict[str, str], dict[str, str]]:
    """(logical id -> physical id, logical id -> type) of every resource, ListStackResources paged
    (DescribeStackResources returns at most 100)."""
    physical: dict[str, str] = {}
    types: dict[str, str] = {}
    kwargs: ListStackResourcesInputTypeDef = {"StackName": stack}
    while True:
        page = cfn.list_stack_resources(**kwargs)
        for r in page.get("StackResourceSummaries", []):
            if r.get("ResourceStatus") == "DELETE_COMPLETE":
                continue
            types[r["LogicalResourceId"]] = r.get("ResourceType", "")
            if r.get("PhysicalResourceId"):
                physical[r["LogicalResourceId"]] = r["PhysicalResourceId"]
        if not page.get("NextToken"):
            return physical, types
        kwargs["NextToken"] = page["NextToken"]


def has_resources(cfn: CloudFormationClient, stack_name: str) -> bool:
    """Whether the stack still holds any resource (one not DELETE_COMPLETE), read from every page:
    DescribeStackResources stops at 100 (CloudFormation API Reference), so a stack whose first 100
    are deleted would look empty and be deleted as a dead one."""
    physical, types = stack_resources(cfn, stack_name)
    return bool(types or physical)


def wait_for_stack(cfn: CloudFormationClient, stack_name: str, waits: Waits, *, what: str) -> StackTypeDef | None:
    """Poll until the stack is in no *_IN_PROGRESS status (None if it is gone)."""
    stack = poll(
        lambda: describe_stack(cfn, stack_name),
        lambda seen: seen is None or not seen["StackStatus"].endswith("_IN_PROGRESS"),
        waits,
        timeout_seconds=waits.stack_timeout_seconds,
        timed_out=lambda seen: DeployError(
            f"stack {stack_name} is still {seen['StackStatus'] if seen else 'gone'} after "
            f"{waits.stack_timeout_seconds:.0f} s waiting for {what}; try again when it has finished"
        ),
    )
    return None if stack is None or stack["StackStatus"] == "DELETE_COMPLETE" else stack


def preflight(
    cfn: CloudFormationClient, stack_name: str, console: Console, waits: Waits, *, delete_failed_stack: bool
) -> StackTypeDef | None:
    """Make the stack ready for a change set; return it (None: a CREATE change set is needed).

    A stack whose creation failed is deleted only on a yes at the terminal or with
    --delete-failed-stack: `--yes` answers "execute this change set?", never "delete this
    stack?", a question it was not given to answer. A stack never created (REVIEW_IN_PROGRESS,
    no resources) holds nothing but an unexecuted change set and is replaced without asking."""
    stack = describe_stack(cfn, stack_name)
    if stack is None:
        return None
    status = stack["StackStatus"]
    if status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS":
        console.say(
            f"Stack {stack_name} is {status}: waiting for that operation to finish "
            f"(at most {waits.stack_timeout_seconds:.0f} s)."
        )
        stack = wait_for_stack(cfn, stack_name, waits, what="the running operation")
        if stack is None:
            return None
        status = stack["StackStatus"]
    if status in UNRECOVERABLE_STATUSES:
        raise DeployError(
            f"stack {stack_name} is {status}: fix it first (for UPDATE_ROLLBACK_FAILED: "
            "aws cloudformation continue-update-rollback), then deploy again"
        )
    dead = status == "ROLLBACK_COMPLETE" or (
        status in ("REVIEW_IN_PROGRESS", "CREATE_FAILED") and not has_resources(cfn, stack_name)
    )
    if not dead and status == "CREATE_FAILED":  # with resources left: not ours to delete blindly
        raise DeployError(
            f"stack {stack_name} is CREATE_FAILED and still has resources: inspect and delete it, then deploy again"
        )
    if not dead:
        return stack
    reason = {
        "ROLLBACK_COMPLETE": "its creation failed and was rolled back; it cannot be updated, only deleted",
        "REVIEW_IN_PROGRESS": "it was never created (a CREATE change set was not executed) and has no resources",
        "CREATE_FAILED": "its creation failed and it has no resources",
    }[status]
    console.say(f"Stack {stack_name} is {status}: {reason}.")
    question = f"Delete stack {stack_name} so the deploy can proceed?"
    if delete_failed_stack:
        console.say(f"{question} y (--delete-failed-stack)")
    elif status == "REVIEW_IN_PROGRESS":
        # Never created: deleting it deletes no resource and no history, only the change set
        # left unexecuted; the new change set is reviewed in its place.
        console.say(f"{question} y (it has no resources; its unexecuted change set is replaced by a new one)")
    elif not console.interactive:
        raise Refused(
            f"stack {stack_name} is {status}; not deleted, nothing deployed (--yes does not delete stacks: "
            "add --delete-failed-stack to delete it and deploy)"
        )
    elif not console.confirm(question, assume_yes=False):
        raise Refused(f"stack {stack_name} is {status}; not deleted, nothing deployed")
    cfn.delete_stack(StackName=stack["StackId"])
    _wait_deleted(cfn, stack["StackId"], waits)
    console.say(f"Deleted stack {stack_name}.")
    return None


def _wait_deleted(cfn: CloudFormationClient, stack_id: str, waits: Waits) -> None:
    stack = poll(
        lambda: describe_stack(cfn, stack_id),
        lambda seen: seen is None or seen["StackStatus"] in ("DELETE_COMPLETE", "DELETE_FAILED"),
        waits,
        timeout_seconds=waits.stack_timeout_seconds,
        timed_out=lambda seen: DeployError(
            f"stack {stack_id} is still {seen['StackStatus'] if seen else 'DELETE_COMPLETE'} after "
            f"{waits.stack_timeout_seconds:.0f} s"
        ),
    )
    if stack is not None and stack["StackStatus"] == "DELETE_FAILED":
        raise DeployError(f"deleting stack {stack_id} failed: {stack.get('StackStatusReason', '')}")
