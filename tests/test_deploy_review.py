"""Review, guard and IAM analysis of DescribeChangeSet responses (pure functions, no AWS).

The change sets are shaped as botocore's cloudformation model and the CloudFormation API
reference document them: Changes[].ResourceChange with Details[].Target {Attribute, Name,
Path, RequiresRecreation, BeforeValue, AfterValue, AttributeChangeType}, Replacement,
PolicyAction, and BeforeContext/AfterContext as JSON strings (IncludePropertyValues); they are
built with tests/deploy_changesets.py.
"""

from __future__ import annotations

import functools
import io
import json

import pytest

from market_cfn.base.console import Console
from market_cfn.base.errors import UsageError
from market_cfn.deploy.flow import check_parameters
from market_cfn.deploy.review.format import render_review
from market_cfn.deploy.review.merge import build_review
from market_cfn.deploy.review.model import Review
from tests import deploy_changesets
from tests.deploy_changesets import ACCOUNT, detail

ROLE_BEFORE = {
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        },
        "Policies": [
            {
                "PolicyName": "ingest",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": ["s3:GetObject", "s3:GetObjectVersion"],
                            "Resource": "arn:aws:s3:::market-data-dev-123456789012-us-east-1/*",
                        },
                        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"},
                    ],
                },
            }
        ],
    }
}


# This module's change sets carry their own ids (the review digests ChangeSetId and StackId and prints
# the name), list Parameters even when there are none, and give a resource a physical id only where a
# test names one.
change_set = functools.partial(
    deploy_changesets.change_set,
    change_set_id=f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:changeSet/deploy-20261125T101500Z-abc123/0b1c",
    stack_id=f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/market-data-dev/5e7e",
    parameters={},
)
resource_change = functools.partial(deploy_changesets.resource_change, physical_id=None)


def rendered(review: Review) -> str:
    out = io.StringIO()
    render_review(review, Console(out=out, interactive=False))
    return out.getvalue()


def table_conditional_replacement():
    return resource_change(
        "Modify",
        "MarketDataTable",
        "AWS::DynamoDB::Table",
        replacement="Conditional",
        policy_action="ReplaceAndDelete",
        physical_id="market-data-dev",
        details=[
            detail(
                "TableName",
                recreation="Always",
                before="market-data-dev",
                after="{{changeSet:KNOWN_AFTER_APPLY}}",
                source="ParameterReference",
                entity="EnvironmentSuffix",
                evaluation="Dynamic",
            )
        ],
    )


def test_add_modify_remove_render_as_an_aligned_table_with_property_values():
    review = build_review(
        change_set(
            resource_change("Add", "AggregationDLQ", "AWS::SQS::Queue"),
            resource_change(
                "Modify",
                "DataIngestionFunction",
                "AWS::Lambda::Function",
                replacement="False",
                details=[
                    detail(
                        "Code",
                        before='{"S3Key":"market-data/aaa.zip"}',
                        after='{"S3Key":"market-data/bbb.zip"}',
                        source="ParameterReference",
                        entity="CodeS3Key",
                    ),
                    detail("MemorySize", before="1024", after="3072"),
                ],
            ),
            resource_change("Remove", "LegacyAlarm", "AWS::CloudWatch::Alarm", policy_action="Delete"),
        )
    )
    text = rendered(review)
    lines = text.splitlines()
    header = next(line for line in lines if "Logical ID" in line)
    add = next(line for line in lines if "AggregationDLQ" in line)
    modify = next(line for line in lines if "DataIngestionFunction" in line)
    remove = next(line for line in lines if "LegacyAlarm" in line)
    # aligned: every row starts its Type column where the header does
    col = header.index("Type")
    assert (
        add.index("AWS::SQS::Queue") == modify.index("AWS::Lambda::Function") == remove.index("AWS::CloudWatch") == col
    )
    assert modify.split()[:4] == ["Modify", "DataIngestionFunction", "AWS::Lambda::Function", "False"]
    assert remove.split()[-1] == "Delete"  # the PolicyAction column
    assert add.split()[-2:] == ["-", "-"] and remove.startswith("  Remove")
    # the leaf that differs, not the whole value
    assert "· Code.S3Key  in place  market-data/aaa.zip → market-data/bbb.zip" in text
    assert "1024 → 3072" in text
    assert "\033[" not in text  # no color codes when the output is not a terminal
    assert "Resource changes (3: 1 add, 1 modify, 1 remove)" in text
    assert not review.blocked


def test_conditional_replacement_of_the_table_is_blocked_and_names_the_property():
    review = build_review(change_set(table_conditional_replacement()))
    assert [v.logical_id for v in review.violations] == ["MarketDataTable"]
    (violation,) = review.violations
    assert "Conditional" in violation.what
    assert any("TableName" in c and "EnvironmentSuffix" in c for c in violation.causes)
    text = rendered(review)
    assert "--allow-replacement MarketDataTable" in text
    assert "TableName" in text and "replaces" in text


def test_removed_bucket_is_blocked_even_with_retain():
    review = build_review(
        change_set(
            resource_change(
                "Remove",
                "DataBucket",
                "AWS::S3::Bucket",
                policy_action="Retain",
                physical_id="market-data-dev-123456789012-us-east-1",
            ),
            resource_change("Remove", "IngestApiStage", "AWS::ApiGateway::Stage", policy_action="Delete"),
        )
    )
    assert [(v.logical_id, v.what) for v in review.violations] == [("DataBucket", "removed (PolicyAction Retain)")]


def test_allow_replacement_moves_the_resource_to_allowed_only_for_named_ids():
    cs = change_set(
        table_conditional_replacement(),
        resource_change("Remove", "ProcessingDLQ", "AWS::SQS::Queue", policy_action="Delete"),
    )
    partly = build_review(cs, allow_replacement=["MarketDataTable"])
    assert [v.logical_id for v in partly.violations] == ["ProcessingDLQ"]
    assert [v.logical_id for v in partly.allowed] == ["MarketDataTable"]
    fully = build_review(cs, allow_replacement=["MarketDataTable", "ProcessingDLQ"])
    assert not fully.blocked
    assert "allowed by --allow-replacement" in rendered(fully)


@pytest.mark.parametrize("replacement, blocked", [("True", True), ("Conditional", True), ("False", False)])
def test_guard_follows_the_replacement_field(replacement, blocked):
    review = build_review(
        change_set(
            resource_change(
                "Modify",
                "DataIngestionLogGroup",
                "AWS::Logs::LogGroup",
                replacement=replacement,
                details=[detail("LogGroupName", recreation="Always" if blocked else "Never", before="/a", after="/b")],
            )
        )
    )
    assert review.blocked is blocked


def test_stateless_replacement_is_not_guarded():
    review = build_review(
        change_set(
            resource_change(
                "Modify",
                "DataIngestionFunction",
                "AWS::Lambda::Function",
                replacement="True",
                details=[detail("FunctionName", recreation="Always", before="a", after="b")],
            )
        )
    )
    assert not review.blocked


def test_iam_broadening_new_action_new_resource_and_removed_deny_are_flagged():
    after = json.loads(json.dumps(ROLE_BEFORE))
    statements = after["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    statements[0]["Action"].append("s3:PutObject")  # new action
    statements[0]["Resource"] = [statements[0]["Resource"], "arn:aws:s3:::other-bucket/*"]  # new resource
    del statements[1]  # the Deny is gone
    review = build_review(
        change_set(
            resource_change(
                "Modify",
                "DataIngestionRole",
                "AWS::IAM::Role",
                replacement="False",
                details=[detail("Policies", before="[...]", after="[...]")],
                before=ROLE_BEFORE,
                after=after,
            )
        )
    )
    broadening = [f.text for f in review.iam if f.broadening]
    assert any("s3:PutObject" in t for t in broadening)
    assert any("other-bucket" in t for t in broadening)
    assert any("Deny removed" in t and "s3:DeleteObject" in t for t in broadening)
    assert "security-broadening" in rendered(review)


def test_iam_narrowing_is_listed_but_not_flagged():
    after = json.loads(json.dumps(ROLE_BEFORE))
    after["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] = ["s3:GetObject"]
    review = build_review(
        change_set(
            resource_change(
                "Modify",
                "DataIngestionRole",
                "AWS::IAM::Role",
                replacement="False",
                details=[detail("Policies")],
                before=ROLE_BEFORE,
                after=after,
            )
        )
    )
    assert review.iam and not any(f.broadening for f in review.iam)
    assert any("s3:GetObjectVersion" in f.text for f in review.iam)


def test_wildcard_that_covers_the_old_action_is_not_narrowing_but_a_new_wildcard_is_broadening():
    after = json.loads(json.dumps(ROLE_BEFORE))
    after["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] = "s3:*"
    review = build_review(
        change_set(
            resource_change(
                "Modify",
                "DataIngestionRole",
                "AWS::IAM::Role",
                replacement="False",
                details=[detail("Policies")],
                before=ROLE_BEFORE,
                after=after,
            )
        )
    )
    assert [f.text for f in review.iam if f.broadening] == [
        "+ Allow s3:* on arn:aws:s3:::market-data-dev-123456789012-us-east-1/*"
    ]


def test_added_role_and_permission_are_flagged_with_their_grants():
    review = build_review(
        change_set(
            resource_change("Add", "DataIngestionRole", "AWS::IAM::Role", after=ROLE_BEFORE),
            resource_change(
                "Add",
                "DataIngestionApiPermission",
                "AWS::Lambda::Permission",
                after={
                    "Properties": {
                        "Action": "lambda:InvokeFunction",
                        "Principal": "apigateway.amazonaws.com",
                        "FunctionName": "DataIngestion-dev",
                        "SourceArn": "arn:aws:execute-api:us-east-1:123456789012:abc/*/POST/ingest",
                    }
                },
            ),
        )
    )
    texts = [f.text for f in review.iam if f.broadening]
    assert any(t.startswith("+ Allow sts:AssumeRole") and "lambda.amazonaws.com" in t for t in texts)
    assert any(
        t.startswith("+ Allow lambda:InvokeFunction on DataIngestion-dev to Service:apigateway.amazonaws.com")
        and "aws:SourceArn" in t
        for t in texts
    )


def test_adding_a_condition_narrows_and_removing_one_broadens():
    conditioned = json.loads(json.dumps(ROLE_BEFORE))
    conditioned["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Condition"] = {
        "StringEquals": {"aws:PrincipalAccount": "123456789012"}
    }

    def review(before, after):
        return build_review(
            change_set(
                resource_change(
                    "Modify",
                    "DataIngestionRole",
                    "AWS::IAM::Role",
                    replacement="False",
                    details=[detail("Policies")],
                    before=before,
                    after=after,
                )
            )
        )

    assert not any(f.broadening for f in review(ROLE_BEFORE, conditioned).iam)
    widened = [f.text for f in review(conditioned, ROLE_BEFORE).iam if f.broadening]
    assert widened and all("s3:GetObject" in t for t in widened)


def test_action_case_does_not_count_as_a_change():
    after = json.loads(json.dumps(ROLE_BEFORE))
    after["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] = [
        "S3:getobject",
        "s3:GETOBJECTVERSION",
    ]
    review = build_review(
        change_set(
            resource_change(
                "Modify",
                "DataIngestionRole",
                "AWS::IAM::Role",
                replacement="False",
                details=[detail("Policies")],
                before=ROLE_BEFORE,
                after=after,
            )
        )
    )
    assert review.iam == []


def test_tag_only_change_of_a_role_is_not_an_iam_change():
    review = build_review(
        change_set(
            resource_change(
                "Modify",
                "DataIngestionRole",
                "AWS::IAM::Role",
                replacement="False",
                details=[
                    detail(
                        "Tags",
                        before='[{"Key":"Environment","Value":"dev"}]',
                        after='[{"Key":"Environment","Value":"prod"}]',
                    )
                ],
                before=ROLE_BEFORE,
                after=ROLE_BEFORE,
            )
        )
    )
    assert review.iam == []


def test_no_echo_parameters_are_masked_in_parameters_and_values():
    review = build_review(
        change_set(
            resource_change(
                "Modify",
                "Alarm",
                "AWS::CloudWatch::Alarm",
                replacement="False",
                details=[
                    detail(
                        "AlarmActions",
                        before='["arn:old"]',
                        after='["arn:secret"]',
                        source="ParameterReference",
                        entity="AlarmActionArn",
                    )
                ],
            ),
            parameters={"AlarmActionArn": "arn:secret", "EnvironmentSuffix": "dev"},
        ),
        no_echo=["AlarmActionArn"],
    )
    text = rendered(review)
    assert "arn:secret" not in text
    assert "AlarmActionArn     ****" in text and "EnvironmentSuffix  dev" in text


def test_check_parameters_rejects_unknown_names_and_bad_values():
    template = {
        "Parameters": {
            "EnvironmentSuffix": {"Type": "String", "AllowedPattern": "^[a-z][a-z0-9]{0,9}$"},
            "Mode": {"Type": "String", "AllowedValues": ["a", "b"]},
        }
    }
    check_parameters(template, {"EnvironmentSuffix": "prod", "Mode": "a"})
    with pytest.raises(UsageError, match="unknown parameter 'Nope'"):
        check_parameters(template, {"Nope": "1"})
    with pytest.raises(UsageError, match="does not match"):
        check_parameters(template, {"EnvironmentSuffix": "Prod"})
    with pytest.raises(UsageError, match="not one of"):
        check_parameters(template, {"Mode": "c"})
