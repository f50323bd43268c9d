"""Change-set deploys: package, preflight, create, review, guard, confirm, execute, follow.

Every function that talks to AWS takes its boto3 client(s) as arguments, so tests hand
them moto or botocore Stubber clients. Every wait takes a `Waits` (sleep function,
monotonic clock, wall clock, timeouts), so tests run without sleeping.

Response shapes follow botocore's cloudformation service model (the ground truth):
DescribeChangeSet -> Changes[].ResourceChange {Action, LogicalResourceId, ResourceType,
Replacement (True|False|Conditional), PolicyAction, Details[].Target {Attribute, Name,
Path, RequiresRecreation (Never|Conditionally|Always), BeforeValue, AfterValue,
AttributeChangeType}, BeforeContext, AfterContext}, paged with NextToken.
DescribeStackEvents pages newest-first.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, TextIO

from botocore.exceptions import ClientError

# --- Outcomes -------------------------------------------------------------------------


class DeployError(Exception):
    """The deployment failed (exit code 1)."""


class UsageError(Exception):
    """Bad arguments or input (exit code 2)."""


class Refused(Exception):
    """Declined at the prompt, or blocked by the guard (exit code 3)."""


# Resource types whose removal or replacement destroys data. The guard refuses to execute
# a change set that removes or replaces one of these unless --allow-replacement names it.
# Beyond the pipeline's own (bucket, table, queues, log groups), the EventBridge archive
# holds replayable events, and the rest are the usual data stores a template may grow.
STATEFUL_TYPES = frozenset(
    {
        "AWS::S3::Bucket",
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::SQS::Queue",
        "AWS::Logs::LogGroup",
        "AWS::Events::Archive",
        "AWS::Kinesis::Stream",
        "AWS::KMS::Key",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBCluster",
        "AWS::EFS::FileSystem",
    }
)

# Resources whose properties are IAM policies (identity- or resource-based).
POLICY_PROPERTIES = {
    "AWS::IAM::Role": ("AssumeRolePolicyDocument", "Policies", "ManagedPolicyArns", "PermissionsBoundary"),
    "AWS::IAM::User": ("Policies", "ManagedPolicyArns", "PermissionsBoundary"),
    "AWS::IAM::Group": ("Policies", "ManagedPolicyArns"),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::RolePolicy": ("PolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::Lambda::Permission": ("Action", "Principal", "SourceArn", "SourceAccount", "FunctionName", "PrincipalOrgID"),
}

NO_CHANGES_REASONS = ("didn't contain changes", "No updates are to be performed")
CANCELLED_REASONS = ("Resource creation cancelled", "Resource update cancelled")
SUCCESS_STATUS = {"CREATE": "CREATE_COMPLETE", "UPDATE": "UPDATE_COMPLETE", "IMPORT": "IMPORT_COMPLETE"}
UNRECOVERABLE_STATUSES = {"UPDATE_ROLLBACK_FAILED", "ROLLBACK_FAILED", "DELETE_FAILED", "IMPORT_ROLLBACK_FAILED"}
TEMPLATE_BODY_LIMIT = 51_200  # bytes; larger templates must be passed as TemplateURL
MASK = "****"


# --- Time and terminal ----------------------------------------------------------------


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Waits:
    """Everything a poll loop needs, injectable so tests never sleep."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = _utcnow
    poll_seconds: float = 5.0
    change_set_timeout_seconds: float = 600.0
    stack_timeout_seconds: float = 3600.0
    # Stack events are stamped by AWS; the marker is taken from this machine's clock.
    clock_skew_seconds: float = 120.0


@dataclass
class Console:
    """Where the human-readable output goes and how to ask a yes/no question."""

    out: TextIO
    interactive: bool
    ask: Callable[[str], str] = input
    color: bool = False

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def confirm(self, question: str, *, assume_yes: bool) -> bool:
        if assume_yes:
            self.say(f"{question} y (--yes)")
            return True
        if not self.interactive:
            raise Refused(f"{question} needs an answer, but there is no terminal to ask on; pass --yes to confirm")
        try:
            answer = self.ask(f"{question} [y/N] ")
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")


def table(rows: list[list[str]], *, indent: str = "  ") -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _short(value: Any, limit: int = 120) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


def _error_message(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Message", str(exc))


# --- Stacks ---------------------------------------------------------------------------


def describe_stack(cfn: Any, stack_name: str) -> dict | None:
    """The stack, or None when it does not exist."""
    try:
        stacks = cfn.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if _error_code(exc) == "ValidationError" and "does not exist" in _error_message(exc):
            return None
        raise
    return stacks[0] if stacks else None


def stack_outputs(stack: dict | None) -> dict[str, str]:
    return {o["OutputKey"]: o.get("OutputValue", "") for o in (stack or {}).get("Outputs") or []}


def _has_resources(cfn: Any, stack_name: str) -> bool:
    resources = cfn.describe_stack_resources(StackName=stack_name).get("StackResources", [])
    return any(r.get("ResourceStatus") != "DELETE_COMPLETE" for r in resources)


def wait_for_stack(cfn: Any, stack_name: str, waits: Waits, *, what: str) -> dict | None:
    """Poll until the stack is in no *_IN_PROGRESS status (None if it is gone)."""
    deadline = waits.clock() + waits.stack_timeout_seconds
    while True:
        stack = describe_stack(cfn, stack_name)
        if stack is None or stack["StackStatus"] == "DELETE_COMPLETE":
            return None
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        if waits.clock() >= deadline:
            raise DeployError(
                f"stack {stack_name} is still {stack['StackStatus']} after "
                f"{waits.stack_timeout_seconds:.0f} s waiting for {what}; try again when it has finished"
            )
        waits.sleep(waits.poll_seconds)


def preflight(cfn: Any, stack_name: str, console: Console, waits: Waits, *, assume_yes: bool) -> dict | None:
    """Make the stack ready for a change set; return it (None: a CREATE change set is needed)."""
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
        status in ("REVIEW_IN_PROGRESS", "CREATE_FAILED") and not _has_resources(cfn, stack_name)
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
    if not console.confirm(f"Delete stack {stack_name} so the deploy can proceed?", assume_yes=assume_yes):
        raise Refused(f"stack {stack_name} is {status}; not deleted, nothing deployed")
    cfn.delete_stack(StackName=stack["StackId"])
    _wait_deleted(cfn, stack["StackId"], waits)
    console.say(f"Deleted stack {stack_name}.")
    return None


def _wait_deleted(cfn: Any, stack_id: str, waits: Waits) -> None:
    deadline = waits.clock() + waits.stack_timeout_seconds
    while True:
        stack = describe_stack(cfn, stack_id)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        if status == "DELETE_COMPLETE":
            return
        if status == "DELETE_FAILED":
            raise DeployError(f"deleting stack {stack_id} failed: {stack.get('StackStatusReason', '')}")
        if waits.clock() >= deadline:
            raise DeployError(f"stack {stack_id} is still {status} after {waits.stack_timeout_seconds:.0f} s")
        waits.sleep(waits.poll_seconds)


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


def wait_for_change_set(cfn: Any, arn: str, waits: Waits) -> dict:
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


def is_no_changes(change_set: dict) -> bool:
    reason = change_set.get("StatusReason") or ""
    return change_set["Status"] == "FAILED" and any(r in reason for r in NO_CHANGES_REASONS)


def describe_change_set_all(cfn: Any, arn: str) -> dict:
    """DescribeChangeSet with IncludePropertyValues, every page merged into one response."""
    kwargs = {"ChangeSetName": arn, "IncludePropertyValues": True}
    merged: dict | None = None
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


def delete_change_set(cfn: Any, change_set: dict, console: Console) -> None:
    """Delete a change set, and the empty stack a never-executed CREATE change set leaves."""
    cfn.delete_change_set(ChangeSetName=change_set["ChangeSetId"])
    console.say(f"Deleted change set {change_set['ChangeSetName']}.")
    stack = describe_stack(cfn, change_set["StackId"])
    if stack and stack["StackStatus"] == "REVIEW_IN_PROGRESS" and not _has_resources(cfn, change_set["StackId"]):
        cfn.delete_stack(StackName=change_set["StackId"])
        console.say(f"Deleted the empty stack {change_set['StackName']} (REVIEW_IN_PROGRESS) it was created for.")


# --- Review ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PropertyChange:
    attribute: str  # Properties, Tags, DeletionPolicy, ...
    name: str  # property name, or its path when CloudFormation gives one
    requires_recreation: str  # Never | Conditionally | Always | ""
    change_type: str  # Add | Remove | Modify | ""
    before: str | None
    after: str | None
    cause: str  # e.g. "ParameterReference EnvironmentSuffix"


@dataclass(frozen=True)
class ResourceChangeView:
    action: str
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional | "" (not applicable)
    policy_action: str
    physical_id: str
    properties: tuple[PropertyChange, ...]
    before_context: dict | None
    after_context: dict | None


@dataclass(frozen=True)
class IamFinding:
    logical_id: str
    resource_type: str
    where: str  # which policy inside the resource
    broadening: bool
    text: str


@dataclass(frozen=True)
class GuardViolation:
    logical_id: str
    resource_type: str
    what: str  # "removed" / "replaced (Replacement: True)"
    causes: tuple[str, ...]


@dataclass
class Review:
    change_set: dict
    changes: list[ResourceChangeView]
    parameters: list[tuple[str, str]]
    iam: list[IamFinding]
    violations: list[GuardViolation]
    allowed: list[GuardViolation]

    @property
    def blocked(self) -> bool:
        return bool(self.violations)

    def to_json(self) -> dict:
        return {
            "ChangeSetId": self.change_set.get("ChangeSetId"),
            "ChangeSetName": self.change_set.get("ChangeSetName"),
            "StackName": self.change_set.get("StackName"),
            "Status": self.change_set.get("Status"),
            "ExecutionStatus": self.change_set.get("ExecutionStatus"),
            "Parameters": dict(self.parameters),
            "Changes": [
                {
                    "Action": c.action,
                    "LogicalResourceId": c.logical_id,
                    "ResourceType": c.resource_type,
                    "Replacement": c.replacement,
                    "PolicyAction": c.policy_action,
                    "Properties": [p.__dict__ for p in c.properties],
                }
                for c in self.changes
            ],
            "Iam": [f.__dict__ for f in self.iam],
            "Blocked": [v.__dict__ | {"causes": list(v.causes)} for v in self.violations],
            "Allowed": [v.__dict__ | {"causes": list(v.causes)} for v in self.allowed],
        }


def _context(raw: Any) -> dict | None:
    if not raw:
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _properties_of(context: dict | None) -> dict:
    if not context:
        return {}
    props = context.get("Properties", context)
    return props if isinstance(props, dict) else {}


def build_review(change_set: dict, *, no_echo: Iterable[str] = (), allow_replacement: Iterable[str] = ()) -> Review:
    no_echo = set(no_echo)
    allow = set(allow_replacement)
    views = []
    for change in change_set.get("Changes", []):
        rc = change.get("ResourceChange")
        if change.get("Type") != "Resource" or not rc:
            continue
        props: dict[tuple[str, str], PropertyChange] = {}
        for detail in rc.get("Details", []):
            target = detail.get("Target", {})
            attribute = target.get("Attribute", "")
            name = target.get("Path") or target.get("Name") or attribute
            if target.get("Path", "").startswith("/Properties/"):
                name = target["Path"][len("/Properties/") :]
            cause_entity = detail.get("CausingEntity", "")
            cause = " ".join(x for x in (detail.get("ChangeSource", ""), cause_entity) if x)
            masked = detail.get("ChangeSource") == "ParameterReference" and cause_entity in no_echo
            before = MASK if masked and "BeforeValue" in target else target.get("BeforeValue")
            after = MASK if masked and "AfterValue" in target else target.get("AfterValue")
            key = (attribute, name)
            old = props.get(key)
            recreation = target.get("RequiresRecreation", "")
            if old is not None:  # several details (change sources) for one property: merge
                rank = {"": 0, "Never": 1, "Conditionally": 2, "Always": 3}
                if rank.get(old.requires_recreation, 0) > rank.get(recreation, 0):
                    recreation = old.requires_recreation
                cause = old.cause if cause in old.cause else f"{old.cause}; {cause}"
                before = old.before if before is None else before
                after = old.after if after is None else after
            props[key] = PropertyChange(
                attribute, name, recreation, target.get("AttributeChangeType", ""), before, after, cause
            )
        views.append(
            ResourceChangeView(
                action=rc.get("Action", ""),
                logical_id=rc.get("LogicalResourceId", ""),
                resource_type=rc.get("ResourceType", ""),
                replacement=rc.get("Replacement", "") if rc.get("Action") == "Modify" else "",
                policy_action=rc.get("PolicyAction", ""),
                physical_id=rc.get("PhysicalResourceId", ""),
                properties=tuple(props.values()),
                before_context=_context(rc.get("BeforeContext")),
                after_context=_context(rc.get("AfterContext")),
            )
        )
    parameters = [
        (
            p["ParameterKey"],
            MASK if p["ParameterKey"] in no_echo else p.get("ParameterValue", p.get("ResolvedValue", "")),
        )
        for p in change_set.get("Parameters") or []
    ]
    iam = [finding for view in views for finding in iam_findings(view)]
    violations, allowed = [], []
    for view in views:
        violation = guard_violation(view)
        if violation:
            (allowed if view.logical_id in allow else violations).append(violation)
    return Review(change_set, views, parameters, iam, violations, allowed)


def guard_violation(view: ResourceChangeView) -> GuardViolation | None:
    if view.resource_type not in STATEFUL_TYPES:
        return None
    if view.action == "Remove":
        what = "removed" + (f" (PolicyAction {view.policy_action})" if view.policy_action else "")
        return GuardViolation(view.logical_id, view.resource_type, what, ("the resource is no longer in the template",))
    if view.action == "Modify" and view.replacement in ("True", "Conditional"):
        causes = tuple(
            f"{p.name} ({'always' if p.requires_recreation == 'Always' else 'conditionally'} requires replacement"
            + (f"; via {p.cause}" if p.cause else "")
            + ")"
            for p in view.properties
            if p.requires_recreation in ("Always", "Conditionally")
        ) or ("CloudFormation names no property that requires recreation",)
        return GuardViolation(
            view.logical_id, view.resource_type, f"replaced (Replacement: {view.replacement})", causes
        )
    return None


# --- IAM ------------------------------------------------------------------------------


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _canon(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _document(value: Any) -> dict:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


Grant = tuple[str, str, str, str, str]  # effect, principal, condition, action, resource


def _grants(document: Any) -> set[Grant]:
    grants: set[Grant] = set()
    for statement in _as_list(_document(document).get("Statement")):
        if not isinstance(statement, dict):
            continue
        effect = statement.get("Effect", "Allow")
        principals = []
        for key in ("Principal", "NotPrincipal"):
            if key in statement:
                raw = statement[key]
                if isinstance(raw, dict):
                    principals += [f"{key}:{kind}:{_canon(p)}" for kind, ps in raw.items() for p in _as_list(ps)]
                else:
                    principals.append(f"{key}:{_canon(raw)}")
        condition = _canon(statement.get("Condition", {}))
        actions = [_canon(a) for a in _as_list(statement.get("Action"))] + [
            "not:" + _canon(a) for a in _as_list(statement.get("NotAction"))
        ]
        resources = [_canon(r) for r in _as_list(statement.get("Resource"))] + [
            "not:" + _canon(r) for r in _as_list(statement.get("NotResource"))
        ]
        for principal in principals or ["-"]:
            for action in actions or ["-"]:
                for resource in resources or ["-"]:
                    grants.add((effect, principal, condition, action, resource))
    return grants


def _covered(grant: Grant, others: set[Grant]) -> bool:
    effect, principal, condition, action, resource = grant
    action = action.lower()  # IAM action names are case-insensitive; resources are not
    for o_effect, o_principal, o_condition, o_action, o_resource in others:
        # an unconditional statement covers the same grant under any condition
        if (o_effect, o_principal) != (effect, principal) or o_condition not in (condition, "{}"):
            continue
        o_action = o_action.lower()
        if (action == o_action or (not action.startswith("not:") and fnmatch.fnmatchcase(action, o_action))) and (
            resource == o_resource or (not resource.startswith("not:") and fnmatch.fnmatchcase(resource, o_resource))
        ):
            return True
    return False


def _describe_grants(grants: Iterable[Grant]) -> list[str]:
    """Group grants back into readable statements: Effect actions on resources [principal] [if]."""
    groups: dict[tuple[str, str, str, str], set[str]] = {}
    for effect, principal, condition, action, resource in grants:
        groups.setdefault((effect, principal, condition, resource), set()).add(action)
    by_actions: dict[tuple[str, str, str, tuple[str, ...]], list[str]] = {}
    for (effect, principal, condition, resource), actions in groups.items():
        by_actions.setdefault((effect, principal, condition, tuple(sorted(actions))), []).append(resource)
    lines = []
    for (effect, principal, condition, actions), resources in sorted(by_actions.items()):
        text = f"{effect} {', '.join(actions)} on {', '.join(sorted(resources))}"
        if principal != "-":
            text += f" to {principal.split(':', 1)[1]}"
        if condition != "{}":
            text += f" if {condition}"
        lines.append(text)
    return lines


def _policy_documents(resource_type: str, props: dict) -> dict[str, Any]:
    """Named policy documents inside a resource's properties."""
    docs: dict[str, Any] = {}
    if "AssumeRolePolicyDocument" in props:
        docs["trust policy"] = props["AssumeRolePolicyDocument"]
    for policy in _as_list(props.get("Policies")):
        if isinstance(policy, dict):
            docs[f"inline policy {policy.get('PolicyName', '?')}"] = policy.get("PolicyDocument")
    if "PolicyDocument" in props:
        docs["policy"] = props["PolicyDocument"]
    return docs


def _props_from_details(view: ResourceChangeView, side: str) -> dict:
    props = {}
    for p in view.properties:
        if p.attribute == "Properties" and "/" not in p.name:
            value = p.before if side == "before" else p.after
            if value is not None:
                try:
                    props[p.name] = json.loads(value)
                except ValueError:
                    props[p.name] = value
    return props


def iam_findings(view: ResourceChangeView) -> list[IamFinding]:
    watched = POLICY_PROPERTIES.get(view.resource_type)
    if not watched or view.action not in ("Add", "Modify", "Remove", "Import"):
        return []
    if (
        view.action == "Modify"
        and view.properties
        and not any(p.attribute == "Properties" and p.name.split("/")[0] in watched for p in view.properties)
    ):
        return []  # e.g. only tags changed
    before = _properties_of(view.before_context) if view.action != "Add" else {}
    after = _properties_of(view.after_context) if view.action != "Remove" else {}
    if view.action == "Modify" and not before and not after:
        before, after = _props_from_details(view, "before"), _props_from_details(view, "after")
    findings = []

    def add(where: str, broadening: bool, text: str) -> None:
        findings.append(IamFinding(view.logical_id, view.resource_type, where, broadening, text))

    if view.resource_type == "AWS::Lambda::Permission":
        if view.action in ("Add", "Modify", "Import"):
            if after:
                source = after.get("SourceArn") or after.get("SourceAccount") or "any source"
                add(
                    "resource policy",
                    True,
                    f"+ {after.get('Principal', '?')} may {after.get('Action', '?')} "
                    f"{_short(after.get('FunctionName', '?'), 80)} (from {_short(source, 80)})",
                )
            else:
                add("resource policy", True, "+ new invoke permission; CloudFormation reported no values: review it")
        else:
            add("resource policy", False, "- invoke permission removed")
        return findings

    if not before and not after:
        if view.action == "Remove":
            add("policy", False, f"- {view.resource_type} removed")
        else:
            verb = {"Add": "new", "Import": "imported"}.get(view.action, "changed")
            add("policy", True, f"+ {verb} {view.resource_type}; CloudFormation reported no policy values: review it")
        return findings
    before_docs, after_docs = (
        _policy_documents(view.resource_type, before),
        _policy_documents(view.resource_type, after),
    )
    for where in sorted(before_docs.keys() | after_docs.keys()):
        old, new = _grants(before_docs.get(where)), _grants(after_docs.get(where))
        widened = {g for g in new if g[0] == "Allow" and not _covered(g, old)}
        unblocked = {g for g in old if g[0] == "Deny" and not _covered(g, new)}
        narrowed = {g for g in old if g[0] == "Allow" and not _covered(g, new)}
        added_denies = {g for g in new if g[0] == "Deny" and not _covered(g, old)}
        for line in _describe_grants(widened):
            add(where, True, "+ " + line)
        for line in _describe_grants(unblocked):
            add(where, True, "- " + line + "  (Deny removed)")
        for line in _describe_grants(narrowed | added_denies):
            add(where, False, ("+ " if line.startswith("Deny") else "- ") + line)
    old_arns = {_canon(a) for a in _as_list(before.get("ManagedPolicyArns"))}
    new_arns = {_canon(a) for a in _as_list(after.get("ManagedPolicyArns"))}
    for arn in sorted(new_arns - old_arns):
        add("managed policies", True, f"+ attach {arn}")
    for arn in sorted(old_arns - new_arns):
        add("managed policies", False, f"- detach {arn}")
    if before.get("PermissionsBoundary") and not after.get("PermissionsBoundary") and view.action != "Remove":
        add("permissions boundary", True, f"- permissions boundary {_canon(before['PermissionsBoundary'])} removed")
    return findings


# --- Rendering the review -------------------------------------------------------------


def render_review(review: Review, console: Console) -> None:
    cs = review.change_set
    say = console.say
    say(
        f"Change set {cs.get('ChangeSetName')} for stack {cs.get('StackName')} "
        f"({cs.get('Status')}, {cs.get('ExecutionStatus')})"
    )
    if review.parameters:
        say("")
        say("Parameters:")
        for line in table([[k, v if v != "" else '""'] for k, v in review.parameters]):
            say(line)
    say("")
    counts: dict[str, int] = {}
    for c in review.changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    summary = ", ".join(f"{n} {a.lower()}" for a, n in sorted(counts.items()))
    say(f"Resource changes ({len(review.changes)}: {summary or 'none'}):")
    rows = [["Action", "Logical ID", "Type", "Replacement"]]
    colors = {"Add": "32", "Modify": "33", "Remove": "31"}
    for c in review.changes:
        rows.append([c.action, c.logical_id, c.resource_type, c.replacement or "-"])
    for i, line in enumerate(table(rows)):
        change = review.changes[i - 1] if i else None
        if (
            change
            and change.resource_type in STATEFUL_TYPES
            and (change.action == "Remove" or change.replacement in ("True", "Conditional"))
        ):
            line = console.paint(line, "1;31")
        elif change:
            line = console.paint(line, colors.get(change.action, "0"))
        say(line)
        if change and change.action == "Modify" and change.properties:
            prop_rows = []
            for p in change.properties:
                label = (
                    p.name
                    if p.attribute == "Properties"
                    else f"{p.attribute}:{p.name}"
                    if p.name != p.attribute
                    else p.attribute
                )
                values = (
                    f"{_short(p.before, 60)} → {_short(p.after, 60)}"
                    if (p.before is not None or p.after is not None)
                    else "(values not reported)"
                )
                forces = {"Always": "replaces", "Conditionally": "may replace", "Never": "in place"}.get(
                    p.requires_recreation, ""
                )
                prop_rows.append([f"· {label}", forces, values])
            for prop_line in table(prop_rows, indent="        "):
                say(prop_line)
    say("")
    if review.iam:
        broad = sum(1 for f in review.iam if f.broadening)
        say(f"IAM changes ({len(review.iam)}, {broad} security-broadening):")
        rows = [["!" if f.broadening else " ", f.logical_id, f.where, f.text] for f in review.iam]
        for line, finding in zip(table(rows), review.iam):
            say(console.paint(line, "1;31") if finding.broadening else line)
        say("")
    else:
        say("IAM changes: none")
        say("")
    for v in review.allowed:
        say(f"Guard: {v.logical_id} ({v.resource_type}) will be {v.what}: allowed by --allow-replacement.")
    if review.violations:
        say(console.paint("Guard: this change set would destroy data and will not be executed:", "1;31"))
        for v in review.violations:
            say(f"  {v.logical_id} ({v.resource_type}) would be {v.what}:")
            for cause in v.causes:
                say(f"      {cause}")
        say(
            "  To go ahead anyway, name each one: "
            + " ".join(f"--allow-replacement {v.logical_id}" for v in review.violations)
        )
    else:
        say(
            "Guard: no stateful resource is removed or replaced"
            + (" (other than those allowed)." if review.allowed else ".")
        )


# --- Execute and follow ---------------------------------------------------------------

RESOURCE_DONE = ("_COMPLETE", "_FAILED", "DELETE_SKIPPED")


@dataclass
class ExecutionResult:
    status: str
    succeeded: bool
    failures: list[dict]
    outputs: dict[str, str]
    status_reason: str = ""
    outputs_note: str = ""


def _recent_events(cfn: Any, stack_id: str, *, since: datetime) -> list[dict]:
    """New events, newest-first pages read only as far back as the marker."""
    events = []
    kwargs = {"StackName": stack_id}
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


def execute_and_follow(cfn: Any, change_set: dict, review: Review, console: Console, waits: Waits) -> ExecutionResult:
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
    ours: list[dict] = []
    id_width = max([len(c.logical_id) for c in review.changes] + [len(stack_name)])
    type_width = max([len(c.resource_type) for c in review.changes] + [len("AWS::CloudFormation::Stack")])
    deadline = waits.clock() + waits.stack_timeout_seconds
    saw_progress = False
    final_status = ""
    reason = ""
    while True:
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
                f"{event['Timestamp'].astimezone(timezone.utc):%H:%M:%S}  [{min(len(done), total):>{len(str(total))}}/{total}]  "
                f"{logical:<{id_width}}  {event.get('ResourceType', ''):<{type_width}}  {status}"
            )
            if event.get("ResourceStatusReason"):
                line += f"  {_short(event['ResourceStatusReason'], 160)}"
            console.say(console.paint(line, "31") if status.endswith("_FAILED") else line)
        stack = describe_stack(cfn, stack_id)
        status = stack["StackStatus"] if stack else "DELETE_COMPLETE"
        saw_progress |= status.endswith("_IN_PROGRESS") and status != "REVIEW_IN_PROGRESS"
        terminal = not status.endswith("_IN_PROGRESS")
        if terminal and (saw_progress or stack_terminal_event is not None):
            final_status = status
            reason = (stack or {}).get("StackStatusReason", "")
            break
        if waits.clock() >= deadline:
            raise DeployError(
                f"stack {stack_name} is still {status} after {waits.stack_timeout_seconds:.0f} s; "
                "stopped following it (the operation goes on in CloudFormation)"
            )
        waits.sleep(waits.poll_seconds)
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
    outputs = stack_outputs(stack) if succeeded else {}
    result = ExecutionResult(final_status, succeeded, failures, outputs, reason)
    if succeeded and not outputs:
        result.outputs, result.outputs_note = resolve_outputs_locally(cfn, stack_id, stack)
    return result


def resolve_outputs_locally(cfn: Any, stack_id: str, stack: dict | None) -> tuple[dict[str, str], str]:
    """Outputs for a stack that reports none although its template declares some.

    moto 5 never fills in Outputs for stacks created or updated through change sets.
    Outputs that are a plain Ref of a resource or parameter are resolved here from
    DescribeStackResources / the stack's Parameters; the rest are reported as missing.
    """
    body = cfn.get_template(StackName=stack_id).get("TemplateBody")
    template = json.loads(body) if isinstance(body, str) else body or {}
    declared = template.get("Outputs") or {}
    if not declared:
        return {}, ""
    physical = {
        r.get("LogicalResourceId", ""): r.get("PhysicalResourceId", "")
        for r in cfn.describe_stack_resources(StackName=stack_id).get("StackResources", [])
    }
    params = {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters") or []}
    resolved = {}
    for key, spec in declared.items():
        value = spec.get("Value")
        if isinstance(value, dict) and list(value) == ["Ref"]:
            name = value["Ref"]
            if physical.get(name):
                resolved[key] = physical[name]
            elif name in params:
                resolved[key] = params[name]
    note = f"none reported by the endpoint; {len(resolved)} of {len(declared)} resolved from the stack's resources"
    return resolved, note


def _stack_status(cfn: Any, stack_id: str) -> str:
    stack = describe_stack(cfn, stack_id)
    return stack["StackStatus"] if stack else ""


def render_result(result: ExecutionResult, stack_name: str, console: Console) -> None:
    console.say("")
    if result.succeeded:
        console.say(console.paint(f"Stack {stack_name}: {result.status}", "32"))
        if result.outputs or result.outputs_note:
            console.say("")
            console.say("Outputs:" + (f" ({result.outputs_note})" if result.outputs_note else ""))
            for line in table([[k, v] for k, v in sorted(result.outputs.items())]):
                console.say(line)
        return
    console.say(console.paint(f"Stack {stack_name}: {result.status} (the deployment failed)", "1;31"))
    if result.failures:
        console.say("Failed resources (root cause first):")
        rows = [
            [
                e.get("LogicalResourceId", ""),
                e.get("ResourceType", ""),
                e.get("ResourceStatus", ""),
                e.get("ResourceStatusReason") or "",
            ]
            for e in result.failures
        ]
        for line in table(rows):
            console.say(line)
    elif result.status_reason:
        console.say(f"Reason: {result.status_reason}")


# --- Artifacts ------------------------------------------------------------------------


def ensure_object(s3: Any, bucket: str, key: str, body: bytes, *, content_type: str) -> bool:
    """Upload `body` unless the object exists (the key names the content). True if uploaded."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except ClientError as exc:
        if _error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        ChecksumSHA256=_b64_sha256(body),
    )
    return True


def _b64_sha256(body: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def template_location(s3: Any, bucket: str, region: str, body: str) -> tuple[str | None, str | None, bool]:
    """(TemplateBody, TemplateURL, uploaded): bodies over 51,200 bytes go to the bucket."""
    data = body.encode("utf-8")
    if len(data) <= TEMPLATE_BODY_LIMIT:
        return body, None, False
    key = f"templates/{hashlib.sha256(data).hexdigest()}.json"
    uploaded = ensure_object(s3, bucket, key, data, content_type="application/json")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return None, f"https://{bucket}.s3.{region}.{suffix}/{key}", uploaded


# --- Whole deploys --------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened, for the exit code and for --json."""

    result: str  # deployed | no-changes | created-change-set | declined | blocked | failed
    stack_name: str
    change_set_id: str | None = None
    review: Review | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    failures: list[dict] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    message: str = ""

    def to_json(self) -> dict:
        return {
            "Result": self.result,
            "StackName": self.stack_name,
            "ChangeSetId": self.change_set_id,
            "Outputs": self.outputs,
            "Uploaded": self.uploads,
            "Failures": [
                {k: e.get(k) for k in ("LogicalResourceId", "ResourceType", "ResourceStatus", "ResourceStatusReason")}
                for e in self.failures
            ],
            "Review": self.review.to_json() if self.review else None,
            "Message": self.message,
        }


def deploy_stack(
    cfn: Any,
    request: ChangeSetRequest,
    console: Console,
    waits: Waits,
    *,
    assume_yes: bool = False,
    execute: bool = True,
    allow_replacement: Iterable[str] = (),
    no_echo: Iterable[str] = (),
) -> Outcome:
    """Preflight, create a change set, review it, guard, confirm, execute and follow."""
    stack = preflight(cfn, request.stack_name, console, waits, assume_yes=assume_yes)
    change_set_type = "UPDATE" if stack else "CREATE"
    name = change_set_name(waits.now())
    console.say(f"Creating {change_set_type} change set {name} for stack {request.stack_name} ...")
    previous = {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters") or []}
    arn = create_change_set(cfn, request, change_set_type=change_set_type, name=name, previous=previous)
    if arn is None:
        console.say(f"No changes: stack {request.stack_name} is up to date.")
        return Outcome("no-changes", request.stack_name, outputs=stack_outputs(stack))
    status = wait_for_change_set(cfn, arn, waits)
    if is_no_changes(status):
        cfn.delete_change_set(ChangeSetName=arn)
        console.say(f"No changes: stack {request.stack_name} is up to date (empty change set deleted).")
        return Outcome("no-changes", request.stack_name, outputs=stack_outputs(stack))
    if status["Status"] != "CREATE_COMPLETE":
        raise DeployError(f"change set {name} is {status['Status']}: {status.get('StatusReason', 'no reason given')}")
    change_set = describe_change_set_all(cfn, arn)
    change_set.setdefault("ChangeSetType", change_set_type)
    return review_and_execute(
        cfn,
        change_set,
        console,
        waits,
        assume_yes=assume_yes,
        execute=execute,
        allow_replacement=allow_replacement,
        no_echo=no_echo,
    )


def review_and_execute(
    cfn: Any,
    change_set: dict,
    console: Console,
    waits: Waits,
    *,
    assume_yes: bool,
    execute: bool,
    allow_replacement: Iterable[str],
    no_echo: Iterable[str],
) -> Outcome:
    allow = list(allow_replacement)
    review = build_review(change_set, no_echo=no_echo, allow_replacement=allow)
    stack_name = change_set["StackName"]
    arn = change_set["ChangeSetId"]
    render_review(review, console)
    guarded = {v.logical_id for v in review.violations + review.allowed}
    for name in allow:
        if name not in guarded:
            console.say(f"Note: --allow-replacement {name} matches no removed or replaced stateful resource here.")
    if not execute:
        console.say("")
        console.say(f"Change set left for review (not executed): {arn}")
        console.say(f"Execute it later with: bin/deploy --execute {arn}")
        outcome = Outcome("created-change-set", stack_name, arn, review)
        if review.blocked:
            outcome.message = "blocked by the guard unless --allow-replacement names each resource at execution"
        return outcome
    if review.blocked:
        names = ", ".join(v.logical_id for v in review.violations)
        console.say(f"Change set left in place, not executed: {arn}")
        raise Refused(f"blocked by the guard: {names} would be removed or replaced (see above)")
    console.say("")
    try:
        confirmed = console.confirm("Execute this change set?", assume_yes=assume_yes)
    except Refused:
        console.say(f"Change set left in place, not executed: {arn}")
        raise
    if not confirmed:
        delete_change_set(cfn, change_set, console)
        raise Refused("declined: nothing was executed")
    result = execute_and_follow(cfn, change_set, review, console, waits)
    render_result(result, stack_name, console)
    outcome = Outcome(
        "deployed" if result.succeeded else "failed", stack_name, arn, review, result.outputs, result.failures
    )
    if not result.succeeded:
        root = result.failures[0] if result.failures else None
        outcome.message = (
            f"{root['LogicalResourceId']}: {root.get('ResourceStatusReason', '')}" if root else result.status_reason
        )
    return outcome


def execute_existing(
    cfn: Any,
    arn: str,
    console: Console,
    waits: Waits,
    *,
    assume_yes: bool,
    allow_replacement: Iterable[str] = (),
    no_echo: Iterable[str] = (),
) -> Outcome:
    """--execute ARN: review a change set created earlier and execute it if still AVAILABLE."""
    try:
        change_set = describe_change_set_all(cfn, arn)
    except ClientError as exc:
        if _error_code(exc) in ("ChangeSetNotFound", "ChangeSetNotFoundException", "ValidationError"):
            raise UsageError(f"change set {arn} not found: {_error_message(exc)}") from exc
        raise
    if change_set.get("Status") != "CREATE_COMPLETE" or change_set.get("ExecutionStatus") != "AVAILABLE":
        raise UsageError(
            f"change set {arn} is {change_set.get('Status')}/{change_set.get('ExecutionStatus')}, not AVAILABLE: "
            "it cannot be executed (create a new one)"
        )
    return review_and_execute(
        cfn,
        change_set,
        console,
        waits,
        assume_yes=assume_yes,
        execute=True,
        allow_replacement=allow_replacement,
        no_echo=no_echo,
    )


# --- Template parameters --------------------------------------------------------------


def check_parameters(template: dict, values: dict[str, str], *, tool_owned: Iterable[str] = ()) -> None:
    """Reject unknown names and values the template's constraints would reject."""
    declared = template.get("Parameters", {})
    for key in values:
        if key not in declared:
            raise UsageError(
                f"unknown parameter {key!r}: the template declares {', '.join(sorted(declared)) or 'none'}"
            )
    for key in tool_owned:
        if key not in declared:
            raise UsageError(f"the template does not declare the {key} parameter that bin/deploy fills in")
    for key, value in values.items():
        spec = declared[key]
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, value):
            raise UsageError(
                f"parameter {key}={value!r} does not match {pattern}"
                + (f" ({spec['ConstraintDescription']})" if spec.get("ConstraintDescription") else "")
            )
        allowed = spec.get("AllowedValues")
        if allowed and value not in [str(v) for v in allowed]:
            raise UsageError(f"parameter {key}={value!r} is not one of {', '.join(map(str, allowed))}")
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            raise UsageError(f"parameter {key} is longer than {spec['MaxLength']} characters")
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            raise UsageError(f"parameter {key} is shorter than {spec['MinLength']} characters")


def no_echo_parameters(template: dict) -> set[str]:
    return {k for k, v in template.get("Parameters", {}).items() if str(v.get("NoEcho", "")).lower() == "true"}


# --- The pipeline's deploy (bootstrap, package, main stack) ---------------------------

TOOL_PARAMETERS = ("EnvironmentSuffix", "CodeS3Bucket", "CodeS3Key")


@dataclass(frozen=True)
class PipelineDeploy:
    stack_name: str
    env: str
    region: str
    template_json: str
    parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    bootstrap_stack_name: str = "market-data-bootstrap"
    assume_yes: bool = False
    execute: bool = True
    allow_replacement: tuple[str, ...] = ()
    handlers_dir: Any = None  # Path; None: the project's handlers/


def validate_pipeline(request: PipelineDeploy) -> dict:
    """Check the request against the template before anything touches AWS; return the template."""
    template = json.loads(request.template_json)
    for key in request.parameters:
        if key == "EnvironmentSuffix":
            raise UsageError("set EnvironmentSuffix with --env, not --parameter")
        if key in ("CodeS3Bucket", "CodeS3Key"):
            raise UsageError(f"{key} is filled in by the package step; do not pass it with --parameter")
    check_parameters(template, {**request.parameters, "EnvironmentSuffix": request.env}, tool_owned=TOOL_PARAMETERS)
    return template


def _bootstrap_bucket(cfn: Any, stack_name: str) -> str | None:
    from market_cfn.bootstrap import BUCKET_OUTPUT

    stack = describe_stack(cfn, stack_name)
    if not stack or stack["StackStatus"] not in ("CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"):
        return None
    bucket = stack_outputs(stack).get(BUCKET_OUTPUT)
    if bucket:
        return bucket
    # moto 5 leaves stacks created through change sets without Outputs: read the bucket's
    # physical ID instead (the output is `Ref ArtifactsBucket`, the same value).
    # (DescribeStackResources, not DescribeStackResource: moto's singular call crashes on
    # a stack holding a resource type it does not implement, like AWS::ApiGateway::Account.)
    try:
        resources = cfn.describe_stack_resources(StackName=stack_name).get("StackResources", [])
    except ClientError:
        return None
    for resource in resources:
        if resource.get("LogicalResourceId") == "ArtifactsBucket":
            return resource.get("PhysicalResourceId") or None
    return None


def ensure_bootstrap(cfn: Any, stack_name: str, console: Console, waits: Waits, *, assume_yes: bool) -> str:
    """The artifacts bucket's name, deploying the bootstrap stack first when it is missing."""
    from market_cfn.bootstrap import BUCKET_OUTPUT, render_bootstrap_json

    bucket = _bootstrap_bucket(cfn, stack_name)
    if bucket:
        return bucket
    console.say(f"Bootstrap stack {stack_name} has no {BUCKET_OUTPUT} output: deploying it first.")
    console.say("")
    outcome = deploy_stack(
        cfn,
        ChangeSetRequest(
            stack_name,
            {},
            template_body=render_bootstrap_json(),
            description="market_cfn bootstrap: artifacts bucket, API Gateway logging role",
            capabilities=("CAPABILITY_IAM",),
        ),
        console,
        waits,
        assume_yes=assume_yes,
    )
    if outcome.result == "failed":
        raise DeployError(f"the bootstrap stack {stack_name} failed: {outcome.message}")
    bucket = _bootstrap_bucket(cfn, stack_name)
    if not bucket:
        raise DeployError(f"the bootstrap stack {stack_name} is deployed but names no artifacts bucket")
    console.say("")
    return bucket


def deploy_pipeline(cfn: Any, s3: Any, request: PipelineDeploy, console: Console, waits: Waits) -> Outcome:
    """bin/deploy: bootstrap if needed, package and upload, then the main stack's change set."""
    from market_cfn.packaging import HANDLERS_DIR, build_package

    template = validate_pipeline(request)
    bucket = ensure_bootstrap(cfn, request.bootstrap_stack_name, console, waits, assume_yes=request.assume_yes)
    package = build_package(request.handlers_dir or HANDLERS_DIR)
    uploads = []
    if ensure_object(s3, bucket, package.key, package.data, content_type="application/zip"):
        uploads.append(package.key)
        state = "uploaded"
    else:
        state = "already in the bucket, not uploaded again"
    console.say(
        f"Package s3://{bucket}/{package.key}: {len(package.data):,} bytes, {len(package.entries)} files"
        + (f", bundles {', '.join(package.bundled)}" if package.bundled else "")
        + f"; {state}."
    )
    body, url, uploaded = template_location(s3, bucket, request.region, request.template_json)
    size = len(request.template_json.encode("utf-8"))
    if url:
        if uploaded:
            uploads.append(url.split("/", 3)[3])
        console.say(
            f"Template: {size:,} bytes > {TEMPLATE_BODY_LIMIT:,}: passed as TemplateURL {url}"
            + ("" if uploaded else " (already in the bucket)")
            + "."
        )
    else:
        console.say(f"Template: {size:,} bytes, passed as TemplateBody.")
    console.say("")
    parameters = {
        **request.parameters,
        "EnvironmentSuffix": request.env,
        "CodeS3Bucket": bucket,
        "CodeS3Key": package.key,
    }
    outcome = deploy_stack(
        cfn,
        ChangeSetRequest(
            request.stack_name,
            parameters,
            request.tags,
            template_body=body,
            template_url=url,
            description=f"market_cfn deploy of code {package.sha256[:12]}",
            template_parameters={k: v.get("Default") for k, v in template.get("Parameters", {}).items()},
        ),
        console,
        waits,
        assume_yes=request.assume_yes,
        execute=request.execute,
        allow_replacement=request.allow_replacement,
        no_echo=no_echo_parameters(template),
    )
    outcome.uploads = uploads
    return outcome
