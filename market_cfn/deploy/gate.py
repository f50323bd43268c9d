"""The gate between a reviewed change set and its execution: print the review, refuse what the guard
blocks (and delete it), ask, treat Ctrl-C at a prompt as "no", then execute under the backstop.

Exit-code outcomes: a blocked or declined change set returns Outcome("blocked"/"declined")
(exit 3) after deleting the change set, and the empty stack a CREATE change set made,
unless --keep-change-set; an override that names nothing is a UsageError (exit 2).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from market_cfn.base.aws import Where
from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError, Refused, UsageError
from market_cfn.base.waits import Waits
from market_cfn.deploy.backstop import apply_stack_policies, enable_termination_protection, policy_body, retains_data
from market_cfn.deploy.backstop import stack_policy as build_policy
from market_cfn.deploy.changeset import delete_change_set
from market_cfn.deploy.drift import DriftResult
from market_cfn.deploy.follow import execute_and_follow
from market_cfn.deploy.inputs import nested_templates
from market_cfn.deploy.preflight import describe_stack
from market_cfn.deploy.review.digest import check_reviewed, review_digest
from market_cfn.deploy.review.format import render_result, render_review, review_markdown
from market_cfn.deploy.review.guard import stateful_logical_ids
from market_cfn.deploy.review.model import Overrides, Review, ReviewInput
from market_cfn.deploy.triggers import DEFAULT_MONITORING_MINUTES, RollbackPlan

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient


@dataclass(frozen=True)
class DeployOptions:
    """How one stack is deployed (the command line and deploy.toml, resolved)."""

    assume_yes: bool = False
    execute: bool = True
    overrides: Overrides = field(default_factory=Overrides)
    keep_change_set: bool = False  # keep a blocked or declined change set for inspection
    drift_check: bool = True
    rollback_alarms: bool = False
    rollback_monitoring_minutes: int = DEFAULT_MONITORING_MINUTES
    where: Where = field(default_factory=Where)
    review_out: Path | None = None
    command: str = "bin/deploy"  # how the user ran it, for the commands it prints
    delete_failed_stack: bool = False  # --delete-failed-stack: the one answer --yes does not give
    reviewed_digest: str = ""  # --reviewed-sha256: --execute only what was reviewed, or refuse


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
    outputs_resolved_locally: list[str] = field(default_factory=list)
    cleaned_up: list[str] = field(default_factory=list)
    backstop: list[str] = field(default_factory=list)
    drift: DriftResult | None = None
    rollback: RollbackPlan | None = None
    review_out: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "Result": self.result,
            "StackName": self.stack_name,
            "ChangeSetId": self.change_set_id,
            "Outputs": self.outputs,
            "OutputsResolvedLocally": sorted(self.outputs_resolved_locally),
            "Uploaded": self.uploads,
            "Failures": [
                {k: e.get(k) for k in ("LogicalResourceId", "ResourceType", "ResourceStatus", "ResourceStatusReason")}
                for e in self.failures
            ],
            "Review": self.review.to_json() if self.review else None,
            "ReviewOut": self.review_out,
            "Drift": None
            if self.drift is None
            else {
                "Checked": self.drift.checked,
                "Drifted": self.drift.drifted,
                "Differences": self.drift.differences,
                "Note": self.drift.note,
            },
            "RollbackConfiguration": self.rollback.configuration if self.rollback else None,
            "RollbackTriggersLeftOut": self.rollback.left_out if self.rollback else [],
            "Backstop": self.backstop,
            "CleanedUp": self.cleaned_up,
            "Message": self.message,
        }


@dataclass
class GateContext:
    """What the gate knows besides the review: the inputs and what was decided before it."""

    change_set_type: str  # CREATE | UPDATE
    inputs: ReviewInput
    drift: DriftResult | None = None
    rollback: RollbackPlan | None = None
    stack_had_protection: bool = False


def execute_hint(options: DeployOptions, arn: str, digest: str) -> str:
    """The command that executes exactly this change set, with what this run was given: where it
    is, every override (the guard runs again and must be told the same), --yes if this run had it,
    and the digest of this review."""
    parts = [options.command, "--execute", shlex.quote(arn)]
    where = options.where.flags()
    if where:
        parts.append(where)
    for item in fields(options.overrides):  # each Overrides field is the option of the same name
        value = getattr(options.overrides, item.name)
        option = "--stateful-type" if item.name == "extra_stateful_types" else "--" + item.name.replace("_", "-")
        if value is True:
            parts.append(option)
        elif isinstance(value, frozenset):
            parts += [f"{option} {shlex.quote(str(v))}" for v in sorted(value)]
    if not options.drift_check:
        parts.append("--no-drift-check")
    if options.assume_yes:
        parts.append("--yes")
    parts += ["--reviewed-sha256", digest]
    return " ".join(parts)


def protected_ids(inputs: ReviewInput, extra_types: frozenset[str]) -> dict[str, list[str]]:
    """ "" -> the root stack's stateful logical ids (deployed and new template); path -> a nested stack's."""
    root: set[str] = set()
    for template in (inputs.new_template, inputs.deployed_template, inputs.processed_new, inputs.processed_deployed):
        if template:  # the processed ones name what a Transform deploys
            root |= set(stateful_logical_ids(template, extra_types))
    protected = {"": sorted(root)}
    for path, template in nested_templates(inputs).items():
        protected[path] = sorted(stateful_logical_ids(template, extra_types))
    return protected


def cleanup(
    cfn: CloudFormationClient, change_set: dict[str, Any], console: Console, options: DeployOptions
) -> list[str]:
    if options.keep_change_set:
        console.say(f"Change set kept for inspection (--keep-change-set): {change_set['ChangeSetId']}")
        return []
    return delete_change_set(cfn, change_set, console)


def review_and_execute(
    cfn: CloudFormationClient,
    change_set: dict[str, Any],
    review: Review,
    context: GateContext,
    console: Console,
    waits: Waits,
    options: DeployOptions,
) -> Outcome:
    stack_name = change_set["StackName"]
    arn = change_set["ChangeSetId"]
    outcome = Outcome("", stack_name, arn, review, drift=context.drift, rollback=context.rollback)
    render_review(review, console)
    digest = review_digest(context.inputs)
    console.say(f"Reviewed state: sha256 {digest}")
    if options.reviewed_digest:
        problem = check_reviewed(options.reviewed_digest, context.inputs)
        if problem:
            raise Refused(problem)
    if options.review_out:
        write_review(options.review_out, review)
        outcome.review_out = str(options.review_out)
        console.say(f"Review written to {options.review_out} (Markdown).")
    if review.unmatched_overrides:
        outcome.cleaned_up = cleanup(cfn, change_set, console, options)
        raise UsageError(
            f"{', '.join(review.unmatched_overrides)}: names nothing this change set removes, replaces, "
            "unprotects, overwrites or changes (check the logical id and property; nothing was executed)"
        )
    # Without a human (--yes, or no terminal to ask on) broadening blocks too; a change set left for
    # review (--no-execute) is blocked only by what no answer at a prompt could allow (data loss),
    # and is reviewed again when it is executed.
    unattended = options.execute and (options.assume_yes or not console.interactive)
    blocking = review.blocking(unattended)
    if blocking:
        names = ", ".join(dict.fromkeys(f"{f.logical_id} ({f.kind})" for f in blocking))
        console.say(console.paint(f"Not executed: the guard blocks {names}.", "1;31"))
        outcome.cleaned_up = cleanup(cfn, change_set, console, options)
        outcome.result, outcome.message = "blocked", f"blocked by the guard: {names}"
        return outcome
    if not options.execute:
        console.say("")
        console.say(f"Change set left for review (not executed): {arn}")
        console.say(f"Execute it later with: {execute_hint(options, arn, digest)}")
        unattended_needs = sorted({f.override for f in review.blocking(True) if f.override})
        if unattended_needs:  # never added for you: each names a risk the review above shows
            console.say(f"Without a terminal (--yes) it also needs: {' '.join(unattended_needs)}")
        outcome.result = "created-change-set"
        return outcome
    if any(f.kind == "broadening" and not f.allowed for f in review.findings):
        console.say("Security broadening (listed above) executes only if you answer y here.")
    if any(f.kind == "change" and not f.allowed for f in review.findings):
        console.say("Changes not known to be harmless (listed above) execute only if you answer y here.")
    for line in context.rollback.describe() if context.rollback else []:
        console.say(line)
    console.say("")
    try:
        confirmed = console.confirm("Execute this change set?", assume_yes=options.assume_yes)
    except KeyboardInterrupt:
        console.say("")
        console.say("Interrupted at the prompt: taken as no.")
        confirmed = False
    except Refused:
        console.say(f"Change set left in place, not executed: {arn}")
        raise
    if not confirmed:
        cleaned = delete_change_set(cfn, change_set, console)  # a "no" never keeps it
        outcome.cleaned_up = cleaned
        outcome.result = "declined"
        outcome.message = "declined: nothing was executed" + (f"; deleted {', '.join(cleaned)}" if cleaned else "")
        return outcome
    return execute_with_backstop(cfn, change_set, review, context, console, waits, options, outcome)


def write_review(path: Path, review: Review) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(review_markdown(review), encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--review-out {path}: cannot write: {exc.strerror}") from exc


def execute_with_backstop(
    cfn: CloudFormationClient,
    change_set: dict[str, Any],
    review: Review,
    context: GateContext,
    console: Console,
    waits: Waits,
    options: DeployOptions,
    outcome: Outcome,
) -> Outcome:
    """Stack policy for this execution (UPDATE), execute and follow, then the full stack policy and
    termination protection."""
    stack_id = change_set["StackId"]
    stack_name = change_set["StackName"]
    protected = protected_ids(context.inputs, options.overrides.extra_stateful_types)
    opened = set(options.overrides.allow_replacement)
    update = context.change_set_type == "UPDATE"
    if update:
        outcome.backstop += apply_stack_policies(
            cfn, stack_id, protected, console, open_ids=opened, why="for this execution"
        )
    still_open = sorted(opened & set(protected[""])) if update else []
    flags = options.where.flags()
    close_it = (
        f"aws cloudformation set-stack-policy --stack-name {stack_name} --stack-policy-body "
        f"'{policy_body(build_policy(protected['']))}'" + (f" {flags}" if flags else "")
    )
    try:
        result = execute_and_follow(cfn, change_set, review, console, waits)
    except KeyboardInterrupt:
        message = (
            f"interrupted: the {context.change_set_type} of stack {stack_name} goes on in CloudFormation (Ctrl-C "
            f"does not stop it). Follow it: aws cloudformation describe-stack-events --stack-name {stack_name}"
            f"{' ' + flags if flags else ''}; or run {options.command} again, which waits for it to finish."
        )
        if still_open:
            message += (
                f" The stack policy still leaves {', '.join(still_open)} open; once the stack settles: {close_it}"
            )
        raise DeployError(message) from None
    except ClientError:
        # ExecuteChangeSet itself was refused (nothing started): close what was opened for it
        if still_open:
            outcome.backstop += apply_stack_policies(cfn, stack_id, protected, console, why="execution refused")
        raise
    except DeployError as exc:  # stopped following (timeout): the update may still be running
        if still_open:
            raise DeployError(
                f"{exc}. The stack policy still leaves {', '.join(still_open)} open; once the stack settles: {close_it}"
            ) from exc
        raise
    render_result(result, stack_name, console)
    if result.template is not None:  # protect what is deployed now, whatever the review could see
        deployed_ids = stateful_logical_ids(result.template, options.overrides.extra_stateful_types)
        protected[""] = sorted(set(protected[""]) | set(deployed_ids))
    stack = describe_stack(cfn, stack_id)
    if stack is not None and stack["StackStatus"] not in ("DELETE_COMPLETE", "ROLLBACK_COMPLETE"):
        # the full policy: after success, after a rollback, and to close what was opened
        outcome.backstop += apply_stack_policies(cfn, stack_id, protected, console, why="from now on")
    if result.succeeded and retains_data(result.template or context.inputs.new_template):
        if stack is not None and stack.get("EnableTerminationProtection"):
            outcome.backstop.append(f"Termination protection: already on for stack {stack_name}.")
        elif enable_termination_protection(cfn, stack_name, console, emulator=options.where.emulator):
            outcome.backstop.append(f"Termination protection: on for stack {stack_name}.")
    outcome.result = "deployed" if result.succeeded else "failed"
    outcome.outputs = result.outputs
    outcome.outputs_resolved_locally = list(result.resolved_locally)
    outcome.failures = result.failures
    if not result.succeeded:
        root = result.failures[0] if result.failures else None
        outcome.message = (
            f"{root['LogicalResourceId']}: {root.get('ResourceStatusReason', '')}" if root else result.status_reason
        )
    return outcome
