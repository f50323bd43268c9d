"""The input contract at its edges: number limits, damaged input, symbols, one parser.

Pure core tests: parsing and validation on bytes, no AWS.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from decimal import Context, Decimal

import pytest

from handlers.core.ingest import Rejection, Tally, validate_records
from handlers.core.parsing import MAX_DEPTH, MAX_RECORD_BYTES, iter_api_records, iter_raw_records
from handlers.core.points import (
    MAX_POINTS_PER_WINDOW,
    MAX_VOLUME,
    Point,
    Rejected,
    key_symbol,
    parse_symbol,
    symbol_from_key,
    validate,
)

NOW_MS = 1_717_500_000_000  # 2024-06-04T11:20:00Z
TS = 1_717_421_400  # 2024-06-03T13:30:00Z


def run(data: bytes, key: str = "feed.jsonl"):
    tally = Tally()
    out = list(
        validate_records(
            iter_raw_records(io.BytesIO(data), key=key),
            source=key,
            now_ms=NOW_MS,
            tally=tally,
            default_symbol=symbol_from_key(key),
        )
    )
    assert tally.records_in == tally.accepted + tally.rejected == len(out)
    return [o for o in out if isinstance(o, Point)], [o for o in out if isinstance(o, Rejection)]


def run_api(body: bytes):
    tally = Tally()
    out = list(
        validate_records(iter_api_records(body), source="api", now_ms=NOW_MS, tally=tally, default_timestamp_ms=NOW_MS)
    )
    assert tally.records_in == tally.accepted + tally.rejected == len(out)
    return [o for o in out if isinstance(o, Point)], [o for o in out if isinstance(o, Rejection)]


def jsonl(n: int, start: int = 0) -> bytes:
    return b"".join(
        b'{"symbol":"A","price":%d.25,"timestamp":%d,"volume":%d}\n' % (i + 1, TS + i, i) for i in range(start, n)
    )


# --- every aggregate fits DynamoDB's Number type ------------------------------------------
def _fits_dynamodb(value: Decimal) -> bool:
    """DynamoDB Number: 38 significant digits, magnitude 1E-130 .. 9.99...E+125 (or 0)."""
    if value == 0:
        return True
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")
    return len(digits) <= 38 and -130 <= value.adjusted() <= 125


@pytest.mark.parametrize(
    "record,reason",
    [
        ({"price": Decimal("9.9999999999999999999999999999999999999E+125")}, "price out of range"),
        ({"price": Decimal("1E+15")}, "price out of range"),
        ({"price": Decimal("1E-131")}, "price out of range: must be at least 1E-130"),
        ({"price": Decimal("1." + "1" * 38)}, "more than 38 significant digits"),
        ({"price": Decimal("1E-100"), "volume": 10**32}, "volume out of range: must be below 1E+32"),
        ({"price": 1, "volume": int("9" * 38)}, "price x volume out of range"),
        ({"price": Decimal("1E+14"), "volume": 10}, "price x volume out of range"),
        ({"price": 1, "volume": Decimal("1E+999999999")}, "price x volume out of range"),
    ],
)
def test_numbers_whose_window_sums_cannot_be_stored_are_rejected(record, reason):
    with pytest.raises(Rejected, match=re.escape(reason)):
        validate({"symbol": "A", "timestamp": TS, **record}, now_ms=NOW_MS)


def test_two_volumes_of_38_nines_are_rejected_at_ingestion():
    rows = b"".join(b'{"symbol":"A","price":1,"timestamp":%d,"volume":%s}\n' % (TS + i, b"9" * 38) for i in range(2))
    points, rejections = run(rows)
    assert points == [] and all("price x volume out of range" in r.reason for r in rejections)


def test_the_largest_accepted_window_still_fits_dynamodb():
    # The worst window the limits allow: MAX_POINTS_PER_WINDOW points at the largest
    # volume and the most precise prices at both ends of the range.
    from handlers.core.aggregation import compute_aggregate, unstorable_reason

    exact = Context(prec=200)
    top = Decimal("9" * 15 + "." + "9" * 23)  # 38 digits, just below 1E+15
    low = Decimal("1." + "9" * 37 + "E-130")  # 38 digits, just above 1E-130
    validate({"symbol": "A", "timestamp": TS, "price": top, "volume": 0}, now_ms=NOW_MS)
    tiny = validate({"symbol": "A", "timestamp": TS, "price": low, "volume": MAX_VOLUME - 1}, now_ms=NOW_MS)
    assert _fits_dynamodb(Decimal(tiny.volume) * MAX_POINTS_PER_WINDOW)
    points = [(TS * 1000 + i, low if i % 2 else top, MAX_VOLUME - 1 if i % 2 else 0) for i in range(1000)]
    agg = compute_aggregate("A", TS * 1000, 300_000, points)
    assert agg is not None and unstorable_reason(agg) is None
    assert agg["vwap"] == Context(prec=12).create_decimal(low)  # only the tiny price carries volume
    assert _fits_dynamodb(exact.multiply(Decimal(MAX_VOLUME - 1), MAX_POINTS_PER_WINDOW))
    # one step further is refused
    with pytest.raises(Rejected):
        validate({"symbol": "A", "timestamp": TS, "price": Decimal("9.9E-131")}, now_ms=NOW_MS)


def test_float_noise_from_common_producers_is_accepted_exactly():
    point = validate({"symbol": "A", "timestamp": TS, "price": Decimal("0.30000000000000004")}, now_ms=NOW_MS)
    assert point.price == Decimal("0.30000000000000004")


# --- damaged input keeps every good record ------------------------------------------------
def _complete_lines_before_damage(compressed: bytes) -> int:
    """Reference: lines that end before the damage, decompressing one byte at a time."""
    z = zlib.decompressobj(wbits=31)
    out = b""
    for i in range(len(compressed)):
        try:
            out += z.decompress(compressed[i : i + 1])
        except zlib.error:
            break
    return out.count(b"\n")


def test_truncated_gzip_keeps_every_complete_record_before_the_cut():
    data = gzip.compress(jsonl(20_000))
    for cut in (40_000, 40_001, len(data) // 2, len(data) - 5):
        points, rejections = run(data[:cut], "x.jsonl.gz")
        assert len(points) == _complete_lines_before_damage(data[:cut])
        assert len(rejections) == 1 and "truncated" in rejections[0].reason
        assert rejections[0].position == f"after line {len(points)}"


def test_corrupt_gzip_keeps_every_record_decoded_before_the_damage():
    data = bytearray(gzip.compress(jsonl(20_000)))
    data[len(data) // 3 : len(data) // 3 + 8] = b"\xff" * 8  # an invalid block in the middle
    lines = _complete_lines_before_damage(bytes(data))
    assert 0 < lines < 20_000
    points, rejections = run(bytes(data), "x.jsonl.gz")
    # every line zlib produced before it found the damage is a record; then one rejection
    assert len(points) + len(rejections) == lines + 1
    assert "corrupt gzip data" in rejections[-1].reason and rejections[-1].position == f"after line {lines}"
    assert len(points) >= 6_000  # the lines before the damaged block are intact


def test_gzip_with_a_bad_checksum_keeps_every_record_and_reports_the_damage():
    data = bytearray(gzip.compress(jsonl(500)))
    data[-6] ^= 0x01  # CRC-32 in the trailer
    points, rejections = run(bytes(data), "x.jsonl.gz")
    assert len(points) == 500 and len(rejections) == 1 and "corrupt gzip data" in rejections[0].reason


def test_concatenated_gzip_members_and_zero_padding_are_read():
    data = gzip.compress(jsonl(10)) + gzip.compress(jsonl(20, 10)) + b"\0" * 10
    points, rejections = run(data, "x.jsonl.gz")
    assert len(points) == 20 and rejections == []


BAD_ELEMENTS = {
    "too large": b'{"symbol":"A","price":1,"timestamp":1717421400,"note":"' + b"x" * MAX_RECORD_BYTES + b'"}',
    "too deep": b'{"symbol":"A","price":1,"timestamp":1717421400,"x":' + b"[" * 2000 + b"]" * 2000 + b"}",
    "deep, under the recursion limit": b'{"x":' + b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1) + b"}",
    "5,000-digit integer": b'{"symbol":"A","price":1,"timestamp":1717421400,"x":' + b"7" * 5000 + b"}",
    "syntax error inside": b'{"symbol":"A","price":1,,"timestamp":1717421400}',
}


@pytest.mark.parametrize("name", BAD_ELEMENTS)
def test_one_bad_array_element_is_rejected_alone_and_the_array_continues(name):
    good = [b'{"symbol":"A","price":%d,"timestamp":%d}' % (i + 1, TS + i) for i in range(6)]
    doc = b"[" + b",".join(good[:3] + [BAD_ELEMENTS[name]] + good[3:]) + b"]"
    for key, data in (("x.json", doc), ("x.json.gz", gzip.compress(doc))):
        points, rejections = run(data, key)
        assert len(points) == 6, rejections
        assert [r.position for r in rejections] == ["index 3"]
    api_points, api_rejections = run_api(doc)
    assert len(api_points) == 6 and [(r.position, r.reason) for r in api_rejections] == [
        (r.position, r.reason) for r in rejections
    ]


def test_api_one_unreadable_point_never_rejects_its_99_neighbours():
    good = [b'{"symbol":"A","price":1,"timestamp":%d}' % (TS + i) for i in range(99)]
    body = b"[" + b",".join(good[:50] + [BAD_ELEMENTS["5,000-digit integer"]] + good[50:]) + b"]"
    points, rejections = run_api(body)
    assert len(points) == 99 and [r.position for r in rejections] == ["index 50"]


def test_unbalanced_brackets_end_the_document_with_one_rejection():
    doc = b'[{"symbol":"A","price":1,"timestamp":1717421400},{"x":[}],{"symbol":"A","price":2,"timestamp":1}]'
    points, rejections = run(doc, "x.json")
    assert len(points) == 1 and len(rejections) == 1
    assert "the rest of the document was not read" in rejections[0].reason


def test_csv_header_over_the_line_limit_rejects_every_line_with_its_reason():
    header = b"timestamp,price," + b"x" * (MAX_RECORD_BYTES + 10) + b"\n"
    rows = b"".join(b"%d,1,\n" % (TS + i) for i in range(5))
    points, rejections = run(header + rows + b"\n", "AAPL/x.csv")
    assert points == [] and [r.position for r in rejections] == [f"line {n}" for n in range(1, 7)]
    assert "CSV header longer than" in rejections[0].reason
    assert all("the CSV header (line 1) is longer than" in r.reason for r in rejections[1:])


def test_csv_header_naming_a_column_twice_is_refused():
    points, rejections = run(b"timestamp,price,price\n1717421400,1,2\n", "AAPL/x.csv")
    assert points == [] and len(rejections) == 2 and "names column 'price' twice" in rejections[0].reason


# --- symbols only from an explicit key layout, ASCII only ---------------------------------
@pytest.mark.parametrize(
    "key,symbol",
    [
        ("tests/data/AAPL/2024-06-03.csv", "AAPL"),
        ("tests/data/MSFT/2024-06-03.jsonl", "MSFT"),
        ("AAPL/2024-06-03.csv", "AAPL"),
        ("feeds/symbol=brk.b/2024/06/03.csv", "BRK.B"),
        ("TESTS/2024/2024-06-03.csv", None),  # never a deeper ancestor
        ("AAPL/2024/06/03.csv", None),  # a date folder is not a symbol
        ("symbol=A/x/symbol=B/y.csv", None),  # two that disagree: none
        ("symbol=$$$/AAPL/y.csv", None),  # an explicit but invalid one: no fallback
        ("ſpy/x.csv", None),
        ("x.csv", None),
        # a generic folder is never a symbol, in any case
        ("raw/x.csv", None),
        ("incoming/x.csv", None),
        ("feeds/2024/Data/x.csv", None),
        ("symbol=RAW/x.csv", "RAW"),  # unless named explicitly
        ("raw/AAPL/x.csv", "AAPL"),
    ],
)
def test_symbol_comes_only_from_the_documented_key_layout(key, symbol):
    assert symbol_from_key(key) == symbol


def test_key_symbol_says_where_it_came_from():
    assert key_symbol("a/symbol=msft/x.csv").origin == "key segment 'symbol=msft/'"
    assert key_symbol("tests/data/AAPL/x.csv").origin == "parent folder 'AAPL/'"


@pytest.mark.parametrize("text", ["ſpy", "ıbm", "ＡＡＰＬ", "aapl\u0301"])
def test_non_ascii_symbols_are_rejected_before_upper_casing(text):
    with pytest.raises(Rejected, match="invalid symbol"):
        parse_symbol(text, None)


# --- one contract on both paths -----------------------------------------------------------
SAME_ON_BOTH_PATHS = {
    "wrapper next to other keys": b'{"source":"feed-1","meta":{"n":[1,2]},"points":[{"symbol":"A","price":1,"timestamp":1717421400},{"symbol":"A","price":0,"timestamp":1717421401}],"after":1}',
    "wrapper whose other key is unreadable": b'{"x":'
    + b"9" * 5000
    + b',"points":[{"symbol":"A","price":1,"timestamp":1717421400}]}',
    "one point": b'{"symbol":"A","price":1,"timestamp":"2024-06-03t13:30:00z"}',
    "one point too large": b'{"symbol":"A","price":1,"timestamp":1717421400,"n":"' + b"x" * MAX_RECORD_BYTES + b'"}',
    "CR-only whitespace": b'[{"symbol":"A","price":1,"timestamp":1717421400},\r{"symbol":"A","price":2,"timestamp":1717421401}]\r',
    "RFC 3339 forms": b'[{"symbol":"A","price":1,"timestamp":"2024-06-03 13:30:00.5+02:00"},{"symbol":"A","price":1,"timestamp":"2024-06-03T13:30:00,25Z"}]',
    "leap second": b'[{"symbol":"A","price":1,"timestamp":"2016-12-31T23:59:60Z"},{"symbol":"A","price":1,"timestamp":"2016-12-31T12:00:60Z"}]',
    "not UTF-8": b'[{"symbol":"A","price":1,"timestamp":1717421400},{"symbol":"\xff","price":1,"timestamp":1717421401}]',
}


@pytest.mark.parametrize("name", SAME_ON_BOTH_PATHS)
def test_s3_and_api_give_the_same_result(name):
    body = SAME_ON_BOTH_PATHS[name]
    s3_points, s3_rejections = run(body, "x.json")
    api_points, api_rejections = run_api(body)
    assert s3_points == api_points
    assert [(r.position.replace("document", "body"), r.reason) for r in s3_rejections] == [
        (r.position, r.reason) for r in api_rejections
    ]
    assert s3_points or s3_rejections


def test_wrapper_with_other_keys_is_unwrapped():
    points, rejections = run(SAME_ON_BOTH_PATHS["wrapper next to other keys"], "x.json")
    assert len(points) == 1 and [r.position for r in rejections] == ["points[1]"]


@pytest.mark.parametrize(
    "text,ms",
    [
        ("2024-06-03T13:30:00Z", 1717421400000),
        ("2024-06-03t13:30:00z", 1717421400000),
        ("2024-06-03 13:30:00.123456Z", 1717421400123),
        ("2024-06-03T15:30:00+02:00", 1717421400000),
        ("2024-06-03T09:30:00-0400", 1717421400000),
        ("2024-06-03T13:30", 1717421400000),
        ("2016-12-31T23:59:60Z", 1483228799999),  # leap second: the day's last millisecond
        ("2016-12-31T23:59:60.750Z", 1483228799999),
        ("2017-01-01T00:59:60+01:00", 1483228799999),
    ],
)
def test_rfc3339_forms_and_leap_seconds(text, ms):
    assert validate({"symbol": "A", "price": 1, "timestamp": text}, now_ms=NOW_MS).timestamp == ms


@pytest.mark.parametrize(
    "text", ["2016-12-31T12:00:60Z", "2024-06-03X13:30:00", "2024-06-03T13:30:00+24:00", "20240603T133000Z"]
)
def test_timestamps_outside_the_grammar_are_rejected(text):
    with pytest.raises(Rejected):
        validate({"symbol": "A", "price": 1, "timestamp": text}, now_ms=NOW_MS)


@pytest.mark.parametrize("ending", [b"\r", b"\r\n", b"\n"])
def test_every_line_ending_gives_the_same_records(ending):
    csv_rows = b"timestamp,price\r" if ending == b"\r" else b"timestamp,price" + ending
    csv_rows += ending.join(b"%d,%d" % (TS + i, i + 1) for i in range(3)) + ending
    points, rejections = run(csv_rows, "AAPL/x.csv")
    assert len(points) == 3 and rejections == []
    lines = ending.join(jsonl(3).splitlines()) + ending
    points, rejections = run(lines, "x.jsonl")
    assert len(points) == 3 and rejections == []


def test_cr_only_lines_over_many_chunks_keep_their_numbers():
    data = b"\r".join(b'{"symbol":"A","price":1,"timestamp":%d}' % (TS + i) for i in range(20_000)) + b"\r"
    points, rejections = run(data + b"oops\r", "x.jsonl")
    assert len(points) == 20_000 and [r.position for r in rejections] == ["line 20001"]


# --- bounds before arithmetic, one reason each ----------------------------------------
@pytest.mark.parametrize(
    "stamp,reason",
    [
        (b"1e999999999", "timestamp out of range (exponent of more than 6 digits)"),
        (b'"1E+1000000"', "timestamp out of range (exponent of more than 6 digits)"),
        (b"1e99999999999999999999", "timestamp out of range (exponent of more than 6 digits)"),
        (b'"1e999999"', "timestamp out of range: "),  # would be a million-digit integer
        (b"1E+999999", "timestamp out of range: "),
        (b"1e-99999999999999999999", "timestamp out of range (exponent of more than 6 digits)"),
        (b'"0001-01-01T00:00:00+01:00"', "timestamp before 1900-01-01"),  # .NET DateTime.MinValue
        (b'"9999-12-31T23:59:59.9999999-05:00"', "timestamp more than 24 h in the future"),  # MaxValue
        (b'"0000-01-01T00:00:00Z"', "timestamp is not a valid date and time"),
        (b'"2024-02-30T00:00:00Z"', "timestamp is not a valid date and time"),
        (b'"2024-06-03T13:30:00+24:00"', "timestamp offset out of range"),
        (b"1717421400.%s" % (b"1" * 40), "timestamp has more than 40 digits"),
    ],
)
def test_extreme_timestamps_are_rejected_with_their_bound(stamp, reason):
    line = b'{"symbol":"A","price":1,"timestamp":%s}\n' % stamp
    for points, rejections in (
        run(line),
        run_api(line),
        run(b"symbol,price,timestamp\nA,1,%s\n" % stamp.strip(b'"'), "x.csv"),
    ):
        assert points == [] and [r.reason[: len(reason)] for r in rejections] == [reason]


@pytest.mark.parametrize(
    "price,reason",
    [
        (b"1e-99999999999999999999", "price out of range (exponent of more than 6 digits)"),
        (b"1e99999999999999999999", "price out of range (exponent of more than 6 digits)"),
        (b"1e999999", "price out of range: must be below 1E+15"),
    ],
)
def test_extreme_prices_are_rejected_with_their_bound(price, reason):
    points, rejections = run(b'{"symbol":"A","price":%s,"timestamp":%d}\n' % (price, TS))
    assert points == [] and [r.reason[: len(reason)] for r in rejections] == [reason]


@pytest.mark.parametrize(
    "stamp", [b"1717421699.99999999999999999999", b'"1717421699.99999999999999999999"', b"1717421699999.99999999999999"]
)
def test_epoch_seconds_with_many_decimals_are_floored_not_rounded_into_the_next_window(stamp):
    # 28-digit arithmetic would round 1717421699999.99999999999999999 up to ...700000, the
    # first millisecond of the next 5-minute window.
    points, _ = run(b'{"symbol":"A","price":1,"timestamp":%s}\n' % stamp)
    assert [p.timestamp for p in points] == [1717421699999]


# --- one field-name rule; blank cells are empty -------------------------------------------
@pytest.mark.parametrize(
    "fields,name",
    [
        (b'"price":10,"Price":1000', "price"),
        (b'"price":10,"symbol":"MSFT"," Symbol ":"AAPL"', "symbol"),
        (b'"price":10,"TIMESTAMP":1717421401', "timestamp"),
        (b'"price":10,"volume":1,"Volume":2', "volume"),
        (b'"price":10,"note":"a","NOTE":"b"', "note"),  # even a field that is dropped
    ],
)
def test_a_field_named_twice_in_any_case_or_padding_is_refused_on_every_path(fields, name):
    record = b'{"symbol":"AAPL","timestamp":%d,%s}' % (TS, fields)
    if fields.count(b'"symbol"') or fields.count(b"Symbol"):
        record = b'{"timestamp":%d,%s}' % (TS, fields)
    for points, rejections in (run(record + b"\n"), run(b"[%s]" % record, "x.json"), run_api(record)):
        assert points == []
        assert [r.reason.split(";")[0][: len(f"field {name!r} given twice")] for r in rejections] == [
            f"field {name!r} given twice"
        ]


def test_blank_cells_are_empty_on_every_path():
    csv_rows = b"symbol , price ,timestamp, volume\n   ,1.5,%d,   \n  msft ,  2.5 , %d ,\t7 \n" % (TS, TS)
    points, rejections = run(csv_rows, "AAPL/2024-06-03.csv")
    assert rejections == []
    assert points == [Point("AAPL", TS * 1000, Decimal("1.5"), None), Point("MSFT", TS * 1000, Decimal("2.5"), 7)]
    line = b'{"symbol":"  ","price":1.5,"timestamp":%d,"volume":" "}\n' % TS
    points, rejections = run(line, "AAPL/2024-06-03.jsonl")
    assert rejections == [] and points == [Point("AAPL", TS * 1000, Decimal("1.5"), None)]
    # an API point with a blank timestamp gets the receipt time, as one without one
    points, rejections = run_api(b'{"symbol":"A","price":1,"timestamp":"   "}')
    assert rejections == [] and [p.timestamp for p in points] == [NOW_MS]
    _, rejections = run(b"symbol,price,timestamp\nA,  ,%d\n" % TS, "x.csv")
    assert [r.reason for r in rejections] == ["missing price"]


@pytest.mark.parametrize(
    "record",
    [
        b'{"symbol":"A","price":10,"price":1000,"timestamp":%d}' % TS,
        b'{"symbol":"A","price" : 10, "price" :1000,"timestamp":%d}' % TS,
        b'{"symbol":"A","price":10,"timestamp":%d,"symbol":"B"}' % TS,
    ],
)
def test_a_key_repeated_exactly_is_refused_not_resolved_by_order(record):
    # json.loads keeps the last value of a repeated key silently; the parsers do not
    for points, rejections in (
        run(record + b"\n"),
        run(b"[%s]" % record, "x.json"),
        run(record, "x.json"),
        run_api(record),
    ):
        assert points == [] and len(rejections) == 1 and " given twice " in rejections[0].reason


# --- what float encoders print is accepted, aggregates stay exact -------------------------
@pytest.mark.parametrize(
    "text", [repr(1 / 150), repr(1 / 3e9), "1e-08", "1e-7", "6.666666666666667e-05", "1.2345678901234567e-12"]
)
def test_prices_as_float_encoders_print_them_are_accepted_exactly(text):
    for points, rejections in (
        run(b'{"symbol":"A","price":%s,"timestamp":%d}\n' % (text.encode(), TS)),
        run(b"symbol,price,timestamp\nA,%s,%d\n" % (text.encode(), TS), "x.csv"),
        run_api(b'{"symbol":"A","price":%s,"timestamp":%d}' % (text.encode(), TS)),
    ):
        assert rejections == [] and [p.price for p in points] == [Decimal(text)]
