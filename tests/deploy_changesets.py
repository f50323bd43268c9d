"""Change sets and templates for the guard's tests, shaped exactly as botocore's cloudformation service
model (botocore/data/cloudformation/2010-05-15/service-2.json, DescribeChangeSetOutput) and the
CloudFormation API reference document them:

- Changes[].Type "Resource" with ResourceChange {Action: Add|Modify|Remove|Import|Dynamic,
  LogicalResourceId, PhysicalResourceId, ResourceType, Replacement: True|False|Conditional (only for
  Modify), PolicyAction: Delete|Retain|Snapshot|ReplaceAndDelete|ReplaceAndRetain|ReplaceAndSnapshot,
  Scope, Details[], BeforeContext/AfterContext (JSON text, only with IncludePropertyValues)}
  (API_ResourceChange.html);
- Details[] {Target {Attribute: Properties|Metadata|CreationPolicy|UpdatePolicy|DeletionPolicy|
  UpdateReplacePolicy|Tags, Name, Path, RequiresRecreation: Never|Conditionally|Always, BeforeValue,
  AfterValue, AttributeChangeType: Add|Remove|Modify}, Evaluation: Static|Dynamic, ChangeSource,
  CausingEntity} (API_ResourceChangeDetail.html, API_ResourceTargetDefinition.html);
- StatusReason: free text; CloudFormation writes "[WARN] --include-property-values option can return
  incomplete ChangeSet data" when the described values are incomplete (aws/aws-cdk-cli#1780).
"""

from __future__ import annotations

import copy
import json
from typing import Any

from market_cfn.deploy import Overrides, ReviewInput, build_review

ACCOUNT = "123456789012"
STACK_ID = f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/market-data-dev/5e7e0b1c"
INCOMPLETE_WARNING = "[WARN] --include-property-values option can return incomplete ChangeSet data"


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
) -> dict[str, Any]:
    rc: dict[str, Any] = {
        "Action": action,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "Scope": ["Properties"] if details else [],
        "Details": list(details),
    }
    if replacement is not None:
        rc["Replacement"] = replacement
    if policy_action:
        rc["PolicyAction"] = policy_action
    if action != "Add":
        rc["PhysicalResourceId"] = f"{logical_id.lower()}-physical"
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
) -> dict[str, Any]:
    target: dict[str, Any] = {"Attribute": attribute, "AttributeChangeType": change_type}
    if attribute == "Properties":
        target |= {"Name": name.split("/")[0], "Path": f"/Properties/{name}", "RequiresRecreation": recreation}
    if before is not None:
        target["BeforeValue"] = before
    if after is not None:
        target["AfterValue"] = after
    return {"Target": target, "Evaluation": "Static", "ChangeSource": source}


def change_set(*changes: dict[str, Any], status_reason: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ChangeSetName": "deploy-20261126T090000Z-abc123",
        "ChangeSetId": f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:changeSet/deploy-20261126T090000Z-abc123/0b1c",
        "StackId": STACK_ID,
        "StackName": "market-data-dev",
        "Status": "CREATE_COMPLETE",
        "ExecutionStatus": "AVAILABLE",
        "Changes": list(changes),
    }
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
