"""In-place changes that destroy or unprotect data are guarded like replacements: kind
"unprotect", allowed only by --allow-unprotect ID, each shown as the property and before → after; from
the resolved template diff, the change set's details, or BeforeContext/AfterContext."""

from __future__ import annotations

from market_cfn.deploy import Overrides
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_dict
from tests.deploy_changesets import change_set, detail, resource_change, review_of, template

TABLE = {
    "Type": "AWS::DynamoDB::Table",
    "Properties": {
        "TableName": "market-data-dev",
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": "symbol", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "symbol", "KeyType": "HASH"}],
        "DeletionProtectionEnabled": True,
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
    },
}


def modified(resource: dict, **props) -> dict:
    return {**resource, "Properties": {**resource["Properties"], **props}}


# --- in-place unprotection ----------------------------------------------------------------

LOG_GROUP = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "/aws/lambda/x", "RetentionInDays": 3653}}
BUCKET = {
    "Type": "AWS::S3::Bucket",
    "Properties": {
        "BucketName": "market-data-dev",
        "VersioningConfiguration": {"Status": "Enabled"},
        "LifecycleConfiguration": {"Rules": [{"Id": "expire", "Status": "Enabled", "ExpirationInDays": 30}]},
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
        },
    },
}


def unprotect_review(logical_id: str, before: dict, after: dict, **kw):
    cs = change_set(resource_change(logical_id and "Modify", logical_id, before["Type"], replacement="False"))
    return review_of(cs, template(**{logical_id: before}), template(**{logical_id: after}), **kw)


def whats(review, kind="unprotect") -> list[str]:
    return [f"{f.what} ({'; '.join(f.causes)})" for f in review.findings if f.kind == kind]


def test_log_retention_3653_to_1_day_is_guarded():
    review = unprotect_review("Logs", LOG_GROUP, modified(LOG_GROUP, RetentionInDays=1))
    assert whats(review) == ["RetentionInDays 3653 → 1 (retention shortened)"]
    (finding,) = review.violations
    assert finding.override == "--allow-unprotect Logs" and finding.needs_human


def test_log_retention_lengthened_is_not_guarded():
    assert whats(unprotect_review("Logs", LOG_GROUP, modified(LOG_GROUP, RetentionInDays=3653 * 2))) == []


def test_log_retention_from_the_change_set_details_alone():
    cs = change_set(
        resource_change(
            "Modify",
            "Logs",
            "AWS::Logs::LogGroup",
            replacement="False",
            details=[detail("RetentionInDays", before="3653", after="1")],
        )
    )
    assert whats(review_of(cs)) == ["RetentionInDays 3653 → 1 (retention shortened)"]


def test_bucket_expiration_30_to_1_day_is_guarded():
    rules = {"Rules": [{"Id": "expire", "Status": "Enabled", "ExpirationInDays": 1}]}
    review = unprotect_review("DataBucket", BUCKET, modified(BUCKET, LifecycleConfiguration=rules))
    assert whats(review) == ["LifecycleConfiguration.Rules[expire].ExpirationInDays 30 → 1 (expiration shortened)"]


def test_a_new_noncurrent_expiration_is_guarded():
    rules = {
        "Rules": [
            {"Id": "expire", "Status": "Enabled", "ExpirationInDays": 30},
            {"Id": "old", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 1}},
        ]
    }
    review = unprotect_review("DataBucket", BUCKET, modified(BUCKET, LifecycleConfiguration=rules))
    assert whats(review) == [
        "LifecycleConfiguration.Rules[old].NoncurrentVersionExpiration (none) → 1 (expiration added)"
    ]


def test_versioning_suspended_and_encryption_removed_are_guarded():
    after = modified(BUCKET, VersioningConfiguration={"Status": "Suspended"})
    del after["Properties"]["BucketEncryption"]
    found = whats(unprotect_review("DataBucket", BUCKET, after))
    assert "VersioningConfiguration.Status Enabled → Suspended (versioning suspended)" in found
    assert any(w.startswith("BucketEncryption.") and "encryption removed" in w for w in found)


def test_table_deletion_protection_off_pitr_off_and_ttl_on_are_guarded():
    after = modified(
        TABLE,
        DeletionProtectionEnabled=False,
        PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False},
        TimeToLiveSpecification={"AttributeName": "expires", "Enabled": True},
    )
    found = whats(unprotect_review("MarketDataTable", TABLE, after))
    assert sorted(found) == [
        "DeletionProtectionEnabled true → false (deletion protection off)",
        "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled true → false (point-in-time recovery off)",
        "TimeToLiveSpecification.Enabled (absent) → true (TTL on: items expire)",
    ]


def test_queue_stream_and_archive_retention_shortened_are_guarded():
    queue = {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}}
    stream = {"Type": "AWS::Kinesis::Stream", "Properties": {"RetentionPeriodHours": 168}}
    archive = {"Type": "AWS::Events::Archive", "Properties": {"SourceArn": "arn:bus"}}  # absent: kept forever
    assert whats(unprotect_review("Q", queue, modified(queue, MessageRetentionPeriod=60)))
    assert whats(unprotect_review("S", stream, modified(stream, RetentionPeriodHours=24)))
    assert whats(unprotect_review("A", archive, modified(archive, RetentionDays=7)))


def test_deletion_policy_retain_to_delete_is_guarded():
    retained = {**LOG_GROUP, "DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    dropped = {**LOG_GROUP}
    found = whats(unprotect_review("Logs", retained, dropped))
    assert sorted(found) == [
        "DeletionPolicy Retain → Delete (the resource's data is no longer kept)",
        "UpdateReplacePolicy Retain → Delete (the resource's data is no longer kept)",
    ]


def test_the_readme_prod_sequence_retain_data_then_without_is_blocked():
    # bin/deploy --env prod --retain-data, then bin/deploy --env prod --allow-replacement MarketDataTable --yes
    old, new = render_dict(StackConfig(retain_data=True)), render_dict(StackConfig())
    params = {"EnvironmentSuffix": "prod", "CodeS3Bucket": "artifacts", "CodeS3Key": "market-data/a.zip"}
    cs = change_set(
        *(
            resource_change("Modify", lid, old["Resources"][lid]["Type"], replacement="False")
            for lid in ("DataBucket", "RejectsBucket", "MarketDataTable")
        )
    )
    review = review_of(
        cs,
        old,
        new,
        old_parameters=params,
        new_parameters=params,
        overrides=Overrides(allow_replacement=frozenset({"MarketDataTable"})),
    )
    blocked = {(f.logical_id, f.what) for f in review.blocking(assume_yes=True)}
    for lid in ("DataBucket", "RejectsBucket", "MarketDataTable"):
        assert (lid, "DeletionPolicy Retain → Delete") in blocked
    assert ("MarketDataTable", "DeletionProtectionEnabled true → false") in blocked
    # --allow-replacement names no replacement here: it matches nothing and allows nothing
    assert review.unmatched_overrides == ["--allow-replacement MarketDataTable"]


def test_allow_unprotect_allows_exactly_the_named_resource():
    after = modified(LOG_GROUP, RetentionInDays=1)
    cs = change_set(
        resource_change("Modify", "A", "AWS::Logs::LogGroup", replacement="False"),
        resource_change("Modify", "B", "AWS::Logs::LogGroup", replacement="False"),
    )
    review = review_of(
        cs,
        template(A=LOG_GROUP, B=LOG_GROUP),
        template(A=after, B=after),
        overrides=Overrides(allow_unprotect=frozenset({"A"}), allow_replacement=frozenset({"B"})),
    )
    assert [f.logical_id for f in review.violations] == ["B"]  # --allow-replacement does not unprotect
    assert [f.logical_id for f in review.allowed] == ["A"]
    assert review.unmatched_overrides == ["--allow-replacement B"]


def test_unprotection_from_before_and_after_context_without_templates():
    before = {"Properties": TABLE["Properties"]}
    after = {
        "Properties": {**TABLE["Properties"], "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": False}}
    }
    cs = change_set(
        resource_change(
            "Modify",
            "MarketDataTable",
            "AWS::DynamoDB::Table",
            replacement="False",
            details=[detail("PointInTimeRecoverySpecification")],
            before=before,
            after=after,
        )
    )
    assert whats(review_of(cs)) == [
        "PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled true → false (point-in-time recovery off)"
    ]


def test_deletion_policy_weakened_from_the_change_set_details_alone():
    cs = change_set(
        resource_change(
            "Modify",
            "MarketDataTable",
            "AWS::DynamoDB::Table",
            replacement="False",
            details=[detail("DeletionPolicy", attribute="DeletionPolicy", before="Retain", after="Delete")],
        )
    )
    assert whats(review_of(cs)) == ["DeletionPolicy Retain → Delete (the resource's data is no longer kept)"]


def test_encryption_changes_are_found_by_property_name_not_by_accident():
    from market_cfn.deploy.review.unprotect import unprotections

    queue = {"Properties": {"KmsMasterKeyId": "alias/a", "ProcessedCount": 1}}
    changed = {"Properties": {"KmsMasterKeyId": "alias/b", "ProcessedCount": 2}}
    found = unprotections("AWS::SQS::Queue", queue, changed)
    assert [(u.label, u.why) for u in found] == [("KmsMasterKeyId", "encryption changed")]


def test_a_renamed_lifecycle_rule_is_compared_with_the_old_rules_over_the_same_objects():
    from market_cfn.deploy.review.unprotect import unprotections

    def bucket(*rules):
        return {"Properties": {"LifecycleConfiguration": {"Rules": list(rules)}}}

    old = bucket(
        {
            "Id": "ExpireOld",
            "Status": "Enabled",
            "ExpirationInDays": 365,
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        }
    )
    same = bucket(
        {"Id": "ExpireNoncurrent", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}
    )
    assert unprotections("AWS::S3::Bucket", old, same) == []  # the bootstrap's version 3: kept as long
    shorter = bucket({"Id": "Renamed", "Status": "Enabled", "NoncurrentVersionExpiration": {"NoncurrentDays": 1}})
    assert [(u.what, u.why) for u in unprotections("AWS::S3::Bucket", old, shorter)] == [
        ("LifecycleConfiguration.Rules[Renamed].NoncurrentVersionExpiration 30 → 1", "expiration shortened")
    ]
    other_objects = bucket({"Id": "Logs", "Status": "Enabled", "Prefix": "logs/", "ExpirationInDays": 400})
    assert [u.why for u in unprotections("AWS::S3::Bucket", old, other_objects)] == ["expiration added"]
