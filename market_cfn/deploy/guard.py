"""The guard: which changes destroy data, decided from plain review data (no AWS calls)."""

from __future__ import annotations

from typing import Any

from market_cfn.deploy.model import Finding, ResourceChangeView

# Resource types whose removal or replacement destroys data. The guard refuses to execute
# a change set that removes or replaces one of these unless --allow-replacement names it.
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
        "AWS::CloudFormation::Stack",
    }
)

# DeletionPolicy / UpdateReplacePolicy values that say "this resource holds data".
RETAINING_POLICIES = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})


def stateful_logical_ids(template: dict[str, Any], extra_types: frozenset[str] = frozenset()) -> list[str]:
    """Every logical id the backstop stack policy must protect: a stateful type (nested stacks included),
    or a resource whose DeletionPolicy or UpdateReplacePolicy keeps data."""
    resources = template.get("Resources") or {}
    out = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict):
            continue
        if (
            resource.get("Type") in STATEFUL_TYPES | extra_types
            or resource.get("DeletionPolicy") in RETAINING_POLICIES
            or resource.get("UpdateReplacePolicy") in RETAINING_POLICIES
        ):
            out.append(logical_id)
    return sorted(out)


def guard_violation(view: ResourceChangeView) -> Finding | None:
    if view.resource_type not in STATEFUL_TYPES:
        return None
    override = f"--allow-replacement {view.logical_id}"
    if view.action == "Remove":
        what = "removed" + (f" (PolicyAction {view.policy_action})" if view.policy_action else "")
        return Finding(
            "removal",
            view.logical_id,
            view.resource_type,
            what,
            ("the resource is no longer in the template",),
            override,
            False,
            True,
        )
    if view.action == "Modify" and view.replacement in ("True", "Conditional"):
        causes = tuple(
            f"{p.name} ({'always' if p.requires_recreation == 'Always' else 'conditionally'} requires replacement"
            + (f"; via {p.cause}" if p.cause else "")
            + ")"
            for p in view.properties
            if p.requires_recreation in ("Always", "Conditionally")
        ) or ("CloudFormation names no property that requires recreation",)
        return Finding(
            "replacement",
            view.logical_id,
            view.resource_type,
            f"replaced (Replacement: {view.replacement})",
            causes,
            override,
            False,
            True,
        )
    return None
