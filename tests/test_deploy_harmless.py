"""Fail closed by design: under --yes an in-place change of a stateful, policy-bearing
or role-bearing resource executes only when every property it changes is on the allow-list of harmless
changes (market_cfn/deploy/review/harmless.py); anything else is a "change" finding that only
--allow-change LOGICAL_ID.PROPERTY allows. Harmless code and configuration changes still deploy."""

from __future__ import annotations

import copy
import json

import pytest
from stubs_cfn import CS_ARN, Flow, console, output

from market_cfn.deploy import Overrides
from market_cfn.deploy.changeset import ChangeSetRequest
from market_cfn.deploy.flow import deploy_stack
from market_cfn.deploy.gate import DeployOptions
from market_cfn.deploy.review.harmless import ALLOW_LIST, PRIVILEGED_TYPES, harmless_properties
from market_cfn.deploy.review.schema import resource_schema
from tests.deploy_changesets import change_set, detail, resource_change, review_of, template

FUNCTION = {
    "Type": "AWS::Lambda::Function",
    "Properties": {
        "Code": {"S3Bucket": "artifacts", "S3Key": "market-data/a.zip"},
        "Handler": "data_ingestion.handler",
        "Runtime": "python3.12",
        "Role": "arn:aws:iam::123456789012:role/ingest",
        "MemorySize": 256,
        "Timeout": 30,
        "Environment": {"Variables": {"LOG_LEVEL": "INFO"}},
        "Tags": [{"Key": "team", "Value": "markets"}],
    },
}
QUEUE = {"Type": "AWS::SQS::Queue", "Properties": {"VisibilityTimeout": 900, "MessageRetentionPeriod": 1209600}}
ALARM = {
    "Type": "AWS::CloudWatch::Alarm",
    "Properties": {
        "Namespace": "AWS/Lambda",
        "MetricName": "Errors",
        "Threshold": 1,
        "EvaluationPeriods": 1,
        "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "AlarmActions": ["arn:aws:sns:us-east-1:123456789012:alarms"],
    },
}
ROLE = {
    "Type": "AWS::IAM::Role",
    "Properties": {
        "AssumeRolePolicyDocument": {
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ]
        },
        "Policies": [
            {
                "PolicyName": "work",
                "PolicyDocument": {
                    "Statement": [
                        {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"], "Resource": "arn:aws:s3:::b/*"}
                    ]
                },
            }
        ],
    },
}


def with_props(resource: dict, **props) -> dict:
    out = copy.deepcopy(resource)
    out["Properties"].update(props)
    return out


def modify(lid: str, old: dict, new: dict, *, overrides: Overrides | None = None, details=()):
    cs = change_set(resource_change("Modify", lid, old["Type"], replacement="False", details=list(details)))
    return review_of(cs, template(**{lid: old}), template(**{lid: new}), overrides=overrides)


def unlisted(review) -> list[str]:
    return [f.override for f in review.findings if f.kind == "change"]


# --- the allow-list itself, against the resource schemas cfn-lint ships -------------------------------


@pytest.mark.parametrize("resource_type", sorted(ALLOW_LIST))
def test_every_listed_property_is_an_updatable_property_of_the_schema(resource_type):
    schema = resource_schema(resource_type)
    props = set(schema["properties"])
    pointers = set(schema.get("createOnlyProperties") or []) | set(schema.get("readOnlyProperties") or [])
    for name in ALLOW_LIST[resource_type]:
        assert name in props, f"{resource_type}.{name} is not in its schema"
        assert f"/properties/{name}" not in pointers, f"{resource_type}.{name} is create-only or read-only"


def test_the_tag_property_comes_from_the_schema_and_a_type_without_an_entry_has_only_that():
    assert "Tags" in harmless_properties("AWS::Lambda::Function", "us-east-1")[0]
    # Events::Archive is not taggable (its schema: "taggable": false): nothing besides its Description
    assert harmless_properties("AWS::Events::Archive", "us-east-1")[0] == {"Description"}
    only_tags, why = harmless_properties("AWS::StepFunctions::StateMachine", "us-east-1")
    assert only_tags == {"Tags"} and why == "no allow-list of harmless changes for AWS::StepFunctions::StateMachine"
    assert harmless_properties("Custom::Ledger", "us-east-1") == (
        frozenset(),
        "no resource schema for Custom::Ledger: no change is known to be harmless",
    )


# --- harmless changes still deploy under --yes ----------------------------------------------------------


@pytest.mark.parametrize(
    "lid, old, new",
    [
        ("Fn", FUNCTION, with_props(FUNCTION, Code={"S3Bucket": "artifacts", "S3Key": "market-data/b.zip"})),
        ("Fn", FUNCTION, with_props(FUNCTION, MemorySize=512, Timeout=60)),
        ("Fn", FUNCTION, with_props(FUNCTION, Environment={"Variables": {"LOG_LEVEL": "DEBUG"}})),
        ("Fn", FUNCTION, with_props(FUNCTION, Tags=[{"Key": "team", "Value": "risk"}])),
        ("Queue", QUEUE, with_props(QUEUE, VisibilityTimeout=1800)),
        ("Alarm", ALARM, with_props(ALARM, Threshold=5, EvaluationPeriods=3)),
        ("Role", ROLE, with_props(ROLE, Description="the ingest role", Tags=[{"Key": "a", "Value": "b"}])),
        ("Queue", QUEUE, {**QUEUE, "DeletionPolicy": "Retain"}),  # keeps more, never less
    ],
)
def test_harmless_code_and_configuration_changes_pass_under_yes(lid, old, new):
    review = modify(lid, old, new)
    assert review.blocking(assume_yes=True) == [], [(f.what, f.causes) for f in review.findings]


# --- everything else needs a named override -------------------------------------------------------------


def test_a_narrowing_policy_change_is_not_a_broadening_but_still_needs_its_name_under_yes():
    narrower = copy.deepcopy(ROLE)
    narrower["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] = ["s3:GetObject"]
    review = modify("Role", ROLE, narrower)
    assert [f for f in review.findings if f.kind == "broadening"] == []
    (finding,) = review.blocking(assume_yes=True)
    assert finding.kind == "change" and finding.override == "--allow-change Role.Policies"
    assert "not on the allow-list of harmless changes for AWS::IAM::Role" in finding.causes
    assert any("s3:PutObject → (absent)" in c for c in finding.causes)  # the leaf that changes explains it
    assert review.blocking(assume_yes=False) == []  # a human at the prompt decides
    allowed = modify("Role", ROLE, narrower, overrides=Overrides(allow_change=frozenset({"Role.Policies"})))
    assert allowed.blocking(assume_yes=True) == [] and allowed.unmatched_overrides == []


def test_each_changed_property_needs_its_own_name():
    new = with_props(FUNCTION, Role="arn:aws:iam::123456789012:role/admin", VpcConfig={"SubnetIds": ["s"]}, Timeout=5)
    review = modify("Fn", FUNCTION, new)
    assert unlisted(review) == ["--allow-change Fn.Role", "--allow-change Fn.VpcConfig"]
    half = modify("Fn", FUNCTION, new, overrides=Overrides(allow_change=frozenset({"Fn.Role"})))
    assert [f.override for f in half.blocking(assume_yes=True)] == ["--allow-change Fn.VpcConfig"]


def test_an_override_that_names_no_change_is_reported():
    review = modify(
        "Queue",
        QUEUE,
        with_props(QUEUE, VisibilityTimeout=1800),
        overrides=Overrides(allow_change=frozenset({"Queue.RedrivePolicy"})),
    )
    assert review.unmatched_overrides == ["--allow-change Queue.RedrivePolicy"]


def test_an_unknown_type_or_property_is_blocked():
    store = {"Type": "Custom::Ledger", "Properties": {"Size": 1}}
    cs = change_set(resource_change("Modify", "Store", "Custom::Ledger", replacement="False"))
    review = review_of(
        cs,
        template(Store=store),
        template(Store=with_props(store, Size=2)),
        overrides=Overrides(extra_stateful_types=frozenset({"Custom::Ledger"})),
    )
    # a declared stateful type without a schema: the stronger finding (any change may replace it) gates it
    assert [(f.kind, f.needs_human) for f in review.findings] == [("replacement", True)]
    machine = {"Type": "AWS::StepFunctions::StateMachine", "Properties": {"DefinitionString": "{}"}}
    review = modify("M", machine, with_props(machine, DefinitionString='{"StartAt": "x"}'))
    assert unlisted(review) == ["--allow-change M.DefinitionString"]
    review = modify("Queue", QUEUE, with_props(QUEUE, NotAQueueProperty=1))
    (finding,) = review.blocking(assume_yes=True)
    assert finding.causes[0] == "not a property in the AWS::SQS::Queue resource schema"


def test_a_change_only_the_change_set_names_is_gated_too():
    # the templates are identical; the change set's details name a RedrivePolicy change (a macro, say)
    review = modify(
        "Queue",
        QUEUE,
        copy.deepcopy(QUEUE),
        details=[detail("RedrivePolicy", before='{"maxReceiveCount":3}', after='{"maxReceiveCount":1}')],
    )
    assert unlisted(review) == ["--allow-change Queue.RedrivePolicy"]
    assert "shown by the change set's details" in review.findings[0].causes


def test_a_modify_nobody_explains_and_a_dynamic_change_are_gated():
    cs = change_set(
        resource_change("Modify", "Fn", "AWS::Lambda::Function", replacement="False"),
        resource_change("Dynamic", "Rule", "AWS::Events::Rule"),
    )
    review = review_of(cs)
    assert sorted(unlisted(review)) == ["--allow-change Fn", "--allow-change Rule"]
    assert "AWS::Events::Rule" in PRIVILEGED_TYPES


def test_a_weaker_deletion_policy_is_an_unprotection_not_a_change_and_snapshot_from_delete_is_a_change():
    weaker = modify("Queue", {**QUEUE, "DeletionPolicy": "Retain"}, copy.deepcopy(QUEUE))
    assert [f.kind for f in weaker.findings] == ["unprotect"]  # the stronger finding gates it, once
    snapshot = modify("Queue", QUEUE, {**QUEUE, "DeletionPolicy": "Snapshot"})
    assert unlisted(snapshot) == ["--allow-change Queue.DeletionPolicy"]
    assert snapshot.findings[0].causes[0] == "DeletionPolicy becomes Snapshot: only Retain is harmless"


def test_an_allowed_replacement_covers_the_resource_and_nested_changes_carry_their_path():
    from market_cfn.deploy import ReviewInput

    child_cs = change_set(
        resource_change(
            "Modify",
            "Role",
            "AWS::IAM::Role",
            replacement="False",
            details=[detail("ManagedPolicyArns")],
            before={"Properties": ROLE["Properties"]},
            after={"Properties": {**ROLE["Properties"], "ManagedPolicyArns": ["arn:aws:iam::123:policy/x"]}},
        )
    )
    child = ReviewInput(child_cs, None, {}, None, {}, {}, {})
    cs = change_set(
        resource_change(
            "Modify", "Storage", "AWS::CloudFormation::Stack", replacement="False", details=[detail("TemplateURL")]
        )
    )
    review = review_of(cs, nested={"Storage": child})
    assert unlisted(review) == ["--allow-change Storage/Role.ManagedPolicyArns"]
    allowed = review_of(
        cs, nested={"Storage": child}, overrides=Overrides(allow_change=frozenset({"Storage/Role.ManagedPolicyArns"}))
    )
    assert allowed.blocking(assume_yes=True) == [] and allowed.unmatched_overrides == []


# --- through the deploy flow (botocore Stubber) -------------------------------------------------------


def test_under_yes_a_policy_change_is_not_executed_and_a_harmless_one_is(cfn, waits):
    from stubs_cfn import template as stub_template

    old, new = stub_template(timeout=900), stub_template(timeout=900)
    new["Resources"]["ProcessingQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] = 1
    request = ChangeSetRequest("market-data-dev", {"CodeS3Key": "k"}, template_body=json.dumps(new))
    params = {"EnvironmentSuffix": "dev", "CodeS3Key": "k"}
    f = Flow(cfn.stubber)
    f.existing_stack(params)
    f.get_template(old)
    f.create("UPDATE")
    f.status()
    redrive = [
        resource_change(
            "Modify",
            "ProcessingQueue",
            "AWS::SQS::Queue",
            replacement="False",
            details=[detail("RedrivePolicy", before='{"maxReceiveCount":3}', after='{"maxReceiveCount":1}')],
            physical_id="processingqueue",
            scope=None,
        )
    ]
    f.pages(redrive, parameters=params)
    f.pages(redrive, parameters=params, include_values=False)
    f.delete()
    c = console()
    options = DeployOptions(assume_yes=True, drift_check=False)
    outcome = deploy_stack(cfn, request, c, waits, options=options, template=new)
    assert outcome.result == "blocked" and "ProcessingQueue (change)" in outcome.message, output(c)
    text = output(c)
    assert "Changes not known to be harmless (not executed under --yes without --allow-change):" in text
    assert "--allow-change ProcessingQueue.RedrivePolicy" in text
    assert (
        outcome.to_json()["Review"]["BlockedUnderYes"][0]["override"] == "--allow-change ProcessingQueue.RedrivePolicy"
    )
    assert CS_ARN in outcome.change_set_id


def test_docs_deploy_md_documents_exactly_this_allow_list():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "deploy.md").read_text(encoding="utf-8")
    documented = {}
    for line in text.split("## The allow-list of harmless changes", 1)[1].split("\n## ", 1)[0].splitlines():
        if line.startswith("| `"):
            kind, props = (cell.strip() for cell in line.strip("|").split("|"))
            documented[kind.strip("`")] = set() if props == "(none)" else {p.strip("` ") for p in props.split(",")}
    assert documented == {k: set(v) for k, v in ALLOW_LIST.items()}


def test_the_bootstrap_upgrade_changes_only_what_its_code_names_and_passes_under_yes():
    # GIVEN a version 2 bootstrap stack (current artifacts expired after 365 days) and this version's template
    from market_cfn.deploy.bootstrap import UPGRADE_CHANGES, render_bootstrap_json

    new = json.loads(render_bootstrap_json())
    old = copy.deepcopy(new)
    old["Resources"]["ArtifactsBucket"]["Properties"]["LifecycleConfiguration"] = {
        "Rules": [
            {
                "Id": "ExpireOldArtifacts",
                "Status": "Enabled",
                "ExpirationInDays": 365,
                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }
        ]
    }
    cs = change_set(
        resource_change(
            "Modify",
            "ArtifactsBucket",
            "AWS::S3::Bucket",
            replacement="False",
            details=[detail("LifecycleConfiguration")],
        )
    )
    # WHEN it is reviewed as the user's stack THEN the lifecycle change waits for a name under --yes
    assert unlisted(review_of(cs, old, new)) == ["--allow-change ArtifactsBucket.LifecycleConfiguration"]
    # WHEN it is reviewed as ensure_bootstrap does THEN it passes, and nothing is unprotected
    review = review_of(cs, old, new, overrides=Overrides(expected_changes=UPGRADE_CHANGES))
    assert review.blocking(assume_yes=True) == [] and review.unmatched_overrides == []


def test_alarm_actions_are_harmless_only_when_each_one_only_notifies_the_stacks_own_topics():
    topic = {"Type": "AWS::SNS::Topic", "Properties": {}}
    own = "arn:aws:sns:us-east-1:123456789012:paging"

    def alarm_review(actions):
        old = template(Alarm=ALARM, AlarmTopic=topic)
        new = template(Alarm=with_props(ALARM, AlarmActions=actions, OKActions=actions), AlarmTopic=topic)
        cs = change_set(resource_change("Modify", "Alarm", "AWS::CloudWatch::Alarm", replacement="False"))
        return review_of(cs, old, new)

    # the paging topic of the AlarmActionArn parameter, or the template's own topic: notifications only
    assert alarm_review([{"Ref": "AlarmTopic"}, own]).blocking(assume_yes=True) == []
    # another account's topic, an EC2 action, or no action at all: each needs its name under --yes
    for actions in (
        ["arn:aws:sns:us-east-1:999999999999:elsewhere"],
        ["arn:aws:automate:us-east-1:ec2:terminate"],
        [],
    ):
        review = alarm_review(actions)
        assert unlisted(review) == ["--allow-change Alarm.AlarmActions", "--allow-change Alarm.OKActions"], actions
        assert review.findings[0].causes[0] == (
            "AlarmActions: only SNS topics of the stack's own account are harmless alarm actions"
        )
