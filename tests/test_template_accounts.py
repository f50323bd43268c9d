"""The template on real accounts: names that must be unique per account carry the region, the
schedule parameter admits exactly EventBridge's documented grammar, the CMK-encrypted bus has a
dead-letter queue, and the bootstrap bucket never expires an artifact a stack may still read."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from market_cfn.base.errors import UsageError
from market_cfn.deploy.bootstrap import render_bootstrap_json
from market_cfn.deploy.flow import check_parameters
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_dict
from market_cfn.stack.schedule import SCHEDULE_PATTERN, schedule_problem

VARIANTS = {
    "default": StackConfig(),
    "retain": StackConfig(retain_data=True),
    "prod": StackConfig(env_suffix="prod", retain_data=True),
    "regulated": StackConfig(profile="regulated"),
}

# Every resource type the templates use, by the scope in which its name must be unique.
# A type not listed fails the test: someone must look up its scope before it ships.
ACCOUNT_WIDE_NAMES = {  # the name property, unique per account (or partition) across regions
    "AWS::CloudWatch::Dashboard": "DashboardName",  # ARN arn:aws:cloudwatch::ACCOUNT:dashboard/NAME
    "AWS::IAM::Role": "RoleName",  # IAM is global
    "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::S3::Bucket": "BucketName",  # unique per partition
}
REGIONAL = {
    "AWS::ApiGateway::Account",
    "AWS::ApiGateway::Deployment",
    "AWS::ApiGateway::Method",
    "AWS::ApiGateway::Model",
    "AWS::ApiGateway::RequestValidator",
    "AWS::ApiGateway::Resource",
    "AWS::ApiGateway::RestApi",
    "AWS::ApiGateway::Stage",
    "AWS::CloudWatch::Alarm",
    "AWS::DynamoDB::Table",
    "AWS::Events::Archive",
    "AWS::Events::EventBus",
    "AWS::Events::Rule",
    "AWS::IAM::Policy",  # an inline policy: named within its role
    "AWS::KMS::Alias",
    "AWS::KMS::Key",
    "AWS::Lambda::EventInvokeConfig",
    "AWS::Lambda::EventSourceMapping",
    "AWS::Lambda::Function",
    "AWS::Lambda::Permission",
    "AWS::Logs::LogGroup",
    "AWS::Logs::MetricFilter",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::SNS::Topic",
    "AWS::SNS::TopicPolicy",
    "AWS::SQS::Queue",
    "AWS::SQS::QueuePolicy",
}


def templates() -> dict[str, dict[str, Any]]:
    found = {name: render_dict(cfg) for name, cfg in VARIANTS.items()}
    found["bootstrap"] = json.loads(render_bootstrap_json())
    return found


@pytest.mark.parametrize("variant", [*VARIANTS, "bootstrap"])
def test_every_account_wide_name_carries_the_region(variant):
    for logical, resource in templates()[variant]["Resources"].items():
        kind = resource["Type"]
        assert kind in ACCOUNT_WIDE_NAMES or kind in REGIONAL, f"{logical}: look up the name scope of {kind}"
        prop = ACCOUNT_WIDE_NAMES.get(kind)
        name = resource.get("Properties", {}).get(prop) if prop else None
        if name is not None:  # an unnamed resource gets a generated, unique name
            assert "${AWS::Region}" in json.dumps(name), f"{logical}.{prop} is the same in every region: {name}"


def test_the_dashboard_name_and_output_differ_per_region():
    template = render_dict(StackConfig())
    name = template["Resources"]["PipelineDashboard"]["Properties"]["DashboardName"]
    assert name == {"Fn::Sub": ["market-data-${Env}-${AWS::Region}", {"Env": {"Ref": "EnvironmentSuffix"}}]}
    assert template["Outputs"]["dashboardName"]["Value"] == name


# --- AggregationSchedule --------------------------------------------------------------------------

# The EventBridge user guide's own examples (eb-scheduled-rule-pattern.html) and the rules it states.
DOCUMENTED_VALID = [
    "rate(1 minute)",
    "rate(5 minutes)",
    "rate(1 hour)",
    "rate(12 hours)",
    "rate(1 day)",
    "rate(7 days)",
    "cron(0 10 * * ? *)",
    "cron(15 12 * * ? *)",
    "cron(0 18 ? * MON-FRI *)",
    "cron(0 8 1 * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(0/10 * ? * MON-FRI *)",
    "cron(0/5 8-17 ? * MON-FRI *)",
    "cron(0 9 ? * 2#1 *)",
    "cron(0/5 13-21 ? * MON-FRI *)",  # the parameter's documented market-hours example
    "cron(0 0 L * ? *)",
    "cron(0 8 1W * ? *)",
    "cron(0 12 ? JAN,APR,JUL,OCT 2 2026-2030)",
]
DOCUMENTED_INVALID = {
    "rate(1 minutes)": "singular",
    "rate(5 minute)": "plural",
    "rate(0 minutes)": "positive",
    "rate(5 seconds)": "unit",
    "rate(five minutes)": "positive",
    "cron(0 10 * * *)": "six fields",
    "cron(0 10 * * ? * *)": "six fields",
    "cron(0 10 * * * *)": "exactly one",  # * in both day fields
    "cron(0 10 1 * MON *)": "exactly one",  # values in both day fields
    "cron(0 10 ? * ? *)": "exactly one",
    "cron(60 10 * * ? *)": "Minutes",
    "cron(0 24 * * ? *)": "Hours",
    "cron(0 10 32 * ? *)": "Day-of-month",
    "cron(0 10 ? 13 MON *)": "Month",
    "cron(0 10 ? * 8 *)": "Day-of-week",
    "cron(0 10 ? * 3#1,6#3 *)": "Day-of-week",  # a # expression stands alone
    "cron(0 10 * * ? 1969)": "Year",
    "cron(0 10 * * ? 2200)": "Year",
    "cron(0 10 * * ? *) ": "not rate",
    "every 5 minutes": "not rate",
}


@pytest.mark.parametrize("expression", DOCUMENTED_VALID)
def test_documented_schedules_are_accepted(expression):
    assert re.fullmatch(SCHEDULE_PATTERN, expression)
    assert schedule_problem(expression) is None


@pytest.mark.parametrize(("expression", "reason"), DOCUMENTED_INVALID.items())
def test_schedules_eventbridge_refuses_are_refused_with_the_reason(expression, reason):
    assert not re.fullmatch(SCHEDULE_PATTERN, expression)
    problem = schedule_problem(expression)
    assert problem is not None and reason in problem and "\n" not in problem


def test_the_template_parameter_is_the_grammar_and_deploy_refuses_before_any_call():
    template = render_dict(StackConfig())
    spec = template["Parameters"]["AggregationSchedule"]
    assert spec["AllowedPattern"] == SCHEDULE_PATTERN
    assert re.fullmatch(spec["AllowedPattern"], spec["Default"])
    with pytest.raises(
        UsageError, match=r"AggregationSchedule: 'rate\(1 minutes\)': EventBridge wants rate\(1 minute\)"
    ):
        check_parameters(template, {"AggregationSchedule": "rate(1 minutes)"})
    check_parameters(template, {"AggregationSchedule": "cron(0/5 13-21 ? * MON-FRI *)"})


# --- the CMK bus's dead-letter queue ---------------------------------------------------------------


def test_the_cmk_encrypted_bus_dead_letters_into_invocation_dlq_which_lets_it_send():
    resources = render_dict(StackConfig(profile="regulated"))["Resources"]
    bus = resources["MarketEventBus"]["Properties"]
    assert "KmsKeyIdentifier" in bus
    assert bus["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["InvocationDLQ", "Arn"]}}
    (statement,) = resources["InvocationDLQPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": ["events.amazonaws.com"]}
    assert {"Fn::GetAtt": ["MarketEventBus", "Arn"]} in statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    key_policy = json.dumps(resources["PipelineKey"]["Properties"]["KeyPolicy"])
    assert "InvocationDLQ-${Env}" in key_policy  # EventBridge may encrypt into the (CMK) queue
    assert any(
        name.startswith("InvocationDLQ") and r["Type"] == "AWS::CloudWatch::Alarm" for name, r in resources.items()
    )


def test_the_bus_under_an_aws_owned_key_needs_no_bus_dlq():
    resources = render_dict(StackConfig())["Resources"]
    assert "DeadLetterConfig" not in resources["MarketEventBus"]["Properties"]
    (statement,) = resources["InvocationDLQPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert {"Fn::GetAtt": ["MarketEventBus", "Arn"]} not in statement["Condition"]["ArnEquals"]["aws:SourceArn"]


# --- the bootstrap bucket ---------------------------------------------------------------------------


def test_the_bootstrap_bucket_never_expires_a_current_artifact():
    bucket = json.loads(render_bootstrap_json())["Resources"]["ArtifactsBucket"]["Properties"]
    rules = bucket["LifecycleConfiguration"]["Rules"]
    assert rules and all(rule["Status"] == "Enabled" for rule in rules)
    for rule in rules:
        assert not {"ExpirationInDays", "ExpirationDate", "ExpiredObjectDeleteMarker", "Transitions"} & set(rule)
    assert any(rule.get("NoncurrentVersionExpiration", {}).get("NoncurrentDays") == 30 for rule in rules)
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
