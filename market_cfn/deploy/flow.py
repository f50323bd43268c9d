"""Whole deploys: one stack through preflight, change set, every review input, drift, the guard, the
prompt and execution under the backstop; and the pipeline's deploy (bootstrap, package, main stack)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from market_cfn.base.aws import error_code, error_message
from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError, Refused, UsageError
from market_cfn.base.waits import Waits
from market_cfn.deploy.artifacts import ensure_object, template_location
from market_cfn.deploy.bootstrap import (
    BOOTSTRAP_VERSION,
    BUCKET_OUTPUT,
    UPGRADE_CHANGES,
    ensure_api_gateway_logging_role,
    read_bootstrap,
    render_bootstrap_json,
)
from market_cfn.deploy.changeset import (
    ChangeSetRequest,
    change_set_name,
    change_set_template,
    create_change_set,
    delete_change_set,
    deployed_template,
    describe_change_set_all,
    is_no_changes,
    parse_template,
    wait_for_change_set,
)
from market_cfn.deploy.drift import DriftResult, detect_drift
from market_cfn.deploy.gate import DeployOptions, GateContext, Outcome, review_and_execute
from market_cfn.deploy.inputs import gather_review_input, stack_parameters
from market_cfn.deploy.preflight import describe_stack, preflight, stack_outputs, stack_resources
from market_cfn.deploy.review.guard import stateful_logical_ids
from market_cfn.deploy.review.merge import build_review
from market_cfn.deploy.states import TEMPLATE_BODY_LIMIT
from market_cfn.deploy.triggers import RollbackPlan, plan_rollback

if TYPE_CHECKING:
    from pathlib import Path

    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.literals import ChangeSetTypeType
    from mypy_boto3_cloudformation.type_defs import StackTypeDef
    from mypy_boto3_s3 import S3Client

    from market_cfn.deploy.retained import Clients

__all__ = ["DeployOptions", "Outcome"]  # re-exported: they live in gate.py


# --- Whole deploys --------------------------------------------------------------------


def deploy_stack(
    cfn: CloudFormationClient,
    request: ChangeSetRequest,
    console: Console,
    waits: Waits,
    *,
    options: DeployOptions | None = None,
    template: dict[str, Any] | None = None,
) -> Outcome:
    """Preflight, create a change set, gather every review input, guard, confirm, execute and follow.

    template: the new template parsed (default: parsed from request.template_body).
    """
    options = options or DeployOptions()
    new_template = template if template is not None else parse_template(request.template_body, what="the template")
    stack = preflight(cfn, request.stack_name, console, waits, delete_failed_stack=options.delete_failed_stack)
    change_set_type: ChangeSetTypeType = "UPDATE" if stack else "CREATE"
    deployed = deployed_template(cfn, stack["StackId"]) if stack else None
    rollback = _rollback_plan(cfn, stack, deployed, new_template, options)
    if rollback.configuration:
        request = replace(request, rollback_configuration=rollback.configuration)
    name = change_set_name(waits.now())
    console.say(f"Creating {change_set_type} change set {name} for stack {request.stack_name} ...")
    arn = create_change_set(cfn, request, change_set_type=change_set_type, name=name, previous=stack_parameters(stack))
    if arn is None:
        console.say(f"No changes: stack {request.stack_name} is up to date.")
        return Outcome("no-changes", request.stack_name, outputs=stack_outputs(stack))
    try:
        status = wait_for_change_set(cfn, arn, waits)
        if is_no_changes(status):
            cfn.delete_change_set(ChangeSetName=arn)
            console.say(f"No changes: stack {request.stack_name} is up to date (empty change set deleted).")
            return Outcome("no-changes", request.stack_name, outputs=stack_outputs(stack))
        if status["Status"] != "CREATE_COMPLETE":
            raise DeployError(
                f"change set {name} is {status['Status']}: {status.get('StatusReason', 'no reason given')}"
            )
        change_set = describe_change_set_all(cfn, arn)
        change_set.setdefault("ChangeSetType", change_set_type)
        drift = _drift(cfn, stack, deployed, console, waits, options)
        inputs = gather_review_input(
            cfn,
            change_set,
            new_template=new_template,
            deployed=deployed,
            stack=stack,
            given_parameters=request.parameters,
            drift=drift,
        )
        review = build_review(inputs, options.overrides)
    except KeyboardInterrupt:
        return _interrupted_before_prompt(cfn, arn, request.stack_name, console)
    except DeployError:
        _abandon(cfn, arn, console)  # nothing unreviewed is left executable
        raise
    context = GateContext(change_set_type, inputs, drift, rollback)
    return review_and_execute(cfn, change_set, review, context, console, waits, options)


def _interrupted_before_prompt(cfn: CloudFormationClient, arn: str, stack_name: str, console: Console) -> Outcome:
    """Ctrl-C while the change set was being made or reviewed: "no", and nothing left behind."""
    console.say("")
    console.say("Interrupted before anything was executed: cleaning up.")
    cleaned = _abandon(cfn, arn, console)
    return Outcome(
        "declined",
        stack_name,
        arn,
        message="interrupted: nothing was executed; deleted " + ", ".join(cleaned),
        cleaned_up=cleaned,
    )


def _abandon(cfn: CloudFormationClient, arn: str, console: Console) -> list[str]:
    """Delete a change set that will not be reviewed to the end (and its empty CREATE stack)."""
    try:
        change_set = cfn.describe_change_set(ChangeSetName=arn)
        return delete_change_set(cfn, change_set, console)
    except ClientError as exc:  # the error that got us here matters more; say what is left
        console.say(f"Could not delete change set {arn} ({error_message(exc)}): delete it before executing anything.")
        return []


def _rollback_plan(
    cfn: CloudFormationClient,
    stack: StackTypeDef | None,
    deployed: dict[str, Any] | None,
    new_template: dict[str, Any],
    options: DeployOptions,
) -> RollbackPlan:
    if not options.rollback_alarms or stack is None:
        return plan_rollback(
            "",
            deployed,
            new_template,
            {},
            enabled=False,
            monitoring_minutes=0,
            why_disabled="off; --rollback-alarms turns them on" if stack else "a new stack has no alarms yet",
        )
    physical, _ = stack_resources(cfn, stack["StackId"])
    return plan_rollback(
        stack["StackId"],
        deployed,
        new_template,
        physical,
        enabled=True,
        monitoring_minutes=options.rollback_monitoring_minutes,
    )


def _drift(
    cfn: CloudFormationClient,
    stack: StackTypeDef | None,
    deployed: dict[str, Any] | None,
    console: Console,
    waits: Waits,
    options: DeployOptions,
) -> DriftResult | None:
    if stack is None or deployed is None:
        return None  # nothing deployed, nothing to drift
    if not options.drift_check:
        console.say("Drift: not checked (--no-drift-check).")
        return DriftResult(checked=False, note="not checked (--no-drift-check)")
    # the nested stacks' own resources are separate stacks (drift.py); their stack resource is here
    ids = [i for i in stateful_logical_ids(deployed, options.overrides.extra_stateful_types) if "/" not in i]
    physical, _ = stack_resources(cfn, stack["StackId"])
    ids = [i for i in ids if i in physical]  # only what exists can drift
    result = detect_drift(cfn, stack["StackId"], ids, console, waits, emulator=options.where.emulator)
    if result.checked:
        console.say(
            f"Drift: {len(result.drifted)} of {len(ids)} stateful resource(s) drifted"
            + (": " + ", ".join(f"{k} {v}" for k, v in sorted(result.drifted.items())) if result.drifted else "")
            + "."
        )
    elif result.note and result.drifted:
        console.say(f"Drift: {result.note}.")
    return result


def execute_existing(
    cfn: CloudFormationClient, arn: str, console: Console, waits: Waits, *, options: DeployOptions
) -> Outcome:
    """--execute ARN: gather the inputs of a change set created earlier, review, and execute it if
    still AVAILABLE."""
    try:
        change_set = describe_change_set_all(cfn, arn)
    except ClientError as exc:
        if error_code(exc) in ("ChangeSetNotFound", "ChangeSetNotFoundException", "ValidationError"):
            raise UsageError(f"change set {arn} not found: {error_message(exc)}") from exc
        raise
    if change_set.get("Status") != "CREATE_COMPLETE" or change_set.get("ExecutionStatus") != "AVAILABLE":
        raise UsageError(
            f"change set {arn} is {change_set.get('Status')}/{change_set.get('ExecutionStatus')}, not AVAILABLE: "
            "it cannot be executed (create a new one)"
        )
    if change_set.get("ParentChangeSetId"):
        raise UsageError(f"change set {arn} belongs to a nested stack: execute its root change set instead")
    stack = describe_stack(cfn, change_set["StackId"])
    creating = stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS"
    change_set_type = "CREATE" if creating else "UPDATE"
    change_set.setdefault("ChangeSetType", change_set_type)
    if options.where.emulator and not creating:
        # moto's GetTemplate ignores ChangeSetName and returns the stack's current template, so the
        # template diff would compare the deployed template with itself: fail closed.
        raise UsageError(
            "--execute cannot review an UPDATE change set again on a local endpoint (the emulator does not "
            "return a change set's own template); run the deploy again without --no-execute"
        )
    deployed = None if creating else deployed_template(cfn, change_set["StackId"])
    new_template = change_set_template(cfn, arn, change_set["StackId"])
    if not new_template.get("Resources") and change_set.get("Changes"):
        if not options.where.emulator:
            raise DeployError(f"GetTemplate returned no resources for change set {arn}, which changes some")
        # moto returns {} for a stack a CREATE change set made: a CREATE destroys nothing, and the guard
        # fails closed on what it cannot see (new grants without values need --allow-broadening)
        console.say("This endpoint does not return the change set's template: reviewing the change set alone.")
    try:
        drift = _drift(cfn, None if creating else stack, deployed, console, waits, options)
        rollback = RollbackPlan(
            change_set.get("RollbackConfiguration") or None,
            note="as the change set was created",
        )
        inputs = gather_review_input(
            cfn, change_set, new_template=new_template, deployed=deployed, stack=stack, drift=drift
        )
        review = build_review(inputs, options.overrides)
    except KeyboardInterrupt:
        return _interrupted_before_prompt(cfn, arn, change_set["StackName"], console)
    context = GateContext(change_set_type, inputs, drift, rollback)
    return review_and_execute(cfn, change_set, review, context, console, waits, replace(options, execute=True))


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
            if key == "AggregationSchedule":
                from market_cfn.stack.schedule import schedule_problem

                raise UsageError(f"parameter {key}: {schedule_problem(value)}")
            shown = pattern if len(pattern) <= 120 else "its AllowedPattern"
            raise UsageError(
                f"parameter {key}={value!r} does not match {shown}"
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
    options: DeployOptions = field(default_factory=DeployOptions)
    handlers_dir: Path | None = None  # None: the project's handlers/
    # Makes the apigateway client with which the bootstrap step sets the account's API Gateway
    # CloudWatch role where none is set (deploy/bootstrap.py); None skips that step.
    apigateway: Callable[[], APIGatewayClient] | None = None
    # Makes a client by service name (sts, s3, dynamodb, logs) for the read-only check that no
    # retained named resource is in the way of a stack about to be created (retained.py); None skips it.
    clients: Clients | None = None


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


def check_retained(cfn: CloudFormationClient, request: PipelineDeploy, template: dict[str, Any]) -> None:
    """Before a stack is created (none, or one CloudFormation must delete first): refuse when a
    resource it would retain under a fixed name already exists, naming each and the way back."""
    from market_cfn.deploy.retained import conflicts, retained_names

    assert request.clients is not None
    stack = describe_stack(cfn, request.stack_name)
    if stack is not None and stack["StackStatus"] not in ("ROLLBACK_COMPLETE", "REVIEW_IN_PROGRESS", "CREATE_FAILED"):
        return  # an existing stack owns its resources; a CREATE is not coming
    account = str(request.clients("sts").get_caller_identity()["Account"])
    items = retained_names(
        template, {**request.parameters, "EnvironmentSuffix": request.env}, account=account, region=request.region
    )
    found = conflicts(request.clients, items)
    if found:
        raise DeployError(
            f"stack {request.stack_name} would be created, but what it retains under fixed names already exists "
            f"(left by an earlier destroy?): {'; '.join(found)}. Nothing deployed: import them into the stack or "
            'delete them first (docs/deploy.md "After destroy")'
        )


def deploy_pipeline(
    cfn: CloudFormationClient, s3: S3Client, request: PipelineDeploy, console: Console, waits: Waits
) -> Outcome:
    """bin/deploy: bootstrap if needed, package and upload, then the main stack's change set."""
    from market_cfn.deploy.packaging import HANDLERS_DIR, build_package

    template = validate_pipeline(request)
    options = request.options
    if request.clients is not None:
        check_retained(cfn, request, template)
    # The bootstrap stack goes through the same guard and backstop, with none of the main stack's
    # overrides (an override names the main stack's resources) and never left unexecuted.
    bootstrap_options = DeployOptions(
        assume_yes=options.assume_yes,
        drift_check=options.drift_check,
        where=options.where,
        keep_change_set=options.keep_change_set,
    )
    bucket = ensure_bootstrap(
        cfn,
        request.bootstrap_stack_name,
        console,
        waits,
        assume_yes=options.assume_yes,
        options=bootstrap_options,
        apigateway=request.apigateway() if request.apigateway else None,
    )
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
        options=options,
        template=template,
    )
    outcome.uploads = uploads
    return outcome


def ensure_bootstrap(
    cfn: CloudFormationClient,
    stack_name: str,
    console: Console,
    waits: Waits,
    *,
    assume_yes: bool,
    options: DeployOptions | None = None,
    apigateway: APIGatewayClient | None = None,
) -> str:
    """The artifacts bucket's name: the bootstrap stack is deployed when missing and updated
    when older than BOOTSTRAP_VERSION, both through a reviewed change set. With an
    `apigateway` client, the account's API Gateway CloudWatch role is then set if it has none."""
    current = read_bootstrap(cfn, stack_name)
    if current and current.version > BOOTSTRAP_VERSION:
        raise DeployError(
            f"the bootstrap stack {stack_name} is version {current.version}, newer than this market_cfn "
            f"knows ({BOOTSTRAP_VERSION}): upgrade market_cfn instead of deploying with an older one"
        )
    if current is None or current.version < BOOTSTRAP_VERSION:
        if current is None:
            console.say(f"Bootstrap stack {stack_name} has no {BUCKET_OUTPUT} output: deploying it first.")
        else:
            console.say(
                f"Bootstrap stack {stack_name} is version {current.version}; this bin/deploy needs version "
                f"{BOOTSTRAP_VERSION}: updating it first (review the change set below)."
            )
        console.say("")
        outcome = deploy_stack(
            cfn,
            ChangeSetRequest(
                stack_name,
                {},
                template_body=render_bootstrap_json(),
                description=f"market_cfn bootstrap version {BOOTSTRAP_VERSION}: artifacts bucket, API Gateway logging role",
                capabilities=("CAPABILITY_IAM",),
            ),
            console,
            waits,
            options=_expecting_upgrade(options or DeployOptions(assume_yes=assume_yes)),
        )
        if outcome.result == "failed":
            raise DeployError(f"the bootstrap stack {stack_name} failed: {outcome.message}")
        if outcome.result in ("blocked", "declined"):
            raise Refused(f"the bootstrap stack {stack_name}: {outcome.message}")
        current = read_bootstrap(cfn, stack_name)
        if current is None:
            raise DeployError(f"the bootstrap stack {stack_name} is deployed but names no artifacts bucket")
        console.say("")
    if apigateway is not None:
        if not current.role_arn:
            raise DeployError(f"the bootstrap stack {stack_name} names no API Gateway CloudWatch role")
        ensure_api_gateway_logging_role(apigateway, current.role_arn, console, waits)
    return current.bucket


def _expecting_upgrade(options: DeployOptions) -> DeployOptions:
    overrides = replace(options.overrides, expected_changes=UPGRADE_CHANGES)
    return replace(options, overrides=overrides)
