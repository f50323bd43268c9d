"""The guard: which changes destroy data, decided from plain data (the change set's every signal and the
template diff), failing closed. No AWS calls; merge.py merges these findings with the rest."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from market_cfn.deploy.review.diff import MISSING, ResourceDiff, leaf_changes, show
from market_cfn.deploy.review.model import Finding, ResourceChangeView
from market_cfn.deploy.review.schema import UnknownSchema, create_only_paths, values_at

# Resource types that hold data: removing or replacing one loses what it holds. Nested stacks are here
# because removing one removes everything it holds.
STATEFUL_TYPES = frozenset(
    {
        # object, table and file stores
        "AWS::S3::Bucket",
        "AWS::S3Express::DirectoryBucket",
        "AWS::S3Outposts::Bucket",
        "AWS::S3Tables::TableBucket",
        "AWS::S3Tables::Table",
        "AWS::S3Tables::Namespace",
        "AWS::Lightsail::Bucket",
        "AWS::EFS::FileSystem",
        "AWS::FSx::FileSystem",
        "AWS::FSx::Volume",
        "AWS::FSx::StorageVirtualMachine",
        "AWS::EC2::Volume",
        "AWS::EC2::Instance",  # its root and attached volumes
        "AWS::Lightsail::Disk",
        # databases and caches
        "AWS::DynamoDB::Table",
        "AWS::DynamoDB::GlobalTable",
        "AWS::DAX::Cluster",
        "AWS::RDS::DBInstance",
        "AWS::RDS::DBCluster",
        "AWS::RDS::GlobalCluster",
        "AWS::Lightsail::Database",
        "AWS::DocDB::DBCluster",
        "AWS::DocDB::DBInstance",
        "AWS::DocDBElastic::Cluster",
        "AWS::Neptune::DBCluster",
        "AWS::Neptune::DBInstance",
        "AWS::NeptuneGraph::Graph",
        "AWS::Redshift::Cluster",
        "AWS::RedshiftServerless::Namespace",
        "AWS::RedshiftServerless::Workgroup",
        "AWS::ElastiCache::CacheCluster",
        "AWS::ElastiCache::ReplicationGroup",
        "AWS::ElastiCache::ServerlessCache",
        "AWS::ElastiCache::GlobalReplicationGroup",
        "AWS::MemoryDB::Cluster",
        "AWS::Cassandra::Keyspace",
        "AWS::Cassandra::Table",
        "AWS::QLDB::Ledger",
        "AWS::QLDB::Stream",
        "AWS::Timestream::Database",
        "AWS::Timestream::Table",
        "AWS::Timestream::InfluxDBInstance",
        "AWS::HealthLake::FHIRDatastore",
        "AWS::SageMaker::FeatureGroup",
        "AWS::SageMaker::Domain",
        # search
        "AWS::OpenSearchService::Domain",
        "AWS::Elasticsearch::Domain",
        "AWS::OpenSearchServerless::Collection",
        "AWS::Kendra::Index",
        # streams, queues, logs, archives
        "AWS::Kinesis::Stream",
        "AWS::KinesisFirehose::DeliveryStream",
        "AWS::KinesisVideo::Stream",
        "AWS::MSK::Cluster",
        "AWS::MSK::ServerlessCluster",
        "AWS::AmazonMQ::Broker",
        "AWS::SQS::Queue",
        "AWS::Events::Archive",
        "AWS::Logs::LogGroup",
        "AWS::Logs::LogStream",
        "AWS::CloudTrail::EventDataStore",
        "AWS::IoTAnalytics::Channel",
        "AWS::IoTAnalytics::Datastore",
        # secrets, parameters, keys, certificates authorities
        "AWS::SecretsManager::Secret",
        "AWS::SSM::Parameter",
        "AWS::KMS::Key",
        "AWS::KMS::ReplicaKey",
        "AWS::ACMPCA::CertificateAuthority",
        # registries and catalogs
        "AWS::ECR::Repository",
        "AWS::ECR::PublicRepository",
        "AWS::CodeArtifact::Repository",
        "AWS::CodeCommit::Repository",
        "AWS::Glue::Database",
        "AWS::Glue::Table",
        "AWS::Glue::Registry",
        "AWS::Glue::Schema",
        # identities and backups
        "AWS::Cognito::UserPool",
        "AWS::Cognito::IdentityPool",
        "AWS::Backup::BackupVault",
        "AWS::Backup::LogicallyAirGappedBackupVault",
        # nested stacks
        "AWS::CloudFormation::Stack",
    }
)

# DeletionPolicy / UpdateReplacePolicy values that say "this resource holds data".
RETAINING_POLICIES = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})

# ResourceChange.Action values (DescribeChangeSet; botocore cloudformation ChangeAction).
KNOWN_ACTIONS = frozenset({"Add", "Modify", "Remove", "Import", "Dynamic"})
# ResourceChange.PolicyAction (botocore PolicyAction). On a Modify CloudFormation sets it only when the
# resource is replaced (Replace*); any value there therefore means a replacement.
KNOWN_POLICY_ACTIONS = frozenset(
    {"Delete", "Retain", "Snapshot", "ReplaceAndDelete", "ReplaceAndRetain", "ReplaceAndSnapshot"}
)
# ResourceTargetDefinition.RequiresRecreation (botocore RequiresRecreation).
RECREATING = frozenset({"Always", "Conditionally"})
KNOWN_RECREATION = frozenset({"Never", "Conditionally", "Always", ""})


def is_stateful(resource: Mapping[str, Any] | None, extra_types: frozenset[str] = frozenset()) -> bool:
    """A stateful type, or a DeletionPolicy/UpdateReplacePolicy that keeps data."""
    if not isinstance(resource, Mapping):
        return False
    return (
        resource.get("Type") in STATEFUL_TYPES
        or resource.get("Type") in extra_types
        or resource.get("DeletionPolicy") in RETAINING_POLICIES
        or resource.get("UpdateReplacePolicy") in RETAINING_POLICIES
    )


def stateful_logical_ids(template: dict[str, Any], extra_types: frozenset[str] = frozenset()) -> list[str]:
    """Every logical id the backstop stack policy must protect: a stateful type (nested stacks included),
    or a resource whose DeletionPolicy or UpdateReplacePolicy keeps data."""
    resources = template.get("Resources") or {}
    return sorted(lid for lid, resource in resources.items() if is_stateful(resource, extra_types))


def _finding(kind: str, view_id: str, resource_type: str, what: str, causes: list[str]) -> Finding:
    # override/allowed are filled in by merge.py, which knows the nested path and the overrides.
    return Finding(kind, view_id, resource_type, what, tuple(causes), "", False, True)


def change_set_findings(view: ResourceChangeView, diff: ResourceDiff | None, region: str) -> list[Finding]:
    """The change set's own signals for one change of a stateful resource."""
    lid, rtype = view.logical_id, view.resource_type
    if view.action == "Remove":
        what = "removed" + (f" (PolicyAction {view.policy_action})" if view.policy_action else "")
        return [_finding("removal", lid, rtype, what, ["the change set removes it"])]
    if view.action == "Dynamic":
        return [
            _finding(
                "replacement",
                lid,
                rtype,
                "Action Dynamic: CloudFormation decides what happens only at execution",
                ["a Dynamic change may replace or remove it"],
            )
        ]
    if view.action in ("Add", "Import"):
        return []
    if view.action != "Modify":
        return [
            _finding(
                "replacement", lid, rtype, f"unknown Action {view.action!r}", ["an action the guard does not know"]
            )
        ]
    causes: list[str] = []
    recreating = [p for p in view.properties if p.requires_recreation in RECREATING]
    for p in recreating:
        how = "always" if p.requires_recreation == "Always" else "conditionally"
        causes.append(f"{p.name} ({how} requires replacement" + (f"; via {p.cause}" if p.cause else "") + ")")
    for p in view.properties:
        if p.requires_recreation not in KNOWN_RECREATION:
            causes.append(f"{p.name}: unknown RequiresRecreation {p.requires_recreation!r}")
    if view.policy_action:
        causes.append(
            f"PolicyAction {view.policy_action}"
            + ("" if view.policy_action in KNOWN_POLICY_ACTIONS else " (unknown)")
            + " on a Modify: the resource is replaced"
        )
    replacement = view.replacement
    if replacement in ("True", "Conditional"):
        causes.insert(0, f"Replacement: {replacement}")
    elif replacement == "False":
        if causes:
            causes.insert(0, "Replacement: False, contradicted by the details below")
    elif replacement == "":
        in_place = _in_place_per_template(diff, region)
        if in_place is None or causes:
            causes.insert(
                0,
                "Replacement not reported"
                + (": " + in_place_reason(diff, region) if not causes else ", and the details below say recreation"),
            )
    else:
        causes.insert(0, f"unknown Replacement value {replacement!r}")
    if not causes:
        return []
    what = f"replaced (Replacement: {replacement or 'not reported'})"
    return [_finding("replacement", lid, rtype, what, causes)]


def _in_place_per_template(diff: ResourceDiff | None, region: str) -> bool | None:
    """True when the template diff shows only changes the resource schema says update in place."""
    if diff is None or diff.action != "Modify" or diff.old_type != diff.new_type:
        return None
    try:
        paths = create_only_paths(diff.resource_type, region)
    except UnknownSchema:
        return None
    if create_only_changes(diff.old.get("Properties"), diff.new.get("Properties"), paths):
        return None
    return True


def in_place_reason(diff: ResourceDiff | None, region: str) -> str:
    if diff is None:
        return "the template diff shows no change to explain it (counted as a replacement)"
    try:
        create_only_paths(diff.resource_type, region)
    except UnknownSchema:
        return f"no resource schema for {diff.resource_type} to say it updates in place (counted as a replacement)"
    return "counted as a replacement"


def create_only_changes(old_props: Any, new_props: Any, paths: tuple[tuple[str, ...], ...]) -> list[str]:
    """ "TableName a → b" for each create-only property whose value differs."""
    out = []
    for path in paths:
        before, after = values_at(old_props or {}, path), values_at(new_props or {}, path)
        if leaf_changes(MISSING if before is None else before, MISSING if after is None else after):
            out.append(f"{'.'.join(path)} {show(before)} → {show(after)}")
    return out


def template_findings(diff: ResourceDiff, region: str) -> list[Finding]:
    """What the template diff alone predicts for a stateful resource, whatever the change set says."""
    lid, rtype = diff.logical_id, diff.resource_type
    if diff.action == "Remove":
        return [_finding("removal", lid, rtype, "removed from the template", ["no longer in the new template"])]
    if diff.action != "Modify":
        return []
    if diff.old_type != diff.new_type:
        what = f"replaced (type {diff.old_type} → {diff.new_type})"
        return [_finding("replacement", lid, rtype, what, ["a new type under the same logical id"])]
    props_changed = [leaf for leaf in diff.leaves if leaf.path.startswith("Properties")]
    if not props_changed:
        return []
    try:
        paths = create_only_paths(rtype, region)
    except UnknownSchema:
        causes = [f"{leaf.path[len('Properties.') :]} changed" for leaf in props_changed]
        what = f"may be replaced (no resource schema for {rtype}: any property change may replace it)"
        return [_finding("replacement", lid, rtype, what, causes)]
    changed = create_only_changes(diff.old.get("Properties"), diff.new.get("Properties"), paths)
    if not changed:
        return []
    causes = [f"{c} (create-only in the {rtype} schema)" for c in changed]
    return [_finding("replacement", lid, rtype, "replaced (template diff: a create-only property changes)", causes)]
