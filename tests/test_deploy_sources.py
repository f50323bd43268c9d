"""Every source of values: each broadening and unprotection the guard knows,
read from the change set's values alone (BeforeContext/AfterContext, or the Details' values) while the
two templates are identical, is a blocking finding under --yes, and the review says the sources
disagreed. The change sets are shaped as botocore's cloudformation model documents ResourceChange
(tests/deploy_changesets.py)."""

from __future__ import annotations

import copy
import io
import json
from typing import Any

import pytest

from market_cfn.deploy import Console, ReviewInput, build_review, render_review
from market_cfn.deploy.review.diff import KNOWN_AFTER_APPLY
from tests.deploy_changesets import change_set, detail, resource_change, review_of, template

ACCOUNT_ROLE = "arn:aws:iam::123456789012:role/market-data-dev-processor"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
READ = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::market-data-dev/*"}
DENY = {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": "*"}
SCOPED = {**READ, "Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}


def role(*statements: dict[str, Any], trust: dict[str, Any] = LAMBDA_TRUST, **extra: Any) -> dict[str, Any]:
    return {
        "AssumeRolePolicyDocument": copy.deepcopy(trust),
        "Policies": [
            {"PolicyName": "work", "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements)}}
        ],
        **extra,
    }


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def trust(principal: Any) -> dict[str, Any]:
    return doc({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})


BOUNDARY = "arn:aws:iam::123456789012:policy/boundary"
BUCKET_POLICY = {"Bucket": "market-data-dev", "PolicyDocument": doc({**READ, "Principal": {"AWS": ACCOUNT_ROLE}})}
KEY_POLICY = {
    "KeyPolicy": doc(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "kms:*", "Resource": "*"}
    )
}

# (name, type, properties before, properties after, a cause the blocking finding must carry)
BROADENINGS = [
    (
        "trust opened to AWS *",
        "AWS::IAM::Role",
        role(READ),
        role(READ, trust=trust({"AWS": "*"})),
        "public principal *",
    ),
    ("trust opened to *", "AWS::IAM::Role", role(READ), role(READ, trust=trust("*")), "public principal *"),
    (
        "Allow s3:* on *",
        "AWS::IAM::Role",
        role(READ),
        role(READ, {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}),
        "wildcard action s3:*",
    ),
    (
        "wildcard resource",
        "AWS::IAM::Role",
        role(READ),
        role(READ, {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "*"}),
        "wildcard resource *",
    ),
    (
        "NotAction",
        "AWS::IAM::Role",
        role(READ),
        role(READ, {"Effect": "Allow", "NotAction": "iam:*", "Resource": "arn:aws:s3:::x"}),
        "Allow with NotAction (a complement: every other action)",
    ),
    (
        "NotResource",
        "AWS::IAM::Role",
        role(READ),
        role(READ, {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::x"}),
        "Allow with NotResource (a complement: every other resource)",
    ),
    (
        "NotPrincipal",
        "AWS::S3::BucketPolicy",
        BUCKET_POLICY,
        {**BUCKET_POLICY, "PolicyDocument": doc({**READ, "NotPrincipal": {"AWS": ACCOUNT_ROLE}})},
        "Allow with NotPrincipal (every other principal)",
    ),
    (
        "cross-account trust",
        "AWS::IAM::Role",
        role(READ),
        role(READ, trust=trust({"AWS": "arn:aws:iam::999999999999:root"})),
        "cross-account principal (account 999999999999, the stack's: 123456789012)",
    ),
    ("Deny removed", "AWS::IAM::Role", role(READ, DENY), role(READ), "a removed Deny lets through what it stopped"),
    ("Condition removed", "AWS::IAM::Role", role(SCOPED), role(READ), "a Condition removed or loosened"),
    (
        "AdministratorAccess attached",
        "AWS::IAM::Role",
        role(READ),
        role(READ, ManagedPolicyArns=["arn:aws:iam::aws:policy/AdministratorAccess"]),
        "a broad AWS managed policy (wildcard actions)",
    ),
    (
        "permissions boundary removed",
        "AWS::IAM::Role",
        role(READ, PermissionsBoundary=BOUNDARY),
        role(READ),
        "the boundary no longer limits the role",
    ),
    (
        "public bucket policy",
        "AWS::S3::BucketPolicy",
        BUCKET_POLICY,
        {**BUCKET_POLICY, "PolicyDocument": doc({**READ, "Principal": "*"})},
        "public principal *",
    ),
    (
        "key policy to another account",
        "AWS::KMS::Key",
        KEY_POLICY,
        {
            "KeyPolicy": doc(
                *KEY_POLICY["KeyPolicy"]["Statement"],
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": "arn:aws:iam::999999999999:root"},
                    "Action": "kms:Decrypt",
                    "Resource": "*",
                },
            )
        },
        "cross-account principal (account 999999999999, the stack's: 123456789012)",
    ),
    (
        "public lambda permission",
        "AWS::Lambda::Permission",
        {
            "Action": "lambda:InvokeFunction",
            "FunctionName": "fn",
            "Principal": "events.amazonaws.com",
            "SourceArn": "a",
        },
        {"Action": "lambda:InvokeFunction", "FunctionName": "fn", "Principal": "*"},
        "public principal *",
    ),
    (
        "function URL without auth",
        "AWS::Lambda::Url",
        {"TargetFunctionArn": "fn", "AuthType": "AWS_IAM"},
        {"TargetFunctionArn": "fn", "AuthType": "NONE"},
        "callable without credentials",
    ),
    (
        "API method without auth",
        "AWS::ApiGateway::Method",
        {"HttpMethod": "POST", "AuthorizationType": "AWS_IAM", "RestApiId": "a", "ResourceId": "r"},
        {"HttpMethod": "POST", "AuthorizationType": "NONE", "RestApiId": "a", "ResourceId": "r"},
        "callable without credentials",
    ),
    (
        "ingress from anywhere",
        "AWS::EC2::SecurityGroup",
        {"GroupDescription": "g", "SecurityGroupIngress": []},
        {
            "GroupDescription": "g",
            "SecurityGroupIngress": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}],
        },
        "ingress from 0.0.0.0/0",
    ),
]

TABLE = {
    "TableName": "market-data-dev",
    "BillingMode": "PAY_PER_REQUEST",
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
    "DeletionProtectionEnabled": True,
    "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 35},
}
BUCKET = {
    "BucketName": "market-data-dev",
    "VersioningConfiguration": {"Status": "Enabled"},
    "BucketEncryption": {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
    },
}
DB = {"Engine": "postgres", "DBInstanceClass": "db.t4g.micro", "DeletionProtection": True, "BackupRetentionPeriod": 7}


def changed(props: dict[str, Any], **values: Any) -> dict[str, Any]:
    return {**copy.deepcopy(props), **values}


# (name, type, properties before, properties after, the unprotected property)
UNPROTECTIONS = [
    ("table deletion protection off", "AWS::DynamoDB::Table", TABLE, changed(TABLE, DeletionProtectionEnabled=False)),
    (
        "PITR off",
        "AWS::DynamoDB::Table",
        TABLE,
        changed(TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": False}),
    ),
    (
        "PITR period shortened",
        "AWS::DynamoDB::Table",
        TABLE,
        changed(
            TABLE, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True, "RecoveryPeriodInDays": 1}
        ),
    ),
    (
        "TTL on",
        "AWS::DynamoDB::Table",
        TABLE,
        changed(TABLE, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires"}),
    ),
    (
        "versioning suspended",
        "AWS::S3::Bucket",
        BUCKET,
        changed(BUCKET, VersioningConfiguration={"Status": "Suspended"}),
    ),
    (
        "expiration added",
        "AWS::S3::Bucket",
        BUCKET,
        changed(BUCKET, LifecycleConfiguration={"Rules": [{"Id": "x", "Status": "Enabled", "ExpirationInDays": 1}]}),
    ),
    ("encryption removed", "AWS::S3::Bucket", BUCKET, {k: v for k, v in BUCKET.items() if k != "BucketEncryption"}),
    (
        "log retention shortened",
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/aws/lambda/x", "RetentionInDays": 3653},
        {"LogGroupName": "/aws/lambda/x", "RetentionInDays": 1},
    ),
    (
        "log retention added",
        "AWS::Logs::LogGroup",
        {"LogGroupName": "/aws/lambda/x"},
        {"LogGroupName": "/aws/lambda/x", "RetentionInDays": 7},
    ),
    (
        "queue retention shortened",
        "AWS::SQS::Queue",
        {"MessageRetentionPeriod": 1209600},
        {"MessageRetentionPeriod": 60},
    ),
    ("stream retention shortened", "AWS::Kinesis::Stream", {"RetentionPeriodHours": 168}, {"RetentionPeriodHours": 24}),
    ("archive retention added", "AWS::Events::Archive", {"SourceArn": "bus"}, {"SourceArn": "bus", "RetentionDays": 1}),
    ("database deletion protection off", "AWS::RDS::DBInstance", DB, changed(DB, DeletionProtection=False)),
    ("backup retention shortened", "AWS::RDS::DBInstance", DB, changed(DB, BackupRetentionPeriod=1)),
    (
        "user pool deletion protection off",
        "AWS::Cognito::UserPool",
        {"DeletionProtection": "ACTIVE"},
        {"DeletionProtection": "INACTIVE"},
    ),
    ("queue encryption removed", "AWS::SQS::Queue", {"KmsMasterKeyId": "alias/data"}, {}),
]


def values_only(rtype: str, before: dict[str, Any], after: dict[str, Any], *, contexts: bool = True):
    """A Modify whose values only the change set carries: both templates hold `before` unchanged."""
    names = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if contexts:
        details = [detail(n) for n in names]  # named, the values in the contexts
        change = resource_change(
            "Modify",
            "R",
            rtype,
            replacement="False",
            details=details,
            before={"Properties": before},
            after={"Properties": after},
        )
    else:

        def value(props: dict[str, Any], name: str) -> str | None:
            v = props.get(name)
            return None if v is None else v if isinstance(v, str) else json.dumps(v)

        details = [
            detail(
                n,
                before=value(before, n),
                after=value(after, n),
                change_type="Modify" if n in before and n in after else "Add" if n in after else "Remove",
            )
            for n in names
        ]
        change = resource_change("Modify", "R", rtype, replacement="False", details=details)
    same = template(R={"Type": rtype, "Properties": copy.deepcopy(before)})
    return review_of(change_set(change), same, copy.deepcopy(same))


def rendered(review: Any) -> str:
    console = Console(out=io.StringIO(), interactive=False)
    render_review(review, console)
    return console.out.getvalue()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name, rtype, before, after, cause", BROADENINGS, ids=[b[0] for b in BROADENINGS])
def test_each_broadening_read_from_the_change_set_values_alone_blocks_under_yes(name, rtype, before, after, cause):
    review = values_only(rtype, before, after)
    blocking = [f for f in review.blocking(assume_yes=True) if f.kind == "broadening"]
    assert blocking, f"{name}: no blocking broadening in {review.findings}"
    assert any(cause in f.causes for f in blocking), [f.causes for f in blocking]
    # the review says the template diff showed nothing of it
    assert any("the sources disagree" in c for f in blocking for c in f.causes)
    assert any("R: the sources disagree" in n for n in review.notes), review.notes
    # and it is printed as an IAM change, not "IAM changes: none", under the verdict that blocks it
    assert any(line.broadening for line in review.iam)
    text = rendered(review)
    assert "IAM changes: none" not in text
    verdict = text.index("Security broadening (not executed under --yes without --allow-broadening):")
    assert all(text.index(f.what, verdict) > verdict for f in blocking)


@pytest.mark.parametrize("name, rtype, before, after, cause", BROADENINGS, ids=[b[0] for b in BROADENINGS])
def test_each_broadening_without_any_template_blocks_under_yes(name, rtype, before, after, cause):
    change = resource_change(
        "Modify", "R", rtype, replacement="False", before={"Properties": before}, after={"Properties": after}
    )
    review = build_review(ReviewInput.from_change_set(change_set(change)))
    assert any(cause in f.causes for f in review.blocking(assume_yes=True) if f.kind == "broadening")


@pytest.mark.parametrize(
    "name, rtype, before, after, cause",
    [b for b in BROADENINGS if b[0] in ("trust opened to AWS *", "Allow s3:* on *", "public bucket policy")],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_a_broadening_in_the_details_values_alone_blocks_under_yes(name, rtype, before, after, cause):
    review = values_only(rtype, before, after, contexts=False)
    assert any(cause in f.causes for f in review.blocking(assume_yes=True) if f.kind == "broadening")


@pytest.mark.parametrize("name, rtype, before, after", UNPROTECTIONS, ids=[u[0] for u in UNPROTECTIONS])
def test_each_unprotection_read_from_the_change_set_values_alone_blocks(name, rtype, before, after):
    review = values_only(rtype, before, after)
    blocking = [f for f in review.blocking(assume_yes=False) if f.kind == "unprotect"]
    assert blocking, f"{name}: no blocking unprotection in {review.findings}"
    assert all(f.override == "--allow-unprotect R" for f in blocking)
    assert any("the sources disagree" in c for f in blocking for c in f.causes)
    text = rendered(review)
    verdict = text.index("Guard: this change set would destroy or unprotect data and will not be executed:")
    assert all(text.index(f.what, verdict) > verdict for f in blocking)


@pytest.mark.parametrize("name, rtype, before, after", UNPROTECTIONS, ids=[u[0] for u in UNPROTECTIONS])
def test_each_unprotection_in_the_details_values_alone_blocks(name, rtype, before, after):
    review = values_only(rtype, before, after, contexts=False)
    assert [f for f in review.blocking(assume_yes=False) if f.kind == "unprotect"], review.findings


@pytest.mark.parametrize("policy", ["DeletionPolicy", "UpdateReplacePolicy"])
def test_a_weakened_deletion_policy_in_the_context_alone_blocks(policy):
    before = {"Properties": TABLE, policy: "Retain"}
    after = {"Properties": TABLE, policy: "Delete"}
    change = resource_change(
        "Modify", "R", "AWS::DynamoDB::Table", replacement="False", details=[], before=before, after=after
    )
    same = template(R={"Type": "AWS::DynamoDB::Table", "Properties": TABLE, policy: "Retain"})
    review = review_of(change_set(change), same, copy.deepcopy(same))
    (finding,) = [f for f in review.blocking(assume_yes=False) if f.kind == "unprotect"]
    assert finding.what == f"{policy} Retain → Delete"


def test_a_danger_both_sources_show_is_one_finding_and_no_disagreement():
    # GIVEN the templates and the change set's values both open the trust policy
    before, after = role(READ), role(READ, trust=trust({"AWS": "*"}))
    change = resource_change(
        "Modify",
        "R",
        "AWS::IAM::Role",
        replacement="False",
        details=[detail("AssumeRolePolicyDocument")],
        before={"Properties": before},
        after={"Properties": after},
    )
    old = template(R={"Type": "AWS::IAM::Role", "Properties": before})
    new = template(R={"Type": "AWS::IAM::Role", "Properties": after})
    review = review_of(change_set(change), old, new)
    (finding,) = [f for f in review.findings if f.kind == "broadening"]
    assert "public principal *" in finding.causes
    assert not any("disagree" in c for c in finding.causes) and not any("disagree" in n for n in review.notes)


def test_known_after_apply_is_left_to_the_template_diff():
    # GIVEN a role whose policy names a table that another change replaces: CloudFormation reports the new
    # ARN as {{changeSet:KNOWN_AFTER_APPLY}}, while the template's expression is the same GetAtt
    statement = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": ["Table", "Arn"]}}
    props = role(statement)
    deployed = role({**statement, "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/t"})
    pending = role({**statement, "Resource": KNOWN_AFTER_APPLY})
    change = resource_change(
        "Modify",
        "R",
        "AWS::IAM::Role",
        replacement="False",
        details=[detail("Policies", source="ResourceAttribute")],
        before={"Properties": deployed},
        after={"Properties": pending},
    )
    same = template(R={"Type": "AWS::IAM::Role", "Properties": props})
    review = review_of(change_set(change), same, copy.deepcopy(same))
    assert [f for f in review.findings if f.kind == "broadening"] == []
    assert not any("disagree" in n for n in review.notes)


def test_a_harmless_code_change_in_the_values_is_not_a_finding():
    before = {"Code": {"S3Bucket": "b", "S3Key": "market-data/a.zip"}, "Role": ACCOUNT_ROLE, "Timeout": 30}
    after = {**before, "Code": {"S3Bucket": "b", "S3Key": "market-data/b.zip"}}
    review = values_only("AWS::Lambda::Function", before, after)
    assert review.findings == [] and review.iam == []


# --- the calls that fetch every source (botocore Stubber: moto does not return contexts faithfully) ---


def test_every_page_with_property_values_and_the_processed_templates_of_a_transform(cfn):
    """DescribeChangeSet(IncludePropertyValues=True) is read to its last NextToken page, and with a
    Transform GetTemplate(TemplateStage=Processed) of the stack and of the change set is what the
    template diff compares (GetTemplate reference: "Processed ... after CloudFormation has processed all
    transforms")."""
    from stubs_cfn import CS_ARN, STACK_ID, Flow

    from market_cfn.deploy.changeset import describe_change_set_all
    from market_cfn.deploy.inputs import gather_review_input

    flow = Flow(cfn.stubber)
    quiet = resource_change("Modify", "Queue", "AWS::SQS::Queue", replacement="False", physical_id="queue", scope=None)
    opened = resource_change(
        "Modify",
        "FnRole",
        "AWS::IAM::Role",
        replacement="False",
        before={"Properties": role(READ)},
        after={"Properties": role(READ, trust=trust({"AWS": "arn:aws:iam::999999999999:root"}))},
        physical_id="fnrole",
        scope=None,
    )
    flow.pages([quiet, quiet, opened], per_page=2)  # the opened role is on the second page
    flow.pages([quiet, opened], per_page=5, include_values=False)
    submitted = {"Transform": "AWS::Serverless-2016-10-31", "Resources": {"Fn": {"Type": "AWS::Serverless::Function"}}}
    processed_old = template(FnRole={"Type": "AWS::IAM::Role", "Properties": role(READ)})
    processed_new = template(FnRole={"Type": "AWS::IAM::Role", "Properties": role(READ, trust=trust("*"))})
    for body, params in (
        (processed_old, {"StackName": STACK_ID, "TemplateStage": "Processed"}),
        (processed_new, {"StackName": STACK_ID, "ChangeSetName": CS_ARN, "TemplateStage": "Processed"}),
    ):
        cfn.stubber.add_response("get_template", {"TemplateBody": json.dumps(body)}, params)

    described = describe_change_set_all(cfn, CS_ARN)
    inputs = gather_review_input(cfn, described, new_template=submitted, deployed=submitted, stack=None)
    review = build_review(inputs)

    assert inputs.processed_new == processed_new and inputs.processed_deployed == processed_old
    assert any("compares the processed templates" in n for n in review.notes)
    # the processed templates open the trust policy to "*", the change set's values (page 2) to another
    # account: each reading's danger blocks, and each says the other source does not show it
    blocking = {f.what: f.causes for f in review.blocking(assume_yes=True) if f.kind == "broadening"}
    assert sorted(blocking) == [
        "trust policy: Allow sts:AssumeRole to *",
        "trust policy: Allow sts:AssumeRole to AWS:arn:aws:iam::999999999999:root",
    ], blocking
    assert "public principal *" in blocking["trust policy: Allow sts:AssumeRole to *"]
    assert all(any("the sources disagree" in c for c in causes) for causes in blocking.values())


def test_a_new_role_is_listed_once_unless_its_values_show_another_danger():
    # GIVEN a CREATE: the template names the table by GetAtt, the values by KNOWN_AFTER_APPLY
    statement = {"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": {"Fn::GetAtt": ["Table", "Arn"]}}
    pending = role({**statement, "Resource": KNOWN_AFTER_APPLY})

    def create(after_values: dict[str, Any]):
        change = resource_change("Add", "R", "AWS::IAM::Role", after={"Properties": after_values})
        return review_of(
            change_set(change), None, template(R={"Type": "AWS::IAM::Role", "Properties": role(statement)})
        )

    quiet = create(pending)
    assert not any("(change set's property values)" in line.text for line in quiet.iam), quiet.iam
    assert quiet.blocking(assume_yes=True) == []
    # WHEN the values open the trust policy the template does not THEN their lines are listed too, and it blocks
    opened = create(role({**statement, "Resource": KNOWN_AFTER_APPLY}, trust=trust({"AWS": "*"})))
    assert any("(change set's property values)" in line.text for line in opened.iam)
    assert any("public principal *" in f.causes for f in opened.blocking(assume_yes=True))
