"""The `redrive` core: dead letters back where they failed, counted, never lost.

- processing / aggregation: ProcessingDLQ -> ProcessingQueue, AggregationDLQ ->
  AggregationQueue. The pairing is checked against the source queue's RedrivePolicy
  (deadLetterTargetArn) before anything moves. Where the endpoint has it, SQS's own
  StartMessageMoveTask does the move ("redrive to source", SQS API reference) and
  ListMessageMoveTasks is followed to a final status. Where it does not (moto answers
  500, some endpoints UnsupportedOperation), messages are moved here: ReceiveMessage ->
  SendMessageBatch -> DeleteMessageBatch of exactly the entries whose send succeeded, so a
  failure leaves the message in the dead-letter queue (it becomes visible again) and
  never loses it; a failure can at worst duplicate one, which every consumer of these
  queues tolerates (docs/input-contract.md, idempotency).
- invocation: InvocationDLQ holds (a) Lambda on-failure destination records - JSON with
  `requestContext.functionArn`, `requestContext.condition` and the original event under
  `requestPayload` (Lambda developer guide, "Capturing records of Lambda asynchronous
  invocations") - and (b) events EventBridge could not deliver, the event as the body
  with TARGET_ARN among the message attributes (EventBridge user guide, "Using
  dead-letter queues"). Both are re-invoked asynchronously (Invoke, InvocationType
  Event) on the named function when it is one of this stack's functions, and deleted
  only after Lambda accepted the invocation (202). Anything else is left in the queue and
  counted as skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from market_cfn.base.aws import error_code
from market_cfn.base.errors import OpsError, UsageError
from market_cfn.base.waits import Waits, poll
from market_cfn.ops.resources import DEAD_LETTER_QUEUES, FUNCTIONS, Stack

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import ListMessageMoveTasksResultEntryTypeDef, SendMessageBatchRequestEntryTypeDef

KINDS = {"processing": "ProcessingDLQ", "aggregation": "AggregationDLQ", "invocation": "InvocationDLQ"}
# Answers that mean "this endpoint has no StartMessageMoveTask": move by hand instead.
NO_MOVE_TASK = frozenset(
    {"UnsupportedOperation", "InvalidAction", "UnknownOperationException", "NotImplemented", "500"}
)
TASK_DONE = {"COMPLETED", "CANCELLED", "FAILED"}


@dataclass
class Plan:
    kind: str
    dlq: str  # logical ID
    dlq_url: str
    dlq_arn: str
    visible: int
    in_flight: int
    target: str | None = None  # logical ID of the source queue (None for invocation)
    target_url: str | None = None
    target_arn: str | None = None


@dataclass
class Outcome:
    method: str
    moved: int = 0
    failed: int = 0
    skipped: int = 0
    status: str = "COMPLETED"
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def plan(sqs: SQSClient, stack: Stack, kind: str) -> Plan:
    if kind not in KINDS:
        raise UsageError(f"unknown dead-letter queue {kind!r} (choose from {', '.join(KINDS)})")
    dlq = KINDS[kind]
    dlq_url = stack.queue_url(dlq)
    attributes = sqs.get_queue_attributes(
        QueueUrl=dlq_url,
        AttributeNames=["QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    result = Plan(
        kind,
        dlq,
        dlq_url,
        attributes["QueueArn"],
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )
    source = DEAD_LETTER_QUEUES[dlq]
    if source is not None:
        result.target, result.target_url = source, stack.queue_url(source)
        target = sqs.get_queue_attributes(QueueUrl=result.target_url, AttributeNames=["QueueArn", "RedrivePolicy"])
        result.target_arn = target["Attributes"]["QueueArn"]
        policy = json.loads(target["Attributes"].get("RedrivePolicy") or "{}")
        if policy.get("deadLetterTargetArn") != result.dlq_arn:
            raise OpsError(
                f"{source}'s RedrivePolicy does not name {dlq} as its dead-letter queue "
                f"({policy.get('deadLetterTargetArn') or 'none'}); refusing to move messages there"
            )
    return result


# --- SQS queues back to their source ---------------------------------------------------


def move_with_task(
    sqs: SQSClient, p: Plan, waits: Waits, on_moved: Callable[[int], None] | None = None
) -> Outcome | None:
    """StartMessageMoveTask and follow it; None when the endpoint has no such API."""
    if p.target_arn is None:  # plan() names a source queue for processing / aggregation only
        raise OpsError(f"{p.dlq} has no source queue to move its messages back to")
    started = waits.now()
    try:
        handle = sqs.start_message_move_task(SourceArn=p.dlq_arn, DestinationArn=p.target_arn)["TaskHandle"]
    except ClientError as exc:
        code = error_code(exc)
        if code in NO_MOVE_TASK:
            return None
        raise
    reported = 0

    def look() -> ListMessageMoveTasksResultEntryTypeDef:
        nonlocal reported
        results = sqs.list_message_move_tasks(SourceArn=p.dlq_arn, MaxResults=10).get("Results", [])
        task = next((t for t in results if t.get("TaskHandle") == handle), None)
        if task is None:  # TaskHandle is only returned while RUNNING: the newest task started since ours
            since_ms = int(started.timestamp() * 1000) - int(waits.clock_skew_seconds * 1000)
            ours = [t for t in results if int(t.get("StartedTimestamp", 0)) >= since_ms]
            task = max(ours, key=lambda t: int(t.get("StartedTimestamp", 0)), default=None)
        if task is None:
            raise OpsError(f"message move task {handle} is not listed by ListMessageMoveTasks")
        moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
        if on_moved and moved > reported:
            on_moved(moved - reported)
            reported = moved
        return task

    task = poll(
        look,
        lambda seen: seen.get("Status") in TASK_DONE,
        waits,
        timeout_seconds=waits.stack_timeout_seconds,
        timed_out=lambda seen: OpsError(
            f"message move task {handle} still {seen.get('Status')} after {waits.stack_timeout_seconds:.0f} s "
            "(it goes on in SQS; see ListMessageMoveTasks)"
        ),
    )
    moved = int(task.get("ApproximateNumberOfMessagesMoved", 0))
    outcome = Outcome("StartMessageMoveTask", moved=moved, status=task["Status"])
    to_move = int(task.get("ApproximateNumberOfMessagesToMove", moved))
    outcome.failed = max(0, to_move - moved) if task["Status"] != "COMPLETED" else 0
    if task.get("FailureReason"):
        outcome.notes.append(task["FailureReason"])
    return outcome


def _attributes_to_send(message: dict[str, Any]) -> dict[str, Any]:
    attributes = {}
    for name, value in (message.get("MessageAttributes") or {}).items():
        attributes[name] = {k: v for k, v in value.items() if v not in ([], None)}
    return attributes


def move_by_hand(
    sqs: SQSClient,
    source_url: str,
    send: Callable[[list[dict[str, Any]]], tuple[list[str], list[str]]],
    *,
    accept: Callable[[dict[str, Any]], str | None] | None = None,
    on_moved: Callable[[int], None] | None = None,
    visibility_timeout: int = 120,
) -> Outcome:
    """Receive from `source_url`, hand batches to `send` (-> ids sent, ids failed), delete what was sent.

    `accept(message)` returns None to move a message or a reason to leave it (skipped).
    Stops when a receive comes back empty, or when a message already handled comes back
    (a redriven message that failed again): nothing is moved twice in one run.
    """
    outcome = Outcome("ReceiveMessage/SendMessage/DeleteMessage")
    handled: set[str] = set()
    while True:
        answer = sqs.receive_message(
            QueueUrl=source_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,  # long polling queries every SQS server: an empty answer means empty
            VisibilityTimeout=visibility_timeout,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )
        messages = cast("list[dict[str, Any]]", answer.get("Messages", []))  # accept and send take plain data
        fresh = [m for m in messages if m["MessageId"] not in handled]
        if not fresh:
            return outcome
        handled.update(m["MessageId"] for m in fresh)
        batch = []
        for message in fresh:
            reason = accept(message) if accept else None
            if reason:
                outcome.skipped += 1
                outcome.notes.append(f"{message['MessageId']}: left in the queue: {reason}")
            else:
                batch.append(message)
        if not batch:
            continue
        sent, failed = send(batch)
        outcome.failed += len(failed)
        by_id = {m["MessageId"]: m for m in batch}
        to_delete = [by_id[i] for i in sent]
        if to_delete:
            deleted = sqs.delete_message_batch(
                QueueUrl=source_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(to_delete)],
            )
            not_deleted = deleted.get("Failed", [])
            for entry in not_deleted:
                outcome.notes.append(
                    f"{to_delete[int(entry['Id'])]['MessageId']}: sent but not deleted from the "
                    f"dead-letter queue ({entry.get('Code')}); it will be seen again"
                )
            outcome.moved += len(to_delete) - len(not_deleted)
            outcome.failed += len(not_deleted)
            if on_moved:
                on_moved(len(to_delete))


def send_to_queue(
    sqs: SQSClient, target_url: str, notes: list[str]
) -> Callable[[list[dict[str, Any]]], tuple[list[str], list[str]]]:
    def send(batch: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        entries: list[SendMessageBatchRequestEntryTypeDef] = []
        for n, m in enumerate(batch):
            request: SendMessageBatchRequestEntryTypeDef = {"Id": str(n), "MessageBody": m["Body"]}
            if m.get("MessageAttributes"):
                request["MessageAttributes"] = _attributes_to_send(m)
            entries.append(request)
        try:
            answer = sqs.send_message_batch(QueueUrl=target_url, Entries=entries)
        except ClientError as exc:
            notes.append(f"SendMessageBatch failed: {exc.response.get('Error', {}).get('Code')}; left in the queue")
            return [], [m["MessageId"] for m in batch]
        sent = [batch[int(e["Id"])]["MessageId"] for e in answer.get("Successful", [])]
        failed = []
        for entry in answer.get("Failed", []):
            failed.append(batch[int(entry["Id"])]["MessageId"])
            notes.append(f"{failed[-1]}: not sent ({entry.get('Code')}: {entry.get('Message', '')}); left in the queue")
        return sent, failed

    return send


# --- InvocationDLQ: re-invoke ----------------------------------------------------------


def invocation_target(message: dict[str, Any], functions: dict[str, str]) -> tuple[str, bytes] | str:
    """(function name, payload) to re-invoke, or the reason the message is left alone."""
    try:
        body = json.loads(message["Body"])
    except ValueError:
        return "body is not JSON"
    arns = {name: name for name in functions.values()}
    if isinstance(body, dict) and isinstance(body.get("requestContext"), dict) and "requestPayload" in body:
        arn = str(body["requestContext"].get("functionArn", ""))
        target = arn.split(":function:", 1)[-1].split(":", 1)[0]
        if target not in arns:
            return f"a Lambda record for {arn or 'an unnamed function'}, not one of this stack's functions"
        return target, json.dumps(body["requestPayload"]).encode()
    attribute = (message.get("MessageAttributes") or {}).get("TARGET_ARN", {}).get("StringValue", "")
    if attribute:
        target = attribute.split(":function:", 1)[-1].split(":", 1)[0] if ":function:" in attribute else ""
        if target not in arns:
            return f"an EventBridge dead letter for {attribute}, not one of this stack's functions"
        return target, message["Body"].encode()
    return "neither a Lambda destination record nor an EventBridge dead letter"


def reinvoke(
    lam: LambdaClient, functions: dict[str, str], notes: list[str]
) -> Callable[[list[dict[str, Any]]], tuple[list[str], list[str]]]:
    def send(batch: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
        sent, failed = [], []
        for message in batch:
            target = invocation_target(message, functions)
            assert not isinstance(target, str)  # accept() filtered the others
            name, payload = target
            try:
                status = lam.invoke(FunctionName=name, InvocationType="Event", Payload=payload)["StatusCode"]
            except ClientError as exc:
                status, why = 0, exc.response.get("Error", {}).get("Code")
                notes.append(f"{message['MessageId']}: Invoke {name} failed ({why}); left in the queue")
            if status == 202:
                sent.append(message["MessageId"])
            else:
                failed.append(message["MessageId"])
        return sent, failed

    return send


def stack_functions(stack: Stack) -> dict[str, str]:
    return {name: stack.function(name) for name in FUNCTIONS}
