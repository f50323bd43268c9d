"""Deploy flows against botocore's Stubber: every call, its parameters and its order.

Responses are validated by Stubber against botocore's cloudformation service model, so
they have the shapes the real API returns (DescribeChangeSet pages with NextToken,
Details/Target with BeforeValue/AfterValue, StackEvents newest-first).
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from market_cfn import deploy as d

REGION = "us-east-1"
STACK = "market-data-dev"
STACK_ID = f"arn:aws:cloudformation:{REGION}:123456789012:stack/{STACK}/6f1f0c10-ca8e-11ef-9bbc-0affd3cb5c2d"
CS_ARN = f"arn:aws:cloudformation:{REGION}:123456789012:changeSet/deploy-20261125T101500Z-abc123/0b1cd3e4-ca8f-11ef"
T0 = datetime(2026, 11, 25, 10, 15, 0, tzinfo=UTC)


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.elapsed)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def waits(fake_time: FakeTime) -> d.Waits:
    return d.Waits(
        sleep=fake_time.sleep,
        clock=fake_time.monotonic,
        now=fake_time.now,
        poll_seconds=5,
        change_set_timeout_seconds=60,
        stack_timeout_seconds=600,
    )


@pytest.fixture
def cfn():
    client = boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()


def console(answer: str | None = None) -> d.Console:
    """A console; with an answer it is interactive and answers the prompt with it."""
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        return answer or ""

    c = d.Console(out=io.StringIO(), interactive=answer is not None, ask=ask)
    c.asked = asked  # type: ignore[attr-defined]
    return c


def output(c: d.Console) -> str:
    return c.out.getvalue()  # type: ignore[attr-defined]


# --- responses, shaped as the CloudFormation API reference documents them -------------


def stack(status: str, **extra) -> dict:
    return {
        "Stacks": [
            {
                "StackName": STACK,
                "StackId": STACK_ID,
                "CreationTime": T0 - timedelta(days=30),
                "StackStatus": status,
                **extra,
            }
        ]
    }


def no_stack(stubber: Stubber, name: str = STACK) -> None:
    stubber.add_client_error(
        "describe_stacks",
        "ValidationError",
        f"Stack with id {name} does not exist",
        400,
        expected_params={"StackName": name},
    )


def create_change_set(stubber: Stubber, change_set_type: str) -> None:
    stubber.add_response(
        "create_change_set",
        {"Id": CS_ARN, "StackId": STACK_ID},
        {
            "StackName": STACK,
            "ChangeSetName": ANY,
            "ChangeSetType": change_set_type,
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            "Parameters": ANY,
            "Tags": ANY,
            "Description": ANY,
            "ClientToken": ANY,
            "TemplateBody": ANY,
        },
    )


def status(stubber: Stubber, state: str, reason: str | None = None, execution: str = "AVAILABLE") -> None:
    response = {
        "ChangeSetName": "deploy-20261125T101500Z-abc123",
        "ChangeSetId": CS_ARN,
        "StackId": STACK_ID,
        "StackName": STACK,
        "Status": state,
        "ExecutionStatus": execution,
        "Changes": [],
    }
    if reason:
        response["StatusReason"] = reason
    stubber.add_response("describe_change_set", response, {"ChangeSetName": CS_ARN})


def pages(stubber: Stubber, changes: list[dict], per_page: int = 2, parameters=()) -> None:
    """DescribeChangeSet with IncludePropertyValues, `per_page` changes a page."""
    chunks = [changes[i : i + per_page] for i in range(0, len(changes), per_page)] or [[]]
    for n, chunk in enumerate(chunks):
        response = {
            "ChangeSetName": "deploy-20261125T101500Z-abc123",
            "ChangeSetId": CS_ARN,
            "StackId": STACK_ID,
            "StackName": STACK,
            "Status": "CREATE_COMPLETE",
            "ExecutionStatus": "AVAILABLE",
            "CreationTime": T0,
            "Capabilities": ["CAPABILITY_IAM"],
            "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in parameters],
            "Changes": chunk,
        }
        if n + 1 < len(chunks):
            response["NextToken"] = f"page-{n + 2}"
        params = {"ChangeSetName": CS_ARN, "IncludePropertyValues": True}
        if n:
            params["NextToken"] = f"page-{n + 1}"
        stubber.add_response("describe_change_set", response, params)


def change(action, logical_id, resource_type, *, replacement=None, details=(), policy_action=None):
    rc = {"Action": action, "LogicalResourceId": logical_id, "ResourceType": resource_type, "Details": list(details)}
    if action != "Add":
        rc["PhysicalResourceId"] = logical_id.lower()
    if replacement:
        rc["Replacement"] = replacement
    if policy_action:
        rc["PolicyAction"] = policy_action
    return {"Type": "Resource", "ResourceChange": rc}


def target(name, recreation, before, after, *, source="DirectModification", entity=None, evaluation="Static"):
    out = {
        "Target": {
            "Attribute": "Properties",
            "Name": name,
            "Path": f"/Properties/{name}",
            "RequiresRecreation": recreation,
            "BeforeValue": before,
            "AfterValue": after,
            "AttributeChangeType": "Modify",
        },
        "Evaluation": evaluation,
        "ChangeSource": source,
    }
    if entity:
        out["CausingEntity"] = entity
    return out


def event(logical_id, resource_type, state, at_seconds, reason=None, token="TOKEN", event_id=None):
    e = {
        "StackId": STACK_ID,
        "EventId": event_id or f"{logical_id}-{state}-{at_seconds}",
        "StackName": STACK,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "Timestamp": T0 + timedelta(seconds=at_seconds),
        "ResourceStatus": state,
    }
    if reason:
        e["ResourceStatusReason"] = reason
    if token:
        e["ClientRequestToken"] = token
    return e


MIXED_CHANGES = [
    change("Add", "AggregationDLQ", "AWS::SQS::Queue"),
    change(
        "Modify",
        "DataIngestionFunction",
        "AWS::Lambda::Function",
        replacement="False",
        details=[
            target(
                "Code",
                "Never",
                '{"S3Bucket":"artifacts","S3Key":"market-data/aaa.zip"}',
                '{"S3Bucket":"artifacts","S3Key":"market-data/bbb.zip"}',
                source="ParameterReference",
                entity="CodeS3Key",
            )
        ],
    ),
    change("Remove", "LegacyDashboard", "AWS::CloudWatch::Dashboard", policy_action="Delete"),
    change(
        "Modify",
        "MarketDataTable",
        "AWS::DynamoDB::Table",
        replacement="Conditional",
        policy_action="ReplaceAndDelete",
        details=[
            target(
                "TableName",
                "Always",
                "market-data-dev",
                "{{changeSet:KNOWN_AFTER_APPLY}}",
                source="ParameterReference",
                entity="EnvironmentSuffix",
                evaluation="Dynamic",
            )
        ],
    ),
    change(
        "Modify",
        "ProcessingQueue",
        "AWS::SQS::Queue",
        replacement="False",
        details=[target("VisibilityTimeout", "Never", "900", "1800")],
    ),
]

REQUEST = d.ChangeSetRequest(STACK, {"EnvironmentSuffix": "dev"}, template_body='{"Resources": {}}')


# --- the flows ---------------------------------------------------------------------------


def test_conditional_table_replacement_over_several_pages_is_blocked_even_with_yes(cfn, waits):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    create_change_set(s, "UPDATE")
    status(s, "CREATE_COMPLETE")
    pages(s, MIXED_CHANGES, per_page=2)  # three pages: the table is on the second
    c = console()
    with pytest.raises(d.Refused, match="MarketDataTable"):
        d.deploy_stack(cfn, REQUEST, c, waits, assume_yes=True)
    text = output(c)
    for logical_id in (
        "AggregationDLQ",
        "DataIngestionFunction",
        "LegacyDashboard",
        "MarketDataTable",
        "ProcessingQueue",
    ):
        assert logical_id in text  # every page was read
    assert "900 → 1800" in text
    assert "TableName (always requires replacement; via ParameterReference EnvironmentSuffix)" in text
    assert f"Change set left in place, not executed: {CS_ARN}" in text
    # no ExecuteChangeSet was stubbed: Stubber would have failed the test on that call


def test_removed_bucket_is_blocked(cfn, waits):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    create_change_set(s, "UPDATE")
    status(s, "CREATE_COMPLETE")
    pages(s, [change("Remove", "DataBucket", "AWS::S3::Bucket", policy_action="Delete")])
    with pytest.raises(d.Refused, match="DataBucket"):
        d.deploy_stack(cfn, REQUEST, console(), waits, assume_yes=True)


def test_allow_replacement_lets_the_change_set_execute_and_follows_it(cfn, waits):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    create_change_set(s, "UPDATE")
    status(s, "CREATE_COMPLETE")
    pages(s, MIXED_CHANGES, per_page=3)
    old = event(STACK, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE", -3600, token="previous-deploy")
    s.add_response("describe_stack_events", {"StackEvents": [old]}, {"StackName": STACK_ID})
    s.add_response("execute_change_set", {}, {"ChangeSetName": CS_ARN, "ClientRequestToken": ANY})
    # first poll: the update has started (newest first; the old event ends the read)
    s.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                event(
                    "MarketDataTable",
                    "AWS::DynamoDB::Table",
                    "UPDATE_IN_PROGRESS",
                    2,
                    "Requested update requires the creation of a new physical resource; hence creating one.",
                    token=None,
                ),
                event(STACK, "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", 1, "User Initiated", token=None),
                old,
            ]
        },
        {"StackName": STACK_ID},
    )
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    # second poll: done
    s.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                event(STACK, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE", 9, token=None),
                event("MarketDataTable", "AWS::DynamoDB::Table", "DELETE_COMPLETE", 8, token=None),
                event("MarketDataTable", "AWS::DynamoDB::Table", "UPDATE_COMPLETE", 5, token=None),
                event("MarketDataTable", "AWS::DynamoDB::Table", "UPDATE_IN_PROGRESS", 2, token=None),  # seen already
                old,
            ]
        },
        {"StackName": STACK_ID},
    )
    s.add_response(
        "describe_stacks",
        stack("UPDATE_COMPLETE", Outputs=[{"OutputKey": "dynamodbTableName", "OutputValue": "market-data-dev"}]),
        {"StackName": STACK_ID},
    )
    c = console()
    outcome = d.deploy_stack(cfn, REQUEST, c, waits, assume_yes=True, allow_replacement=["MarketDataTable"])
    assert outcome.result == "deployed"
    assert outcome.outputs == {"dynamodbTableName": "market-data-dev"}
    text = output(c)
    assert "allowed by --allow-replacement" in text
    lines = [line for line in text.splitlines() if line.startswith("10:15:")]
    assert [line.split()[2:4] for line in lines] == [
        [STACK, "AWS::CloudFormation::Stack"],
        ["MarketDataTable", "AWS::DynamoDB::Table"],
        ["MarketDataTable", "AWS::DynamoDB::Table"],
        ["MarketDataTable", "AWS::DynamoDB::Table"],
        [STACK, "AWS::CloudFormation::Stack"],
    ]  # oldest first, each event once, the old one never
    assert lines[2].split()[1] == "[1/5]"  # the running count: MarketDataTable is done
    assert "dynamodbTableName  market-data-dev" in text


def test_iam_broadening_is_shown_separately(cfn, waits):
    before = {
        "Properties": {
            "Policies": [
                {
                    "PolicyName": "process",
                    "PolicyDocument": {
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "dynamodb:BatchWriteItem",
                                "Resource": "arn:aws:dynamodb:us-east-1:123456789012:table/market-data-dev",
                            }
                        ]
                    },
                }
            ]
        }
    }
    after = json.loads(json.dumps(before))
    after["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]["Action"] = [
        "dynamodb:BatchWriteItem",
        "dynamodb:Scan",
    ]
    role = change(
        "Modify",
        "DataProcessorRole",
        "AWS::IAM::Role",
        replacement="False",
        details=[
            target(
                "Policies",
                "Never",
                json.dumps(before["Properties"]["Policies"]),
                json.dumps(after["Properties"]["Policies"]),
            )
        ],
    )
    role["ResourceChange"]["BeforeContext"] = json.dumps(before)
    role["ResourceChange"]["AfterContext"] = json.dumps(after)
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    create_change_set(s, "UPDATE")
    status(s, "CREATE_COMPLETE")
    pages(s, [role])
    s.add_response("delete_change_set", {}, {"ChangeSetName": CS_ARN})
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    c = console("n")
    with pytest.raises(d.Refused):
        d.deploy_stack(cfn, REQUEST, c, waits)
    text = output(c)
    assert "IAM changes (1, 1 security-broadening):" in text
    assert "!  DataProcessorRole  inline policy process  + Allow dynamodb:Scan on arn:aws:dynamodb:" in text


def test_empty_change_set_is_deleted_and_reported_as_no_changes(cfn, waits):
    s = cfn.stubber
    s.add_response(
        "describe_stacks",
        stack("UPDATE_COMPLETE", Outputs=[{"OutputKey": "k", "OutputValue": "v"}]),
        {"StackName": STACK},
    )
    create_change_set(s, "UPDATE")
    status(s, "CREATE_PENDING", execution="UNAVAILABLE")
    status(
        s,
        "FAILED",
        "The submitted information didn't contain changes. Submit different information to create a change set.",
        execution="UNAVAILABLE",
    )
    s.add_response("delete_change_set", {}, {"ChangeSetName": CS_ARN})
    c = console()
    outcome = d.deploy_stack(cfn, REQUEST, c, waits, assume_yes=True)
    assert outcome.result == "no-changes" and outcome.outputs == {"k": "v"}
    assert "No changes" in output(c)


def test_a_failed_change_set_that_is_not_empty_is_an_error(cfn, waits):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    create_change_set(s, "UPDATE")
    status(s, "FAILED", "Template format error: Unresolved resource dependencies [Nope] in the Resources block")
    with pytest.raises(d.DeployError, match="Unresolved resource dependencies"):
        d.deploy_stack(cfn, REQUEST, console(), waits, assume_yes=True)


def test_rollback_complete_stack_is_deleted_after_confirmation_then_created(cfn, waits, fake_time):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    s.add_response("delete_stack", {}, {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("DELETE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    create_change_set(s, "CREATE")
    status(s, "CREATE_COMPLETE")
    pages(s, [change("Add", "DataBucket", "AWS::S3::Bucket")])
    s.add_response("delete_change_set", {}, {"ChangeSetName": CS_ARN})  # then declined
    s.add_response("describe_stacks", stack("REVIEW_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_resources", {"StackResources": []}, {"StackName": STACK_ID})
    s.add_response("delete_stack", {}, {"StackName": STACK_ID})
    answers = iter(["y", "n"])
    c = d.Console(out=io.StringIO(), interactive=True, ask=lambda prompt: next(answers))
    with pytest.raises(d.Refused, match="declined"):
        d.deploy_stack(cfn, REQUEST, c, waits)
    text = c.out.getvalue()
    assert "is ROLLBACK_COMPLETE" in text and "Deleted stack market-data-dev." in text
    assert fake_time.sleeps == [5]  # one poll while the delete was in progress


def test_rollback_complete_stack_is_left_alone_when_deletion_is_declined(cfn, waits):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    with pytest.raises(d.Refused, match="not deleted"):
        d.deploy_stack(cfn, REQUEST, console("n"), waits)


def test_declined_prompt_deletes_the_change_set_and_the_empty_review_stack(cfn, waits):
    s = cfn.stubber
    no_stack(s)
    create_change_set(s, "CREATE")
    status(s, "CREATE_COMPLETE")
    pages(s, [change("Add", "DataBucket", "AWS::S3::Bucket"), change("Add", "MarketDataTable", "AWS::DynamoDB::Table")])
    s.add_response("delete_change_set", {}, {"ChangeSetName": CS_ARN})
    s.add_response("describe_stacks", stack("REVIEW_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stack_resources", {"StackResources": []}, {"StackName": STACK_ID})
    s.add_response("delete_stack", {}, {"StackName": STACK_ID})
    c = console("")  # Enter: the default is No
    with pytest.raises(d.Refused, match="declined"):
        d.deploy_stack(cfn, REQUEST, c, waits)
    assert c.asked == ["Execute this change set? [y/N] "]  # type: ignore[attr-defined]
    assert "Deleted the empty stack market-data-dev (REVIEW_IN_PROGRESS)" in output(c)


def test_no_terminal_without_yes_refuses_instead_of_waiting(cfn, waits):
    s = cfn.stubber
    no_stack(s)
    create_change_set(s, "CREATE")
    status(s, "CREATE_COMPLETE")
    pages(s, [change("Add", "DataBucket", "AWS::S3::Bucket")])
    c = console(None)
    with pytest.raises(d.Refused, match="no terminal"):
        d.deploy_stack(cfn, REQUEST, c, waits)
    assert c.asked == []  # type: ignore[attr-defined]
    assert CS_ARN in output(c)  # left for --execute


def test_failed_execution_prints_the_root_cause_first(cfn, waits):
    s = cfn.stubber
    cs = {
        "ChangeSetId": CS_ARN,
        "ChangeSetName": "deploy-20261125T101500Z-abc123",
        "StackId": STACK_ID,
        "StackName": STACK,
        "ChangeSetType": "CREATE",
        "Changes": [],
    }
    review = d.build_review(
        {
            **cs,
            "Changes": [
                change("Add", n, t)
                for n, t in (
                    ("DataBucket", "AWS::S3::Bucket"),
                    ("MarketDataTable", "AWS::DynamoDB::Table"),
                    ("DataIngestionRole", "AWS::IAM::Role"),
                )
            ],
        }
    )
    review_event = event(STACK, "AWS::CloudFormation::Stack", "REVIEW_IN_PROGRESS", -5, "User Initiated", token=None)
    s.add_response("describe_stack_events", {"StackEvents": [review_event]}, {"StackName": STACK_ID})
    s.add_response("execute_change_set", {}, {"ChangeSetName": CS_ARN, "ClientRequestToken": ANY})
    root = 'Resource handler returned message: "User: arn:aws:sts::123456789012:assumed-role/deployer is not authorized to perform: dynamodb:CreateTable" (HandlerErrorCode: AccessDenied)'
    newest_first = [
        event(STACK, "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", 30, token=None),
        event("DataBucket", "AWS::S3::Bucket", "DELETE_COMPLETE", 25, token=None),
        event(
            STACK,
            "AWS::CloudFormation::Stack",
            "ROLLBACK_IN_PROGRESS",
            20,
            "The following resource(s) failed to create: [DataBucket, MarketDataTable]. Rollback requested by user.",
            token=None,
        ),
        event("DataBucket", "AWS::S3::Bucket", "CREATE_FAILED", 12, "Resource creation cancelled", token=None),
        event("MarketDataTable", "AWS::DynamoDB::Table", "CREATE_FAILED", 10, root, token=None),
        event("MarketDataTable", "AWS::DynamoDB::Table", "CREATE_IN_PROGRESS", 3, token=None),
        event("DataBucket", "AWS::S3::Bucket", "CREATE_IN_PROGRESS", 2, token=None),
        event(STACK, "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", 1, "User Initiated", token=None),
        review_event,
        # an hour old, not on the page read before executing: the timestamp marker ends the read
        event("DataBucket", "AWS::S3::Bucket", "DELETE_FAILED", -3600, "from an older operation", token=None),
    ]
    # two pages of events (newest first), the second ends at the marker
    s.add_response(
        "describe_stack_events", {"StackEvents": newest_first[:4], "NextToken": "events-2"}, {"StackName": STACK_ID}
    )
    s.add_response(
        "describe_stack_events",
        {"StackEvents": newest_first[4:], "NextToken": "events-3"},
        {"StackName": STACK_ID, "NextToken": "events-2"},
    )  # page 3 is never asked for
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK_ID})
    c = console()
    result = d.execute_and_follow(cfn, cs, review, c, waits)
    d.render_result(result, STACK, c)
    assert not result.succeeded and result.status == "ROLLBACK_COMPLETE"
    assert [e["LogicalResourceId"] for e in result.failures] == ["MarketDataTable"]  # cancellations are not causes
    text = output(c)
    failed = text[text.index("Failed resources (root cause first):") :]
    assert failed.splitlines()[1].split()[:3] == ["MarketDataTable", "AWS::DynamoDB::Table", "CREATE_FAILED"]
    assert "not authorized to perform: dynamodb:CreateTable" in failed
    assert "REVIEW_IN_PROGRESS" not in text  # an event from before the execute call
    assert "from an older operation" not in text


def test_events_of_another_operation_are_ignored(cfn, waits):
    s = cfn.stubber
    cs = {
        "ChangeSetId": CS_ARN,
        "ChangeSetName": "cs",
        "StackId": STACK_ID,
        "StackName": STACK,
        "ChangeSetType": "UPDATE",
    }
    review = d.build_review({**cs, "Changes": [change("Modify", "DataBucket", "AWS::S3::Bucket", replacement="False")]})
    s.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK_ID})
    s.add_response("execute_change_set", {}, {"ChangeSetName": CS_ARN, "ClientRequestToken": ANY})
    s.add_response(
        "describe_stack_events",
        {
            "StackEvents": [
                event(STACK, "AWS::CloudFormation::Stack", "UPDATE_COMPLETE", 9, token=None),
                event(STACK, "AWS::CloudFormation::Stack", "UPDATE_ROLLBACK_COMPLETE", 8, token="someone-else"),
                event("DataBucket", "AWS::S3::Bucket", "UPDATE_FAILED", 5, "not ours", token="someone-else"),
                event(STACK, "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", 4, token=None),
            ]
        },
        {"StackName": STACK_ID},
    )
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})
    # no Outputs reported: the template is asked whether it declares any (it does not)
    s.add_response("get_template", {"TemplateBody": '{"Resources": {}}'}, {"StackName": STACK_ID})
    c = console()
    result = d.execute_and_follow(cfn, cs, review, c, waits)
    assert result.succeeded and result.failures == [] and result.outputs == {}
    assert "not ours" not in output(c)


def test_change_set_creation_times_out(cfn, waits, fake_time):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    create_change_set(s, "UPDATE")
    for _ in range(13):  # t = 0, 5, ..., 60 s: still pending at the 60 s deadline
        status(s, "CREATE_IN_PROGRESS", execution="UNAVAILABLE")
    with pytest.raises(d.DeployError, match="still CREATE_IN_PROGRESS after 60 s"):
        d.deploy_stack(cfn, REQUEST, console(), waits, assume_yes=True)
    assert fake_time.elapsed == 60


def test_operation_in_progress_is_waited_for_then_refused_after_the_timeout(cfn, fake_time):
    waits = d.Waits(
        sleep=fake_time.sleep, clock=fake_time.monotonic, now=fake_time.now, poll_seconds=30, stack_timeout_seconds=60
    )
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    for _ in range(3):
        s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    with pytest.raises(d.DeployError, match="still UPDATE_IN_PROGRESS after 60 s"):
        d.preflight(cfn, STACK, console(), waits, assume_yes=True)


def test_execute_existing_refuses_a_change_set_that_is_no_longer_available(cfn, waits):
    s = cfn.stubber
    s.add_response(
        "describe_change_set",
        {
            "ChangeSetId": CS_ARN,
            "StackName": STACK,
            "Status": "CREATE_COMPLETE",
            "ExecutionStatus": "OBSOLETE",
            "Changes": [],
        },
        {"ChangeSetName": CS_ARN, "IncludePropertyValues": True},
    )
    with pytest.raises(d.UsageError, match="OBSOLETE, not AVAILABLE"):
        d.execute_existing(cfn, CS_ARN, console(), waits, assume_yes=True)
