"""`python -m market_cfn diff`: what a deploy would change, with no side effect at all.

No change set, no upload, no bootstrap: only DescribeStacks and GetTemplate (TemplateStage
Original), both read-only (CloudFormation API reference). The new template is rendered and the
function package built locally (its content-addressed key is what the deploy would pass as
CodeS3Key); the bucket is the bootstrap stack's output when it exists. The comparison is the
review's own template diff and security review (diff.py, iam.py), read from the templates alone.

What only CloudFormation computes (whether a modification replaces the resource, values of
dynamic references and transforms) needs a change set: the output says so, and
`bin/deploy --no-execute` creates one to review without executing it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from market_cfn.deploy.bootstrap import read_bootstrap
from market_cfn.deploy.changeset import deployed_template
from market_cfn.deploy.flow import PipelineDeploy, no_echo_parameters, validate_pipeline
from market_cfn.deploy.inputs import stack_parameters
from market_cfn.deploy.preflight import describe_stack
from market_cfn.deploy.review.diff import ResourceDiff, StackIdentity, show, template_diff
from market_cfn.deploy.review.iam import security_review
from market_cfn.deploy.review.model import Finding, IamFinding

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

NOT_FROM_TEMPLATES = (
    "Replacement and values CloudFormation resolves itself are known only from a change set: "
    "bin/deploy --no-execute creates one and reviews it without executing."
)


@dataclass
class DryRun:
    stack_name: str
    exists: bool
    status: str
    diffs: dict[str, ResourceDiff]
    parameters: list[tuple[str, str | None, str | None]]
    iam: list[IamFinding] = field(default_factory=list)
    dangers: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.diffs) or any(old != new for _, old, new in self.parameters)

    def to_json(self) -> dict[str, Any]:
        return {
            "StackName": self.stack_name,
            "StackExists": self.exists,
            "StackStatus": self.status,
            "Changed": self.changed,
            "Parameters": [{"Name": n, "Old": o, "New": v} for n, o, v in self.parameters if o != v],
            "Resources": [
                {
                    "LogicalId": d.logical_id,
                    "Action": d.action,
                    "Type": d.resource_type,
                    "Changes": [
                        {"Path": leaf.path, "Old": show(leaf.before), "New": show(leaf.after)} for leaf in d.leaves
                    ]
                    if d.action == "Modify"
                    else [],
                }
                for d in self.diffs.values()
            ],
            "Security": [{"LogicalId": i.logical_id, "Where": i.where, "Text": i.text} for i in self.iam],
            "Dangers": [f.to_json() for f in self.dangers],
            "Notes": [*self.notes, NOT_FROM_TEMPLATES],
        }


def dry_run(cfn: CloudFormationClient, request: PipelineDeploy, *, code_key: str) -> DryRun:
    """Compare the deployed stack with what `request` would deploy; read-only calls only."""
    template = validate_pipeline(request)
    stack = describe_stack(cfn, request.stack_name)
    live = stack is not None and stack["StackStatus"] not in ("REVIEW_IN_PROGRESS", "DELETE_COMPLETE")
    deployed = deployed_template(cfn, stack["StackId"]) if stack is not None and live else None
    old_parameters = stack_parameters(stack) if live else {}
    bootstrap = read_bootstrap(cfn, request.bootstrap_stack_name)
    new_parameters = {
        key: str(spec["Default"])
        for key, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    new_parameters |= {
        **request.parameters,
        "EnvironmentSuffix": request.env,
        "CodeS3Key": code_key,
        "CodeS3Bucket": bootstrap.bucket if bootstrap else old_parameters.get("CodeS3Bucket", "(not bootstrapped yet)"),
    }
    identity = StackIdentity.from_change_set(
        {"StackId": stack["StackId"] if stack else "", "StackName": request.stack_name}
    )
    no_echo = frozenset(no_echo_parameters(template))
    diffs = template_diff(deployed, template, old_parameters, new_parameters, identity, no_echo)
    iam, dangers, notes = security_review([], diffs, identity, template, frozenset(template.get("Resources", {})))
    names = sorted(set(old_parameters) | set(new_parameters))
    parameters = [
        (
            n,
            "****" if n in no_echo and n in old_parameters else old_parameters.get(n),
            "****" if n in no_echo else new_parameters.get(n),
        )
        for n in names
    ]
    return DryRun(
        request.stack_name,
        stack is not None and live,
        stack["StackStatus"] if stack else "(no stack)",
        diffs,
        parameters,
        iam,
        dangers,
        notes,
    )


def render_dry_run(result: DryRun) -> list[str]:
    """The human text, one list of lines."""
    lines = [
        f"Stack {result.stack_name}: {result.status}"
        + ("" if result.exists else " (a deploy would create it: every resource is added)")
    ]
    changed_parameters = [(n, o, v) for n, o, v in result.parameters if o != v]
    if changed_parameters:
        lines.append("Parameters:")
        lines += [f"  {n}: {show(o)} -> {show(v)}" for n, o, v in changed_parameters]
    if result.diffs:
        lines.append("Resources:")
        symbol = {"Add": "+", "Remove": "-", "Modify": "~"}
        for d in result.diffs.values():
            lines.append(f"  {symbol[d.action]} {d.action} {d.logical_id} ({d.resource_type})")
            if d.action == "Modify":
                lines += [f"      {leaf.path}: {show(leaf.before)} -> {show(leaf.after)}" for leaf in d.leaves]
    if result.iam:
        lines.append("Security changes (from the templates):")
        lines += [f"  {i.logical_id}  {i.where}  {i.text}" for i in result.iam]
    for danger in result.dangers:
        lines.append(f"  !  {danger.logical_id}: {danger.what}")
    lines += [f"Note: {n}" for n in result.notes]
    lines.append("No differences." if not result.changed else f"Note: {NOT_FROM_TEMPLATES}")
    return lines


def dumps(result: DryRun) -> str:
    return json.dumps(result.to_json(), indent=2, sort_keys=True, default=str)
