"""Every input the guard decides from, fetched from CloudFormation into one ReviewInput (model.py):
both descriptions of the change set (every page), every nested change set, the deployed and
the new template (and both processed, when one has a Transform), the old and new parameter values,
NoEcho names and drift.

AWS semantics: DescribeChangeSet's `Parameters` lists the values the change set passes
(NoEcho ones masked); DescribeStacks' `Parameters` the stack's current values; GetTemplate
with `TemplateStage=Original` the template as submitted (before transforms), for a stack or
(with ChangeSetName) for a change set; a nested stack's ResourceChange carries the child's
change set ARN in `ChangeSetId` and the child stack's ARN in `PhysicalResourceId` (API
reference ResourceChange). A nested stack change without a child change set is left out of
`nested`; the guard treats a stateful change it cannot see fully as dangerous.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from market_cfn.deploy.changeset import (
    change_set_template,
    deployed_template,
    describe_change_set_all,
    processed_template,
)
from market_cfn.deploy.drift import DriftResult
from market_cfn.deploy.preflight import describe_stack
from market_cfn.deploy.review.diff import has_transform
from market_cfn.deploy.review.model import ReviewInput

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient

NESTED_STACK = "AWS::CloudFormation::Stack"
MAX_NESTING = 5  # CloudFormation nests deeper in principle; a deeper tree is reported, not walked forever


def stack_parameters(stack: Mapping[str, Any] | None) -> dict[str, str]:
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in (stack or {}).get("Parameters") or []}


def new_parameter_values(
    change_set: Mapping[str, Any], template: Mapping[str, Any], given: Mapping[str, str] | None = None
) -> dict[str, str]:
    """What the change set passes: template defaults, overlaid by the change set's own Parameters
    (ResolvedValue for SSM-typed ones), overlaid by what this run passed (an emulator may list only
    those)."""
    values = {
        key: str(spec["Default"])
        for key, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    for p in change_set.get("Parameters") or []:
        value = p.get("ResolvedValue", p.get("ParameterValue"))
        if value is not None:
            values[p["ParameterKey"]] = value
    values.update(given or {})
    return values


def no_echo_names(template: Mapping[str, Any]) -> frozenset[str]:
    return frozenset(
        k
        for k, v in (template.get("Parameters") or {}).items()
        if isinstance(v, dict) and str(v.get("NoEcho", "")).lower() == "true"
    )


def gather_review_input(
    cfn: CloudFormationClient,
    change_set: dict[str, Any],
    *,
    new_template: dict[str, Any],
    deployed: dict[str, Any] | None,
    stack: Mapping[str, Any] | None,
    given_parameters: Mapping[str, str] | None = None,
    drift: DriftResult | None = None,
) -> ReviewInput:
    """The ReviewInput of a described change set (`change_set`: with property values, every page)."""
    plain = describe_change_set_all(cfn, change_set["ChangeSetId"], include_values=False)
    processed = _processed(cfn, change_set, new_template, deployed)
    return ReviewInput(
        change_set=change_set,
        plain_change_set=plain,
        nested=nested_inputs(cfn, change_set, depth=1),
        deployed_template=deployed,
        new_template=new_template,
        old_parameters=stack_parameters(stack) if deployed is not None else {},
        new_parameters=new_parameter_values(change_set, new_template, given_parameters),
        no_echo=no_echo_names(new_template) | (no_echo_names(deployed) if deployed else frozenset()),
        drifted=dict(drift.drifted) if drift else {},
        drift_checked=drift.checked if drift else False,
        processed_deployed=processed[0],
        processed_new=processed[1],
    )


def _processed(
    cfn: CloudFormationClient, change_set: Mapping[str, Any], new: Mapping[str, Any], deployed: Mapping[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Both sides' processed templates when either side has a Transform, so the diff compares like with like."""
    if not (has_transform(dict(new)) or has_transform(dict(deployed) if deployed else None)):
        return None, None
    stack_id = str(change_set.get("StackId") or "")
    old = processed_template(cfn, stack_id) if deployed is not None else None
    return old, processed_template(cfn, stack_id, str(change_set["ChangeSetId"]))


def nested_inputs(cfn: CloudFormationClient, change_set: Mapping[str, Any], *, depth: int) -> dict[str, ReviewInput]:
    """One ReviewInput per child change set, keyed by the parent's logical id of the nested stack."""
    children: dict[str, ReviewInput] = {}
    for change in change_set.get("Changes") or []:
        rc = change.get("ResourceChange") or {}
        child_arn = rc.get("ChangeSetId")
        if rc.get("ResourceType") != NESTED_STACK or not child_arn:
            continue
        if depth > MAX_NESTING:
            continue  # not described: the guard sees the parent's change without a child review
        described = describe_change_set_all(cfn, child_arn)
        child_stack_id = rc.get("PhysicalResourceId") or described.get("StackId", "")
        existing = rc.get("Action") != "Add" and bool(child_stack_id)
        child_stack = describe_stack(cfn, child_stack_id) if existing else None
        child_deployed = deployed_template(cfn, child_stack_id) if child_stack else None
        child_template = change_set_template(cfn, child_arn, described.get("StackId") or child_stack_id)
        children[rc["LogicalResourceId"]] = ReviewInput(
            change_set=described,
            plain_change_set=describe_change_set_all(cfn, child_arn, include_values=False),
            nested=nested_inputs(cfn, described, depth=depth + 1),
            deployed_template=child_deployed,
            new_template=child_template,
            old_parameters=stack_parameters(child_stack),
            new_parameters=new_parameter_values(described, child_template),
            no_echo=no_echo_names(child_template),
            processed_deployed=(processed := _processed(cfn, described, child_template, child_deployed))[0],
            processed_new=processed[1],
        )
    return children


def nested_templates(inputs: ReviewInput, prefix: str = "") -> dict[str, dict[str, Any]]:
    """path -> new template of every nested stack ("Child", "Child/Grandchild")."""
    found: dict[str, dict[str, Any]] = {}
    for logical_id, child in inputs.nested.items():
        path = f"{prefix}{logical_id}"
        found[path] = child.new_template
        found.update(nested_templates(child, f"{path}/"))
    return found
