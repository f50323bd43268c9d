"""The one home of the DescribeChangeSet-shaped change sets every deploy test builds (the review's and
the guard's, and the Stubber flows' through stubs_cfn.Flow), plus templates and a review helper for the
guard's tests. Shaped exactly as botocore's cloudformation service model
(botocore/data/cloudformation/2010-05-15/service-2.json, DescribeChangeSetOutput) and the
CloudFormation API reference document them:

- Changes[].Type "Resource" with ResourceChange {Action: Add|Modify|Remove|Import|Dynamic|
  SyncWithActual, LogicalResourceId, PhysicalResourceId (none for Add), ResourceType, Replacement:
  True|False|Conditional (for Modify), PolicyAction: Delete|Retain|Snapshot|ReplaceAndDelete|
  ReplaceAndRetain|ReplaceAndSnapshot, Scope, Details[], ChangeSetId (a nested stack's change set),
  BeforeContext/AfterContext (JSON text, only with IncludePropertyValues)} (API_ResourceChange.html);
- Details[] {Target {Attribute: Properties|Metadata|CreationPolicy|UpdatePolicy|DeletionPolicy|
  UpdateReplacePolicy|Tags, Name, Path, RequiresRecreation: Never|Conditionally|Always, BeforeValue,
  AfterValue, AttributeChangeType: Add|Remove|Modify}, Evaluation: Static|Dynamic, ChangeSource,
  CausingEntity} (API_ResourceChangeDetail.html, API_ResourceTargetDefinition.html);
- StatusReason: free text; CloudFormation writes "[WARN] --include-property-values option can return
  incomplete ChangeSet data" when the described values are incomplete (aws/aws-cdk-cli#1780).
"""

from __future__ import annotations

import copy
import enum
import json
from collections.abc import Mapping
from typing import Any

from market_cfn.deploy import Overrides, ReviewInput, build_review

ACCOUNT = "123456789012"
STACK_ID = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/market-data-dev/5e7e0b1c"
CHANGE_SET_ID = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:changeSet/deploy-20261126T090000Z-abc123/0b1c"
INCOMPLETE_WARNING = "[WARN] --include-property-values option can return incomplete ChangeSet data"


class _Derived(enum.Enum):
    """The default of a builder's option whose value follows from the other arguments."""

    DERIVED = "derived"


DERIVED = _Derived.DERIVED


def resource_change(
    action: str,
    logical_id: str,
    resource_type: str,
    *,
    replacement: str | None = None,
    details: list[dict[str, Any]] | tuple[()] = (),
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    policy_action: str | None = None,
    physical_id: str | None | _Derived = DERIVED,
    scope: list[str] | None | _Derived = DERIVED,
    change_set_id: str | None = None,
) -> dict[str, Any]:
    """One Changes[] entry. `physical_id`: by default "<logical id, lower case>-physical" for every
    action but Add ("Resources that you are adding don't have physical IDs", API_ResourceChange.html);
    a string is used as it is, None leaves the key out. `scope`: by default ["Properties"] when there
    are details, else []; None leaves the key out. `change_set_id`: a nested stack's own change set
    (ResourceChange.ChangeSetId, present with IncludeNestedStacks). `before`/`after` are dumped as
    BeforeContext/AfterContext (JSON text)."""
    rc: dict[str, Any] = {"Action": action, "LogicalResourceId": logical_id, "ResourceType": resource_type}
    if scope is DERIVED:
        scope = ["Properties"] if details else []
    if scope is not None:
        rc["Scope"] = scope
    rc["Details"] = list(details)
    if replacement is not None:
        rc["Replacement"] = replacement
    if policy_action:
        rc["PolicyAction"] = policy_action
    if physical_id is DERIVED:
        physical_id = None if action == "Add" else f"{logical_id.lower()}-physical"
    if physical_id is not None:
        rc["PhysicalResourceId"] = physical_id
    if change_set_id is not None:
        rc["ChangeSetId"] = change_set_id
    if before is not None:
        rc["BeforeContext"] = json.dumps(before)
    if after is not None:
        rc["AfterContext"] = json.dumps(after)
    return {"Type": "Resource", "ResourceChange": rc}


def detail(
    name: str,
    *,
    recreation: str = "Never",
    before: str | None = None,
    after: str | None = None,
    attribute: str = "Properties",
    change_type: str = "Modify",
    source: str = "DirectModification",
    entity: str | None = None,
    evaluation: str = "Static",
) -> dict[str, Any]:
    """One Details[] entry. For Attribute Properties, `name` is the property path below /Properties
    ("RedrivePolicy/maxReceiveCount"): Target.Name is its first part and Target.Path the whole, with
    RequiresRecreation; for any other attribute Name is null and the Target has neither
    (API_ResourceTargetDefinition.html). `entity` is CausingEntity (the parameter or resource that
    caused a ParameterReference or ResourceReference change); `evaluation` Static or Dynamic."""
    target: dict[str, Any] = {"Attribute": attribute, "AttributeChangeType": change_type}
    if attribute == "Properties":
        target |= {"Name": name.split("/")[0], "Path": f"/Properties/{name}", "RequiresRecreation": recreation}
    if before is not None:
        target["BeforeValue"] = before
    if after is not None:
        target["AfterValue"] = after
    out: dict[str, Any] = {"Target": target, "Evaluation": evaluation, "ChangeSource": source}
    if entity:
        out["CausingEntity"] = entity
    return out


def change_set(
    *changes: dict[str, Any],
    status_reason: str | None = None,
    parameters: Mapping[str, str] | None = None,
    change_set_id: str = CHANGE_SET_ID,
    stack_id: str = STACK_ID,
    status: str = "CREATE_COMPLETE",
    execution_status: str = "AVAILABLE",
    **fields: Any,
) -> dict[str, Any]:
    """A DescribeChangeSet response. ChangeSetName is the name in `change_set_id`; `parameters`, when
    given, is listed as Parameters (even when empty); `fields` are other members of
    DescribeChangeSetOutput as the API names them (CreationTime, Capabilities, NextToken...)."""
    out: dict[str, Any] = {
        "ChangeSetName": change_set_id.split("/")[1],
        "ChangeSetId": change_set_id,
        "StackId": stack_id,
        "StackName": "market-data-dev",
        "Status": status,
        "ExecutionStatus": execution_status,
    }
    if parameters is not None:
        out["Parameters"] = [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()]
    out["Changes"] = list(changes)
    out |= fields
    if status_reason:
        out["StatusReason"] = status_reason
    return out


def template(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"AWSTemplateFormatVersion": "2010-09-09", "Resources": copy.deepcopy(resources)}


def review_of(
    cs: dict[str, Any],
    old: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    *,
    overrides: Overrides | None = None,
    plain: dict[str, Any] | None = None,
    **fields: Any,
):  # -> Review
    inputs = ReviewInput(
        change_set=cs,
        plain_change_set=plain,
        nested=fields.pop("nested", {}),
        deployed_template=old,
        new_template=new or {},
        old_parameters=fields.pop("old_parameters", {}),
        new_parameters=fields.pop("new_parameters", {}),
        **fields,
    )
    return build_review(inputs, overrides or Overrides())


def kinds(review: Any) -> list[tuple[str, str]]:
    return sorted((f.kind, f.logical_id) for f in review.findings)
