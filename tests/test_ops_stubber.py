"""What a local endpoint cannot produce, with botocore's Stubber (shapes from the service models):
SQS StartMessageMoveTask, replay end states, InvocationDLQ records re-invoked, termination protection.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber

from market_cfn.base.errors import OpsError
from market_cfn.base.waits import Waits
from market_cfn.ops import redrive, replay
from market_cfn.ops.resources import Resource, Stack

DLQ_ARN = "arn:aws:sqs:us-east-1:123456789012:ProcessingDLQ-dev"
SOURCE_ARN = "arn:aws:sqs:us-east-1:123456789012:ProcessingQueue-dev"
FN_ARN = "arn:aws:lambda:us-east-1:123456789012:function:DataIngestion-dev"


def client(service: str):
    return boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def waits() -> Waits:
    clock = iter(range(10_000))
    return Waits(sleep=lambda s: None, clock=lambda: float(next(clock)), poll_seconds=1, stack_timeout_seconds=100)


def plan() -> redrive.Plan:
    return redrive.Plan(
        "processing",
        "ProcessingDLQ",
        "https://q/ProcessingDLQ-dev",
        DLQ_ARN,
        5,
        0,
        "ProcessingQueue",
        "https://q/ProcessingQueue-dev",
        SOURCE_ARN,
    )


def test_start_message_move_task_is_followed_to_completed():
    sqs = client("sqs")
    moved: list[int] = []
    with Stubber(sqs) as stub:
        stub.add_response(
            "start_message_move_task", {"TaskHandle": "h1"}, {"SourceArn": DLQ_ARN, "DestinationArn": SOURCE_ARN}
        )
        running = {
            "TaskHandle": "h1",
            "Status": "RUNNING",
            "SourceArn": DLQ_ARN,
            "ApproximateNumberOfMessagesMoved": 2,
            "ApproximateNumberOfMessagesToMove": 5,
            "StartedTimestamp": 1,
        }
        stub.add_response("list_message_move_tasks", {"Results": [running]}, {"SourceArn": DLQ_ARN, "MaxResults": 10})
        # TaskHandle is only returned while RUNNING: the finished task is matched by its start time
        done = {
            "Status": "COMPLETED",
            "SourceArn": DLQ_ARN,
            "ApproximateNumberOfMessagesMoved": 5,
            "ApproximateNumberOfMessagesToMove": 5,
            "StartedTimestamp": int(datetime.now(UTC).timestamp() * 1000),
        }
        stub.add_response("list_message_move_tasks", {"Results": [done]}, {"SourceArn": DLQ_ARN, "MaxResults": 10})
        outcome = redrive.move_with_task(sqs, plan(), waits(), on_moved=moved.append)
    assert outcome is not None
    assert (outcome.method, outcome.moved, outcome.failed, outcome.status) == (
        "StartMessageMoveTask",
        5,
        0,
        "COMPLETED",
    )
    assert moved == [2, 3]


def test_a_failed_move_task_reports_what_did_not_move_and_why():
    sqs = client("sqs")
    with Stubber(sqs) as stub:
        stub.add_response("start_message_move_task", {"TaskHandle": "h2"}, None)
        failed = {
            "TaskHandle": "h2",
            "Status": "FAILED",
            "ApproximateNumberOfMessagesMoved": 1,
            "ApproximateNumberOfMessagesToMove": 5,
            "FailureReason": "AccessDenied",
            "StartedTimestamp": 1,
        }
        stub.add_response("list_message_move_tasks", {"Results": [failed]}, None)
        outcome = redrive.move_with_task(sqs, plan(), waits())
    assert outcome is not None and (outcome.status, outcome.moved, outcome.failed) == ("FAILED", 1, 4)
    assert outcome.notes == ["AccessDenied"]


@pytest.mark.parametrize("code,falls_back", [("UnsupportedOperation", True), ("500", True), ("AccessDenied", False)])
def test_no_move_task_on_the_endpoint_falls_back_only_for_unsupported(code, falls_back):
    sqs = client("sqs")
    with Stubber(sqs) as stub:
        stub.add_client_error("start_message_move_task", service_error_code=code, http_status_code=400)
        if falls_back:
            assert redrive.move_with_task(sqs, plan(), waits()) is None
        else:
            with pytest.raises(Exception, match=code):
                redrive.move_with_task(sqs, plan(), waits())


def record(payload: dict, function_arn: str = FN_ARN) -> str:
    # The on-failure destination record (Lambda developer guide, invocation-async-retain-records)
    return json.dumps(
        {
            "version": "1.0",
            "timestamp": "2026-11-26T08:00:00.000Z",
            "requestContext": {
                "requestId": "r1",
                "functionArn": function_arn + ":$LATEST",
                "condition": "RetriesExhausted",
                "approximateInvokeCount": 3,
            },
            "requestPayload": payload,
            "responseContext": {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"},
            "responsePayload": {"errorMessage": "boom"},
        }
    )


def test_invocation_records_are_reinvoked_asynchronously_and_deleted_only_after_202():
    sqs, lam = client("sqs"), client("lambda")
    functions = {
        "DataIngestion": "DataIngestion-dev",
        "DataProcessor": "DataProcessor-dev",
        "DataAggregator": "DataAggregator-dev",
    }
    s3_event = {"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "AAPL/a.csv"}}}]}
    messages = [
        {"MessageId": "m1", "ReceiptHandle": "r1", "Body": record(s3_event)},
        {
            "MessageId": "m2",
            "ReceiptHandle": "r2",
            "Body": record(s3_event, "arn:aws:lambda:us-east-1:1:function:Other"),
        },
        {
            "MessageId": "m3",
            "ReceiptHandle": "r3",
            "Body": json.dumps({"detail-type": "Scheduled Event"}),
            "MessageAttributes": {
                "TARGET_ARN": {
                    "DataType": "String",
                    "StringValue": "arn:aws:lambda:us-east-1:123456789012:function:DataAggregator-dev",
                }
            },
        },
        {"MessageId": "m4", "ReceiptHandle": "r4", "Body": record(s3_event)},
    ]
    notes: list[str] = []

    def accept(message):
        target = redrive.invocation_target(message, functions)
        return target if isinstance(target, str) else None

    with Stubber(sqs) as sq, Stubber(lam) as lm:
        sq.add_response("receive_message", {"Messages": messages}, None)
        lm.add_response(
            "invoke",
            {"StatusCode": 202},
            {"FunctionName": "DataIngestion-dev", "InvocationType": "Event", "Payload": json.dumps(s3_event).encode()},
        )
        lm.add_response(
            "invoke",
            {"StatusCode": 202},
            {"FunctionName": "DataAggregator-dev", "InvocationType": "Event", "Payload": ANY},
        )
        lm.add_client_error("invoke", service_error_code="TooManyRequestsException", http_status_code=429)
        sq.add_response(
            "delete_message_batch",
            {"Successful": [{"Id": "0"}, {"Id": "1"}], "Failed": []},
            {"QueueUrl": "u", "Entries": [{"Id": "0", "ReceiptHandle": "r1"}, {"Id": "1", "ReceiptHandle": "r3"}]},
        )
        sq.add_response("receive_message", {"Messages": []}, None)
        outcome = redrive.move_by_hand(sqs, "u", redrive.reinvoke(lam, functions, notes), accept=accept)
    # m1, m3 re-invoked and deleted; m4's Invoke failed: left; m2 names another function: left
    assert (outcome.moved, outcome.failed, outcome.skipped) == (2, 1, 1)
    assert any("m4: Invoke DataIngestion-dev failed (TooManyRequestsException)" in n for n in notes)
    assert any("m2: left in the queue" in n for n in outcome.notes)


def test_send_failures_leave_the_message_in_the_dead_letter_queue():
    sqs = client("sqs")
    notes: list[str] = []
    msgs = [
        {"MessageId": "a", "ReceiptHandle": "ra", "Body": "1"},
        {"MessageId": "b", "ReceiptHandle": "rb", "Body": "2"},
    ]
    with Stubber(sqs) as stub:
        stub.add_response("receive_message", {"Messages": msgs}, None)
        stub.add_response(
            "send_message_batch",
            {
                "Successful": [{"Id": "0", "MessageId": "n", "MD5OfMessageBody": "x"}],
                "Failed": [{"Id": "1", "SenderFault": False, "Code": "InternalError"}],
            },
            None,
        )
        stub.add_response(
            "delete_message_batch",
            {"Successful": [{"Id": "0"}], "Failed": []},
            {"QueueUrl": "dlq", "Entries": [{"Id": "0", "ReceiptHandle": "ra"}]},
        )
        stub.add_response(
            "receive_message", {"Messages": [msgs[1] | {"ReceiptHandle": "rb2"}]}, None
        )  # b is back: not moved twice
        outcome = redrive.move_by_hand(sqs, "dlq", redrive.send_to_queue(sqs, "src", notes))
    assert (outcome.moved, outcome.failed) == (1, 1)
    assert notes == ["b: not sent (InternalError: ); left in the queue"]


@pytest.mark.parametrize(
    "states,final",
    [
        (["STARTING", "RUNNING", "COMPLETED"], "COMPLETED"),
        (["RUNNING", "FAILED"], "FAILED"),
        (["CANCELLING", "CANCELLED"], "CANCELLED"),
    ],
)
def test_replay_is_followed_to_its_end_state(states, final):
    events = client("events")
    seen: list[str] = []
    with Stubber(events) as stub:
        for state in states:
            stub.add_response("describe_replay", {"ReplayName": "r", "State": state}, {"ReplayName": "r"})
        result = replay.follow(events, "r", waits(), on_state=lambda r: seen.append(r["State"]))
    assert result["State"] == final and seen == states


def test_replay_that_never_ends_times_out_with_how_to_follow_it():
    events = client("events")
    short = Waits(
        sleep=lambda s: None, clock=iter([0.0, 5.0, 50.0, 200.0]).__next__, poll_seconds=1, stack_timeout_seconds=100
    )
    with Stubber(events) as stub:
        for _ in range(3):
            stub.add_response("describe_replay", {"ReplayName": "r", "State": "RUNNING"}, None)
        with pytest.raises(OpsError, match="describe-replay --replay-name r"):
            replay.follow(events, "r", short)


def test_destroy_lifts_termination_protection_only_after_confirmation(monkeypatch):
    """Stubbed CloudFormation: declining leaves protection on; confirming lifts it, then deletes."""
    import io

    from market_cfn.cli import destroy as cli_destroy
    from market_cfn.ops import destroy

    stack = Stack(
        "s",
        "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
        "CREATE_COMPLETE",
        "",
        {},
        {"Fn": Resource("Fn", "AWS::Lambda::Function", "f", "CREATE_COMPLETE")},
        True,
        {},
        {"Resources": {"Fn": {"Type": "AWS::Lambda::Function"}}},
    )
    cfn = client("cloudformation")
    monkeypatch.setattr("market_cfn.ops.resources.load_stack", lambda c, name: stack)
    monkeypatch.setattr(destroy, "delete_stack", lambda c, s, w, token: {"status": "DELETE_COMPLETE", "failures": []})

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    def run(answer: str) -> tuple[int, str]:
        out = io.StringIO()
        monkeypatch.setattr("market_cfn.cli.command.Context.client", lambda self, service: cfn)
        code = cli_destroy.main(["--stack-name", "s"], stdout=out, stderr=io.StringIO(), stdin=Tty(answer))
        return code, out.getvalue()

    with Stubber(cfn) as stub:  # declined: no UpdateTerminationProtection call at all
        code, out = run("n\n")
    assert code == 3 and "it is lifted only if you confirm" in out
    with Stubber(cfn) as stub:
        stub.add_response(
            "update_termination_protection",
            {"StackId": stack.stack_id},
            {"StackName": stack.stack_id, "EnableTerminationProtection": False},
        )
        code, out = run("y\n")
        stub.assert_no_pending_responses()
    assert code == 0 and "Termination protection lifted" in out and "DELETE_COMPLETE" in out


def test_a_failed_upload_does_not_stop_the_others_and_is_counted(tmp_path):
    from market_cfn.ops import upload

    (tmp_path / "AAPL").mkdir()
    first, second = tmp_path / "AAPL" / "a.csv", tmp_path / "AAPL" / "b.csv"
    first.write_text("timestamp,price\n1717421400,1\n")
    second.write_text("timestamp,price\n1717421460,2\n")
    plan = upload.plan([str(first), str(second)])
    s3 = client("s3")
    with Stubber(s3) as stub:
        stub.add_client_error(
            "put_object", service_error_code="AccessDenied", service_message="no", http_status_code=403
        )
        stub.add_response("put_object", {"VersionId": "v2"}, None)
        results = upload.upload(s3, "bucket", plan)
    assert results[0]["error"] == "PutObject failed: AccessDenied: no"
    assert (results[1]["key"], results[1]["version_id"]) == ("AAPL/b.csv", "v2")


def test_logs_follow_polls_from_the_newest_timestamp_and_shows_each_event_once():
    from market_cfn.ops import logs

    client_ = client("logs")
    first = [{"eventId": "1", "timestamp": 1000, "message": '{"level": "INFO", "message": "a"}', "logStreamName": "s"}]
    second = first + [
        {"eventId": "2", "timestamp": 1000, "message": '{"level": "ERROR", "message": "b"}', "logStreamName": "s"}
    ]
    shown: list[str] = []
    slept: list[float] = []
    with Stubber(client_) as stub:
        stub.add_response(
            "filter_log_events",
            {"events": first, "nextToken": "t"},
            {"logGroupName": "g", "startTime": 500, "interleaved": True},
        )
        stub.add_response(
            "filter_log_events",
            {"events": []},
            {"logGroupName": "g", "startTime": 500, "interleaved": True, "nextToken": "t"},
        )
        # the next poll starts at the newest timestamp seen (1000): event 1 comes again and is dropped
        stub.add_response(
            "filter_log_events", {"events": second}, {"logGroupName": "g", "startTime": 1000, "interleaved": True}
        )
        count = logs.follow(
            client_,
            "g",
            start_ms=500,
            minimum=None,
            emit=lambda e: shown.append(e["eventId"]),
            sleep=slept.append,
            interval_seconds=2,
            polls=2,
        )
    assert (count, shown, slept) == (2, ["1", "2"], [2])
    assert logs.keep('{"level": "warn"}', "WARNING") and not logs.keep("START RequestId: 1", "DEBUG")


def test_move_with_task_refuses_a_plan_without_a_source_queue():
    # An invocation plan has no source queue: StartMessageMoveTask is not called with DestinationArn None
    # (botocore would refuse the parameter); the refusal is a one-line OpsError.
    p = plan()
    p.target = p.target_url = p.target_arn = None
    with Stubber(client("sqs")) as stub, pytest.raises(OpsError, match="no source queue"):
        redrive.move_with_task(stub.client, p, waits())


def test_destroy_reads_every_page_of_events_back_to_the_deletion_that_started():
    """DescribeStackEvents pages newest first (NextToken): a DELETE_FAILED on the second page is
    reported; events older than the deletion's own DELETE_IN_PROGRESS are another operation's."""
    from market_cfn.ops import destroy

    stack_id = "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1"
    stack = Stack("s", stack_id, "CREATE_COMPLETE", "", {}, {}, False, {})
    when = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def event(n: int, logical: str, status: str, token: str | None = "tok", reason: str = "") -> dict:
        found = {
            "StackId": stack_id,
            "EventId": f"e{n}",
            "StackName": "s",
            "LogicalResourceId": logical,
            "ResourceType": "AWS::CloudFormation::Stack" if logical == "s" else "AWS::S3::Bucket",
            "Timestamp": when,
            "ResourceStatus": status,
            "ResourceStatusReason": reason,
        }
        return found | ({"ClientRequestToken": token} if token else {})

    first = [event(1, "s", "DELETE_FAILED")] + [event(n, f"Q{n}", "DELETE_COMPLETE") for n in range(2, 100)]
    second = [
        event(100, "DataBucket", "DELETE_FAILED", reason="BucketNotEmpty"),
        event(101, "s", "DELETE_IN_PROGRESS"),
        event(102, "OldBucket", "DELETE_FAILED", token=None, reason="an earlier attempt"),
    ]
    cfn = client("cloudformation")
    with Stubber(cfn) as stub:
        stub.add_response("delete_stack", {}, {"StackName": stack_id, "ClientRequestToken": "tok"})
        final = {"StackName": "s", "StackId": stack_id, "CreationTime": when, "StackStatus": "DELETE_FAILED"}
        stub.add_response("describe_stacks", {"Stacks": [final]}, {"StackName": stack_id})
        stub.add_response("describe_stack_events", {"StackEvents": first, "NextToken": "p2"}, {"StackName": stack_id})
        stub.add_response(
            "describe_stack_events",
            {"StackEvents": second, "NextToken": "p3"},
            {"StackName": stack_id, "NextToken": "p2"},
        )
        result = destroy.delete_stack(cfn, stack, waits(), "tok")
        stub.assert_no_pending_responses()
    assert result["status"] == "DELETE_FAILED"
    assert result["failures"] == ["DataBucket: BucketNotEmpty"]


def test_a_move_task_still_running_at_the_timeout_says_so_after_the_last_look():
    """Looks at 0, 5, 10, 15 and 20 s (the look at the deadline still counts), one sleep between
    each, progress reported as it grows; then the one-line timeout that says where the task goes on."""
    from stubs_cfn import FakeTime

    clock = FakeTime()
    timed = Waits(sleep=clock.sleep, clock=clock.monotonic, now=clock.now, poll_seconds=5, stack_timeout_seconds=20)
    sqs = client("sqs")
    moved: list[int] = []
    with Stubber(sqs) as stub:
        stub.add_response("start_message_move_task", {"TaskHandle": "h3"}, None)
        for n in (1, 1, 2, 4, 4):
            running = {"TaskHandle": "h3", "Status": "RUNNING", "ApproximateNumberOfMessagesMoved": n}
            stub.add_response("list_message_move_tasks", {"Results": [running]}, None)
        with pytest.raises(OpsError, match=r"^message move task h3 still RUNNING after 20 s \(it goes on in SQS"):
            redrive.move_with_task(sqs, plan(), timed, on_moved=moved.append)
        stub.assert_no_pending_responses()
    assert clock.sleeps == [5.0] * 4
    assert moved == [1, 1, 2]
