"""Preflight and following an execution, against botocore's Stubber (tests/stubs_cfn.py for the
API reference fields each response relies on): broken stacks, timeouts, events of this
operation only, the root cause of a failure first."""

from __future__ import annotations

import io
import json

import pytest
from botocore.stub import ANY, Stubber
from stubs_cfn import (
    CS_ARN,
    STACK,
    STACK_ID,
    FakeTime,
    Flow,
    console,
    event,
    make_client,
    output,
    stack,
    template,
)

from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError, Refused
from market_cfn.base.waits import Waits
from market_cfn.deploy.changeset import ChangeSetRequest
from market_cfn.deploy.flow import deploy_stack
from market_cfn.deploy.follow import execute_and_follow
from market_cfn.deploy.gate import DeployOptions
from market_cfn.deploy.preflight import preflight
from market_cfn.deploy.review.format import render_result
from market_cfn.deploy.review.merge import build_review
from market_cfn.deploy.review.model import Overrides, Review, ReviewInput
from tests.deploy_changesets import resource_change

NEW = template()
REQUEST = ChangeSetRequest(STACK, {"CodeS3Key": "k.zip"}, template_body=json.dumps(NEW))


def review_of(cs: dict, changes: list[dict]) -> Review:
    return build_review(ReviewInput.from_change_set({**cs, "Changes": changes}), Overrides())


def test_rollback_complete_stack_is_deleted_after_confirmation_then_created(cfn, waits, fake_time):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    s.add_response("delete_stack", {}, {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("DELETE_IN_PROGRESS"), {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    f = Flow(s)
    f.create("CREATE")
    f.status()
    f.pages([resource_change("Add", "DataBucket", "AWS::S3::Bucket", scope=None)])
    f.pages([resource_change("Add", "DataBucket", "AWS::S3::Bucket", scope=None)], include_values=False)
    f.delete(review_in_progress=True)  # then declined
    answers = iter(["y", "n"])
    c = Console(out=io.StringIO(), interactive=True, ask=lambda prompt: next(answers))
    assert deploy_stack(cfn, REQUEST, c, waits, template=NEW).result == "declined"
    text = c.out.getvalue()
    assert "is ROLLBACK_COMPLETE" in text and "Deleted stack market-data-dev." in text
    assert fake_time.sleeps == [5]  # one poll while the delete was in progress


def test_rollback_complete_stack_is_left_alone_when_deletion_is_declined(cfn, waits):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    with pytest.raises(Refused, match="not deleted"):
        deploy_stack(cfn, REQUEST, console("n"), waits, template=NEW)


def test_no_terminal_without_yes_refuses_instead_of_waiting(cfn, waits):
    s = cfn.stubber
    f = Flow(s)
    f.no_stack()
    f.create("CREATE")
    f.status()
    f.pages([resource_change("Add", "DataBucket", "AWS::S3::Bucket", scope=None)])
    f.pages([resource_change("Add", "DataBucket", "AWS::S3::Bucket", scope=None)], include_values=False)
    c = console(None)
    with pytest.raises(Refused, match="no terminal"):
        deploy_stack(cfn, REQUEST, c, waits, template=NEW)
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
    review = review_of(
        cs,
        [
            resource_change("Add", n, t, scope=None)
            for n, t in (
                ("DataBucket", "AWS::S3::Bucket"),
                ("MarketDataTable", "AWS::DynamoDB::Table"),
                ("DataIngestionRole", "AWS::IAM::Role"),
            )
        ],
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
    result = execute_and_follow(cfn, cs, review, c, waits)
    render_result(result, STACK, c)
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
    review = review_of(
        cs,
        [
            resource_change(
                "Modify", "DataBucket", "AWS::S3::Bucket", replacement="False", physical_id="databucket", scope=None
            )
        ],
    )
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
    s.add_response(
        "get_template", {"TemplateBody": '{"Resources": {}}'}, {"StackName": STACK_ID, "TemplateStage": "Original"}
    )
    c = console()
    result = execute_and_follow(cfn, cs, review, c, waits)
    assert result.succeeded and result.failures == [] and result.outputs == {}
    assert "not ours" not in output(c)


def test_change_set_creation_times_out(cfn, waits, fake_time):
    s = cfn.stubber
    f = Flow(s)
    f.existing_stack()
    f.get_template(NEW)
    f.create("UPDATE")
    for _ in range(13):  # t = 0, 5, ..., 60 s: still pending at the 60 s deadline
        f.status("CREATE_IN_PROGRESS", execution="UNAVAILABLE")
    f.status("CREATE_IN_PROGRESS", execution="UNAVAILABLE")  # then deleted, not left behind
    f.delete()
    with pytest.raises(DeployError, match="still CREATE_IN_PROGRESS after 60 s"):
        deploy_stack(cfn, REQUEST, console(), waits, options=DeployOptions(assume_yes=True), template=NEW)
    assert fake_time.elapsed == 60


def test_operation_in_progress_is_waited_for_then_refused_after_the_timeout(cfn, fake_time):
    waits = Waits(
        sleep=fake_time.sleep, clock=fake_time.monotonic, now=fake_time.now, poll_seconds=30, stack_timeout_seconds=60
    )
    s = cfn.stubber
    s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    for _ in range(3):
        s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK})
    with pytest.raises(DeployError, match="still UPDATE_IN_PROGRESS after 60 s"):
        preflight(cfn, STACK, console(), waits, delete_failed_stack=True)


# --- following an execution to its deadline -------------------------------------------------

FOLLOWED = {
    "ChangeSetId": CS_ARN,
    "ChangeSetName": "cs",
    "StackId": STACK_ID,
    "StackName": STACK,
    "ChangeSetType": "UPDATE",
}


def _following(in_progress_looks: int, final: str | None = None) -> tuple[object, Stubber]:
    """An execution that stays UPDATE_IN_PROGRESS for `in_progress_looks` looks, then `final`."""
    cfn = make_client()
    s = Stubber(cfn)
    s.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK_ID})
    s.add_response("execute_change_set", {}, {"ChangeSetName": CS_ARN, "ClientRequestToken": ANY})
    for i in range(in_progress_looks):
        started = [event(STACK, "AWS::CloudFormation::Stack", "UPDATE_IN_PROGRESS", 1, token=None, event_id="e1")]
        s.add_response("describe_stack_events", {"StackEvents": started if i == 0 else []}, {"StackName": STACK_ID})
        s.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS"), {"StackName": STACK_ID})
    if final:
        s.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK_ID})
        s.add_response("describe_stacks", stack(final), {"StackName": STACK_ID})
        s.add_response(
            "get_template", {"TemplateBody": '{"Resources": {}}'}, {"StackName": STACK_ID, "TemplateStage": "Original"}
        )
    return cfn, s


def _followed_review() -> Review:
    change = resource_change("Modify", "DataBucket", "AWS::S3::Bucket", replacement="False")
    return build_review(ReviewInput.from_change_set({**FOLLOWED, "Changes": [change]}), Overrides())


def _waits(t: FakeTime) -> Waits:
    return Waits(sleep=t.sleep, clock=t.monotonic, now=t.now, poll_seconds=7, stack_timeout_seconds=20)


def test_following_stops_after_the_look_past_the_deadline_and_says_the_operation_goes_on():
    # GIVEN a 20 s budget polled every 7 s and a stack that never settles
    t = FakeTime()
    cfn, s = _following(4)
    c = console()
    # WHEN the execution is followed
    with s, pytest.raises(DeployError) as raised:
        execute_and_follow(cfn, FOLLOWED, _followed_review(), c, _waits(t))
    # THEN it looks at 0, 7, 14 and 21 s (one look past the deadline), then gives up, saying so
    s.assert_no_pending_responses()
    assert t.sleeps == [7, 7, 7]
    assert str(raised.value) == (
        "stack market-data-dev is still UPDATE_IN_PROGRESS after 20 s; "
        "stopped following it (the operation goes on in CloudFormation)"
    )


def test_an_execution_that_settles_on_the_look_past_the_deadline_succeeds():
    t = FakeTime()
    cfn, s = _following(3, final="UPDATE_COMPLETE")
    with s:
        result = execute_and_follow(cfn, FOLLOWED, _followed_review(), console(), _waits(t))
    s.assert_no_pending_responses()
    assert result.succeeded and t.sleeps == [7, 7, 7]
