"""In-place changes that destroy or unprotect data (guarded like replacements): a weakened DeletionPolicy,
deletion protection or point-in-time recovery off, versioning suspended, expiration added or shortened,
retention shortened, encryption removed or changed, TTL turned on. Pure: resolved resources in, findings out."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from market_cfn.deploy.review.diff import KNOWN_AFTER_APPLY, MISSING, leaf_changes, show


@dataclass(frozen=True)
class Unprotection:
    label: str  # the property, e.g. "RetentionInDays", "LifecycleConfiguration.Rules[expire].ExpirationInDays"
    before: str
    after: str
    why: str  # "retention shortened"

    @property
    def what(self) -> str:
        return f"{self.label} {self.before} → {self.after}"


# How strongly each policy keeps data (DeletionPolicy attribute, CloudFormation user guide:
# https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-attribute-deletionpolicy.html).
_POLICY_RANK = {"Delete": 0, "Snapshot": 1, "Retain": 2, "RetainExceptOnCreate": 2}
# Without the attribute CloudFormation deletes, except RDS clusters and instances outside a cluster,
# which it snapshots (same page).
_SNAPSHOT_BY_DEFAULT = frozenset({"AWS::RDS::DBCluster", "AWS::RDS::DBInstance"})

# Property names that switch deletion/termination protection on, wherever they sit in the properties
# (DynamoDB DeletionProtectionEnabled, also per GlobalTable replica; RDS/DocDB/Neptune DeletionProtection;
# Cognito UserPool DeletionProtection ACTIVE/INACTIVE; Logs LogGroup DeletionProtectionEnabled;
# EC2 Instance DisableApiTermination).
_PROTECTION_KEYS = frozenset({"DeletionProtection", "DeletionProtectionEnabled", "DisableApiTermination"})
# QLDB::Ledger DeletionProtection defaults to true ("If not specified, the default is true").
_PROTECTED_BY_DEFAULT = frozenset({("AWS::QLDB::Ledger", "DeletionProtection")})
_ON = frozenset({"true", "active", "enabled"})

# Retention properties: (type, property path) -> value when absent; None = kept forever when absent.
# Logs RetentionInDays (absent: never expire), SQS MessageRetentionPeriod (default 345600 s),
# Kinesis RetentionPeriodHours (default 24), Events Archive RetentionDays (absent or 0: indefinitely),
# Timestream memory/magnetic store retention, RDS/DocDB/Neptune BackupRetentionPeriod (default 1),
# ElastiCache SnapshotRetentionLimit (default 0), DynamoDB PITR RecoveryPeriodInDays (default 35),
# CloudTrail EventDataStore RetentionPeriod (default 2557 days).
_RETENTION: dict[str, tuple[tuple[str, float | None], ...]] = {
    "AWS::Logs::LogGroup": (("RetentionInDays", None),),
    "AWS::SQS::Queue": (("MessageRetentionPeriod", 345600),),
    "AWS::Kinesis::Stream": (("RetentionPeriodHours", 24),),
    "AWS::Events::Archive": (("RetentionDays", None),),
    "AWS::Timestream::Table": (
        ("RetentionProperties.MemoryStoreRetentionPeriodInHours", 6),
        ("RetentionProperties.MagneticStoreRetentionPeriodInDays", 73000),
    ),
    "AWS::RDS::DBInstance": (("BackupRetentionPeriod", 1),),
    "AWS::RDS::DBCluster": (("BackupRetentionPeriod", 1),),
    "AWS::DocDB::DBCluster": (("BackupRetentionPeriod", 1),),
    "AWS::Neptune::DBCluster": (("BackupRetentionPeriod", 1),),
    "AWS::ElastiCache::ReplicationGroup": (("SnapshotRetentionLimit", 0),),
    "AWS::ElastiCache::CacheCluster": (("SnapshotRetentionLimit", 0),),
    "AWS::DynamoDB::Table": (("PointInTimeRecoverySpecification.RecoveryPeriodInDays", 35),),
    "AWS::CloudTrail::EventDataStore": (("RetentionPeriod", 2557),),
    # The table's TTL retention reaches the items through the writers' environment (PointsRetentionDays,
    # BarsRetentionDays -> handlers.contract): absent or 0, the handlers write no expiry (kept for good).
    "AWS::Lambda::Function": (
        ("Environment.Variables.POINTS_RETENTION_DAYS", None),
        ("Environment.Variables.BARS_RETENTION_DAYS", None),
    ),
}
# Stateless types whose retention properties still decide how long data is kept (the review checks them too).
RETENTION_CARRIERS = frozenset({"AWS::Lambda::Function"})
# Forever-when-absent also covers 0 for an Events archive ("0 ... indefinitely") and the TTL retention.
_ZERO_IS_FOREVER = frozenset({"AWS::Events::Archive", "AWS::Lambda::Function"})

# Case-sensitive on purpose: SSESpecification, SqsManagedSseEnabled, KmsKeyId, KMSMasterKeyId,
# BucketEncryption, StorageEncrypted - but not "Processed" or "Classes".
_ENCRYPTION = re.compile(r"Encrypt|encrypt|KMS|Kms|kms|SSE|Sse")
_EXPIRATIONS = (
    "ExpirationInDays",
    "ExpirationDate",
    "NoncurrentVersionExpirationInDays",
    "NoncurrentVersionExpiration",
)
_BUCKETS = frozenset({"AWS::S3::Bucket", "AWS::S3Express::DirectoryBucket"})
_TABLES = frozenset({"AWS::DynamoDB::Table", "AWS::DynamoDB::GlobalTable"})


def unprotections(resource_type: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Unprotection]:
    """Each way `after` protects data less than `before`. Both are resources ({"Properties": ...,
    "DeletionPolicy": ...}); a side that is only partly known (from change-set details) carries only the
    changed keys, and a key absent on both sides is never a change."""
    old_props = _mapping(before.get("Properties"))
    new_props = _mapping(after.get("Properties"))
    found = list(_policies(resource_type, before, after))
    found += _deletion_protection(resource_type, old_props, new_props)
    found += _retention(resource_type, old_props, new_props)
    found += _encryption(old_props, new_props)
    if resource_type in _BUCKETS:
        found += _versioning(old_props, new_props) + _expiration(old_props, new_props)
    if resource_type in _TABLES:
        found += _point_in_time_recovery(old_props, new_props) + _ttl(old_props, new_props)
    unique: dict[str, Unprotection] = {}
    for u in found:
        unique.setdefault(u.label, u)
    return list(unique.values())


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _policies(resource_type: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> Iterator[Unprotection]:
    default = "Snapshot" if resource_type in _SNAPSHOT_BY_DEFAULT else "Delete"
    for attribute in ("DeletionPolicy", "UpdateReplacePolicy"):
        if attribute not in before and attribute not in after:
            continue
        old, new = str(before.get(attribute, default)), str(after.get(attribute, default))
        if old == new:
            continue
        if new not in _POLICY_RANK or _POLICY_RANK[new] < _POLICY_RANK.get(old, 2):
            yield Unprotection(attribute, old, new, "the resource's data is no longer kept")


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flat(sub, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for i, sub in enumerate(value):
            out.update(_flat(sub, f"{path}[{i}]"))
        return out
    return {path: value}


def _on(value: Any) -> bool:
    return str(value).lower() in _ON


def _deletion_protection(resource_type: str, old: dict[str, Any], new: dict[str, Any]) -> list[Unprotection]:
    out = []
    flat_old, flat_new = _flat(old), _flat(new)
    for path in sorted(flat_old.keys() | flat_new.keys()):
        key = re.sub(r"\[\d+\]$", "", path).rsplit(".", 1)[-1]
        if key not in _PROTECTION_KEYS:
            continue
        default = (resource_type, key) in _PROTECTED_BY_DEFAULT
        was = _on(flat_old[path]) if path in flat_old else default
        now = _on(flat_new[path]) if path in flat_new else default
        if was and not now:
            before = show(flat_old.get(path, default))
            out.append(Unprotection(path, before, show(flat_new.get(path, MISSING)), "deletion protection off"))
    return out


def _number(value: Any) -> float | None:
    try:
        return float(str(value))
    except ValueError:
        return None


def _retention(resource_type: str, old: dict[str, Any], new: dict[str, Any]) -> list[Unprotection]:
    out = []
    for path, default in _RETENTION.get(resource_type, ()):
        keys = path.split(".")
        before, after = _get(old, keys), _get(new, keys)
        if before is MISSING and after is MISSING:
            continue
        was, now = _days(resource_type, before, default), _days(resource_type, after, default)
        if was == now:
            continue
        if now == "unknown" or was == "unknown":
            out.append(Unprotection(path, show(before), show(after), "retention known only at execution"))
        elif (was is None and now is not None) or (was is not None and now is not None and float(now) < float(was)):
            out.append(Unprotection(path, _forever(before), _forever(after), "retention shortened"))
    return out


def _days(resource_type: str, value: Any, default: float | None) -> float | None | str:
    if value is MISSING or value is None:
        return default
    number = _number(value)
    if number is None:
        return "unknown"
    if number == 0 and resource_type in _ZERO_IS_FOREVER:
        return None
    return number


def _forever(value: Any) -> str:
    return "(absent: kept forever or the default)" if value is MISSING else show(value)


def _get(value: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return MISSING
        value = value[key]
    return value


def _encryption(old: dict[str, Any], new: dict[str, Any]) -> list[Unprotection]:
    out = []
    flat_old, flat_new = _flat(old), _flat(new)
    for path in sorted(flat_old):
        if not _ENCRYPTION.search(path):
            continue
        before, after = flat_old[path], flat_new.get(path, MISSING)
        if after is MISSING:
            out.append(Unprotection(path, show(before), "(absent)", "encryption removed"))
        elif leaf_changes(before, after):
            why = "encryption known only at execution" if after == KNOWN_AFTER_APPLY else "encryption changed"
            out.append(Unprotection(path, show(before), show(after), why))
    return out


def _versioning(old: dict[str, Any], new: dict[str, Any]) -> list[Unprotection]:
    before, after = _get(old, ["VersioningConfiguration", "Status"]), _get(new, ["VersioningConfiguration", "Status"])
    if before == "Enabled" and after != "Enabled":
        return [Unprotection("VersioningConfiguration.Status", "Enabled", show(after), "versioning suspended")]
    return []


def _rules(props: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rules = _get(props, ["LifecycleConfiguration", "Rules"])
    items = rules if isinstance(rules, list) else list(rules.values()) if isinstance(rules, dict) else []
    return {str(r.get("Id") or f"#{i}"): r for i, r in enumerate(items) if isinstance(r, dict)}


_FILTER_KEYS = ("Prefix", "Filter", "TagFilters", "ObjectSizeGreaterThan", "ObjectSizeLessThan")


def _same_objects(rule: dict[str, Any], old_rules: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """For a rule whose Id is new: the old enabled rules over exactly the same objects (equal filter),
    as one rule with each expiration at its shortest (S3 applies the earliest of overlapping rules)."""
    same = [
        r
        for r in old_rules.values()
        if str(r.get("Status", "Enabled")) == "Enabled" and all(r.get(k) == rule.get(k) for k in _FILTER_KEYS)
    ]
    merged: dict[str, Any] = {}
    for field in _EXPIRATIONS:
        values = [v for v in (_expiry(r, field) for r in same) if v is not MISSING]
        if not values:
            continue
        shortest = values[0]
        for value in values[1:]:
            if _shorter(field, value, shortest):
                shortest = value
        merged[field] = {"NoncurrentDays": shortest} if field == "NoncurrentVersionExpiration" else shortest
    return merged


def _expiry(rule: dict[str, Any], field: str) -> Any:
    return _get(rule, [field, "NoncurrentDays"]) if field == "NoncurrentVersionExpiration" else rule.get(field, MISSING)


def _shorter(field: str, value: Any, than: Any) -> bool:
    if field == "ExpirationDate":
        return str(value) < str(than)
    n, w = _number(value), _number(than)
    return n is None or w is None or n < w


def _expiration(old: dict[str, Any], new: dict[str, Any]) -> list[Unprotection]:
    """S3 lifecycle rules (matched by Id, else by position; a rule with a new Id by the old rules with the
    same filter): an expiration added or shortened."""
    out = []
    old_rules, new_rules = _rules(old), _rules(new)
    for rule_id, rule in new_rules.items():
        if str(rule.get("Status", "Enabled")) != "Enabled":
            continue
        previous = old_rules[rule_id] if rule_id in old_rules else _same_objects(rule, old_rules)
        active = str(previous.get("Status", "Enabled")) == "Enabled" and bool(previous)
        for field in _EXPIRATIONS:
            now = _expiry(rule, field)
            if now is MISSING:
                continue
            was = _expiry(previous, field) if active else MISSING
            label = f"LifecycleConfiguration.Rules[{rule_id}].{field}"
            if was is MISSING:
                out.append(Unprotection(label, "(none)", show(now), "expiration added"))
            elif _shorter(field, now, was):
                out.append(Unprotection(label, show(was), show(now), "expiration shortened"))
    return out


def _point_in_time_recovery(old: dict[str, Any], new: dict[str, Any]) -> list[Unprotection]:
    out = []
    flat_old, flat_new = _flat(old), _flat(new)
    for path in sorted(flat_old):
        if path.endswith("PointInTimeRecoveryEnabled") and _on(flat_old[path]) and not _on(flat_new.get(path, False)):
            out.append(
                Unprotection(
                    path, show(flat_old[path]), show(flat_new.get(path, MISSING)), "point-in-time recovery off"
                )
            )
    return out


def _ttl(old: dict[str, Any], new: dict[str, Any]) -> list[Unprotection]:
    before, after = _mapping(old.get("TimeToLiveSpecification")), _mapping(new.get("TimeToLiveSpecification"))
    if not _on(after.get("Enabled", False)):
        return []
    if not _on(before.get("Enabled", False)):
        return [
            Unprotection(
                "TimeToLiveSpecification.Enabled", show(before.get("Enabled", MISSING)), "true", "TTL on: items expire"
            )
        ]
    if before.get("AttributeName") != after.get("AttributeName"):
        return [
            Unprotection(
                "TimeToLiveSpecification.AttributeName",
                show(before.get("AttributeName")),
                show(after.get("AttributeName")),
                "TTL on another attribute: other items expire",
            )
        ]
    return []
