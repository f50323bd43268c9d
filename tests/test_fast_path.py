"""The fast path (handlers.core.fast) against its oracle, the reference path, on clean and dirty input.

The reference path is `validate_records(iter_raw_records(...))` (handlers.core.parsing /
points / ingest): the general parsers and the full validation rules. The fast path must
give the same points (same Decimal text, so the same queue message bodies), the same
rejections (positions and reasons), in the same order, with the same tally.
"""

from __future__ import annotations

import gzip
import io
import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_handlers_core import REJECTIONS
from test_ingestion_contract import BAD_ELEMENTS, SAME_ON_BOTH_PATHS

from bench import workload
from handlers.core.fast import ingest_records
from handlers.core.ingest import Rejection, Tally, validate_records
from handlers.core.parsing import MAX_RECORD_BYTES, iter_raw_records
from handlers.core.points import Point, symbol_from_key
from handlers.core.wire import MessagePacker

NOW_MS = 1_717_500_000_000
SETTINGS = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _shown(items):
    return [("P", i.symbol, i.timestamp, str(i.price), i.volume) if isinstance(i, Point) else ("R", *i) for i in items]


def _bodies(items):
    packer = MessagePacker(max_message_bytes=2_000, max_batch_bytes=20_000)
    batches = [b for i in items if isinstance(i, Point) for b in packer.add(i)] + packer.flush()
    return batches


def _packed(items):
    """What DataIngestion sends: MessagePacker.add_all over the fast path's items."""
    packer = MessagePacker(max_message_bytes=2_000, max_batch_bytes=20_000)
    batches: list = []
    others = packer.add_all(items[:7], batches.append) + packer.add_all(items[7:], batches.append)
    assert others == [i for i in items if isinstance(i, Rejection)]
    return batches + packer.flush()


def assert_same(
    data: bytes,
    key: str,
    content_type: str | None = None,
    *,
    max_points: int | None = None,
    max_gunzip_bytes: int | None = None,
) -> list:
    default = symbol_from_key(key)
    ref_tally, fast_tally = Tally(), Tally()
    reference = list(
        validate_records(
            iter_raw_records(io.BytesIO(data), key=key, content_type=content_type, max_gunzip_bytes=max_gunzip_bytes),
            source=key,
            now_ms=NOW_MS,
            tally=ref_tally,
            default_symbol=default,
            max_points=max_points,
        )
    )
    fast = list(
        ingest_records(
            io.BytesIO(data),
            key=key,
            content_type=content_type,
            source=key,
            now_ms=NOW_MS,
            tally=fast_tally,
            default_symbol=default,
            max_gunzip_bytes=max_gunzip_bytes,
            max_points=max_points,
        )
    )
    assert _shown(fast) == _shown(reference)
    assert _packed(fast) == _bodies(fast) == _bodies(reference)
    assert (fast_tally.records_in, fast_tally.accepted, fast_tally.rejected) == (
        ref_tally.records_in,
        ref_tally.accepted,
        ref_tally.rejected,
    )
    assert fast_tally.records_in == fast_tally.accepted + fast_tally.rejected
    return reference


def test_clean_workload_in_both_formats():
    points = workload.generate(3_000, 40)
    for key, data in (("day/feed.csv", workload.to_csv(points)), ("day/feed.jsonl", workload.to_jsonl(points))):
        out = assert_same(data, key)
        assert sum(isinstance(o, Point) for o in out) == 3_000
        assert_same(gzip.compress(data), key + ".gz")


def test_every_documented_rejection_class():
    for _name, key, content, _position, _reason in REJECTIONS:
        assert_same(content, key)
        assert_same(content + b"\n" + content, "AAPL/" + key)


def test_damaged_and_hostile_documents():
    for data in list(BAD_ELEMENTS.values()) + list(SAME_ON_BOTH_PATHS.values()):
        for key in ("x.json", "x.jsonl", "AAPL/x.csv"):
            assert_same(data, key)
            assert_same(data + b"\n" + data, key)
    lines = workload.to_jsonl(workload.generate(5_000, 10))
    packed = gzip.compress(lines)
    for cut in (1_000, len(packed) // 2, len(packed) - 3):
        assert_same(packed[:cut], "x.jsonl.gz")
    broken = bytearray(packed)
    broken[len(broken) // 3 : len(broken) // 3 + 8] = b"\xff" * 8
    assert_same(bytes(broken), "x.jsonl.gz")
    csv_packed = gzip.compress(workload.to_csv(workload.generate(5_000, 10)))
    assert_same(csv_packed[: len(csv_packed) // 2], "x.csv.gz")


# --- generated dirty input -------------------------------------------------------------------
JSON_LINES = [
    b'{"symbol":"AAPL","price":189.25,"timestamp":1717421400,"volume":100}',
    b'{"symbol": "aapl", "price": 189.250, "timestamp": 1717421400001}',
    b'{"symbol":"MSFT","price":415,"timestamp":1717421401,"volume":0}',
    b'{"price":1.5,"timestamp":1717421402}',
    b'{"symbol":"","price":1.5,"timestamp":1717421403,"volume":null}',
    b'{"Symbol":"A","PRICE":2,"timestamp":1717421404}',
    b'{"symbol":"A","price":2,"timestamp":1717421404,"extra":{"x":[1]}}',
    b'{"symbol":"A","price":0.30000000000000004,"timestamp":"2024-06-03T13:30:00z"}',
    b'{"symbol":"A","price":0.000000000000000001,"timestamp":1717421405}',
    b'{"symbol":"A","price":1.000000000000000000000,"timestamp":1717421406}',
    b'{"symbol":"A","price":1E+2,"timestamp":1717421407}',
    b'{"symbol":"A","price":1e-7,"timestamp":1717421407}',
    b'{"symbol":"A","price":999999999999999.99,"timestamp":1717421408,"volume":1}',
    b'{"symbol":"A","price":99999999999999,"timestamp":1717421408,"volume":10}',
    b'{"symbol":"A","price":1000000000000000,"timestamp":1717421409}',
    b'{"symbol":"A","price":0,"timestamp":1717421410}',
    b'{"symbol":"A","price":-1,"timestamp":1717421410}',
    b'{"symbol":"A","price":"1.5","timestamp":1717421410}',
    b'{"symbol":"A","price":true,"timestamp":1717421410}',
    b'{"symbol":"A","price":NaN,"timestamp":1717421410}',
    b'{"symbol":"A","price":1,"timestamp":1717421411,"volume":-1}',
    b'{"symbol":"A","price":1,"timestamp":1717421411,"volume":1.5}',
    b'{"symbol":"A","price":1,"timestamp":1717421411,"volume":true}',
    b'{"symbol":"A","price":1,"timestamp":1717421411,"volume":99999999999999999999}',
    b'{"symbol":"A","price":1,"timestamp":1717421411.5}',
    b'{"symbol":"A","price":1,"timestamp":99999999999999999999}',
    b'{"symbol":"A","price":1,"timestamp":-99999999999}',
    b'{"symbol":"A","price":1,"timestamp":"2016-12-31T23:59:60Z"}',
    b'{"symbol":"A","price":1,"timestamp":"2016-12-31T12:00:60Z"}',
    b'{"symbol":"A","price":1}',
    b'{"symbol":"A","price":1,"timestamp":""}',
    b'{"symbol":"\xc5\xbfpy","price":1,"timestamp":1717421412}',
    b'{"symbol":"bad$","price":1,"timestamp":1717421412}',
    b'{"symbol":"TOOLONGSYMBOLX","price":1,"timestamp":1717421412}',
    b'{"symbol":" A ","price":1,"timestamp":1717421412}',
    b'{"symbol":"A","price":1,"timestamp":1717421412}{"x":1}',
    b'{"symbol":"A","price":1,"timestamp":1717421412',
    b'{"symbol":"\xff","price":1,"timestamp":1717421413}',
    b'{"symbol":"caf\xc3\xa9","price":1,"timestamp":1717421413}',
    b"[1,2]",
    b"42",
    b"not json",
    b'\x0c{"symbol":"A","price":1,"timestamp":1717421414}',
    b"[" * 70 + b"]" * 70,
    b'{"a":' + b"[" * 70 + b"]" * 70 + b"}",
    b'{"symbol":"A","price":1,"timestamp":1717421415,"x":' + b"7" * 5000 + b"}",
    b'{"symbol":"A","price":1,"timestamp":1717421415,"n":"' + b"x" * (MAX_RECORD_BYTES + 5) + b'"}',
    b"",
    b"   ",
    b"\xef\xbb\xbf",
]
ENDINGS = [b"\n", b"\r\n", b"\r"]
CAPS = st.one_of(st.none(), st.integers(0, 6))  # the duplicate check's cap (max_points)
KEYS = ["x.jsonl", "AAPL/x.jsonl", "symbol=msft/x.ndjson", "2024/x.jsonl"]


@SETTINGS
@given(
    lines=st.lists(st.sampled_from(JSON_LINES), max_size=25),
    ending=st.sampled_from(ENDINGS),
    key=st.sampled_from(KEYS),
    compress=st.booleans(),
    cut=st.integers(0, 3),
    cap=CAPS,
)
def test_json_lines_match_the_reference(lines, ending, key, compress, cut, cap):
    data = ending.join(lines) + (ending if cut else b"")
    if compress:
        data = gzip.compress(data)
        key += ".gz"
        if cut == 3:
            data = data[: len(data) * 2 // 3]
    assert_same(data, key, max_points=cap)


CSV_HEADERS = [
    b"symbol,timestamp,price,volume",
    b"timestamp,price",
    b"Timestamp , PRICE,volume,exchange",
    b"price,timestamp,symbol",
    b"symbol,price,price",
    b"timestamp,price,\xff",
    b"timestamp," + b"x" * (MAX_RECORD_BYTES + 3),
]
CELLS = {
    "symbol": [b"AAPL", b"aapl", b"", b" A", b"bad$", b"\xc5\xbfpy", b"BRK.B", b"\xff"],
    "timestamp": [
        b"1717421400",
        b"1717421400123",
        b"2024-06-03T13:30:00Z",
        b"",
        b"-5",
        b"99999999999999999",
        b"1e9",
        b"1717421400.5",
        b"x",
    ],
    "price": [b"189.25", b"189.250", b"0", b"0.00", b"-1", b"1e3", b"", b" 1", b"1.000000000000000001", b"NaN"],
    "volume": [b"100", b"0", b"", b"-1", b"1.5", b"99999999999999999", b"007"],
    "other": [b"XNAS", b"", b'"a,b"', b'"multi\nline"', b"caf\xc3\xa9"],
}


@st.composite
def csv_documents(draw):
    header = draw(st.sampled_from(CSV_HEADERS))
    names = [n.strip().lower() for n in header.split(b",")]
    rows = []
    for _ in range(draw(st.integers(0, 15))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            rows.append(b"")
        elif kind == 1:
            rows.append(b"1,2,3,4,5,6")
        elif kind == 2:
            rows.append(b'"unterminated,1')
        else:
            cells = [draw(st.sampled_from(CELLS.get(n.decode("utf-8", "replace"), CELLS["other"]))) for n in names]
            rows.append(b",".join(cells))
    ending = draw(st.sampled_from(ENDINGS))
    return ending.join([header, *rows]) + draw(st.sampled_from([b"", ending]))


@SETTINGS
@given(doc=csv_documents(), key=st.sampled_from(["AAPL/x.csv", "x.csv", "feeds/symbol=MSFT/2024/x.csv"]), cap=CAPS)
def test_csv_matches_the_reference(doc, key, cap):
    assert_same(doc, key, max_points=cap)
    assert_same(gzip.compress(doc), key + ".gz", max_points=cap)


def test_duplicates_name_the_first_line_on_both_paths():
    rows = b"timestamp,price\n1717421400,1\n1717421400,1\n1717421400,2\n"
    out = assert_same(rows, "AAPL/x.csv")
    assert [o.reason for o in out if isinstance(o, Rejection)] == [
        "duplicate of line 2 (same symbol and timestamp)",
        "conflicts with line 2 (same symbol and timestamp, different price or volume; the first one is kept)",
    ]


LATEST_S = (NOW_MS + 24 * 3600 * 1000) // 1000  # the last second a timestamp may name
BOUNDARY = {
    "price": [
        "1.00000000000000001",  # 17 decimals
        "1.000000000000000001",  # 18
        "1.000000000000000000",  # 18 written, 0 once trailing zeros go
        "999999999999999.99999999999999999",
        "999999999999999",
        "1000000000000000",
        "0.00000000000000001",
        "0",
    ],
    "timestamp": [
        str(LATEST_S),
        str(LATEST_S + 1),
        str(LATEST_S * 1000 + 1),
        str(LATEST_S * 1000 + 1000),
        "99999999999",
        "100000000000",
        "-2208988800",
        "-2208988801",
        "-2208988800000",
        "-2208988800001",
        "0",
    ],
    "volume": ["999999999999999", "1000000000000000", "99999999999999", "0", ""],
    "symbol": ["ABCDEFGHIJKL", "ABCDEFGHIJKLM", "a.b-c", "A_B"],
}


def _boundary_rows():
    base = {"symbol": "A", "price": "1", "timestamp": "1717421400", "volume": "10"}
    for field, values in BOUNDARY.items():
        for value in values:
            yield {**base, field: value}
    for price in BOUNDARY["price"][3:6]:
        for volume in ("1", "2", "10"):
            yield {**base, "price": price, "volume": volume}


def test_boundaries_of_every_fast_check():
    rows = list(_boundary_rows())
    for row in rows:
        csv_doc = "symbol,timestamp,price,volume\n{symbol},{timestamp},{price},{volume}\n".format(**row).encode()
        assert_same(csv_doc, "x.csv")
        fields = [f'"symbol":"{row["symbol"]}"', f'"price":{row["price"]}', f'"timestamp":{row["timestamp"]}']
        if row["volume"]:
            fields.append(f'"volume":{row["volume"]}')
        assert_same(("{" + ",".join(fields) + "}\n").encode(), "x.jsonl")


def test_field_names_twice_and_blank_cells_give_the_reference_result():
    # a field name twice (in another case) and blank cells: the fast path hands both cases to the reference rules
    lines = b'{"symbol":"A","price":10,"Price":1000,"timestamp":1717421400}\n'
    lines += b'{"symbol":"  ","price":1,"timestamp":1717421400,"volume":" "}\n'
    out = assert_same(lines, "AAPL/x.jsonl")
    assert [type(o).__name__ for o in out] == ["Rejection", "Point"]
    rows = b"symbol,price,timestamp,volume\n  ,1.5,1717421400,   \n MSFT , 2 , 1717421400 , 3 \n"
    out = assert_same(rows, "AAPL/x.csv")
    assert [(p.symbol, p.volume) for p in out] == [("AAPL", None), ("MSFT", 3)]


def test_a_key_repeated_exactly_goes_the_reference_way():
    lines = b'{"symbol":"A","price":10,"price":1000,"timestamp":1717421400}\n'
    lines += b'{"symbol":"A","price" :10, "price" : 1000,"timestamp":1717421401}\n'
    lines += b'{"symbol":"A","price":10,"timestamp":1717421402,"x":"a:b"}\n'
    out = assert_same(lines, "x.jsonl")
    assert [type(o).__name__ for o in out] == ["Rejection", "Rejection", "Point"]


def test_the_gunzip_cap_gives_the_reference_result():
    # the records before the cap are kept; the rest is one rejection
    rows = b"symbol,price,timestamp\n" + b"".join(b"A,1,%d\n" % (1717421400 + i) for i in range(5000))
    data = gzip.compress(rows)
    results = []
    for run in ("reference", "fast"):
        tally = Tally()
        if run == "reference":
            records = iter_raw_records(io.BytesIO(data), key="x.csv", max_gunzip_bytes=50_000)
            out = list(validate_records(records, source="x", now_ms=NOW_MS, tally=tally))
        else:
            out = list(
                ingest_records(
                    io.BytesIO(data),
                    key="x.csv",
                    content_type=None,
                    source="x",
                    now_ms=NOW_MS,
                    tally=tally,
                    max_gunzip_bytes=50_000,
                )
            )
        assert tally.records_in == tally.accepted + tally.rejected == len(out)
        results.append(_shown(out))
    assert results[0] == results[1]
    lines = rows[:50_000].count(b"\n")
    assert results[0][-1] == (
        "R",
        "x",
        f"after line {lines}",
        "gzip data decompresses to more than 50000 bytes; the rest was not read",
    )
    assert len(results[0]) == lines  # the rows before the cap (not the header) and the one rejection


# --- the duplicate check's cap (max_points) -------------------------------------------------
def _capped(cap: int, unit: str = "object") -> str:
    return f"more than {cap} points in one {unit} (split it or raise DataIngestionMemorySize); the rest was not read"


def _in_every_format(rows):
    """(data, key, position of record i) of the same points as CSV, JSON Lines, a JSON array, a wrapper."""
    dicts = [dict(zip(("symbol", "price", "timestamp"), row.split(","), strict=True)) for row in rows]
    values = [{**d, "price": json.loads(d["price"]), "timestamp": json.loads(d["timestamp"])} for d in dicts]
    jsonl = "".join(json.dumps(v) + "\n" for v in values).encode()
    return [
        (("symbol,price,timestamp\n" + "".join(r + "\n" for r in rows)).encode(), "x.csv", "line {}".format, 2),
        (jsonl, "x.jsonl", "line {}".format, 1),
        (json.dumps(values).encode(), "x.json", "index {}".format, 0),
        (json.dumps({"feed": "f", "points": values}).encode(), "x.json", "points[{}]".format, 0),
    ]


def test_the_cap_admits_exactly_max_points():
    # a cap hit at the last point: every point is kept, nothing is rejected
    rows = [f"A,1.5,{1717421400 + i}" for i in range(5)]
    for data, key, _, _ in _in_every_format(rows):
        out = assert_same(data, key, max_points=5)
        assert [type(o) for o in out] == [Point] * 5, key


def test_the_point_past_the_cap_and_the_rest_are_one_rejection():
    # the fast shape and the reference rules' shapes (ISO timestamps) alike, in every format
    rows = [f"A,1.5,{1717421400 + i}" if i % 2 else f'A,1.5,"2024-06-03T13:3{i}:00Z"' for i in range(10)]
    for data, key, position, first in _in_every_format(rows):
        for cap in (0, 3, 4):
            tally = Tally()
            out = assert_same(data, key, max_points=cap)
            before = position(first + cap - 1) if cap else "start of object"
            assert _shown(out[cap:]) == [("R", key, f"after {before}", _capped(cap))], (key, cap)
            assert [type(o) for o in out[:cap]] == [Point] * cap
            ingest = ingest_records(
                io.BytesIO(data), key=key, content_type=None, source=key, now_ms=NOW_MS, tally=tally, max_points=cap
            )
            assert len(list(ingest)) == cap + 1
            assert (tally.records_in, tally.accepted, tally.rejected) == (cap + 1, cap, 1)


def test_duplicates_and_bad_records_take_no_slot():
    # only accepted points are stored, so only they count against the cap
    rows = ["A,1,1717421400", "A,1,1717421400", "A,2,1717421400", "B,1,1717421401", "A,0,1717421402"]
    rows += ["C,1,1717421403", "C,1,1717421403", "D,1,1717421404", "E,1,1717421405"]
    for data, key, position, first in _in_every_format(rows):
        out = assert_same(data, key, max_points=3)
        assert [o.symbol for o in out if isinstance(o, Point)] == ["A", "B", "C"]
        rejected = [o for o in out if isinstance(o, Rejection)]
        assert [o.position for o in rejected] == [position(first + i) for i in (1, 2, 4, 6)] + [
            f"after {position(first + 6)}"  # the duplicate before D, the point that found no slot
        ]
        assert rejected[-1].reason == _capped(3)
        assert rejected[-2].reason.startswith("duplicate of")


def test_the_gzip_cap_and_the_point_cap_together():
    rows = b"symbol,price,timestamp\n" + b"".join(b"A,1,%d\n" % (1717421400 + i) for i in range(5000))
    data = gzip.compress(rows)
    lines = rows[:50_000].count(b"\n")  # the header and the rows before the gzip cap
    # the point cap first: the gzip cap is never reached
    out = assert_same(data, "x.csv.gz", max_points=100, max_gunzip_bytes=50_000)
    assert _shown(out[100:]) == [("R", "x.csv.gz", "after line 101", _capped(100))]
    # the gzip cap first: as without a point cap
    out = assert_same(data, "x.csv.gz", max_points=lines, max_gunzip_bytes=50_000)
    assert _shown(out[-1:]) == [
        (
            "R",
            "x.csv.gz",
            f"after line {lines}",
            "gzip data decompresses to more than 50000 bytes; the rest was not read",
        )
    ]
    # one slot short of the gzip cap: the last row before the cut finds none
    out = assert_same(data, "x.csv.gz", max_points=lines - 2, max_gunzip_bytes=50_000)
    assert _shown(out[-1:]) == [("R", "x.csv.gz", f"after line {lines - 1}", _capped(lines - 2))]
