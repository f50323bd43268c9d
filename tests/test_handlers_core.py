"""Unit tests of the pure core: parsing, validation, wire formats, aggregation math."""

from __future__ import annotations

import gzip
import io
import json
from decimal import Decimal

import pytest

from handlers.core.aggregation import compute_aggregate
from handlers.core.ingest import Rejection, Tally, validate_records
from handlers.core.parsing import MAX_RECORD_BYTES, detect_format, iter_raw_records
from handlers.core.points import Point, Rejected, symbol_from_key, validate
from handlers.core.wire import (
    MAX_BATCH_BYTES,
    MessagePacker,
    WireFormatError,
    decode_message,
    decode_windows,
    encode_windows_details,
    window_start,
)

NOW_MS = 1_717_500_000_000  # 2024-06-04T11:20:00Z


def run(data: bytes, key: str = "feed.jsonl", content_type: str | None = None):
    tally = Tally()
    out = list(
        validate_records(
            iter_raw_records(io.BytesIO(data), key=key, content_type=content_type),
            source=key,
            now_ms=NOW_MS,
            tally=tally,
            default_symbol=symbol_from_key(key),
        )
    )
    assert tally.records_in == tally.accepted + tally.rejected == len(out)
    points = [o for o in out if isinstance(o, Point)]
    rejections = [o for o in out if isinstance(o, Rejection)]
    return points, rejections


# --- every rejection class, table-driven ------------------------------------------------
REJECTIONS = [
    # (name, key, content, expected position, expected reason fragment)
    ("missing price", "x.jsonl", b'{"symbol":"AAPL","timestamp":1717236000}', "line 1", "missing price"),
    ("missing symbol", "x.jsonl", b'{"price":1,"timestamp":1717236000}', "line 1", "missing symbol"),
    ("missing timestamp", "x.jsonl", b'{"symbol":"A","price":1}', "line 1", "missing timestamp"),
    (
        "price wrong type",
        "x.jsonl",
        b'{"symbol":"A","price":"1.5","timestamp":1717236000}',
        "line 1",
        "price must be a number, got string",
    ),
    ("price boolean", "x.jsonl", b'{"symbol":"A","price":true,"timestamp":1717236000}', "line 1", "got boolean"),
    ("price NaN", "x.jsonl", b'{"symbol":"A","price":NaN,"timestamp":1717236000}', "line 1", "must be finite"),
    (
        "price Infinity",
        "x.jsonl",
        b'{"symbol":"A","price":Infinity,"timestamp":1717236000}',
        "line 1",
        "must be finite",
    ),
    ("csv price NaN", "x.csv", b"symbol,price,timestamp\nA,nan,1717236000\n", "line 2", "must be finite"),
    ("negative price", "x.jsonl", b'{"symbol":"A","price":-1.5,"timestamp":1717236000}', "line 1", "price must be > 0"),
    ("zero price", "x.csv", b"symbol,price,timestamp\nA,0,1717236000\n", "line 2", "price must be > 0"),
    (
        "price too precise",
        "x.jsonl",
        b'{"symbol":"A","price":1.0000000000000000000000000000000000000001,"timestamp":1717236000}',
        "line 1",
        "more than 38 significant digits",
    ),
    ("csv price text", "x.csv", b"symbol,price,timestamp\nA,12a,1717236000\n", "line 2", "price is not a number"),
    ("bad symbol chars", "x.jsonl", b'{"symbol":"AA PL","price":1,"timestamp":1717236000}', "line 1", "invalid symbol"),
    (
        "symbol too long",
        "x.jsonl",
        b'{"symbol":"ABCDEFGHIJKLM","price":1,"timestamp":1717236000}',
        "line 1",
        "invalid symbol",
    ),
    (
        "symbol number",
        "x.jsonl",
        b'{"symbol":42,"price":1,"timestamp":1717236000}',
        "line 1",
        "symbol must be a string",
    ),
    (
        "unparsable timestamp",
        "x.jsonl",
        b'{"symbol":"A","price":1,"timestamp":"yesterday"}',
        "line 1",
        "unparsable timestamp",
    ),
    ("timestamp object", "x.jsonl", b'{"symbol":"A","price":1,"timestamp":{}}', "line 1", "timestamp must be"),
    (
        "future timestamp",
        "x.jsonl",
        b'{"symbol":"A","price":1,"timestamp":"2099-01-01T00:00:00Z"}',
        "line 1",
        "in the future",
    ),
    ("ancient timestamp", "x.jsonl", b'{"symbol":"A","price":1,"timestamp":"1850-01-01"}', "line 1", "before 1900"),
    (
        "negative volume",
        "x.jsonl",
        b'{"symbol":"A","price":1,"timestamp":1717236000,"volume":-3}',
        "line 1",
        "volume must be an integer >= 0",
    ),
    (
        "fractional volume",
        "x.csv",
        b"symbol,price,timestamp,volume\nA,1,1717236000,2.5\n",
        "line 2",
        "volume must be an integer",
    ),
    (
        "volume wrong type",
        "x.jsonl",
        b'{"symbol":"A","price":1,"timestamp":1717236000,"volume":"7"}',
        "line 1",
        "volume must be a number",
    ),
    ("unparsable line", "x.jsonl", b'{"symbol":"A","price":1,', "line 1", "invalid JSON"),
    ("not an object", "x.jsonl", b"[1,2,3]", "line 1", "record must be a JSON object"),
    (
        "wrong encoding jsonl",
        "x.jsonl",
        b'{"symbol":"A","price":1,"timestamp":1717236000,"note":"caf\xe9"}',
        "line 1",
        "not valid UTF-8",
    ),
    ("wrong encoding csv", "x.csv", b"symbol,price,timestamp\nA\xff,1,1717236000\n", "line 2", "not valid UTF-8"),
    (
        "csv field count",
        "x.csv",
        b"symbol,price,timestamp\nA,1,1717236000,extra\n",
        "line 2",
        "4 fields, the header has 3",
    ),
    (
        "json element",
        "x.json",
        b'[{"symbol":"A","price":1,"timestamp":1717236000},{"symbol":"A","price":0,"timestamp":1717236001}]',
        "index 1",
        "price must be > 0",
    ),
    ("json wrapper", "x.json", b'{"points":[{"symbol":"A","price":1}]}', "points[0]", "missing timestamp"),
    ("json syntax", "x.json", b'[{"symbol":"A","price":1,"timestamp":1717236000}, {oops}]', "index 1", "invalid JSON"),
    ("overlong line", "x.jsonl", b"{" + b" " * (MAX_RECORD_BYTES + 10) + b"}\n", "line 1", "longer than"),
    (
        "duplicate",
        "x.jsonl",
        b'{"symbol":"A","price":1,"timestamp":1717236000}\n{"symbol":"A","price":1,"timestamp":1717236000000}',
        "line 2",
        "duplicate of line 1",
    ),
    (
        "conflict",
        "x.jsonl",
        b'{"symbol":"A","price":1,"timestamp":1717236000}\n{"symbol":"A","price":2,"timestamp":1717236000}',
        "line 2",
        "conflicts with line 1",
    ),
]


@pytest.mark.parametrize("name,key,content,position,reason", REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_each_rejection_class_names_reason_and_position(name, key, content, position, reason):
    points, rejections = run(content, key)
    assert len(rejections) == 1, rejections
    assert rejections[0].position == position
    assert reason in rejections[0].reason
    assert rejections[0].source == key


def test_valid_records_survive_next_to_bad_ones():
    data = (
        b'{"symbol":"A","price":1,"timestamp":1717236000}\ngarbage\n\n{"symbol":"B","price":2,"timestamp":1717236000}\n'
    )
    points, rejections = run(data)
    assert [p.symbol for p in points] == ["A", "B"]
    assert [r.position for r in rejections] == ["line 2"]


# --- normalization ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw,expected",
    [
        (1717236000, 1717236000000),  # epoch seconds
        (1717236000.5, 1717236000500),
        (1717236000123, 1717236000123),  # epoch milliseconds
        ("1717236000", 1717236000000),
        ("2024-06-01T10:00:00Z", 1717236000000),
        ("2024-06-01T12:00:00+02:00", 1717236000000),
        ("2024-06-01T10:00:00", 1717236000000),  # no offset = UTC
        ("2024-06-01T10:00:00.123456Z", 1717236000123),
        ("2019-01-02T14:30:00Z", 1546439400000),
    ],
)
def test_timestamps_normalize_to_epoch_ms_utc(raw, expected):
    point = validate({"symbol": "a", "price": 1, "timestamp": raw}, now_ms=NOW_MS)
    assert point.timestamp == expected


def test_fields_are_normalized_and_unknown_fields_dropped():
    point = validate(
        {"Symbol": " brk.b ", "PRICE": Decimal("410.50"), "timestamp": 1717236000, "volume": 7, "exchange": "X"},
        now_ms=NOW_MS,
    )
    assert point == Point("BRK.B", 1717236000000, Decimal("410.50"), 7)


def test_symbol_comes_from_the_first_key_segment_only_when_valid():
    assert symbol_from_key("aapl/2024-06-01.csv") == "AAPL"
    assert symbol_from_key("2024-06-01.csv") is None
    assert symbol_from_key("in coming/x.csv") is None
    points, _ = run(b"price,timestamp\n1,1717236000\n", "AAPL/2024-06-01.csv")
    assert points[0].symbol == "AAPL"
    # a record's own symbol wins over the key
    points, _ = run(b"symbol,price,timestamp\nmsft,1,1717236000\n", "AAPL/2024-06-01.csv")
    assert points[0].symbol == "MSFT"


def test_receipt_time_fills_a_missing_timestamp():
    point = validate({"symbol": "A", "price": 1}, now_ms=NOW_MS, default_timestamp_ms=1717236000999)
    assert point.timestamp == 1717236000999


def test_rejected_is_a_value_error_with_one_line():
    with pytest.raises(Rejected) as info:
        validate({"symbol": "A", "price": "x" * 500, "timestamp": 1}, now_ms=NOW_MS, text_fields=True)
    assert "\n" not in str(info.value) and len(str(info.value)) < 120


# --- formats ----------------------------------------------------------------------------
ROWS = [{"symbol": "A", "price": 1.5, "timestamp": 1717236000 + i, "volume": i} for i in range(5)]
JSONL = "\n".join(json.dumps(r) for r in ROWS).encode()
CSV = ("symbol,price,timestamp,volume\n" + "".join(f"A,1.5,{1717236000 + i},{i}\n" for i in range(5))).encode()


@pytest.mark.parametrize(
    "key,data",
    [
        ("x.jsonl", JSONL),
        ("x.ndjson", JSONL),
        ("x.json", json.dumps(ROWS).encode()),
        ("x.json", json.dumps({"points": ROWS}).encode()),
        ("x.json", JSONL),  # JSON Lines named .json: a sequence of documents
        ("x.csv", CSV),
        ("x.csv", b"\xef\xbb\xbf" + CSV.replace(b"\n", b"\r\n")),  # BOM, CRLF
        ("x.jsonl.gz", gzip.compress(JSONL)),
        ("x.csv.gz", gzip.compress(CSV)),
        ("x.json.gz", gzip.compress(json.dumps(ROWS).encode())),
        ("noext", gzip.compress(CSV)),  # gzip by magic bytes, CSV by sniffing
    ],
)
def test_every_format_yields_the_same_points(key, data):
    points, rejections = run(data, key)
    assert rejections == []
    assert [(p.timestamp, p.price, p.volume) for p in points] == [
        (1717236000000 + 1000 * i, Decimal("1.5"), i) for i in range(5)
    ]


def test_content_type_decides_when_the_extension_does_not():
    assert detect_format("feed", "text/csv", b"{") == "csv"
    assert detect_format("feed", "application/x-ndjson", b"") == "jsonl"
    assert detect_format("feed.csv", "application/json", b"{") == "csv"  # extension first
    assert detect_format("feed", None, b"  [") == "json"


def test_truncated_gzip_keeps_what_was_read_and_rejects_the_rest():
    big = b"".join(
        json.dumps({"symbol": "A", "price": 1 + i / 100, "timestamp": 1717236000 + i}).encode() + b"\n"
        for i in range(20000)
    )
    data = gzip.compress(big)[:40_000]
    points, rejections = run(data, "x.jsonl.gz")
    assert 0 < len(points) < 20000
    assert len(rejections) == 1 and "corrupt gzip data" in rejections[0].reason


def test_large_json_array_is_streamed_across_read_chunks():
    rows = [{"symbol": "A", "price": 100 + i, "timestamp": 1717236000 + i} for i in range(20000)]
    points, rejections = run(json.dumps(rows).encode(), "x.json")
    assert len(points) == 20000 and not rejections
    assert points[-1].price == Decimal(20099)


class _Trickle:
    """A stream that returns `step` bytes a read, so a read chunk ends everywhere once."""

    def __init__(self, data: bytes, step: int) -> None:
        self.data, self.step, self.pos = data, step, 0

    def read(self, n: int) -> bytes:
        chunk = self.data[self.pos : self.pos + min(n, self.step)]
        self.pos += len(chunk)
        return chunk


def test_a_number_cut_by_the_end_of_a_read_chunk_is_read_whole():
    # A top-level object is read key by key: "12." at a chunk's end decoded as 12, and the
    # "." then ended the document ("expected ',' or '}'"), losing every later record.
    doc = b" " * 512 + (  # past the 512 bytes the format detection reads ahead
        b'{"symbol":"A","price":12.5,"timestamp":1717421400,"volume":3}\n'
        b'{"symbol":"B","price":1e2,"timestamp":1.7174214E+9}\n'
        b'{"feed":"f","n":-1.5e-3,"points":[{"symbol":"C","price":0.25,"timestamp":1717421401}]}\n'
        b'{"symbol":"D","price":2.5,"timestamp":1717421402}7.25 [1.5e+2,2.75]'
    )
    whole = [(r.position, r.value, r.error) for r in iter_raw_records(io.BytesIO(doc), key="x.json")]
    assert len(whole) == 7 and all(error is None for _, _, error in whole)
    for step in (1, 2, 3, 5):
        trickled = [(r.position, r.value, r.error) for r in iter_raw_records(_Trickle(doc, step), key="x.json")]
        assert trickled == whole, step
    # 100,000 points as one JSON object a line in a .json object: a chunk ends after "NNN." somewhere
    rows = b"".join(b'{"symbol":"A","price":%d.25,"timestamp":%d}\n' % (i, 1717236000 + i) for i in range(100_000))
    points, rejections = run(rows, "x.json")
    assert len(points) == 100_000 and not rejections


# --- wire formats -----------------------------------------------------------------------
def _points(n: int, symbols=("AAPL", "MSFT", "BRK.B")) -> list[Point]:
    return [
        Point(symbols[i % len(symbols)], 1717236000000 + i, Decimal("189.1234"), i if i % 2 else None) for i in range(n)
    ]


def test_packer_round_trips_and_respects_every_limit():
    packer = MessagePacker(max_message_bytes=2000, max_batch_bytes=5000)
    batches = []
    points = _points(1000)
    for p in points:
        batches += packer.add(p)
    batches += packer.flush()
    decoded = [q for batch in batches for body in batch for q in decode_message(body)]
    assert sorted(decoded) == sorted(points)
    for batch in batches:
        assert 1 <= len(batch) <= 10
        assert sum(len(b.encode()) for b in batch) <= 5000
        assert all(len(b.encode()) <= 2000 for b in batch)


def test_default_packing_fills_messages_close_to_one_mib():
    packer = MessagePacker()
    batches = []
    for p in _points(100_000):
        batches += packer.add(p)
    batches += packer.flush()
    sizes = [len(b) for batch in batches for b in batch]
    assert all(s <= MAX_BATCH_BYTES for s in sizes)
    assert sizes[0] > MAX_BATCH_BYTES - 100  # full, not one point per message
    assert len(sizes) == 3


@pytest.mark.parametrize(
    "body",
    [
        "nope",
        '{"v":2,"p":{}}',
        '{"v":1}',
        '{"v":1,"p":{"A":[[1]]}}',
        '{"v":1,"p":{"A":[["x",1]]}}',
        '{"v":1,"p":{"A":[[1,-2]]}}',
        '{"v":1,"p":{"a b":[[1,2]]}}',
        '{"v":1,"p":{"A":[[1,2,-1]]}}',
    ],
)
def test_unreadable_message_bodies_raise(body):
    with pytest.raises(WireFormatError):
        decode_message(body)


def test_window_details_split_and_decode_both_body_shapes():
    windows = [(f"S{i}", 1717236000000) for i in range(3000)]
    details = encode_windows_details(windows, 3000, max_detail_bytes=10_000)
    assert len(details) > 1 and all(len(d) <= 10_100 for d in details)
    decoded = [w for d in details for w in decode_windows(d)]
    assert decoded == windows
    envelope = json.dumps({"detail-type": "PointsStored", "detail": json.loads(details[0])})
    assert decode_windows(envelope) == decode_windows(details[0])


def test_windows_are_utc_five_minute_floors_also_before_1970():
    assert window_start(1717236299999, 300_000) == 1717236000000
    assert window_start(1717236300000, 300_000) == 1717236300000
    assert window_start(-1, 300_000) == -300_000


# --- aggregation math -------------------------------------------------------------------
def test_aggregate_ohlc_by_time_volume_and_vwap():
    start = 1717236000000
    pts = [
        (start + 120_000, Decimal("10.5"), 100),
        (start, Decimal("10.0"), None),  # earliest: open, volume absent = 0
        (start + 299_999, Decimal("9.75"), 300),  # latest: close
        (start + 60_000, Decimal("11.25"), 0),
    ]
    agg = compute_aggregate("A", start, 300_000, pts)
    assert agg == {
        "symbol": "A",
        "window_start": start,
        "open": Decimal("10.0"),
        "high": Decimal("11.25"),
        "low": Decimal("9.75"),
        "close": Decimal("9.75"),
        "count": 4,
        "volume": 400,
        "vwap": Decimal("9.9375"),  # (10.5*100 + 9.75*300) / 400
    }


def test_vwap_is_null_without_volume_and_rounded_to_12_digits():
    start = 0
    assert compute_aggregate("A", start, 300_000, [(1, Decimal(5), None)])["vwap"] is None
    agg = compute_aggregate("A", start, 300_000, [(1, Decimal(1), 1), (2, Decimal(2), 2)])
    assert agg["vwap"] == Decimal("1.66666666667")
    assert compute_aggregate("A", start, 300_000, []) is None
    with pytest.raises(ValueError):
        compute_aggregate("A", start, 300_000, [(300_000, Decimal(1), 1)])


def test_a_large_jsonl_object_parses_completely():
    """Every record of a 50,000-line object comes out (throughput is bench/run.py's job)."""
    data = b"".join(
        json.dumps(
            {"symbol": "AAPL", "price": 189.5 + (i % 100) / 100, "timestamp": 1717236000000 + i, "volume": i}
        ).encode()
        + b"\n"
        for i in range(50_000)
    )
    points, _ = run(data)
    assert len(points) == 50_000
    assert [p.timestamp for p in points[:2]] == [1717236000000, 1717236000001]
