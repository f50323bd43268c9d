"""The guard decides from every signal of the change set and fails closed: each way a deploy can destroy
or unprotect data is blocked, harmless changes are not. Plain data in (botocore-shaped change sets,
templates), findings out; see tests/deploy_changesets.py for the shapes and the docs behind them."""

from __future__ import annotations

import pytest

from market_cfn.deploy import Overrides, stateful_logical_ids
from market_cfn.deploy.review.guard import STATEFUL_TYPES
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_dict
from tests.deploy_changesets import (
    INCOMPLETE_WARNING,
    change_set,
    detail,
    kinds,
    resource_change,
    review_of,
    template,
)

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
QUEUE = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": "ProcessingQueue-dev", "VisibilityTimeout": 900}}
FUNCTION = {
    "Type": "AWS::Lambda::Function",
    "Properties": {"Code": {"S3Bucket": "artifacts", "S3Key": "market-data/a5847.zip"}, "Handler": "h.handler"},
}


def modified(resource: dict, **props) -> dict:
    out = {**resource, "Properties": {**resource["Properties"], **props}}
    return out


# --- the change set's own signals -----------------------------------------------------------


def test_a_modify_without_replacement_whose_detail_requires_recreation_is_blocked():
    # Replacement absent, RequiresRecreation Always on TableName: contradictory/missing -> a replacement
    cs = change_set(
        resource_change(
            "Modify",
            "MarketDataTable",
            "AWS::DynamoDB::Table",
            details=[detail("TableName", recreation="Always", before="market-data-dev", after="market-data-x")],
        )
    )
    review = review_of(cs)
    assert kinds(review) == [("replacement", "MarketDataTable")]
    (finding,) = review.violations
    assert finding.override == "--allow-replacement MarketDataTable" and finding.needs_human
    assert any("TableName (always requires replacement" in c for c in finding.causes)


def test_policy_action_replace_and_delete_blocks_even_with_replacement_false():
    cs = change_set(
        resource_change(
            "Modify", "DataBucket", "AWS::S3::Bucket", replacement="False", policy_action="ReplaceAndDelete"
        )
    )
    review = review_of(cs)
    assert kinds(review) == [("replacement", "DataBucket")]
    assert any("PolicyAction ReplaceAndDelete" in c for c in review.violations[0].causes)


def test_replacement_false_contradicted_by_a_conditional_detail_blocks():
    cs = change_set(
        resource_change(
            "Modify",
            "DataBucket",
            "AWS::S3::Bucket",
            replacement="False",
            details=[detail("BucketName", recreation="Conditionally", before="a", after="b")],
        )
    )
    assert kinds(review_of(cs)) == [("replacement", "DataBucket")]


def test_action_dynamic_on_the_table_blocks():
    review = review_of(change_set(resource_change("Dynamic", "MarketDataTable", "AWS::DynamoDB::Table")))
    assert kinds(review) == [("replacement", "MarketDataTable")]
    assert "Dynamic" in review.violations[0].what


def test_an_unknown_action_fails_closed():
    review = review_of(change_set(resource_change("Transmogrify", "MarketDataTable", "AWS::DynamoDB::Table")))
    assert review.blocked


def test_removing_a_nested_stack_blocks():
    cs = change_set(resource_change("Remove", "StorageStack", "AWS::CloudFormation::Stack", policy_action="Delete"))
    review = review_of(cs)
    assert kinds(review) == [("removal", "StorageStack")]
    assert review.violations[0].what == "removed (PolicyAction Delete)"


DATA_HOLDING = [
    "AWS::Timestream::Table",
    "AWS::Timestream::Database",
    "AWS::OpenSearchService::Domain",
    "AWS::Elasticsearch::Domain",
    "AWS::SecretsManager::Secret",
    "AWS::SSM::Parameter",
    "AWS::ECR::Repository",
    "AWS::Cognito::UserPool",
    "AWS::ElastiCache::ReplicationGroup",
    "AWS::ElastiCache::CacheCluster",
    "AWS::Redshift::Cluster",
    "AWS::Backup::BackupVault",
    "AWS::S3Express::DirectoryBucket",
    "AWS::S3::Bucket",
    "AWS::EC2::Volume",
    "AWS::MemoryDB::Cluster",
    "AWS::DocDB::DBCluster",
    "AWS::Neptune::DBCluster",
    "AWS::Kinesis::Stream",
    "AWS::KinesisFirehose::DeliveryStream",
    "AWS::MSK::Cluster",
    "AWS::EFS::FileSystem",
    "AWS::FSx::FileSystem",
    "AWS::QLDB::Ledger",
    "AWS::Glue::Table",
    "AWS::Glue::Database",
    "AWS::RDS::DBCluster",
    "AWS::DynamoDB::GlobalTable",
    "AWS::SQS::Queue",
    "AWS::Logs::LogGroup",
    "AWS::Events::Archive",
    "AWS::KMS::Key",
    "AWS::CloudFormation::Stack",
]


@pytest.mark.parametrize("resource_type", DATA_HOLDING)
def test_removing_any_data_holding_type_blocks(resource_type):
    assert resource_type in STATEFUL_TYPES
    review = review_of(change_set(resource_change("Remove", "Store", resource_type, policy_action="Delete")))
    assert kinds(review) == [("removal", "Store")]


@pytest.mark.parametrize(
    "resource_type", ["AWS::Timestream::Table", "AWS::SecretsManager::Secret", "AWS::ECR::Repository"]
)
def test_replacing_a_data_holding_type_blocks(resource_type):
    cs = change_set(resource_change("Modify", "Store", resource_type, replacement="True"))
    assert kinds(review_of(cs)) == [("replacement", "Store")]


def test_stateless_changes_are_not_guarded_as_data_loss():
    cs = change_set(
        resource_change("Modify", "Fn", "AWS::Lambda::Function", replacement="True", policy_action="ReplaceAndDelete"),
        resource_change("Remove", "Alarm", "AWS::CloudWatch::Alarm", policy_action="Delete"),
    )
    review = review_of(cs)
    assert review.violations == []
    # a function runs with a role: a change nobody names is not known to be harmless (--yes only)
    assert [(f.kind, f.logical_id, f.override) for f in review.findings] == [("change", "Fn", "--allow-change Fn")]


def test_a_retained_resource_of_any_type_is_stateful():
    old = template(Topic={"Type": "AWS::SNS::Topic", "DeletionPolicy": "Retain", "Properties": {}})
    cs = change_set(resource_change("Remove", "Topic", "AWS::SNS::Topic", policy_action="Retain"))
    assert kinds(review_of(cs, old, template())) == [("removal", "Topic")]
    assert stateful_logical_ids(old) == ["Topic"]


def test_user_added_stateful_types_are_guarded():
    cs = change_set(resource_change("Remove", "Store", "Custom::VectorStore"))
    assert review_of(cs).findings == []
    guarded = review_of(cs, overrides=Overrides(extra_stateful_types=frozenset({"Custom::VectorStore"})))
    assert kinds(guarded) == [("removal", "Store")]


# --- the template diff, independent of the change set ------------------------------------


def moto_modify(logical_id: str, resource_type: str) -> dict:
    """What moto's DescribeChangeSet gives: Action Modify, no Replacement, no details."""
    return resource_change("Modify", logical_id, resource_type)


def test_renaming_the_table_is_blocked_by_the_template_diff_when_the_change_set_is_silent():
    old = template(MarketDataTable=TABLE)
    new = template(MarketDataTable=modified(TABLE, TableName="market-data-renamed"))
    review = review_of(change_set(moto_modify("MarketDataTable", "AWS::DynamoDB::Table")), old, new)
    assert kinds(review) == [("replacement", "MarketDataTable")]
    assert any("TableName market-data-dev → market-data-renamed (create-only" in c for c in review.violations[0].causes)


def test_a_parameter_that_renames_the_table_is_resolved_on_both_sides():
    table = modified(TABLE, TableName={"Fn::Sub": "market-data-${EnvironmentSuffix}"})
    tpl = template(MarketDataTable=table)
    tpl["Parameters"] = {"EnvironmentSuffix": {"Type": "String", "Default": "dev"}}
    # as real CloudFormation says it: Replacement False, no details (nothing else differs)
    cs = change_set(resource_change("Modify", "MarketDataTable", "AWS::DynamoDB::Table", replacement="False"))
    same = review_of(
        cs, tpl, tpl, old_parameters={"EnvironmentSuffix": "dev"}, new_parameters={"EnvironmentSuffix": "dev"}
    )
    assert same.violations == []
    # a Modify no source explains is not known to be harmless: it waits for a human or --allow-change
    assert kinds(same) == [("change", "MarketDataTable")]
    renamed = review_of(
        cs, tpl, tpl, old_parameters={"EnvironmentSuffix": "dev"}, new_parameters={"EnvironmentSuffix": "prod"}
    )
    assert ("replacement", "MarketDataTable") in kinds(renamed)


def test_changing_the_key_schema_is_blocked_by_the_template_diff():
    old = template(MarketDataTable=TABLE)
    new = template(MarketDataTable=modified(TABLE, KeySchema=[{"AttributeName": "isin", "KeyType": "HASH"}]))
    review = review_of(change_set(moto_modify("MarketDataTable", "AWS::DynamoDB::Table")), old, new)
    assert kinds(review) == [("replacement", "MarketDataTable")]
    assert any(c.startswith("KeySchema ") for c in review.violations[0].causes)


def test_a_resource_missing_from_the_new_template_is_a_removal_even_if_the_change_set_omits_it():
    review = review_of(change_set(), template(MarketDataTable=TABLE), template())
    assert kinds(review) == [("removal", "MarketDataTable")]


def test_a_stateful_type_without_a_schema_fails_closed_on_any_property_change():
    store = {"Type": "Custom::VectorStore", "Properties": {"Size": 1}}
    old, new = template(Store=store), template(Store=modified(store, Size=2))
    extra = Overrides(extra_stateful_types=frozenset({"Custom::VectorStore"}))
    review = review_of(change_set(moto_modify("Store", "Custom::VectorStore")), old, new, overrides=extra)
    assert ("replacement", "Store") in kinds(review)
    assert any("no resource schema for Custom::VectorStore" in c for f in review.findings for c in f.causes)


def test_harmless_changes_do_not_block_even_on_a_silent_change_set():
    old = template(ProcessingQueue=QUEUE, DataIngestionFunction=FUNCTION)
    new = template(
        ProcessingQueue=modified(QUEUE, VisibilityTimeout=1800),
        DataIngestionFunction=modified(FUNCTION, Code={"S3Bucket": "artifacts", "S3Key": "market-data/9da86.zip"}),
    )
    cs = change_set(
        moto_modify("ProcessingQueue", "AWS::SQS::Queue"),
        moto_modify("DataIngestionFunction", "AWS::Lambda::Function"),
    )
    review = review_of(cs, old, new)
    assert review.findings == [] and review.blocking(assume_yes=True) == []


def test_harmless_changes_do_not_block_as_real_cloudformation_describes_them():
    cs = change_set(
        resource_change(
            "Modify",
            "ProcessingQueue",
            "AWS::SQS::Queue",
            replacement="False",
            details=[detail("VisibilityTimeout", before="900", after="1800")],
        ),
        resource_change(
            "Modify",
            "DataIngestionFunction",
            "AWS::Lambda::Function",
            replacement="False",
            details=[
                detail("Code", before='{"S3Key":"market-data/a5847.zip"}', after='{"S3Key":"market-data/9da86.zip"}')
            ],
        ),
    )
    review = review_of(cs)
    assert review.findings == [] and not review.blocked


def test_a_silent_modify_the_template_does_not_explain_counts_as_a_replacement():
    tpl = template(ProcessingQueue=QUEUE)
    review = review_of(change_set(moto_modify("ProcessingQueue", "AWS::SQS::Queue")), tpl, tpl)
    assert kinds(review) == [("replacement", "ProcessingQueue")]


# --- incomplete descriptions, nested stacks, drift ---------------------------------------------


def test_a_change_only_the_plain_description_names_is_guarded_as_incomplete():
    full = change_set(status_reason=INCOMPLETE_WARNING)
    plain = change_set(resource_change("Modify", "MarketDataTable", "AWS::DynamoDB::Table", replacement="False"))
    review = review_of(full, plain=plain)
    assert ("incomplete", "MarketDataTable") in kinds(review)
    (change,) = review.changes
    assert change.values_known is False
    assert review.violations[0].override == "--allow-replacement MarketDataTable"


def test_a_warning_without_a_plain_description_makes_every_stateful_change_dangerous():
    cs = change_set(
        resource_change("Modify", "ProcessingQueue", "AWS::SQS::Queue", replacement="False"),
        resource_change("Modify", "Fn", "AWS::Lambda::Function", replacement="False"),
        status_reason=INCOMPLETE_WARNING,
    )
    review = review_of(cs)
    assert [(f.kind, f.logical_id) for f in review.violations] == [("incomplete", "ProcessingQueue")]
    assert kinds(review) == [("change", "Fn"), ("incomplete", "ProcessingQueue")]  # Fn: under --yes only
    assert review_of({**cs, "StatusReason": ""}).violations == []


def test_nested_change_sets_are_reviewed_recursively_with_paths():
    child = review_input_for_child()
    cs = change_set(resource_change("Modify", "StorageStack", "AWS::CloudFormation::Stack", replacement="False"))
    review = review_of(cs, nested={"StorageStack": child})
    assert kinds(review) == [("removal", "StorageStack/Archive")]
    assert review.violations[0].override == "--allow-replacement StorageStack/Archive"
    assert "StorageStack" in review.nested and review.nested["StorageStack"].changes[0].logical_id == "Archive"
    allowed = review_of(
        cs, nested={"StorageStack": child}, overrides=Overrides(allow_replacement=frozenset({"StorageStack/Archive"}))
    )
    assert not allowed.blocked and allowed.unmatched_overrides == []


def review_input_for_child():
    from market_cfn.deploy import ReviewInput

    child_cs = change_set(resource_change("Remove", "Archive", "AWS::Events::Archive", policy_action="Delete"))
    return ReviewInput(child_cs, None, {}, None, {}, {}, {})


def test_a_nested_change_without_its_child_description_is_dangerous():
    cs = change_set(resource_change("Modify", "StorageStack", "AWS::CloudFormation::Stack", replacement="False"))
    assert kinds(review_of(cs)) == [("incomplete", "StorageStack")]


def test_a_drifted_stateful_resource_the_change_set_modifies_is_blocked_unless_named():
    cs = change_set(
        resource_change(
            "Modify",
            "ProcessingQueue",
            "AWS::SQS::Queue",
            replacement="False",
            details=[detail("VisibilityTimeout", before="900", after="1800")],
        )
    )
    drifted = {"ProcessingQueue": "MODIFIED", "DataBucket": "MODIFIED"}
    review = review_of(cs, drifted=drifted, drift_checked=True)
    assert kinds(review) == [("drift", "ProcessingQueue")]
    assert review.violations[0].override == "--allow-drift ProcessingQueue"
    assert "drift: DataBucket is MODIFIED (not changed by this change set)" in review.notes
    named = review_of(
        cs, drifted=drifted, drift_checked=True, overrides=Overrides(allow_drift=frozenset({"ProcessingQueue"}))
    )
    assert not named.blocked


def test_overrides_that_match_nothing_are_reported():
    review = review_of(
        change_set(),
        overrides=Overrides(
            allow_replacement=frozenset({"Nope"}), allow_unprotect=frozenset({"Nah"}), allow_drift=frozenset({"X"})
        ),
    )
    assert review.unmatched_overrides == ["--allow-replacement Nope", "--allow-unprotect Nah", "--allow-drift X"]


def test_stateful_logical_ids_of_the_rendered_template():
    ids = stateful_logical_ids(render_dict(StackConfig()))
    for lid in ("DataBucket", "RejectsBucket", "MarketDataTable", "ProcessingQueue", "MarketEventArchive"):
        assert lid in ids
    assert "DataIngestionFunction" not in ids


def test_descriptions_that_disagree_make_the_change_incomplete():
    full = change_set(resource_change("Modify", "ProcessingQueue", "AWS::SQS::Queue", replacement="False"))
    plain = change_set(resource_change("Modify", "ProcessingQueue", "AWS::SQS::Queue", replacement="True"))
    review = review_of(full, plain=plain)
    assert kinds(review) == [("incomplete", "ProcessingQueue")]
    assert any("the descriptions disagree" in n for n in review.notes)
