"""DataProcessor end to end on moto: queue -> table -> PointsStored events, with faults."""

from __future__ import annotations

import json
from decimal import Decimal

from conftest import client_error, queue_bodies

from market_cfn.simulate import sqs_record


def send(pipe, body: str) -> None:
    pipe.sqs.send_message(QueueUrl=pipe.queue_urls["ProcessingQueue"], MessageBody=body)


def body(symbol: str, start_ms: int, n: int, price: str = "100.5") -> str:
    rows = ",".join(f"[{start_ms + i * 1000},{price},{i}]" for i in range(n))
    return f'{{"v":1,"p":{{"{symbol}":[{rows}]}}}}'


def points_of(pipe):
    return sorted(
        (i["symbol"], int(i["timestamp"]), i["price"], i.get("volume"))
        for i in pipe.table_items()
        if "#" not in i["symbol"]
    )


def aggregation_messages(pipe):
    return [json.loads(b) for b in queue_bodies(pipe, pipe.queue_urls["AggregationQueue"], hide_seconds=30)]


def test_sample_sqs_event_stores_points_and_reports_no_failures(pipeline, event):
    response = pipeline.invoke("DataProcessorFunction", event("sqs_processing_batch"))
    assert response == {"batchItemFailures": []}
    assert points_of(pipeline) == [
        ("AAPL", 1717421400000, Decimal("192.9"), Decimal(1200)),
        ("AAPL", 1717421460000, Decimal("193.1"), Decimal(800)),
        ("MSFT", 1717421400000, Decimal("415.2"), None),
    ]


def test_points_are_written_in_chunks_of_25_and_announced_once_per_message(pipeline):
    # GIVEN one message with 60 points across two 5-minute windows
    send(pipeline, body("AAPL", 1717421400000 + 270_000, 60))
    # WHEN the event source mapping delivers it
    stats = pipeline.drain_processing_queue()
    # THEN every point is stored, with 3 BatchWriteItem calls and 1 PutEvents
    assert stats == {"invocations": 1, "messages": 1, "failed": 0}
    assert len(points_of(pipeline)) == 60
    ops = [c.operation for c in pipeline.calls if c.actor == "DataProcessorFunction"]
    assert ops == ["BatchWriteItem"] * 3 + ["PutEvents"]
    # and the PointsStored event reached the AggregationQueue through the rule
    [detail] = [m.get("detail", m) for m in aggregation_messages(pipeline)]
    assert detail == {"v": 1, "points": 60, "windows": [["AAPL", 1717421400000], ["AAPL", 1717421700000]]}


def test_throttling_and_unprocessed_items_are_retried_without_loss(pipeline, faults, sleeps):
    def flaky(original, n, **kwargs):
        if n == 1:
            raise client_error("ProvisionedThroughputExceededException", "BatchWriteItem")
        if n == 2:  # DynamoDB takes the first 10 requests and hands back the rest
            [(table, requests)] = kwargs["RequestItems"].items()
            original(RequestItems={table: requests[:10]})
            return {"UnprocessedItems": {table: requests[10:]}}
        return original(**kwargs)

    faults.wrap("dynamodb", "batch_write_item", flaky)
    send(pipeline, body("AAPL", 1717421400000, 25))
    stats = pipeline.drain_processing_queue()
    assert stats["failed"] == 0
    assert len(points_of(pipeline)) == 25
    assert faults.calls["dynamodb.batch_write_item"] == 3 and len(sleeps) == 2


def test_unprocessed_items_that_never_clear_fail_only_that_message(pipeline, faults):
    def stubborn(original, n, **kwargs):
        [(table, requests)] = kwargs["RequestItems"].items()
        if any(r["PutRequest"]["Item"]["symbol"]["S"] == "BAD" for r in requests):
            return {"UnprocessedItems": kwargs["RequestItems"]}
        return original(**kwargs)

    faults.wrap("dynamodb", "batch_write_item", stubborn)
    send(pipeline, body("AAPL", 1717421400000, 3))
    send(pipeline, body("BAD", 1717421400000, 3))
    pipeline.drain_processing_queue()
    assert {p[0] for p in points_of(pipeline)} == {"AAPL"}
    assert pipeline.queue_depth("ProcessingDLQ") == 1


def test_eventbridge_failed_entries_are_retried(pipeline, faults, sleeps):
    def flaky(original, n, **kwargs):
        if n == 1:
            entries = kwargs["Entries"]
            return {
                "FailedEntryCount": len(entries),
                "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"} for _ in entries],
            }
        return original(**kwargs)

    faults.wrap("events", "put_events", flaky)
    send(pipeline, body("AAPL", 1717421400000, 2))
    stats = pipeline.drain_processing_queue()
    assert stats["failed"] == 0 and faults.calls["events.put_events"] == 2
    assert len(aggregation_messages(pipeline)) == 1


def test_poison_message_reaches_the_dlq_after_max_receives_and_neighbours_are_not_replayed(pipeline):
    from market_cfn.stack.queues import PROCESSING_MAX_RECEIVE_COUNT as receives  # the template's redrive policy

    # GIVEN a batch with good messages around one unreadable body
    send(pipeline, body("AAPL", 1717421400000, 2))
    send(pipeline, '{"v":1,"p":{"AAPL":[["not-a-timestamp",1]]}}')
    send(pipeline, body("MSFT", 1717421400000, 2))
    # WHEN the queue is drained (failed messages come back, as after the visibility timeout)
    stats = pipeline.drain_processing_queue()
    # THEN the poison message was received maxReceiveCount times and moved to the DLQ by the redrive
    assert stats["failed"] == receives
    dlq = pipeline.sqs.receive_message(QueueUrl=pipeline.queue_urls["ProcessingDLQ"], AttributeNames=["All"])[
        "Messages"
    ]
    assert len(dlq) == 1 and "not-a-timestamp" in dlq[0]["Body"]
    assert dlq[0]["Attributes"]["ApproximateReceiveCount"] == str(receives + 1)  # moto counts the redriving receive
    # AND the good messages were written exactly once each
    assert {p[0] for p in points_of(pipeline)} == {"AAPL", "MSFT"}
    writes = [c for c in pipeline.calls if c.actor == "DataProcessorFunction" and c.operation == "BatchWriteItem"]
    assert len(writes) == 2
    assert pipeline.queue_depth("ProcessingQueue") == 0


def test_partial_batch_response_names_only_the_failed_message(pipeline):
    arn = pipeline.physical["ProcessingQueue"]["Arn"]
    good = {
        "MessageId": "good-1",
        "ReceiptHandle": "r1",
        "Body": body("AAPL", 1717421400000, 1),
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    bad = {
        "MessageId": "bad-1",
        "ReceiptHandle": "r2",
        "Body": '{"v":9}',
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    response = pipeline.invoke("DataProcessorFunction", {"Records": [sqs_record(good, arn), sqs_record(bad, arn)]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    # a batch where everything fails is reported, not raised (no whole-batch replay)
    response = pipeline.invoke("DataProcessorFunction", {"Records": [sqs_record(bad, arn)]})
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}


def test_duplicate_message_delivery_leaves_the_same_items(pipeline, event):
    evt = event("sqs_processing_batch")
    pipeline.invoke("DataProcessorFunction", evt)
    first = pipeline.table_items()
    pipeline.invoke("DataProcessorFunction", evt)
    second = pipeline.table_items()

    # The TTL attribute counts from each write (common.expiry): a rewrite a second later
    # may carry a later expiry, never an earlier one; everything else is the same item.
    def without_expiry(items):
        return sorted(({k: v for k, v in i.items() if k != "expires"} for i in items), key=str)

    assert without_expiry(second) == without_expiry(first) and len(second) == len(first)
    assert min(i.get("expires", 0) for i in second) >= min(i.get("expires", 0) for i in first)


def test_a_full_message_is_written_concurrently_and_completely(pipeline, faults):
    import threading

    threads = set()

    def spy(original, n, **kwargs):
        threads.add(threading.get_ident())
        if n % 7 == 0:  # some chunks come back partly unprocessed
            [(table, requests)] = kwargs["RequestItems"].items()
            original(RequestItems={table: requests[:5]})
            return {"UnprocessedItems": {table: requests[5:]}}
        return original(**kwargs)

    faults.wrap("dynamodb", "batch_write_item", spy)
    send(pipeline, body("AAPL", 1717421400000, 1000))
    assert pipeline.drain_processing_queue()["failed"] == 0
    assert len(points_of(pipeline)) == 1000
    assert len(threads) > 1


def test_points_stored_while_eventbridge_fails_are_still_aggregated(pipeline, faults):
    """PutEvents fails for a while after the points were written (every attempt, every
    receive): the windows still reach the aggregator, nothing is dead-lettered, and once
    EventBridge recovers the PointsStored events flow through the bus again."""
    down = {"on": True}

    def outage(original, n, **kwargs):
        if down["on"]:
            raise client_error("ServiceUnavailable", "PutEvents")
        return original(**kwargs)

    faults.wrap("events", "put_events", outage)
    send(pipeline, body("AAPL", 1717421400000, 3, price="10"))
    assert pipeline.drain_processing_queue()["failed"] == 0
    assert pipeline.queue_depth("ProcessingDLQ") == 0
    # EventBridge recovers; more points arrive the normal way
    down["on"] = False
    send(pipeline, body("MSFT", 1717421400000, 2, price="20"))
    assert pipeline.drain_processing_queue()["failed"] == 0
    pipeline.run_aggregator()
    aggregates = {(i["symbol"], int(i["timestamp"])): i for i in pipeline.table_items() if "#" in i["symbol"]}
    assert set(aggregates) == {("AAPL#5m", 1717421400000), ("MSFT#5m", 1717421400000)}
    assert aggregates[("AAPL#5m", 1717421400000)]["count"] == 3
    assert pipeline.dead_letters() == 0 and pipeline.queue_depth("AggregationQueue") == 0
    ops = [c.operation for c in pipeline.calls if c.actor == "DataProcessorFunction"]
    assert ops.count("SendMessageBatch") == 1  # only the first message took the direct path
