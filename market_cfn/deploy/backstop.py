"""The backstop on the server: a stack policy that denies replacing or deleting the stateful resources,
and termination protection, so the data survives a change set executed around this tool.

AWS semantics relied on (CloudFormation User Guide, "Prevent updates to stack resources",
protect-stack-resources.html; API reference SetStackPolicy, ExecuteChangeSet,
UpdateTerminationProtection):

- Once a stack has a policy, every update action it does not Allow is denied; so the
  policy Allows `Update:*` on `*` and Denies `Update:Replace` and `Update:Delete` on
  `LogicalResourceId/<id>` for each stateful resource. `Principal` must be `*`.
- A stack policy applies to every update of the stack, including an
  `aws cloudformation execute-change-set` run by hand: the update fails on the denied
  resource and rolls back. It does not apply to DeleteStack; termination protection does.
- CreateChangeSet has no StackPolicyBody, and ExecuteChangeSet has no
  StackPolicyDuringUpdateBody (botocore's cloudformation service model; the
  ExecuteChangeSet reference: "If a stack policy is associated with the stack,
  CloudFormation enforces the policy during the update. You can't specify a temporary
  stack policy that overrides the current policy"). So the policy is set with
  SetStackPolicy right after a CREATE execution, and before an UPDATE execution; an
  execution with `--allow-replacement X` sets a policy that leaves exactly X open, and the
  full policy is set back as soon as the stack settles (also after a failure or Ctrl-C).
- Nested stacks: a stack policy covers one stack. The parent's policy protects the
  AWS::CloudFormation::Stack resource (replacing or removing it deletes everything in it);
  each nested stack gets its own policy for the resources in it.
- Termination protection is set on the root stack only (nested stacks inherit it).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from market_cfn.base.aws import error_message, not_implemented
from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

POLICY_BODY_LIMIT = 16_384  # SetStackPolicy StackPolicyBody, max length (service model)
RETAINING_POLICIES = ("Retain", "RetainExceptOnCreate", "Snapshot")
NESTED_STACK = "AWS::CloudFormation::Stack"


def stack_policy(protected: Iterable[str], *, open_ids: Iterable[str] = ()) -> dict[str, Any]:
    """The stack policy: everything may be updated in place; the protected logical ids may not be
    replaced or deleted, except those in `open_ids` (opened for one execution)."""
    opened = set(open_ids)
    deny = sorted(set(protected) - opened)
    statements: list[dict[str, Any]] = [{"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}]
    if deny:
        statements.append(
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": ["Update:Replace", "Update:Delete"],
                "Resource": [f"LogicalResourceId/{logical_id}" for logical_id in deny],
            }
        )
    return {"Statement": statements}


def policy_body(policy: dict[str, Any]) -> str:
    body = json.dumps(policy, sort_keys=True, separators=(",", ":"))
    if len(body) > POLICY_BODY_LIMIT:
        # fail closed: never fall back to a policy that protects less
        raise DeployError(
            f"the stack policy protecting {len(policy['Statement'][-1].get('Resource', []))} resources is "
            f"{len(body):,} bytes, over SetStackPolicy's {POLICY_BODY_LIMIT:,}; split the stack"
        )
    return body


def retains_data(template: dict[str, Any]) -> bool:
    """Whether any resource keeps its data past the stack (DeletionPolicy Retain/Snapshot...)."""
    return any(
        isinstance(r, dict) and r.get("DeletionPolicy") in RETAINING_POLICIES
        for r in (template.get("Resources") or {}).values()
    )


def nested_children(template: dict[str, Any]) -> list[str]:
    return sorted(
        logical_id
        for logical_id, r in (template.get("Resources") or {}).items()
        if isinstance(r, dict) and r.get("Type") == NESTED_STACK
    )


def apply_stack_policies(
    cfn: CloudFormationClient,
    stack_id: str,
    protected_by_stack: dict[str, list[str]],
    console: Console,
    *,
    open_ids: Iterable[str] = (),
    why: str,
) -> list[str]:
    """SetStackPolicy on the stack and on each nested stack.

    protected_by_stack: "" -> the root's protected logical ids; "Parent" / "Parent/Child" ->
    a nested stack's. open_ids: paths in the same form ("Table", "Parent/Table") to leave open.
    Returns one line per stack it set a policy on.
    """
    opened = set(open_ids)
    lines = []
    for path in sorted(protected_by_stack, key=lambda p: (p.count("/"), p)):
        target = stack_id if path == "" else _nested_stack_id(cfn, stack_id, path)
        if target is None:
            continue  # the nested stack does not exist (yet): nothing to protect there
        prefix = f"{path}/" if path else ""
        local_open = {o[len(prefix) :] for o in opened if o.startswith(prefix) and "/" not in o[len(prefix) :]}
        protected = protected_by_stack[path]
        policy = stack_policy(protected, open_ids=local_open)
        cfn.set_stack_policy(StackName=target, StackPolicyBody=policy_body(policy))
        denied = len(set(protected) - local_open)
        where = f"nested stack {path}" if path else f"stack {_stack_name(stack_id)}"
        line = f"Stack policy ({why}) on {where}: replace/delete denied for {denied} stateful resource(s)"
        if local_open & set(protected):
            line += f"; open for this execution: {', '.join(sorted(local_open & set(protected)))}"
        lines.append(line + ".")
    for line in lines:
        console.say(line)
    return lines


def _stack_name(stack_id: str) -> str:
    # arn:aws:cloudformation:region:account:stack/NAME/uuid
    parts = stack_id.split(":stack/", 1)
    return parts[1].split("/", 1)[0] if len(parts) == 2 else stack_id


def _nested_stack_id(cfn: CloudFormationClient, root_id: str, path: str) -> str | None:
    """The physical id (stack ARN) of the nested stack at `path` ("A" or "A/B")."""
    current = root_id
    for logical_id in path.split("/"):
        try:
            found = cfn.describe_stack_resources(StackName=current, LogicalResourceId=logical_id)["StackResources"]
        except ClientError as exc:
            if "does not exist" in error_message(exc):
                return None
            raise
        physical = found[0].get("PhysicalResourceId") if found else None
        if not physical:
            return None
        current = physical
    return current


def enable_termination_protection(
    cfn: CloudFormationClient, stack_name: str, console: Console, *, emulator: bool
) -> bool:
    """UpdateTerminationProtection(Enable). On an emulator that does not implement it (moto): say
    so and go on (documented degradation: nothing real is at stake there); on AWS an error fails."""
    try:
        cfn.update_termination_protection(StackName=stack_name, EnableTerminationProtection=True)
    except (ClientError, BotoCoreError, ResponseParserError) as exc:
        if emulator and not_implemented(exc):
            console.say("Termination protection: this endpoint does not implement it; not set.")
            return False
        raise DeployError(
            f"stack {stack_name} was deployed, but termination protection could not be turned on: {_one_line(exc)}"
        ) from exc
    console.say(f"Termination protection: on for stack {stack_name} (it retains data).")
    return True


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return error_message(exc)
    return " ".join(str(exc).split())[:160]
