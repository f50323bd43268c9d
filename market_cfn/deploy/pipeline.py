"""Whole deploys: one stack through preflight, change set, review, guard, confirm and execute; and the
pipeline's deploy (bootstrap, package, main stack)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from market_cfn.deploy.artifacts import ensure_object, template_location
from market_cfn.deploy.bootstrap import ensure_bootstrap
from market_cfn.deploy.changeset import (
    ChangeSetRequest,
    change_set_name,
    create_change_set,
    delete_change_set,
    describe_change_set_all,
    is_no_changes,
    wait_for_change_set,
)
from market_cfn.deploy.common import (
    TEMPLATE_BODY_LIMIT,
    Console,
    DeployError,
    Refused,
    UsageError,
    Waits,
    _error_code,
    _error_message,
)
from market_cfn.deploy.follow import execute_and_follow
from market_cfn.deploy.format import render_result, render_review
from market_cfn.deploy.model import Overrides, Review, ReviewInput
from market_cfn.deploy.preflight import preflight, stack_outputs
from market_cfn.deploy.review import build_review

# --- Whole deploys --------------------------------------------------------------------


@dataclass
class Outcome:
    """What happened, for the exit code and for --json."""

    result: str  # deployed | no-changes | created-change-set | declined | blocked | failed
    stack_name: str
    change_set_id: str | None = None
    review: Review | None = None
    outputs: dict[str, str] = field(default_factory=dict)
    failures: list[dict[str, Any]] = field(default_factory=list)
    uploads: list[str] = field(default_factory=list)
    message: str = ""

    def to_json(self) -> dict[str, Any]:
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
    change_set: dict[str, Any],
    console: Console,
    waits: Waits,
    *,
    assume_yes: bool,
    execute: bool,
    allow_replacement: Iterable[str],
    no_echo: Iterable[str],
) -> Outcome:
    allow = list(allow_replacement)
    review = build_review(
        ReviewInput.from_change_set(change_set, no_echo=frozenset(no_echo)),
        Overrides(allow_replacement=frozenset(allow)),
    )
    stack_name = change_set["StackName"]
    arn = change_set["ChangeSetId"]
    render_review(review, console)
    for option in review.unmatched_overrides:
        console.say(f"Note: {option} matches no removed or replaced stateful resource here.")
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


def check_parameters(template: dict[str, Any], values: dict[str, str], *, tool_owned: Iterable[str] = ()) -> None:
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


def no_echo_parameters(template: dict[str, Any]) -> set[str]:
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


def validate_pipeline(request: PipelineDeploy) -> dict[str, Any]:
    """Check the request against the template before anything touches AWS; return the template."""
    template = json.loads(request.template_json)
    for key in request.parameters:
        if key == "EnvironmentSuffix":
            raise UsageError("set EnvironmentSuffix with --env, not --parameter")
        if key in ("CodeS3Bucket", "CodeS3Key"):
            raise UsageError(f"{key} is filled in by the package step; do not pass it with --parameter")
    check_parameters(template, {**request.parameters, "EnvironmentSuffix": request.env}, tool_owned=TOOL_PARAMETERS)
    return template


def deploy_pipeline(cfn: Any, s3: Any, request: PipelineDeploy, console: Console, waits: Waits) -> Outcome:
    """bin/deploy: bootstrap if needed, package and upload, then the main stack's change set."""
    from market_cfn.deploy.packaging import HANDLERS_DIR, build_package

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
