"""Unit tests of the benchmark's billed-unit arithmetic (bench/costing.py, bench/meter.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is not installed

from bench import costing, workload
from bench.costing import Usage
from bench.meter import AwsMeter, EventRoute
from bench.prices import PRICES, QUOTED

KB = 1024


# --- SQS ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "billed"),
    [(0, 1), (1, 1), (64 * KB, 1), (64 * KB + 1, 2), (128 * KB, 2), (256 * KB, 4), (256 * KB + 1, 5)],
)
def test_sqs_bills_each_64kb_chunk_as_one_request(payload, billed):
    assert costing.sqs_billed_requests(payload) == billed


def test_sqs_payload_counts_body_and_message_attributes():
    attrs = {"fmt": {"DataType": "String", "StringValue": "csv"}}
    assert costing.sqs_message_payload_bytes("héllo", attrs) == 6 + 3 + 6 + 3


def test_negative_sizes_are_rejected():
    with pytest.raises(ValueError):
        costing.sqs_billed_requests(-1)
    with pytest.raises(ValueError):
        costing.dynamodb_write_units(-1)


# --- DynamoDB -------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "wru"), [(1, 1), (1024, 1), (1025, 2), (int(1.1 * 1024), 2), (4096, 4)])
def test_write_units_are_per_started_kilobyte(size, wru):
    assert costing.dynamodb_write_units(size) == wru


@pytest.mark.parametrize(
    ("size", "consistent", "rru"),
    [
        (0, True, 1.0),
        (100, True, 1.0),
        (100, False, 0.5),
        (4096, False, 0.5),
        (4097, False, 1.0),
        (4097, True, 2.0),
        (12 * KB, False, 1.5),
    ],
)
def test_read_units_are_per_4kb_and_halved_when_eventually_consistent(size, consistent, rru):
    assert costing.dynamodb_read_units(size, consistent=consistent) == rru


def test_item_size_follows_the_documented_rules():
    # "symbol" (6) + "AAPL" (4); "timestamp" (9) + 13 digits -> ceil(13/2)+1 = 8;
    # "price" (5) + "187.25" -> 5 significant digits -> 3+1 = 4; "ok" (2) + BOOL 1.
    item = {
        "symbol": {"S": "AAPL"},
        "timestamp": {"N": "1717421400123"},
        "price": {"N": "187.25"},
        "ok": {"BOOL": True},
    }
    assert costing.dynamodb_item_bytes(item) == 10 + 17 + 9 + 3


def test_number_size_trims_leading_and_trailing_zeroes():
    assert costing.dynamodb_item_bytes({"n": {"N": "1000000"}}) == 1 + 2  # one digit
    assert costing.dynamodb_item_bytes({"n": {"N": "0.00120"}}) == 1 + 2  # "12"
    assert costing.dynamodb_item_bytes({"n": {"N": "0"}}) == 1 + 2


def test_map_and_list_sizes_include_their_overhead():
    item = {"m": {"M": {"a": {"S": "xy"}}}, "l": {"L": [{"NULL": True}]}}
    # m: 1 + (3 + 1 + 2 + 1) ; l: 1 + (3 + 1 + 1)
    assert costing.dynamodb_item_bytes(item) == 8 + 6


def test_an_item_of_1_1_kb_costs_two_write_units():
    item = {"symbol": {"S": "AAPL"}, "blob": {"S": "x" * (1126 - 6 - 4 - 4)}}
    size = costing.dynamodb_item_bytes(item)
    assert size == 1126
    assert costing.dynamodb_write_units(size) == 2


# --- EventBridge ----------------------------------------------------------------------


def test_eventbridge_entry_size_follows_the_putevents_rule():
    entry = {
        "Source": "market-data.processor",
        "DetailType": "PointsStored",
        "Detail": '{"a":1}',
        "Resources": ["arn:x"],
        "Time": 1,
    }
    assert costing.eventbridge_entry_bytes(entry) == 14 + 21 + 12 + 7 + 5


@pytest.mark.parametrize(("size", "events"), [(10, 1), (64 * KB, 1), (64 * KB + 1, 2), (256 * KB, 4)])
def test_eventbridge_bills_each_64kb_chunk_as_one_event(size, events):
    assert costing.eventbridge_billed_events(size) == events


# --- Lambda, S3, Logs -----------------------------------------------------------------


def test_lambda_duration_rounds_up_to_the_millisecond():
    assert costing.lambda_billed_ms(1.0001) == 2
    assert costing.lambda_billed_ms(2.0) == 2
    assert costing.lambda_billed_ms(0) == 1


def test_lambda_gb_seconds_at_3072_mb():
    # 1,000 ms at 3 GB = 3 GB-s; 100.2 ms bills as 101 ms.
    assert costing.lambda_gb_seconds(1000, 3072) == pytest.approx(3.0)
    assert costing.lambda_gb_seconds(100.2, 3072) == pytest.approx(0.101 * 3)


def test_s3_request_tiers():
    assert costing.s3_tier("PutObject") == "tier1"
    assert costing.s3_tier("ListObjectsV2") == "tier1"
    assert costing.s3_tier("GetObject") == "tier2"
    assert costing.s3_tier("HeadObject") == "tier2"
    assert costing.s3_tier("DeleteObject") == "free"


def test_log_bytes_add_26_bytes_per_event():
    assert costing.log_ingested_bytes(["abc", "é"]) == 3 + 2 + 2 * 26


# --- Prices and the bill --------------------------------------------------------------


def test_price_table_matches_the_commonly_quoted_prices():
    for key, usd in QUOTED.items():
        assert PRICES[key].usd_per_unit == pytest.approx(usd), key
    for key, price in PRICES.items():
        assert price.source.startswith("https://aws.amazon.com/"), key


def test_the_bill_prices_each_service():
    u = Usage(
        sqs_billed_requests=2_000_000,
        ddb_wru=1_000_000,
        ddb_rru=2_000_000.0,
        events_billed=1_000_000,
        s3_tier1=1000,
        s3_tier2=1000,
        xray_traces=1_000_000,
    )
    u.lambda_invocations["f"] = 1_000_000
    u.lambda_gb_seconds["f"] = 1000.0
    u.log_bytes["f"] = 1024**3
    rows = {r["service"]: r["usd"] for r in u.service_rows()}
    assert rows["SQS"] == pytest.approx(0.80)
    assert rows["DynamoDB writes"] == pytest.approx(0.625)
    assert rows["DynamoDB reads"] == pytest.approx(0.25)
    assert rows["EventBridge events"] == pytest.approx(1.00)
    assert rows["S3 PUT/LIST"] == pytest.approx(0.005)
    assert rows["S3 GET/other"] == pytest.approx(0.0004)
    assert rows["Lambda requests"] == pytest.approx(0.20)
    assert rows["Lambda duration"] == pytest.approx(1000 * 0.0000133334)  # arm64
    assert rows["CloudWatch Logs"] == pytest.approx(0.50)
    assert rows["X-Ray"] == pytest.approx(5.00)
    assert u.total_usd() == pytest.approx(sum(rows.values()))


def test_floor_is_one_write_unit_per_item():
    assert costing.floor_usd(1_000_000, 0) == pytest.approx(0.625)
    assert costing.per_million(costing.floor_usd(100_000, 39_000), 100_000) == pytest.approx(0.625 * 1.39)


# --- The meter's conversion of API calls into billed units ----------------------------


class _Model:
    """The two attributes of a botocore OperationModel the meter reads."""

    def __init__(self, service, name):
        self.name = name
        self.service_model = type("S", (), {"service_id": _Sid(service), "metadata": {"protocol": "json"}})()


class _Sid(str):
    def hyphenize(self):
        return str(self)


def _call(meter, service, op, params, parsed):
    # botocore hands before-call the serialized request; JSON protocols carry a body.
    request_dict = {"body": json.dumps(params).encode()}
    meter._before_call(model=_Model(service, op), params=request_dict)
    meter._after_call(http_response=None, parsed=parsed, model=_Model(service, op))


def test_meter_bills_a_batch_send_on_its_total_payload():
    m = AwsMeter()
    entries = [{"Id": str(i), "MessageBody": "x" * (20 * KB)} for i in range(4)]  # 80 KB
    _call(m, "sqs", "SendMessageBatch", {"Entries": entries}, {})
    _call(m, "sqs", "DeleteMessageBatch", {"Entries": []}, {})
    assert m.usage.sqs_billed_requests == 2 + 1
    assert m.calls[("sqs", "SendMessageBatch")] == 1


def test_meter_skips_unprocessed_batch_writes_and_bills_each_item():
    m = AwsMeter()
    small = {"PutRequest": {"Item": {"symbol": {"S": "A"}, "timestamp": {"N": "1"}}}}
    big = {"PutRequest": {"Item": {"symbol": {"S": "B"}, "pad": {"S": "x" * 1500}}}}
    left = {"PutRequest": {"Item": {"symbol": {"S": "C"}, "timestamp": {"N": "2"}}}}
    _call(
        m,
        "dynamodb",
        "BatchWriteItem",
        {"RequestItems": {"t": [small, big, left]}},
        {"UnprocessedItems": {"t": [left]}},
    )
    assert m.usage.ddb_wru == 1 + 2


def test_meter_bills_query_reads_on_returned_bytes():
    m = AwsMeter()
    items = [{"symbol": {"S": "A"}, "pad": {"S": "x" * 3000}}] * 2  # ~6 KB -> 2 units
    _call(m, "dynamodb", "Query", {"ConsistentRead": False}, {"Items": items})
    assert m.usage.ddb_rru == 1.0


def test_meter_bills_batch_get_item_per_key_and_skips_unprocessed_keys():
    m = AwsMeter()
    keys = [{"symbol": {"S": s}, "timestamp": {"N": "1"}} for s in ("A", "B", "C")]
    found = {**keys[0], "version": {"N": "2"}}
    _call(
        m,
        "dynamodb",
        "BatchGetItem",
        {"RequestItems": {"t": {"Keys": keys, "ConsistentRead": False}}},
        {"Responses": {"t": [found]}, "UnprocessedKeys": {"t": {"Keys": [keys[2]]}}},
    )
    assert m.usage.ddb_rru == 0.5 + 0.5  # A found, B absent (still the minimum), C not read


def test_meter_bills_events_per_entry_and_the_rule_target_send():
    m = AwsMeter(event_routes=[EventRoute("src", "T")])
    entries = [
        {"Source": "src", "DetailType": "T", "Detail": "{}"},
        {"Source": "other", "DetailType": "T", "Detail": "x" * (70 * KB)},
    ]
    _call(m, "eventbridge", "PutEvents", {"Entries": entries}, {"Entries": [{"EventId": "1"}, {"EventId": "2"}]})
    assert m.usage.events_billed == 1 + 2
    assert m.usage.requests[("sqs", "SendMessage (EventBridge target)")] == 1
    assert m.usage.sqs_billed_requests == 1


def test_meter_models_an_invocation():
    m = AwsMeter(capture_logs=False, memory_mb=1024)
    with m.invocation("f"):
        _call(m, "sqs", "SendMessage", {"MessageBody": "x"}, {})
    inv = m.invocations[0]
    assert inv.aws_calls == 1
    assert inv.modeled_latency_ms == pytest.approx(10.0)
    assert m.usage.lambda_invocations["f"] == 1
    assert m.usage.xray_traces == 1
    assert m.usage.lambda_gb_seconds["f"] >= 0.010  # >= the 10 ms assumed latency at 1 GB


# --- The workload ---------------------------------------------------------------------


def test_workload_is_deterministic_and_even():
    a = workload.generate(1_000, 10, seed=7)
    assert a == workload.generate(1_000, 10, seed=7)
    assert a != workload.generate(1_000, 10, seed=8)
    per_symbol = {}
    for p in a:
        per_symbol[p.symbol] = per_symbol.get(p.symbol, 0) + 1
        assert workload.OPEN_MS <= p.timestamp < workload.OPEN_MS + workload.SESSION_MS
    assert sorted(per_symbol.values()) == [100] * 10
    assert len({(p.symbol, p.timestamp) for p in a}) == 1_000


def test_workload_files_alternate_csv_and_jsonl_and_hold_every_point():
    pts = workload.generate(2_000, 20)
    files = workload.split_files(pts)
    assert len(files) == 78  # 6.5 hours in 5-minute objects
    assert [f.fmt for f in files[:3]] == ["csv", "jsonl", "csv"]
    assert sum(f.points for f in files) == 2_000
    assert files[0].body.startswith(b"symbol,timestamp,price,volume\n")
