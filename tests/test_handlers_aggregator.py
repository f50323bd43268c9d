"""DataAggregator end to end on moto: touched windows -> Query -> aggregates + bar events."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from conftest import queue_bodies

from market_cfn.simulate import FakeLambdaContext, scheduled_event

W = 300_000
T0 = 1717421400000  # 2024-06-03T13:30:00Z, a window start


def csv(rows):
    return (
        "timestamp,price,volume\n" + "".join(f"{ts},{price},{'' if vol is None else vol}\n" for ts, price, vol in rows)
    ).encode()


def ingest(pipe, key, rows):
    pipe.put_object(key, csv(rows))
    pipe.deliver_s3_events()
    pipe.drain_processing_queue()


def aggregates(pipe):
    return {(a["symbol"], a["window_start"]): a for a in pipe.summary()["aggregates"]}


def watch_aggregate_events(pipe, pattern=None, name="watch"):
    """A test-only rule on the bus that copies BarsComputed events to a queue; read()
    returns their bars, flattened."""
    url = pipe.sqs.create_queue(QueueName=f"{name}-bars")["QueueUrl"]
    bus = pipe.physical["MarketEventBus"]["Name"]
    pattern = pattern or {"source": ["market-data.aggregator"], "detail-type": ["BarsComputed"]}
    pipe.events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps(pattern))
    pipe.events.put_targets(
        Rule=name,
        EventBusName=bus,
        Targets=[{"Id": "q", "Arn": f"arn:aws:sqs:us-east-1:123456789012:{name}-bars"}],
    )

    def read():
        return [bar for b in queue_bodies(pipe, url) for bar in json.loads(b)["detail"]["bars"]]

    return read


def test_aggregates_are_computed_stored_and_published_per_window(pipeline):
    read_events = watch_aggregate_events(pipeline)
    ingest(
        pipeline,
        "AAPL/a.csv",
        [
            (T0 + 1000, "10.50", 100),
            (T0, "10.00", None),  # earliest of the window: open; no volume
            (T0 + W - 1, "9.75", 300),  # latest: close
            (T0 + 60_000, "11.25", 0),
            (T0 + W, "12.00", 5),  # next window
        ],
    )
    totals = pipeline.run_aggregator()
    assert totals["windows"] == 2 and totals["deferred_windows"] == 0
    got = aggregates(pipeline)
    assert got[("AAPL", T0)] == {
        "symbol": "AAPL",
        "window_start": T0,
        "open": 10.0,
        "high": 11.25,
        "low": 9.75,
        "close": 9.75,
        "count": 4,
        "volume": 400,
        "vwap": 9.9375,
    }
    assert got[("AAPL", T0 + W)]["vwap"] == 12.0
    item = pipeline.ddb.get_item(
        TableName=pipeline.table, Key={"symbol": {"S": "AAPL#5m"}, "timestamp": {"N": str(T0)}}
    )["Item"]
    assert item["vwap"] == {"N": "9.9375"} and item["open"] == {"N": "10.00"}
    events = sorted(read_events(), key=lambda d: d["window_start"])
    assert [(e["symbol"], e["window_start"], e["close"]) for e in events] == [
        ("AAPL", T0, 9.75),
        ("AAPL", T0 + W, 12.0),
    ]
    assert {e["version"] for e in events} == {1}
    # the aggregator reads with Query (consistent), never Scan: one Query for the two
    # adjacent windows; the two bars travel in one event
    ops = [c.operation for c in pipeline.calls if c.actor == "DataAggregatorFunction"]
    assert "Scan" not in ops and ops.count("Query") == 1 and ops.count("PutEvents") == 1


def test_window_without_volume_has_null_vwap(pipeline):
    ingest(pipeline, "MSFT/a.csv", [(T0, "415.1", None), (T0 + 1, "415.2", 0)])
    pipeline.run_aggregator()
    agg = aggregates(pipeline)[("MSFT", T0)]
    assert agg["volume"] == 0 and agg["vwap"] is None
    item = pipeline.ddb.get_item(
        TableName=pipeline.table, Key={"symbol": {"S": "MSFT#5m"}, "timestamp": {"N": str(T0)}}
    )["Item"]
    assert "vwap" not in item


def test_backfill_of_2019_prices_gets_2019_windows(pipeline):
    t2019 = int(datetime(2019, 1, 2, 14, 32, 10, tzinfo=UTC).timestamp() * 1000)
    ingest(pipeline, "IBM/2019.csv", [(t2019, "120.5", 10), (t2019 + 60_000, "121", 30)])
    pipeline.run_aggregator()
    [(key, agg)] = aggregates(pipeline).items()
    assert key == ("IBM", int(datetime(2019, 1, 2, 14, 30, tzinfo=UTC).timestamp() * 1000))
    assert agg["vwap"] == 120.875


def test_late_point_recomputes_its_window(pipeline):
    ingest(pipeline, "AAPL/a.csv", [(T0, "10", 1), (T0 + 1000, "11", 1)])
    pipeline.run_aggregator()
    assert aggregates(pipeline)[("AAPL", T0)]["close"] == 11
    # a point of the same, already aggregated window arrives later in another file
    ingest(pipeline, "AAPL/late.csv", [(T0 + 200_000, "13", 2)])
    pipeline.run_aggregator()
    agg = aggregates(pipeline)[("AAPL", T0)]
    assert (agg["count"], agg["close"], agg["high"], agg["volume"]) == (3, 13, 13, 4)


def test_duplicate_delivery_changes_nothing_but_the_version(pipeline):
    pipeline.put_object("AAPL/a.csv", csv([(T0, "10", 1), (T0 + 1000, "11", 2)]))
    event = json.loads(json.dumps(pipeline.pending_s3_events[0]))
    pipeline.deliver_s3_events()
    pipeline.drain_processing_queue()
    pipeline.run_aggregator()

    def state():
        # the TTL (expires) counts from each write, so a rewrite a second later may differ
        items = [{k: v for k, v in i.items() if k not in ("version", "expires")} for i in pipeline.table_items()]
        return sorted(items, key=str), [i.get("version") for i in pipeline.table_items() if "#" in i["symbol"]]

    once, versions = state()
    assert versions == [1]
    # the same S3 event again: same messages, same writes, same PointsStored pairs
    pipeline.invoke("DataIngestionFunction", event)
    pipeline.drain_processing_queue()
    pipeline.run_aggregator()
    again, versions = state()
    assert again == once and versions == [2]


def test_unfinished_window_is_deferred_until_it_ends(pipeline):
    now = datetime.now(UTC)
    now_ms = int(now.timestamp() * 1000)
    current = now_ms - now_ms % W
    ingest(pipeline, "AAPL/live.csv", [(current, "10", 1)])
    totals = pipeline.run_aggregator(now=now)
    assert totals["windows"] == 0 and totals["deferred_windows"] == 1
    assert aggregates(pipeline) == {}
    sends = [c for c in pipeline.calls if c.actor == "DataAggregatorFunction" and c.operation == "SendMessage"]
    assert len(sends) == 1
    attrs = pipeline.sqs.get_queue_attributes(
        QueueUrl=pipeline.queue_urls["AggregationQueue"],
        AttributeNames=["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessages"],
    )["Attributes"]
    assert attrs == {"ApproximateNumberOfMessagesDelayed": "1", "ApproximateNumberOfMessages": "0"}


def test_scheduled_time_not_the_clock_decides_what_is_finished(pipeline):
    ingest(pipeline, "AAPL/a.csv", [(T0, "10", 1)])
    totals = pipeline.run_aggregator(now=datetime.fromtimestamp((T0 + 1000) / 1000, UTC))
    assert totals["deferred_windows"] == 1 and totals["windows"] == 0


def test_stops_receiving_before_the_deadline(pipeline, monkeypatch):
    ingest(pipeline, "AAPL/a.csv", [(T0, "10", 1)])
    monkeypatch.setattr(pipeline.handler_module("DataAggregatorFunction"), "RECEIVE_WAIT_SECONDS", 0)
    # 59 s left: less than the 60 s safety margin, so nothing is received
    context = FakeLambdaContext(function_name="DataAggregator-dev", timeout_ms=59_000)
    totals = pipeline.invoke("DataAggregatorFunction", scheduled_event(datetime.now(UTC)), context=context)
    assert totals["messages"] == 0
    assert not [c for c in pipeline.calls if c.actor == "DataAggregatorFunction" and c.operation == "ReceiveMessage"]
    assert pipeline.queue_depth("AggregationQueue") == 1  # still there for the next run


def test_rounds_end_when_time_runs_out(pipeline, monkeypatch):
    module = pipeline.handler_module("DataAggregatorFunction")
    monkeypatch.setattr(module, "ROUND_MESSAGES", 1)
    monkeypatch.setattr(module, "RECEIVE_WAIT_SECONDS", 0)
    for i in range(3):  # three files -> three PointsStored messages
        ingest(pipeline, f"S{i}/a.csv", [(T0, "10", 1)])

    class Dwindling(FakeLambdaContext):
        """Plenty of time for the first round, then less than the safety margin."""

        checks = 0

        def get_remaining_time_in_millis(self):
            Dwindling.checks += 1
            return 300_000 if Dwindling.checks <= 2 else 30_000

    context = Dwindling(function_name="DataAggregator-dev")
    totals = pipeline.invoke("DataAggregatorFunction", scheduled_event(datetime.now(UTC)), context=context)
    assert (totals["rounds"], totals["messages"], totals["windows"]) == (1, 1, 1)
    assert pipeline.queue_depth("AggregationQueue") == 2  # left for the next run


def test_unreadable_aggregation_message_goes_to_its_dlq(pipeline):
    pipeline.sqs.send_message(QueueUrl=pipeline.queue_urls["AggregationQueue"], MessageBody="garbage")
    for run in range(6):
        pipeline.run_aggregator()
        assert pipeline.queue_depth("AggregationDLQ") == (1 if run == 5 else 0)
        assert pipeline.expire_visibility_timeouts("AggregationQueue") == (0 if run == 5 else 1)
    assert pipeline.queue_depth("AggregationQueue") == 0


def test_many_windows_share_one_event(pipeline, faults):
    sizes = []

    def spy(original, n, **kwargs):
        sizes.append([len(e["Detail"]) for e in kwargs["Entries"]])
        return original(**kwargs)

    ingest(pipeline, "AAPL/day.csv", [(T0 + i * W, "10", 1) for i in range(23)])
    faults.wrap("events", "put_events", spy)
    totals = pipeline.run_aggregator()
    assert totals["windows"] == 23
    assert len(sizes) == 1 and len(sizes[0]) == 1  # 23 bars: one event, one PutEvents call
    writes = [c for c in pipeline.calls if c.actor == "DataAggregatorFunction" and c.operation == "PutItem"]
    assert len(writes) == 23  # one conditional PutItem per aggregate


def test_adjacent_touched_windows_share_a_query_and_gaps_are_never_read():
    from handlers.aggregate_store import MAX_WINDOWS_PER_QUERY, query_runs

    pairs = [("A", T0 + i * W) for i in range(MAX_WINDOWS_PER_QUERY + 2)] + [("A", T0 + 20 * W), ("B", T0)]
    assert query_runs(pairs) == [
        ("A", T0, MAX_WINDOWS_PER_QUERY),
        ("A", T0 + MAX_WINDOWS_PER_QUERY * W, 2),
        ("A", T0 + 20 * W, 1),  # not merged across the untouched windows in between
        ("B", T0, 1),
    ]


def test_a_run_of_windows_is_split_correctly(pipeline):
    # points in windows 0, 1 and 3; window 2 is untouched and not read
    ingest(pipeline, "AAPL/a.csv", [(T0 + 1, "1", 1), (T0 + W + 1, "2", 2), (T0 + 3 * W + 1, "4", 4)])
    pipeline.run_aggregator()
    got = aggregates(pipeline)
    assert sorted(got) == [("AAPL", T0), ("AAPL", T0 + W), ("AAPL", T0 + 3 * W)]
    assert [got[k]["close"] for k in sorted(got)] == [1, 2, 4]
    queries = [c for c in pipeline.calls if c.actor == "DataAggregatorFunction" and c.operation == "Query"]
    assert len(queries) == 2  # windows 0-1 together, window 3 alone


def test_sample_scheduled_event_time_splits_finished_from_unfinished(pipeline, event, monkeypatch):
    # the sample schedule fired at 2024-06-03T21:05:00Z
    evt = event("scheduled")
    t2100 = 1717448400000  # 21:00:00Z: window [21:00, 21:05) has ended at 21:05
    t2105 = t2100 + W  # window [21:05, 21:10) has not
    ingest(pipeline, "AAPL/a.csv", [(t2100 + 10_000, "10", 1), (t2105 + 1, "11", 1)])
    monkeypatch.setattr(pipeline.handler_module("DataAggregatorFunction"), "RECEIVE_WAIT_SECONDS", 0)
    totals = pipeline.invoke("DataAggregatorFunction", evt)
    assert (totals["windows"], totals["deferred_windows"]) == (1, 1)
    assert list(aggregates(pipeline)) == [("AAPL", t2100)]


def test_concurrent_window_queries_keep_order_and_isolate_a_failed_query(monkeypatch):
    """recompute() runs up to QUERY_CONCURRENCY Queries at once: the aggregates are
    exactly what a serial run gives, and a failed Query fails only its own windows."""
    import threading
    from decimal import Decimal

    import handlers.aggregate_store as agg

    threads = set()

    def fake_query(table, symbol, start, end):
        threads.add(threading.get_ident())
        if symbol == "FAIL":
            raise RuntimeError("Query failed")
        for ts in range(start, end, W):  # one point per window, priced by symbol and time
            yield ts + 1000, Decimal(len(symbol)) + Decimal(ts - T0) / W, 10

    monkeypatch.setattr(agg, "query_points", fake_query)
    monkeypatch.setattr(agg.common, "client", lambda service: None)
    # 30 symbols x 2 separate windows (a gap between them): 60 runs, more than the pool.
    pairs = [(f"S{i:02d}", T0 + k * 2 * W) for i in range(30) for k in range(2)]
    parallel, failed = agg.recompute("table", pairs + [("FAIL", T0)])
    monkeypatch.setattr(agg, "QUERY_CONCURRENCY", 1)
    serial, _ = agg.recompute("table", pairs)
    assert parallel == serial
    assert sorted(parallel) == sorted(pairs)
    assert len(threads) > 2  # the parallel run used worker threads
    assert list(failed) == [("FAIL", T0)] and "Query failed" in str(failed[("FAIL", T0)])
