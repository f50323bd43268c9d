"""Property tests of the parsers: never an unhandled exception, and in = accepted + rejected."""

from __future__ import annotations

import gzip
import io
import json
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_fast_path import assert_same

from handlers.core.ingest import Rejection, Tally, validate_records
from handlers.core.parsing import iter_api_records, iter_raw_records
from handlers.core.points import Point, Rejected, validate
from handlers.core.wire import MessagePacker, decode_message

NOW_MS = 1_717_500_000_000
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
KEYS = st.sampled_from(["AAPL/x.csv", "x.jsonl", "x.json", "x.ndjson.gz", "feed", "MSFT/y.csv.gz"])

scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.sampled_from(["2024-06-01T10:00:00Z", "1717236000", "NaN", "-1", "AAPL", ""]),
)
record = st.dictionaries(
    st.sampled_from(["symbol", "price", "timestamp", "volume", "Price", "extra"]), scalar, max_size=5
)


def _check(data: bytes, key: str) -> None:
    tally = Tally()
    out = list(validate_records(iter_raw_records(io.BytesIO(data), key=key), source=key, now_ms=NOW_MS, tally=tally))
    assert tally.records_in == tally.accepted + tally.rejected == len(out)
    assert tally.accepted == sum(isinstance(o, Point) for o in out)
    for o in out:
        if isinstance(o, Rejection):
            assert o.position and o.reason and "\n" not in o.reason


@SETTINGS
@given(data=st.binary(max_size=400), key=KEYS)
def test_arbitrary_bytes_never_crash(data, key):
    _check(data, key)


@SETTINGS
@given(rows=st.lists(record, max_size=12), key=KEYS, as_array=st.booleans(), compress=st.booleans())
def test_json_like_records_never_crash(rows, key, as_array, compress):
    text = json.dumps(rows, default=str) if as_array else "\n".join(json.dumps(r, default=str) for r in rows)
    data = text.encode()
    _check(gzip.compress(data) if compress else data, key)


@SETTINGS
@given(cells=st.lists(st.lists(st.text(max_size=12), min_size=1, max_size=5), max_size=10))
def test_csv_like_text_never_crashes(cells):
    text = "symbol,price,timestamp,volume\n" + "\n".join(",".join(row) for row in cells)
    _check(text.encode("utf-8", "surrogatepass"), "x.csv")


@SETTINGS
@given(
    doc=st.recursive(
        scalar | record,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
        max_leaves=20,
    )
)
def test_api_bodies_keep_the_invariant(doc):
    records = list(iter_api_records(json.dumps(doc, default=str).encode()))
    tally = Tally()
    out = list(validate_records(records, source="api", now_ms=NOW_MS, tally=tally, default_timestamp_ms=NOW_MS))
    assert tally.records_in == tally.accepted + tally.rejected == len(out) == len(records)


@SETTINGS
@given(rec=record)
def test_validate_returns_a_point_or_raises_rejected(rec):
    try:
        point = validate(rec, now_ms=NOW_MS, default_symbol="DFLT")
    except Rejected as exc:
        assert str(exc)
    else:
        assert point.price > 0 and 1 <= len(point.symbol) <= 12
        # whatever is accepted survives the trip through a queue message unchanged
        packer = MessagePacker()
        bodies = [b for batch in packer.add(point) + packer.flush() for b in batch]
        assert decode_message(bodies[0]) == [point]


# --- the number and timestamp grammars at their extremes --------------------------------
# Exponents, digit counts, years and offsets far beyond every bound: each must give a
# point or a rejection with a reason, never an exception, on the reference path and the
# fast path alike (and the fast path must agree with the reference).
EXPONENTS = st.one_of(
    st.integers(-40, 40),
    st.sampled_from([-(10**20), -(10**9), -1_000_000, -999_999, -130, 125, 999_999, 1_000_000, 10**9, 10**20]),
)


@st.composite
def number_text(draw):
    sign = draw(st.sampled_from(["", "-", "+"]))
    whole = draw(st.sampled_from(["0", "1", "1717236000", "1717236000123", "9" * 19, "1" + "0" * 60]))
    frac = draw(st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=45)))
    text = sign + whole + ("." + frac if frac else "")
    if draw(st.booleans()):
        exp = draw(EXPONENTS)
        pad = "0" * draw(st.integers(0, 3))
        text += draw(st.sampled_from(["e", "E"])) + ("-" if exp < 0 else draw(st.sampled_from(["", "+"])))
        text += pad + str(abs(exp))
    return text


@st.composite
def iso_text(draw):
    year = draw(st.sampled_from([0, 1, 1899, 1900, 1969, 1970, 2024, 9999]))
    text = f"{year:04d}-{draw(st.integers(0, 13)):02d}-{draw(st.integers(0, 32)):02d}"
    if draw(st.booleans()):
        text += f"T{draw(st.integers(0, 25)):02d}:{draw(st.integers(0, 61)):02d}:{draw(st.integers(0, 61)):02d}"
        text += draw(st.one_of(st.just(""), st.text("0123456789", min_size=1, max_size=30).map(lambda f: "." + f)))
        text += draw(
            st.one_of(
                st.sampled_from(["", "Z", "z"]),
                st.tuples(st.sampled_from("+-"), st.integers(0, 99), st.integers(0, 99)).map(
                    lambda o: f"{o[0]}{o[1]:02d}:{o[2]:02d}"
                ),
            )
        )
    return text


def _both_paths(data: bytes, key: str) -> None:
    reference = assert_same(data, key)
    for item in reference:
        if isinstance(item, Rejection):
            assert item.reason and "\n" not in item.reason


@SETTINGS
@given(price=number_text(), stamp=number_text(), volume=number_text(), quoted=st.booleans())
def test_extreme_numbers_are_points_or_rejections(price, stamp, volume, quoted):
    stamp_json = f'"{stamp}"' if quoted else stamp
    line = f'{{"symbol":"A","price":{price},"timestamp":{stamp_json},"volume":{volume}}}\n'
    _both_paths(line.encode() * 2, "x.jsonl")
    _both_paths(f"symbol,price,timestamp,volume\nA,{price},{stamp},{volume}\n".encode(), "x.csv")
    records = list(iter_api_records(line.encode()))
    out = list(validate_records(records, source="api", now_ms=NOW_MS, tally=Tally()))
    assert len(out) == 1


@SETTINGS
@given(stamp=iso_text())
def test_extreme_iso_timestamps_are_points_or_rejections(stamp):
    line = f'{{"symbol":"A","price":1,"timestamp":"{stamp}"}}\n'
    _both_paths(line.encode(), "x.jsonl")
    _both_paths(f"symbol,price,timestamp\nA,1,{stamp}\n".encode(), "x.csv")
    try:
        point = validate({"symbol": "A", "price": 1, "timestamp": stamp}, now_ms=NOW_MS)
    except Rejected as exc:
        assert str(exc)
    else:
        assert point.timestamp <= NOW_MS + 86_400_000


@SETTINGS
@given(
    prices=st.lists(st.floats(min_value=1e-120, max_value=1e15, exclude_max=True), min_size=1, max_size=20),
    volumes=st.lists(st.integers(0, 10**6), min_size=20, max_size=20),
)
def test_every_float_a_json_encoder_prints_is_a_price_and_aggregates_stay_storable(prices, volumes):
    # json.dumps (repr) prints at most 17 significant digits, in any magnitude
    from handlers.core.aggregation import compute_aggregate, unstorable_reason

    lines = "".join(
        json.dumps({"symbol": "A", "price": p, "timestamp": 1717421400000 + i, "volume": v}) + "\n"
        for i, (p, v) in enumerate(zip(prices, volumes, strict=False))
    )
    tally = Tally()
    out = list(
        validate_records(
            iter_raw_records(io.BytesIO(lines.encode()), key="x.jsonl"), source="x", now_ms=NOW_MS, tally=tally
        )
    )
    accepted = [o for o in out if isinstance(o, Point)]
    # a price x volume at or above 1E+15 is the only refusal
    expected = [p for p, v in zip(prices, volumes, strict=False) if Decimal(repr(p)) * v < 10**15]
    assert [p.price for p in accepted] == [Decimal(repr(p)) for p in expected]
    agg = compute_aggregate(
        "A", 1717421400000 - 1717421400000 % 300_000, 300_000, [(p.timestamp, p.price, p.volume) for p in accepted]
    )
    assert agg is None or unstorable_reason(agg) is None
