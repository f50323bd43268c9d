"""DataAggregator under overlapping runs, poison windows and failing services (moto).

Deterministic interleavings: a run is paused at a chosen AWS call (by wrapping the
handlers' shared client) while another run, or the processor, does its work.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from conftest import client_error, queue_bodies
from test_handlers_aggregator import T0, W, aggregates, csv, ingest, watch_aggregate_events

from market_cfn.simulate import scheduled_event


def aggregate_item(pipe, symbol, start):
    return pipe.ddb.get_item(
        TableName=pipe.table, Key={"symbol": {"S": f"{symbol}#5m"}, "timestamp": {"N": str(start)}}, ConsistentRead=True
    ).get("Item")


def test_an_older_computation_never_replaces_a_newer_one(pipeline, faults):
    """Run A queries; a late point is stored; run B computes and writes; then A writes.
    A must lose, the bar with the late point must be the final state, and the queue
    must be empty."""
    read_bars = watch_aggregate_events(pipeline)
    ingest(pipeline, "AAPL/a.csv", [(T0, "10", 1), (T0 + 1000, "11", 1)])
    state = {"paused": False}

    def pause_after_first_query(original, n, **kwargs):
        result = original(**kwargs)
        if not state["paused"]:
            state["paused"] = True
            assert len(result["Items"]) == 2  # A has read the two points, not the late one
            ingest(pipeline, "AAPL/late.csv", [(T0 + 200_000, "13", 2)])  # the late point
            totals_b = pipeline.run_aggregator()  # run B: computes and writes the full bar
            assert totals_b["windows"] == 1
            assert aggregate_item(pipeline, "AAPL", T0)["close"] == {"N": "13"}
        return result  # run A goes on to write its (older) computation

    faults.wrap("dynamodb", "query", pause_after_first_query)
    totals_a = pipeline.run_aggregator()
    item = aggregate_item(pipeline, "AAPL", T0)
    assert (item["count"], item["close"], item["high"], item["volume"]) == (
        {"N": "3"},
        {"N": "13"},
        {"N": "13"},
        {"N": "4"},
    )
    assert pipeline.queue_depth("AggregationQueue") == 0
    assert pipeline.dead_letters() == 0
    # A's stale write was refused; A redid the window and stored the same, newest bar
    assert totals_a["windows"] == 1 and item["version"] == {"N": "2"}
    bars = read_bars()
    assert all(b["count"] == 3 and b["close"] == 13 for b in bars)  # no stale bar was ever published
    assert sorted(b["version"] for b in bars) == [1, 2]


def test_a_stale_version_read_only_costs_a_retry(pipeline, faults):
    """Eventually consistent version reads are harmless: a stale (older) version makes
    the conditional write fail, and the window is redone with a consistent read."""
    ingest(pipeline, "AAPL/a.csv", [(T0, "10", 1)])
    pipeline.run_aggregator()
    ingest(pipeline, "AAPL/b.csv", [(T0 + 1, "12", 1)])
    consistent = []

    def stale_first_read(original, n, **kwargs):
        [(table, request)] = kwargs["RequestItems"].items()
        consistent.append(request["ConsistentRead"])
        response = original(**kwargs)
        if not request["ConsistentRead"]:  # as if the replica had not seen version 1 yet
            response["Responses"][table] = []
        return response

    faults.wrap("dynamodb", "batch_get_item", stale_first_read)
    assert pipeline.run_aggregator()["windows"] == 1
    assert consistent == [False, True]
    item = aggregate_item(pipeline, "AAPL", T0)
    assert item["version"] == {"N": "2"} and item["close"] == {"N": "12"}


def test_an_unwritable_window_is_dead_lettered_with_its_reason_and_the_others_complete(pipeline):
    """A window whose aggregate DynamoDB cannot store (a volume sum of 39 digits, past
    ingestion's limits) goes to the AggregationDLQ with its reason, alone."""
    ingest(pipeline, "AAPL/a.csv", [(T0, "10", 1), (T0 + W, "11", 1)])
    ingest(pipeline, "MSFT/a.csv", [(T0, "20", 5)])
    for ts in (T0, T0 + 1000):  # written straight to the table, as a hostile writer could
        pipeline.ddb.put_item(
            TableName=pipeline.table,
            Item={"symbol": {"S": "HUGE"}, "timestamp": {"N": str(ts)}, "price": {"N": "1"}, "volume": {"N": "9" * 38}},
        )
    pipeline.sqs.send_message(
        QueueUrl=pipeline.queue_urls["AggregationQueue"],
        MessageBody=json.dumps({"v": 1, "points": 2, "windows": [["HUGE", T0]]}),
    )
    totals = pipeline.run_aggregator()
    assert set(aggregates(pipeline)) == {("AAPL", T0), ("AAPL", T0 + W), ("MSFT", T0)}
    assert pipeline.queue_depth("AggregationQueue") == 0
    assert pipeline.queue_depth("AggregationDLQ") == 1
    assert totals["windows"] == 3 and totals["dead_lettered_windows"] == 1
    [dead] = pipeline.sqs.receive_message(
        QueueUrl=pipeline.queue_urls["AggregationDLQ"], MessageAttributeNames=["All"]
    )["Messages"]
    body = json.loads(dead["Body"])
    assert body["windows"] == [["HUGE", T0]]
    assert "volume" in body["dead_letter"]["reason"] and "39 significant digits" in body["dead_letter"]["reason"]
    assert dead["MessageAttributes"]["reason"]["StringValue"] == body["dead_letter"]["reason"]


def test_a_window_dynamodb_refuses_is_isolated(pipeline, faults):
    """The same when DynamoDB itself refuses the write (ValidationException, which moto
    does not raise for numbers): only that window fails."""

    def refuse_msft(original, n, **kwargs):
        if kwargs["Item"]["symbol"]["S"] == "MSFT#5m":
            raise client_error("ValidationException", "PutItem", "Number overflow")
        return original(**kwargs)

    ingest(pipeline, "AAPL/a.csv", [(T0, "10", 1)])
    ingest(pipeline, "MSFT/a.csv", [(T0, "20", 5)])
    faults.wrap("dynamodb", "put_item", refuse_msft)
    totals = pipeline.run_aggregator()
    assert set(aggregates(pipeline)) == {("AAPL", T0)}
    assert (totals["windows"], totals["dead_lettered_windows"]) == (1, 1)
    [body] = queue_bodies(pipeline, pipeline.queue_urls["AggregationDLQ"])
    assert json.loads(body)["dead_letter"]["reason"] == "PutItem: ValidationException: Number overflow"


def test_bars_that_cannot_be_published_are_retried_alone_until_eventbridge_recovers(pipeline, faults, monkeypatch):
    read_bars = watch_aggregate_events(pipeline)
    ingest(pipeline, "AAPL/a.csv", [(T0, "10", 1)])
    ingest(pipeline, "MSFT/a.csv", [(T0, "20", 5)])
    down = {"on": True}

    def flaky_bus(original, n, **kwargs):
        if down["on"] and any(e["Source"] == "market-data.aggregator" for e in kwargs["Entries"]):
            raise client_error("ServiceUnavailable", "PutEvents")
        return original(**kwargs)

    faults.wrap("events", "put_events", flaky_bus)
    totals = pipeline.run_aggregator()
    # the bars are stored; the windows wait out their retry delay (30 s) in one message
    assert set(aggregates(pipeline)) == {("AAPL", T0), ("MSFT", T0)}
    assert pipeline.dead_letters() == 0
    assert (totals["windows"], totals["retried_windows"], totals["dead_lettered_windows"]) == (0, 2, 0)
    attrs = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.queue_urls["AggregationQueue"], AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    # a second failure doubles the delay; then EventBridge recovers
    monkeypatch.setattr(pipeline.handler_module("DataAggregatorFunction"), "RECEIVE_WAIT_SECONDS", 0)
    _release_delayed(pipeline)
    assert pipeline.run_aggregator()["retried_windows"] == 2
    [retry] = [json.loads(b) for b in _peek_delayed(pipeline)]
    assert retry["retry"]["attempt"] == 2 and "ServiceUnavailable" in retry["retry"]["reason"]
    down["on"] = False
    _release_delayed(pipeline)
    totals = pipeline.run_aggregator()
    assert totals["windows"] == 2 and pipeline.queue_depth("AggregationQueue") == 0
    assert pipeline.dead_letters() == 0
    assert sorted((b["symbol"], b["version"]) for b in read_bars()) == [("AAPL", 3), ("MSFT", 3)]


def _peek_delayed(pipe):
    from moto.sqs.models import sqs_backends

    name = pipe.physical["AggregationQueue"]["QueueName"]
    return [m.body for m in sqs_backends["123456789012"]["us-east-1"].queues[name]._messages]


def _release_delayed(pipe):
    """Let delayed messages become visible now (moto backend state, as time passing)."""
    from moto.sqs.models import sqs_backends

    name = pipe.physical["AggregationQueue"]["QueueName"]
    for message in sqs_backends["123456789012"]["us-east-1"].queues[name]._messages:
        message.delayed_until = 0


def test_the_final_poll_is_short(pipeline, faults):
    """Long polls while batches come back full; after a partial batch, the poll that
    finds the queue empty does not wait."""
    waits = []

    def spy(original, n, **kwargs):
        waits.append(kwargs["WaitTimeSeconds"])
        return original(**{**kwargs, "WaitTimeSeconds": 0})  # moto would really wait

    for i in range(12):
        ingest(pipeline, f"S{i}/a.csv", [(T0, "10", 1)])  # 12 messages: a full batch, then 2
    faults.wrap("sqs", "receive_message", spy)
    totals = pipeline.invoke("DataAggregatorFunction", scheduled_event(datetime.now(UTC)))
    assert totals["messages"] == 12 and totals["windows"] == 12
    assert waits == [1, 1, 0]


def test_a_consumer_subscribes_to_one_symbol(pipeline):
    """The documented rule pattern selects the events that carry AAPL's bars."""
    aapl = watch_aggregate_events(
        pipeline,
        {"source": ["market-data.aggregator"], "detail-type": ["BarsComputed"], "detail": {"symbols": ["AAPL"]}},
        name="aapl",
    )
    ibm = watch_aggregate_events(
        pipeline,
        {"source": ["market-data.aggregator"], "detail-type": ["BarsComputed"], "detail": {"symbols": ["IBM"]}},
        name="ibm",
    )
    pipeline.put_object("AAPL/a.csv", csv([(T0, "10", 1), (T0 + W, "11", 1)]))
    pipeline.put_object("MSFT/a.csv", csv([(T0, "20", 5)]))
    pipeline.deliver_s3_events()
    pipeline.drain_processing_queue()
    pipeline.run_aggregator()
    bars = [b for b in aapl() if b["symbol"] == "AAPL"]
    assert [(b["window_start"], b["close"]) for b in bars] == [(T0, 10), (T0 + W, 11)]
    assert ibm() == []


def test_a_round_is_bounded_by_windows_too(pipeline, faults, monkeypatch):
    """Each window costs a conditional PutItem: a round stops receiving once its
    messages name ROUND_WINDOWS windows, and the next round takes the rest."""
    module = pipeline.handler_module("DataAggregatorFunction")
    monkeypatch.setattr(module, "ROUND_WINDOWS", 5)
    for i in range(4):  # four messages of three windows each
        ingest(pipeline, f"S{i}/a.csv", [(T0 + k * W, "10", 1) for k in range(3)])
    # SQS may return fewer messages than asked: here, one at a time
    faults.wrap(
        "sqs",
        "receive_message",
        lambda original, n, **kw: original(**{**kw, "MaxNumberOfMessages": 1, "WaitTimeSeconds": 0}),
    )
    totals = pipeline.invoke("DataAggregatorFunction", scheduled_event(datetime.now(UTC)))
    assert totals["windows"] == 12 and totals["rounds"] == 2
    assert pipeline.queue_depth("AggregationQueue") == 0


@pytest.mark.parametrize("pause_at", ["batch_get_item", "query", "put_item"])
@pytest.mark.parametrize("late_point", ["before_b", "after_b"])
def test_every_interleaving_ends_with_the_newest_bar(pipeline, faults, pause_at, late_point):
    """Run A is paused after its version read, its Query, or just before its write;
    meanwhile a late point is stored before or after a run B. Whatever the order, once
    the queue is drained the stored bar is computed from every point, never stale."""
    ingest(pipeline, "AAPL/a.csv", [(T0, "10", 1), (T0 + 1000, "11", 1)])
    state = {"paused": False}

    def interleave(original, n, **kwargs):
        if pause_at == "put_item" and not state["paused"]:
            state["paused"] = True
            meanwhile()
            return original(**kwargs)
        result = original(**kwargs)
        if pause_at != "put_item" and not state["paused"]:
            state["paused"] = True
            meanwhile()
        return result

    def meanwhile():
        if late_point == "before_b":
            ingest(pipeline, "AAPL/late.csv", [(T0 + 200_000, "13", 2)])
        pipeline.run_aggregator()  # run B
        if late_point == "after_b":
            ingest(pipeline, "AAPL/late.csv", [(T0 + 200_000, "13", 2)])

    faults.wrap("dynamodb", pause_at, interleave)
    pipeline.run_aggregator()  # run A
    pipeline.run_aggregator()  # the next scheduled run takes whatever is left
    item = aggregate_item(pipeline, "AAPL", T0)
    assert (item["count"], item["close"], item["volume"]) == ({"N": "3"}, {"N": "13"}, {"N": "4"})
    assert pipeline.queue_depth("AggregationQueue") == 0 and pipeline.dead_letters() == 0
