"""The security diff: what a policy change really grants (NotAction/NotResource as
complements, Conditions compared), and which broadenings block under --yes (kind "broadening",
needs_human False) unless --allow-broadening. Computed from the resolved templates."""

from __future__ import annotations

import copy

import pytest

from market_cfn.deploy import Overrides
from market_cfn.deploy.review.diff import StackIdentity
from market_cfn.deploy.review.iam import review_resource
from market_cfn.deploy.review.policy import covered, grants
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_dict
from tests.deploy_changesets import ACCOUNT, change_set, resource_change, review_of, template

STACK = StackIdentity("aws", "us-east-1", ACCOUNT, "market-data-dev")
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


def role(*statements, trust=LAMBDA_TRUST) -> dict:
    return {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": copy.deepcopy(trust),
            "Policies": [
                {"PolicyName": "work", "PolicyDocument": {"Version": "2012-10-17", "Statement": list(statements)}}
            ],
        },
    }


READ = {"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::market-data-dev/*"}
DENY_DELETE = {"Effect": "Deny", "Action": ["s3:DeleteObject"], "Resource": "*"}


def security(old: dict | None, new: dict, *, overrides: Overrides | None = None):
    ids = sorted(set((old or {}).get("Resources", {})) | set(new.get("Resources", {})))
    action = "Modify" if old else "Add"
    cs = change_set(*(resource_change(action, lid, new["Resources"][lid]["Type"], replacement="False") for lid in ids))
    return review_of(cs, old, new, overrides=overrides)


def broadenings(review) -> list[str]:
    return [f"{f.what} [{'; '.join(f.causes)}]" for f in review.findings if f.kind == "broadening"]


def test_a_trust_policy_opened_to_aws_star_is_a_broadening_that_blocks_under_yes_only():
    opened = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    review = security(template(Role=role(READ)), template(Role=role(READ, trust=opened)))
    (finding,) = [f for f in review.findings if f.kind == "broadening"]
    assert "public principal *" in finding.causes and finding.what.startswith("trust policy: Allow sts:AssumeRole")
    assert not finding.needs_human and finding.override == "--allow-broadening"
    assert review.blocking(assume_yes=False) == []  # a human at the prompt sees it and decides
    assert finding in review.blocking(assume_yes=True)  # --yes alone does not execute it
    allowed = security(
        template(Role=role(READ)), template(Role=role(READ, trust=opened)), overrides=Overrides(allow_broadening=True)
    )
    # the broadening is allowed; the trust policy change itself still needs its own name (harmless.py)
    assert [f.override for f in allowed.blocking(assume_yes=True)] == ["--allow-change Role.AssumeRolePolicyDocument"]


def test_a_new_allow_s3_star_on_star_is_a_broadening():
    review = security(
        template(Role=role(READ)), template(Role=role(READ, {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}))
    )
    (line,) = broadenings(review)
    assert "Allow s3:* on *" in line and "wildcard action s3:*" in line and "wildcard resource *" in line


def test_scoped_grants_of_a_new_stack_stay_deployable_with_yes():
    # a first deploy of the real template: every grant is new, none is a dangerous broadening
    new = render_dict(StackConfig())
    params = {"EnvironmentSuffix": "dev", "CodeS3Bucket": "artifacts", "CodeS3Key": "market-data/a.zip"}
    cs = change_set(*(resource_change("Add", lid, r["Type"]) for lid, r in new["Resources"].items()))
    review = review_of(cs, None, new, new_parameters=params)
    assert review.iam and any(f.broadening for f in review.iam)  # shown
    assert review.blocking(assume_yes=True) == []  # but deployable with --yes


def test_the_xray_actions_may_use_a_star_resource_other_actions_may_not():
    xray = {"Effect": "Allow", "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"}
    assert broadenings(security(template(Role=role(READ)), template(Role=role(READ, xray)))) == []
    logs = {"Effect": "Allow", "Action": ["logs:PutLogEvents"], "Resource": "*"}
    assert "wildcard resource *" in broadenings(security(template(Role=role(READ)), template(Role=role(READ, logs))))[0]


def test_a_removed_deny_is_a_broadening():
    review = security(template(Role=role(READ, DENY_DELETE)), template(Role=role(READ)))
    (line,) = broadenings(review)
    assert "Deny removed" in line and "s3:DeleteObject" in line


def test_a_removed_condition_is_a_broadening_and_an_added_one_narrows():
    conditioned = {**READ, "Condition": {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}}}
    assert broadenings(security(template(Role=role(READ)), template(Role=role(conditioned)))) == []
    (line,) = broadenings(security(template(Role=role(conditioned)), template(Role=role(READ))))
    assert "a Condition removed or loosened" in line


def test_conditions_are_compared_value_by_value():
    one = {**READ, "Condition": {"StringEquals": {"aws:SourceVpce": ["vpce-1"]}}}
    two = {**READ, "Condition": {"StringEquals": {"aws:SourceVpce": ["vpce-1", "vpce-2"]}}}
    old, wider, narrower = grants({"Statement": [one]}), grants({"Statement": [two]}), grants({"Statement": [one]})
    assert not all(covered(g, old) for g in wider)  # a second allowed value widens
    assert all(covered(g, grants({"Statement": [two]})) for g in narrower)


def test_not_action_is_a_complement_and_a_shorter_exclusion_list_widens():
    old = {"Effect": "Allow", "NotAction": ["iam:*", "s3:DeleteObject"], "Resource": "arn:aws:s3:::b/*"}
    new = {"Effect": "Allow", "NotAction": ["iam:*"], "Resource": "arn:aws:s3:::b/*"}
    # NotAction [a, b] is everything but a and b: dropping b grants b
    assert not all(covered(g, grants({"Statement": [old]})) for g in grants({"Statement": [new]}))
    assert all(covered(g, grants({"Statement": [new]})) for g in grants({"Statement": [old]}))
    # an action inside an old complement is covered; one the complement excluded is not
    inside = grants({"Statement": [{**READ, "Resource": "arn:aws:s3:::b/*"}]})
    excluded = grants({"Statement": [{"Effect": "Allow", "Action": "s3:DeleteObject", "Resource": "arn:aws:s3:::b/*"}]})
    assert all(covered(g, grants({"Statement": [old]})) for g in inside)
    assert not any(covered(g, grants({"Statement": [old]})) for g in excluded)
    review = security(template(Role=role(old)), template(Role=role(new)))
    assert any("NotAction" in line for line in broadenings(review))


def test_not_resource_widened_is_a_broadening():
    old = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": ["arn:aws:s3:::secret/*", "arn:aws:s3:::keys/*"]}
    new = {"Effect": "Allow", "Action": "s3:GetObject", "NotResource": ["arn:aws:s3:::secret/*"]}
    review = security(template(Role=role(old)), template(Role=role(new)))
    assert any("NotResource" in line for line in broadenings(review))


def test_cross_account_principal_is_judged_against_the_stacks_own_account():
    def bucket_policy(principal):
        statement = {
            "Effect": "Allow",
            "Principal": {"AWS": principal},
            "Action": "s3:GetObject",
            "Resource": "arn:aws:s3:::b/*",
        }
        return {
            "Type": "AWS::S3::BucketPolicy",
            "Properties": {"Bucket": "b", "PolicyDocument": {"Statement": [statement]}},
        }

    own = {"Fn::Sub": "arn:aws:iam::${AWS::AccountId}:root"}
    assert broadenings(security(None, template(P=bucket_policy(own)))) == []
    (line,) = broadenings(security(None, template(P=bucket_policy("arn:aws:iam::999988887777:role/x"))))
    assert "cross-account principal (account 999988887777" in line
    (line,) = broadenings(security(None, template(P=bucket_policy("999988887777"))))
    assert "cross-account" in line
    # the stack's account unknown: a literal account cannot be shown to be ours, so it counts (fail closed)
    _, dangerous = review_resource(
        "P", "AWS::S3::BucketPolicy", {}, bucket_policy("arn:aws:iam::123456789012:root")["Properties"], StackIdentity()
    )
    assert dangerous and "the stack's: unknown" in dangerous[0].causes[0]


def test_a_public_principal_scoped_by_a_source_condition_is_not_public():
    statement = {
        "Effect": "Allow",
        "Principal": "*",
        "Action": "sqs:SendMessage",
        "Resource": "arn:aws:sqs:us-east-1:123456789012:q",
        "Condition": {"ArnEquals": {"aws:SourceArn": "arn:aws:sns:us-east-1:123456789012:t"}},
    }
    policy = {
        "Type": "AWS::SQS::QueuePolicy",
        "Properties": {"Queues": ["q"], "PolicyDocument": {"Statement": [statement]}},
    }
    assert broadenings(security(None, template(P=policy))) == []
    del statement["Condition"]
    assert any("public principal *" in line for line in broadenings(security(None, template(P=policy))))


@pytest.mark.parametrize(
    "resource_type, props",
    [
        ("AWS::Lambda::Url", {"TargetFunctionArn": "fn", "AuthType": "NONE"}),
        (
            "AWS::ApiGateway::Method",
            {"HttpMethod": "POST", "AuthorizationType": "NONE", "RestApiId": "a", "ResourceId": "r"},
        ),
    ],
)
def test_auth_type_none_is_a_broadening(resource_type, props):
    (line,) = broadenings(security(None, template(X={"Type": resource_type, "Properties": props})))
    assert "→ NONE" in line and "callable without credentials" in line


def test_an_options_method_without_authorization_is_cors_not_a_broadening():
    props = {"HttpMethod": "OPTIONS", "AuthorizationType": "NONE", "RestApiId": "a", "ResourceId": "r"}
    assert broadenings(security(None, template(X={"Type": "AWS::ApiGateway::Method", "Properties": props}))) == []


def test_a_public_lambda_permission_is_a_broadening():
    props = {"Action": "lambda:InvokeFunction", "FunctionName": "fn", "Principal": "*"}
    assert any(
        "public principal *" in line
        for line in broadenings(security(None, template(P={"Type": "AWS::Lambda::Permission", "Properties": props})))
    )


def test_ingress_from_anywhere_is_a_broadening_and_a_private_cidr_is_not():
    def group(*rules):
        return {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {"GroupDescription": "g", "SecurityGroupIngress": list(rules)},
        }

    private = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "10.0.0.0/8"}
    world6 = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIpv6": "::/0"}
    assert broadenings(security(template(G=group()), template(G=group(private)))) == []
    (line,) = broadenings(security(template(G=group(private)), template(G=group(private, world6))))
    assert "ingress tcp 22-22 from ::/0" in line
    rule = {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {"GroupId": "sg", "IpProtocol": "-1", "CidrIp": "0.0.0.0/0"},
    }
    assert "ingress from 0.0.0.0/0" in broadenings(security(None, template(R=rule)))[0]


def test_kms_key_policy_and_managed_policy_attachments_are_reviewed():
    key = {
        "Type": "AWS::KMS::Key",
        "Properties": {
            "KeyPolicy": {
                "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*", "Resource": "*"}]
            }
        },
    }
    assert any("public principal *" in line for line in broadenings(security(None, template(K=key))))
    managed = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {"PolicyDocument": {"Statement": [READ]}, "Roles": ["a"]},
    }
    attached = copy.deepcopy(managed)
    attached["Properties"]["Roles"] = ["a", "b"]
    review = security(template(M=managed), template(M=attached))
    texts = [f.text for f in review.iam]
    assert "+ attached to role b" in texts and any("s3:GetObject" in t for t in texts)


def test_admin_managed_policy_and_a_removed_permissions_boundary_are_broadenings():
    base = role(READ)
    base["Properties"]["PermissionsBoundary"] = "arn:aws:iam::123456789012:policy/boundary"
    wider = copy.deepcopy(base)
    del wider["Properties"]["PermissionsBoundary"]
    wider["Properties"]["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AdministratorAccess"]
    lines = broadenings(security(template(R=base), template(R=wider)))
    assert any("AdministratorAccess" in line for line in lines)
    assert any("permissions boundary" in line for line in lines)


def test_the_default_kms_key_policy_delegating_to_the_own_account_is_not_a_broadening():
    def key(principal):
        statement = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "kms:*", "Resource": "*"}
        return {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {"Statement": [statement]}}}

    own = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    assert broadenings(security(None, template(K=key(own)))) == []
    (line,) = broadenings(security(None, template(K=key("arn:aws:iam::999988887777:root"))))
    assert "wildcard action kms:*" in line and "cross-account" in line
