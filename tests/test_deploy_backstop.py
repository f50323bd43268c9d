"""The backstop (stack policy, termination protection), rollback triggers, locally resolved outputs,
and the gate's decisions on a given review (broadening, --no-execute, --review-out)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from botocore.stub import Stubber
from stubs_cfn import (
    ACCOUNT,
    CS_ARN,
    CS_NAME,
    REGION,
    STACK,
    STACK_ID,
    FakeTime,
    console,
    make_client,
    make_waits,
    output,
    stack,
    template,
)

from market_cfn.base.aws import Where
from market_cfn.base.errors import DeployError
from market_cfn.deploy import gate
from market_cfn.deploy.backstop import apply_stack_policies, enable_termination_protection, retains_data, stack_policy
from market_cfn.deploy.gate import DeployOptions
from market_cfn.deploy.outputs import StackFacts, resolve_outputs
from market_cfn.deploy.review.format import review_markdown
from market_cfn.deploy.review.merge import build_review
from market_cfn.deploy.review.model import Finding, Overrides, Review, ReviewInput
from market_cfn.deploy.triggers import health_alarms, plan_rollback

# --- the stack policy ------------------------------------------------------------------


def test_the_policy_allows_updates_and_denies_replace_and_delete_of_the_protected_ids():
    policy = stack_policy(["MarketDataTable", "DataBucket"], open_ids=["DataBucket"])
    allow, deny = policy["Statement"]
    # protect-stack-resources.html: once a policy is set everything not allowed is denied,
    # so the Allow Update:* on * comes first; Principal must be "*"
    assert allow == {"Effect": "Allow", "Principal": "*", "Action": "Update:*", "Resource": "*"}
    assert deny == {
        "Effect": "Deny",
        "Principal": "*",
        "Action": ["Update:Replace", "Update:Delete"],
        "Resource": ["LogicalResourceId/MarketDataTable"],
    }
    assert stack_policy([])["Statement"] == [allow]


def test_a_policy_over_the_api_limit_fails_closed():
    from market_cfn.deploy.backstop import policy_body

    with pytest.raises(DeployError, match="over SetStackPolicy's 16,384"):
        policy_body(stack_policy([f"Resource{i:04d}WithAFairlyLongLogicalId" for i in range(600)]))


def test_nested_stacks_get_their_own_policy():
    client = make_client()
    child = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}-Storage-1/bbbb"
    with Stubber(client) as s:
        s.add_response(
            "set_stack_policy", {}, {"StackName": STACK_ID, "StackPolicyBody": _body(["Storage"], open_ids=[])}
        )
        s.add_response(
            "describe_stack_resources",
            {
                "StackResources": [
                    {
                        "LogicalResourceId": "Storage",
                        "PhysicalResourceId": child,
                        "ResourceType": "AWS::CloudFormation::Stack",
                        "Timestamp": stack("x")["Stacks"][0]["CreationTime"],
                        "ResourceStatus": "UPDATE_COMPLETE",
                    }
                ]
            },
            {"StackName": STACK_ID, "LogicalResourceId": "Storage"},
        )
        s.add_response(
            "set_stack_policy", {}, {"StackName": child, "StackPolicyBody": _body(["Ledger", "Archive"], ["Ledger"])}
        )
        lines = apply_stack_policies(
            client,
            STACK_ID,
            {"": ["Storage"], "Storage": ["Archive", "Ledger"]},
            console(),
            open_ids=["Storage/Ledger"],
            why="for this execution",
        )
        s.assert_no_pending_responses()
    assert lines[1].endswith("open for this execution: Ledger.")
    assert lines[1].startswith("Stack policy (for this execution) on nested stack Storage:")


def _body(ids: list[str], open_ids: list[str]) -> str:
    return json.dumps(stack_policy(ids, open_ids=open_ids), sort_keys=True, separators=(",", ":"))


def test_termination_protection_an_emulator_lacks_is_said_and_skipped_but_fails_on_aws():
    client = make_client()
    with Stubber(client) as s:
        s.add_client_error("update_termination_protection", "InternalFailure", "not implemented", 500)
        c = console()
        assert enable_termination_protection(client, STACK, c, emulator=True) is False
        assert "does not implement it; not set" in output(c)
        s.add_client_error("update_termination_protection", "AccessDenied", "not authorized", 403)
        with pytest.raises(DeployError, match="termination protection could not be turned on: not authorized"):
            enable_termination_protection(client, STACK, console(), emulator=False)


def test_which_templates_retain_data():
    assert retains_data(template(retain=True)) is True
    assert retains_data(template(retain=False)) is False


# --- rollback triggers -----------------------------------------------------------------


def test_health_alarms_are_function_errors_and_dead_letter_depth():
    alarms = health_alarms(template())
    assert alarms == [
        ("DataIngestionInvocationErrorAlarm", "Lambda Errors of DataIngestionFunction"),
        ("ProcessingDLQAlarm", "messages in dead-letter queue ProcessingDLQ"),
    ]


def test_the_real_template_has_more_health_alarms_than_cloudformation_takes_and_says_which_are_left_out():
    rendered = json.loads((Path(__file__).resolve().parents[1] / "build" / "template.json").read_text())
    physical = {k: f"{k}-alarm" for k in rendered["Resources"]}
    plan = plan_rollback(STACK_ID, rendered, rendered, physical, enabled=True, monitoring_minutes=10)
    assert plan.configuration is not None
    triggers = plan.configuration["RollbackTriggers"]
    assert len(triggers) == 5  # RollbackTriggers: at most 5 (service model)
    assert all(t["Type"] == "AWS::CloudWatch::Alarm" for t in triggers)
    assert triggers[0]["Arn"].startswith(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:")
    assert len(plan.used) + len(plan.left_out) == 6  # three functions, three dead-letter queues
    assert "not passed (CloudFormation takes at most 5)" in "\n".join(plan.describe())


def test_an_alarm_the_update_removes_is_not_a_trigger():
    old, new = template(), template()
    del new["Resources"]["ProcessingDLQAlarm"]
    plan = plan_rollback(
        STACK_ID, old, new, {"DataIngestionInvocationErrorAlarm": "a"}, enabled=True, monitoring_minutes=5
    )
    assert plan.configuration == {
        "RollbackTriggers": [
            {"Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:a", "Type": "AWS::CloudWatch::Alarm"}
        ],
        "MonitoringTimeInMinutes": 5,
    }


def test_no_triggers_on_create_or_when_off():
    assert plan_rollback("", None, template(), {}, enabled=True, monitoring_minutes=5).configuration is None
    off = plan_rollback(STACK_ID, template(), template(), {}, enabled=False, monitoring_minutes=5)
    assert off.configuration is None and off.describe() == ["Rollback triggers: none (--no-rollback-alarms)."]


# --- outputs on a local endpoint -------------------------------------------------------


def test_every_output_is_printed_and_the_local_ones_are_named():
    facts = StackFacts(
        STACK_ID,
        {"EnvironmentSuffix": "prod"},
        {"MarketDataTable": "market-data-prod", "ProcessingQueue": "https://sqs/q"},
        {"MarketDataTable": "AWS::DynamoDB::Table", "ProcessingQueue": "AWS::SQS::Queue"},
    )
    t = template()
    t["Outputs"]["unknown"] = {"Value": {"Fn::GetAtt": ["MarketDataTable", "StreamArn"]}}
    resolved = resolve_outputs(t, {"processingQueueUrl": "reported"}, facts)
    assert resolved.values == {
        "apiGatewayUrl": "https://abc123.execute-api.us-east-1.amazonaws.com/prod/ingest",
        "dynamodbTableArn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/market-data-prod",
        "dynamodbTableName": "market-data-prod",
        "processingQueueUrl": "reported",
    }
    assert resolved.local == ["apiGatewayUrl", "dynamodbTableArn", "dynamodbTableName"]
    assert resolved.unresolved == {"unknown": "GetAtt MarketDataTable.StreamArn"}
    assert "not resolved: unknown (GetAtt MarketDataTable.StreamArn)" in resolved.note()


# --- the gate, given a review ----------------------------------------------------------


def _review(*findings: Finding) -> Review:
    cs = {"ChangeSetId": CS_ARN, "ChangeSetName": CS_NAME, "StackId": STACK_ID, "StackName": STACK}
    review = build_review(ReviewInput.from_change_set({**cs, "Changes": []}), Overrides())
    review.findings = list(findings)
    return review


BROADENING = Finding(
    "broadening",
    "DataProcessorRole",
    "AWS::IAM::Role",
    "+ Allow s3:* on *",
    ("wildcard action",),
    "--allow-broadening",
    False,
    False,
)


def _context() -> gate.GateContext:
    return gate.GateContext("UPDATE", ReviewInput.from_change_set({}))


def test_broadening_under_yes_is_blocked_and_deleted():
    client = make_client()
    cs = _review().change_set
    with Stubber(client) as s:
        s.add_response("delete_change_set", {}, {"ChangeSetName": CS_ARN})
        s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
        outcome = gate.review_and_execute(
            client,
            cs,
            _review(BROADENING),
            _context(),
            console(),
            make_waits(FakeTime()),
            DeployOptions(assume_yes=True),
        )
    assert outcome.result == "blocked" and "DataProcessorRole (broadening)" in outcome.message


def test_broadening_at_a_terminal_is_shown_before_the_prompt():
    client = make_client()
    cs = _review().change_set
    c = console("n")
    with Stubber(client) as s:
        s.add_response("delete_change_set", {}, {"ChangeSetName": CS_ARN})
        s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
        outcome = gate.review_and_execute(
            client, cs, _review(BROADENING), _context(), c, make_waits(FakeTime()), DeployOptions()
        )
    assert outcome.result == "declined"
    text = output(c)
    assert text.index("Security broadening (listed above) executes only if you answer y here.") < text.index(
        "Execute this change set? [y/N]"
    )
    assert c.asked == ["Execute this change set? [y/N] "]  # type: ignore[attr-defined]


def test_review_out_writes_the_markdown_and_no_execute_keeps_a_broadening_change_set(tmp_path):
    client = make_client()
    cs = _review().change_set
    out = tmp_path / "review" / "pr.md"
    c = console()
    with Stubber(client):
        outcome = gate.review_and_execute(
            client,
            cs,
            _review(BROADENING),
            _context(),
            c,
            make_waits(FakeTime()),
            DeployOptions(execute=False, review_out=out, where=Where(region="eu-west-1", profile="ci")),
        )
    assert outcome.result == "created-change-set" and outcome.review_out == str(out)
    assert out.read_text() == review_markdown(outcome.review)
    assert f"bin/deploy --execute {CS_ARN} --region eu-west-1 --profile ci" in output(c)
