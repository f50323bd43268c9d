"""Deploy flows against botocore's Stubber: every call, its parameters and its order.

Responses are validated by Stubber against botocore's cloudformation service model (see
tests/stubs_cfn.py for the API reference fields each one relies on).
"""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY
from stubs_cfn import (
    ACCOUNT,
    CS_ARN,
    REGION,
    STACK,
    STACK_ID,
    Flow,
    console,
    event,
    output,
    stack,
    template,
)

from market_cfn.base.aws import Where
from market_cfn.base.errors import DeployError, UsageError
from market_cfn.deploy import flow
from market_cfn.deploy.changeset import ChangeSetRequest
from market_cfn.deploy.flow import deploy_stack, execute_existing
from market_cfn.deploy.gate import DeployOptions
from market_cfn.deploy.review.guard import stateful_logical_ids
from market_cfn.deploy.review.model import Overrides
from tests.deploy_changesets import detail, resource_change

OLD = template(timeout=900)
NEW = template(timeout=1800)
PARAMS = {"EnvironmentSuffix": "dev", "CodeS3Key": "market-data/aaa.zip"}
REQUEST = ChangeSetRequest(STACK, {"CodeS3Key": "market-data/aaa.zip"}, template_body=json.dumps(NEW))
HARMLESS = [
    resource_change(
        "Modify",
        "ProcessingQueue",
        "AWS::SQS::Queue",
        replacement="False",
        details=[detail("VisibilityTimeout", before="900", after="1800")],
        physical_id="processingqueue",
        scope=None,
    )
]


@pytest.fixture
def captured(monkeypatch):
    """The ReviewInput the flow hands the guard (the guard itself runs unchanged)."""
    seen: dict = {}
    real = flow.build_review

    def spy(inputs, overrides):
        seen["inputs"], seen["overrides"] = inputs, overrides
        return real(inputs, overrides)

    monkeypatch.setattr(flow, "build_review", spy)
    return seen


def protected(*templates: dict) -> list[str]:
    ids: set[str] = set()
    for t in templates:
        ids |= set(stateful_logical_ids(t))
    return sorted(ids)


def test_update_gathers_every_input_and_executes_under_the_backstop(cfn, waits, captured):
    # GIVEN a deployed stack that retains its table, and a harmless change (a visibility timeout)
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)  # GetTemplate(TemplateStage=Original): the deployed template
    f.list_resources()  # the alarms' names, for the rollback triggers
    rollback = {
        "RollbackTriggers": [
            {
                "Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:DataIngestion-dev-invocation-errors",
                "Type": "AWS::CloudWatch::Alarm",
            },
            {
                "Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:ProcessingDLQ-dev-depth",
                "Type": "AWS::CloudWatch::Alarm",
            },
        ],
        "MonitoringTimeInMinutes": 15,
    }
    f.create("UPDATE", rollback=rollback)
    f.status()
    f.pages(HARMLESS, parameters=PARAMS)  # with IncludePropertyValues
    f.drift(protected(OLD), {})
    f.pages(HARMLESS, parameters=PARAMS, include_values=False)  # the plain description
    f.set_policy(protected(OLD, NEW))  # before executing: nothing opened
    f.execute()
    f.get_template(NEW)  # outputs: the endpoint reported none
    f.list_resources()
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    f.set_policy(protected(OLD, NEW))  # after: the full policy
    cfn.stubber.add_response(
        "update_termination_protection",
        {"StackId": STACK_ID},
        {"StackName": STACK, "EnableTerminationProtection": True},
    )
    options = DeployOptions(assume_yes=True, rollback_alarms=True, rollback_monitoring_minutes=15)
    c = console()
    # WHEN it is deployed with --yes
    outcome = deploy_stack(cfn, REQUEST, c, waits, options=options, template=NEW)
    # THEN it is executed, and the guard saw every input
    assert outcome.result == "deployed", output(c)
    inputs = captured["inputs"]
    assert inputs.deployed_template == OLD and inputs.new_template == NEW
    assert inputs.plain_change_set["Changes"] == HARMLESS and inputs.change_set["Changes"] == HARMLESS
    assert dict(inputs.old_parameters) == PARAMS
    assert inputs.new_parameters["CodeS3Key"] == "market-data/aaa.zip"
    assert inputs.drift_checked is True and dict(inputs.drifted) == {}
    assert "MarketDataTable" in protected(OLD)
    text = output(c)
    assert "Rollback triggers (2, monitored for 15 min after the update):" in text
    assert "Termination protection: on for stack market-data-dev" in text
    # every Output, the Sub/GetAtt ones too, resolved from physical ids and marked as such
    assert outcome.outputs["dynamodbTableArn"] == f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/market-data-dev"
    assert outcome.outputs["apiGatewayUrl"] == "https://abc123.execute-api.us-east-1.amazonaws.com/dev/ingest"
    assert sorted(outcome.outputs_resolved_locally) == sorted(NEW["Outputs"])
    assert "resolved locally from the stack's physical resource IDs" in text
    assert outcome.to_json()["RollbackConfiguration"] == rollback


def _table_removal() -> list[dict]:
    """The change set's one change: the table removed (its DeletionPolicy Retain)."""
    return [
        resource_change(
            "Remove",
            "MarketDataTable",
            "AWS::DynamoDB::Table",
            policy_action="Retain",
            physical_id="marketdatatable",
            scope=None,
        )
    ]


def test_a_blocked_change_set_is_deleted_and_nothing_executes(cfn, waits):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    removal = _table_removal()
    f.pages(removal, parameters=PARAMS)
    f.drift(protected(OLD))
    f.pages(removal, parameters=PARAMS, include_values=False)
    f.delete()  # DeleteChangeSet: it cannot be executed later by mistake
    c = console()
    outcome = deploy_stack(cfn, REQUEST, c, waits, options=DeployOptions(assume_yes=True), template=NEW)
    assert outcome.result == "blocked" and "MarketDataTable" in outcome.message
    assert outcome.cleaned_up == ["change set deploy-20261125T101500Z-abc123"]
    assert "Deleted change set" in output(c)
    # no SetStackPolicy, no ExecuteChangeSet was stubbed: Stubber fails the test on either


def test_keep_change_set_keeps_a_blocked_one_for_inspection(cfn, waits):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    removal = _table_removal()
    f.pages(removal)
    f.pages(removal, include_values=False)
    options = DeployOptions(assume_yes=True, keep_change_set=True, drift_check=False)
    c = console()
    outcome = deploy_stack(cfn, REQUEST, c, waits, options=options, template=NEW)
    assert outcome.result == "blocked" and outcome.cleaned_up == []
    assert f"Change set kept for inspection (--keep-change-set): {CS_ARN}" in output(c)
    assert "Drift: not checked (--no-drift-check)." in output(c)


def test_allow_replacement_opens_exactly_that_resource_for_the_execution(cfn, waits):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    replace = [
        resource_change(
            "Modify",
            "MarketDataTable",
            "AWS::DynamoDB::Table",
            replacement="True",
            policy_action="ReplaceAndRetain",
            details=[detail("TableName", recreation="Always", before="market-data-dev", after="market-data-v2-dev")],
            physical_id="marketdatatable",
            scope=None,
        )
    ]
    f.pages(replace)
    f.pages(replace, include_values=False)
    everything = protected(OLD, NEW)
    f.set_policy([i for i in everything if i != "MarketDataTable"])  # open for this execution only
    f.execute()
    f.get_template(NEW)
    f.list_resources()
    cfn.stubber.add_response(
        "describe_stacks", stack("UPDATE_COMPLETE", EnableTerminationProtection=True), {"StackName": STACK_ID}
    )
    f.set_policy(everything)  # closed again
    options = DeployOptions(
        assume_yes=True, drift_check=False, overrides=Overrides(allow_replacement=frozenset({"MarketDataTable"}))
    )
    c = console()
    outcome = deploy_stack(cfn, REQUEST, c, waits, options=options, template=NEW)
    assert outcome.result == "deployed", output(c)
    assert "open for this execution: MarketDataTable" in output(c)
    assert outcome.backstop[-1] == "Termination protection: already on for stack market-data-dev."


def test_an_override_that_names_nothing_is_a_usage_error_and_leaves_nothing(cfn, waits):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    f.pages(HARMLESS)
    f.pages(HARMLESS, include_values=False)
    f.delete()
    options = DeployOptions(
        assume_yes=True, drift_check=False, overrides=Overrides(allow_replacement=frozenset({"MarketDataTabel"}))
    )
    with pytest.raises(UsageError, match="--allow-replacement MarketDataTabel"):
        deploy_stack(cfn, REQUEST, console(), waits, options=options, template=NEW)


def test_ctrl_c_at_the_prompt_means_no_and_cleans_up_the_change_set_and_the_empty_stack(cfn, waits):
    f = Flow(cfn.stubber)
    f.no_stack()
    f.create("CREATE")
    f.status()
    adds = [resource_change("Add", "MarketDataTable", "AWS::DynamoDB::Table", scope=None)]
    f.pages(adds)
    f.pages(adds, include_values=False)
    f.delete(review_in_progress=True)
    c = console(interrupt=True)
    outcome = deploy_stack(cfn, REQUEST, c, waits, template=NEW)
    assert outcome.result == "declined"
    assert outcome.cleaned_up == ["change set deploy-20261125T101500Z-abc123", "empty stack market-data-dev"]
    assert "Interrupted at the prompt: taken as no." in output(c)
    assert "deleted change set deploy-20261125T101500Z-abc123, empty stack market-data-dev" in outcome.message


def test_ctrl_c_while_the_change_set_is_created_cleans_up_too(cfn, waits, fake_time):
    f = Flow(cfn.stubber)
    f.no_stack()
    f.create("CREATE")
    f.status("CREATE_IN_PROGRESS", execution="UNAVAILABLE")
    f.status("CREATE_PENDING", execution="UNAVAILABLE")  # DescribeChangeSet of the cleanup
    f.delete(review_in_progress=True)

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    waits.sleep = interrupt
    outcome = deploy_stack(cfn, REQUEST, console(), waits, template=NEW)
    assert outcome.result == "declined" and "empty stack market-data-dev" in outcome.message


def test_ctrl_c_during_execution_says_what_goes_on_and_how_to_follow_it(cfn, waits):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    f.pages(HARMLESS)
    f.pages(HARMLESS, include_values=False)
    f.set_policy(protected(OLD, NEW))
    cfn.stubber.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK_ID})
    cfn.stubber.add_response("execute_change_set", {}, {"ChangeSetName": CS_ARN, "ClientRequestToken": ANY})
    cfn.stubber.add_response(
        "describe_stack_events",
        {"StackEvents": [event(STACK, "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", 1, token=None)]},
        {"StackName": STACK_ID},
    )
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})

    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    waits.sleep = interrupt
    where = Where(region="eu-west-1", profile="prod", endpoint_url="")
    options = DeployOptions(assume_yes=True, drift_check=False, where=where)
    with pytest.raises(DeployError) as caught:
        deploy_stack(cfn, REQUEST, console(), waits, options=options, template=NEW)
    message = str(caught.value)
    assert "the UPDATE of stack market-data-dev goes on in CloudFormation" in message
    assert (
        "aws cloudformation describe-stack-events --stack-name market-data-dev --region eu-west-1 --profile prod"
        in (message)
    )


def test_drift_of_a_stateful_resource_reaches_the_guard_and_the_json(cfn, waits, captured):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    f.pages(HARMLESS)
    # DETECTION_IN_PROGRESS first: polled after one sleep
    f.drift(protected(OLD), {"MarketDataTable": "MODIFIED"}, statuses=("DETECTION_IN_PROGRESS", "DETECTION_COMPLETE"))
    f.pages(HARMLESS, include_values=False)
    c = console()
    outcome = deploy_stack(cfn, REQUEST, c, waits, options=DeployOptions(execute=False), template=NEW)
    assert dict(captured["inputs"].drifted) == {"MarketDataTable": "MODIFIED"}
    assert captured["inputs"].drift_checked is True
    drift = outcome.to_json()["Drift"]
    assert drift["Drifted"] == {"MarketDataTable": "MODIFIED"}
    assert drift["Differences"]["MarketDataTable"] == ["/DeletionProtectionEnabled: true -> false (NOT_EQUAL)"]
    assert "Drift: 1 of" in output(c) and "MarketDataTable MODIFIED" in output(c)


def test_drift_detection_that_fails_on_aws_fails_closed(cfn, waits):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    f.pages(HARMLESS)
    f.list_resources()
    cfn.stubber.add_client_error(
        "detect_stack_drift", "AccessDenied", "not authorized to perform: s3:GetBucketPolicy", 403
    )
    f.status("CREATE_COMPLETE")  # the change set is deleted: nothing unreviewed stays executable
    f.delete()
    with pytest.raises(DeployError, match="drift detection failed: not authorized.*--no-drift-check"):
        deploy_stack(cfn, REQUEST, console(), waits, options=DeployOptions(assume_yes=True), template=NEW)


def test_drift_detection_an_emulator_lacks_is_a_documented_degradation(cfn, waits, captured):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    f.pages(HARMLESS)
    f.list_resources()
    cfn.stubber.add_client_error(
        "detect_stack_drift", "InternalFailure", "The detect_stack_drift action has not been implemented", 500
    )
    f.pages(HARMLESS, include_values=False)
    options = DeployOptions(execute=False, where=Where(endpoint_url="http://127.0.0.1:5055", region=REGION))
    c = console()
    outcome = deploy_stack(cfn, REQUEST, c, waits, options=options, template=NEW)
    assert captured["inputs"].drift_checked is False
    assert "Drift: not checked: this endpoint does not implement drift detection." in output(c)
    # the --no-execute hint repeats where it ran
    assert f"--execute {CS_ARN} --endpoint-url http://127.0.0.1:5055 --region us-east-1" in output(c)
    assert outcome.result == "created-change-set"


def test_nested_change_sets_are_described_and_reviewed_with_their_templates(cfn, waits, captured):
    child_arn = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/{STACK}-Storage-1/aaaa"
    child_stack = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}-Storage-1/bbbb"
    child_old = {"Resources": {"Ledger": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Retain"}}}
    child_new = {"Resources": {"Ledger": {"Type": "AWS::DynamoDB::Table", "DeletionPolicy": "Delete"}}}
    parent_change = resource_change(
        "Modify",
        "Storage",
        "AWS::CloudFormation::Stack",
        replacement="False",
        change_set_id=child_arn,
        physical_id=child_stack,
        scope=None,
    )
    child_changes = [
        resource_change(
            "Modify", "Ledger", "AWS::DynamoDB::Table", replacement="False", physical_id="ledger", scope=None
        )
    ]
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    f.pages([parent_change])
    f.pages([parent_change], include_values=False)
    # the child: every page with values, its stack, both templates, the plain description
    f.pages(child_changes + child_changes, per_page=1, arn=child_arn, ParentChangeSetId=CS_ARN)
    cfn.stubber.add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": f"{STACK}-Storage-1",
                    "StackId": child_stack,
                    "CreationTime": stack("x")["Stacks"][0]["CreationTime"],
                    "StackStatus": "UPDATE_COMPLETE",
                    "Parameters": [{"ParameterKey": "Env", "ParameterValue": "dev"}],
                }
            ]
        },
        {"StackName": child_stack},
    )
    f.get_template(child_old, stack_name=child_stack)
    cfn.stubber.add_response(
        "get_template",
        {"TemplateBody": json.dumps(child_new)},
        {"StackName": STACK_ID, "ChangeSetName": child_arn, "TemplateStage": "Original"},
    )
    f.pages(child_changes, arn=child_arn, include_values=False)
    options = DeployOptions(execute=False, drift_check=False, keep_change_set=True)
    outcome = deploy_stack(cfn, REQUEST, console(), waits, options=options, template=NEW)
    # the child's Retain -> Delete is the guard's to find; it reaches the review under the nested path
    assert "Storage/Ledger" in {f.logical_id for f in outcome.review.findings}
    nested = captured["inputs"].nested["Storage"]
    assert nested.deployed_template == child_old and nested.new_template == child_new
    assert len(nested.change_set["Changes"]) == 2  # both pages
    assert nested.plain_change_set["Changes"] == child_changes
    assert dict(nested.old_parameters) == {"Env": "dev"}


def test_incomplete_description_is_fetched_plain_too(cfn, waits, captured):
    reason = "[WARN] --include-property-values option can return incomplete ChangeSet data"
    with_values = [HARMLESS[0]]
    plain = HARMLESS + [
        resource_change("Remove", "MarketDataTable", "AWS::DynamoDB::Table", physical_id="marketdatatable", scope=None)
    ]
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    f.pages(with_values, status_reason=reason)
    f.pages(plain, include_values=False)
    # what the guard makes of it is the guard's (test_deploy_review.py); kept either way, no calls after
    options = DeployOptions(execute=False, keep_change_set=True, drift_check=False)
    deploy_stack(cfn, REQUEST, console(), waits, options=options, template=NEW)
    assert captured["inputs"].change_set["StatusReason"] == reason
    assert [c["ResourceChange"]["LogicalResourceId"] for c in captured["inputs"].plain_change_set["Changes"]] == [
        "ProcessingQueue",
        "MarketDataTable",
    ]


def test_empty_change_set_is_deleted_and_reported_as_no_changes(cfn, waits):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS, Outputs=[{"OutputKey": "k", "OutputValue": "v"}])
    f.get_template(OLD)
    f.create("UPDATE")
    f.status("CREATE_PENDING", execution="UNAVAILABLE")
    f.status(
        "FAILED",
        "The submitted information didn't contain changes. Submit different information to create a change set.",
        execution="UNAVAILABLE",
    )
    cfn.stubber.add_response("delete_change_set", {}, {"ChangeSetName": CS_ARN})
    outcome = deploy_stack(cfn, REQUEST, console(), waits, options=DeployOptions(assume_yes=True), template=NEW)
    assert outcome.result == "no-changes" and outcome.outputs == {"k": "v"}


def test_a_failed_change_set_that_is_not_empty_is_an_error(cfn, waits):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    failed = "Template format error: Unresolved resource dependencies [Nope] in the Resources block"
    f.status("FAILED", failed)
    f.status("FAILED", failed)  # then deleted: a failed change set is not left behind either
    f.delete()
    with pytest.raises(DeployError, match="Unresolved resource dependencies"):
        deploy_stack(cfn, REQUEST, console(), waits, options=DeployOptions(assume_yes=True), template=NEW)


def test_declined_prompt_deletes_the_change_set_and_the_empty_review_stack(cfn, waits):
    f = Flow(cfn.stubber)
    f.no_stack()
    f.create("CREATE")
    f.status()
    adds = [
        resource_change("Add", "DataBucket", "AWS::S3::Bucket", scope=None),
        resource_change("Add", "MarketDataTable", "AWS::DynamoDB::Table", scope=None),
    ]
    f.pages(adds)
    f.pages(adds, include_values=False)
    f.delete(review_in_progress=True)
    c = console("")  # Enter: the default is No
    outcome = deploy_stack(cfn, REQUEST, c, waits, template=NEW)
    assert outcome.result == "declined"
    assert c.asked == ["Execute this change set? [y/N] "]  # type: ignore[attr-defined]
    assert "Deleted the empty stack market-data-dev (REVIEW_IN_PROGRESS)" in output(c)


def test_create_sets_the_stack_policy_after_the_stack_exists(cfn, waits):
    """CreateChangeSet has no StackPolicyBody (service model): the policy follows the CREATE."""
    f = Flow(cfn.stubber)
    f.no_stack()
    f.create("CREATE")
    f.status()
    adds = [resource_change("Add", "MarketDataTable", "AWS::DynamoDB::Table", scope=None)]
    f.pages(adds)
    f.pages(adds, include_values=False)
    f.execute("CREATE_COMPLETE", outputs=[{"OutputKey": k, "OutputValue": "x"} for k in NEW["Outputs"]])
    f.get_template(NEW)  # all outputs reported: no resources listed
    cfn.stubber.add_response("describe_stacks", stack("CREATE_COMPLETE"), {"StackName": STACK_ID})
    f.set_policy(protected(NEW))
    cfn.stubber.add_response(
        "update_termination_protection",
        {"StackId": STACK_ID},
        {"StackName": STACK, "EnableTerminationProtection": True},
    )
    outcome = deploy_stack(cfn, REQUEST, console(), waits, options=DeployOptions(assume_yes=True), template=NEW)
    assert outcome.result == "deployed" and outcome.outputs_resolved_locally == []


def test_execute_existing_refuses_a_change_set_that_is_no_longer_available(cfn, waits):
    cfn.stubber.add_response(
        "describe_change_set",
        {"ChangeSetId": CS_ARN, "StackName": STACK, "Status": "CREATE_COMPLETE", "ExecutionStatus": "OBSOLETE"},
        {"ChangeSetName": CS_ARN, "IncludePropertyValues": True},
    )
    with pytest.raises(UsageError, match="OBSOLETE, not AVAILABLE"):
        execute_existing(cfn, CS_ARN, console(), waits, options=DeployOptions(assume_yes=True))


def test_execute_existing_update_on_an_emulator_fails_closed(cfn, waits):
    Flow(cfn.stubber).pages(HARMLESS)
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    options = DeployOptions(assume_yes=True, where=Where(endpoint_url="http://127.0.0.1:5055"))
    with pytest.raises(UsageError, match="cannot review an UPDATE change set again on a local endpoint"):
        execute_existing(cfn, CS_ARN, console(), waits, options=options)


def test_execute_existing_reviews_the_change_set_with_its_own_template(cfn, waits, captured):
    old, new = template(retain=False, timeout=900), template(retain=False, timeout=1800)
    f = Flow(cfn.stubber)
    f.pages(HARMLESS, parameters=PARAMS)
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    f.get_template(old)
    cfn.stubber.add_response(
        "get_template",
        {"TemplateBody": json.dumps(new)},
        {"StackName": STACK_ID, "ChangeSetName": CS_ARN, "TemplateStage": "Original"},
    )
    f.pages(HARMLESS, parameters=PARAMS, include_values=False)
    f.set_policy(protected(old, new))
    f.execute(outputs=[{"OutputKey": k, "OutputValue": "x"} for k in new["Outputs"]])
    f.get_template(new)
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    f.set_policy(protected(old, new))
    options = DeployOptions(assume_yes=True, drift_check=False, execute=False)  # --execute executes anyway
    outcome = execute_existing(cfn, CS_ARN, console(), waits, options=options)
    assert outcome.result == "deployed"
    assert captured["inputs"].deployed_template == old and captured["inputs"].new_template == new


def test_the_stack_policy_stops_a_replacement_nobody_saw_coming_and_the_update_rolls_back(cfn, waits):
    """What the backstop is for: the review showed an in-place change, CloudFormation decided at
    execution to replace the table; the stack policy denies it and the update rolls back
    (protect-stack-resources.html)."""
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    f.pages(HARMLESS)
    f.pages(HARMLESS, include_values=False)
    f.set_policy(protected(OLD, NEW))
    cfn.stubber.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK_ID})
    cfn.stubber.add_response("execute_change_set", {}, {"ChangeSetName": CS_ARN, "ClientRequestToken": ANY})
    denied = "Action denied by stack policy: Statement [#1] does not allow [Update:Replace] for resource [LogicalResourceId/MarketDataTable];"
    cfn.stubber.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                event(STACK, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_COMPLETE", 9, token=None),
                event(STACK, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_IN_PROGRESS", 5, token=None),
                event("MarketDataTable", "AWS::DynamoDB::Table", "UPDATE_FAILED", 3, denied, token=None),
                event(STACK, "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", 1, "User Initiated", token=None),
            ]
        },
        {"StackName": STACK_ID},
    )
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    cfn.stubber.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    f.set_policy(protected(OLD, NEW))  # the full policy stays in force after the rollback
    c = console()
    outcome = deploy_stack(
        cfn, REQUEST, c, waits, options=DeployOptions(assume_yes=True, drift_check=False), template=NEW
    )
    assert outcome.result == "failed"
    assert outcome.message.startswith("MarketDataTable: Action denied by stack policy")
    assert "UPDATE_ROLLBACK_COMPLETE" in output(c)


def test_a_refused_execute_closes_what_was_opened_for_it(cfn, waits):
    f = Flow(cfn.stubber)
    f.existing_stack(PARAMS)
    f.get_template(OLD)
    f.create("UPDATE")
    f.status()
    replace = [
        resource_change(
            "Modify",
            "MarketDataTable",
            "AWS::DynamoDB::Table",
            replacement="True",
            physical_id="marketdatatable",
            scope=None,
        )
    ]
    f.pages(replace)
    f.pages(replace, include_values=False)
    everything = protected(OLD, NEW)
    f.set_policy([i for i in everything if i != "MarketDataTable"])
    cfn.stubber.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK_ID})
    cfn.stubber.add_client_error(
        "execute_change_set", "InvalidChangeSetStatus", "ChangeSet is in an invalid status: OBSOLETE", 400
    )
    f.set_policy(everything)  # closed again at once
    options = DeployOptions(
        assume_yes=True, drift_check=False, overrides=Overrides(allow_replacement=frozenset({"MarketDataTable"}))
    )
    with pytest.raises(ClientError, match="OBSOLETE"):
        deploy_stack(cfn, REQUEST, console(), waits, options=options, template=NEW)


def test_a_stack_with_a_live_resource_past_the_first_hundred_is_not_empty():
    # DescribeStackResources answers at most 100 resources; ListStackResources pages. A stack whose
    # first 100 resources are deleted but which still holds one is not empty, so preflight must not
    # clear it as a dead stack.
    import boto3
    from botocore.stub import Stubber

    from market_cfn.deploy.preflight import has_resources

    cfn = boto3.client("cloudformation", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(cfn)
    gone = [
        {
            "LogicalResourceId": f"R{i}",
            "ResourceType": "AWS::SQS::Queue",
            "ResourceStatus": "DELETE_COMPLETE",
            "LastUpdatedTimestamp": "2026-12-07T00:00:00Z",
        }
        for i in range(100)
    ]
    live = {
        "LogicalResourceId": "Table",
        "PhysicalResourceId": "market-data-dev",
        "ResourceType": "AWS::DynamoDB::Table",
        "ResourceStatus": "CREATE_COMPLETE",
        "LastUpdatedTimestamp": "2026-12-07T00:00:00Z",
    }
    stub.add_response("list_stack_resources", {"StackResourceSummaries": gone, "NextToken": "t"}, {"StackName": "s"})
    stub.add_response("list_stack_resources", {"StackResourceSummaries": [live]}, {"StackName": "s", "NextToken": "t"})
    stub.add_response("list_stack_resources", {"StackResourceSummaries": gone}, {"StackName": "s"})
    with stub:
        assert has_resources(cfn, "s") is True
        assert has_resources(cfn, "s") is False
    stub.assert_no_pending_responses()
