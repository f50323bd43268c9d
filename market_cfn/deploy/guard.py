"""The guard: which changes destroy data, decided from plain review data (no AWS calls)."""

from __future__ import annotations

from market_cfn.deploy.model import GuardViolation, ResourceChangeView

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
