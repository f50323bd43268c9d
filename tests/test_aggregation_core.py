"""The aggregator's pure core: exact vwap, DynamoDB number limits, bar packing, per-window retries."""

from __future__ import annotations

import json
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.core.aggregation import compute_aggregate, exact_vwap, fits_dynamodb_number, unstorable_reason
from handlers.core.bars import bar_json, decode_bars, pack_bars
from handlers.core.window_retry import (
    MAX_RETRY_AGE_MS,
    Failure,
    WindowTask,
    decode_tasks,
    merge,
    next_step,
    plan,
)
from handlers.core.wire import WireFormatError

W = 300_000
T0 = 1717421400000


def oracle_vwap(terms: list[tuple[Decimal, int]]) -> Decimal | None:
    """sum(p x v) / sum(v) as an exact fraction, rounded half-even to 12 significant
    digits by integer arithmetic - independent of the decimal module's division."""
    volume = sum(v for _, v in terms)
    if not volume:
        return None
    q = sum((Fraction(p) * v for p, v in terms), Fraction(0)) / volume
    assert q > 0
    exponent = 0  # find e with 10^11 <= q * 10^-e < 10^12
    while q / Fraction(10) ** exponent >= 10**12:
        exponent += 1
    while q / Fraction(10) ** exponent < 10**11:
        exponent -= 1
    scaled = q / Fraction(10) ** exponent
    whole, rest = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * rest
    if twice > scaled.denominator or (twice == scaled.denominator and whole % 2):
        whole += 1
    return Decimal(whole).scaleb(exponent)  # at most 13 digits: exact in the default context


# --- vwap: exact, rounded once -------------------------------------------------------------
def test_vwap_is_rounded_once_from_the_exact_sum():
    # (1.000000000001 + 1E-70) / 2 = 0.5000000000005 + 5E-71: just above the half-way
    # point between 0.500000000000 and 0.500000000001, so half-even must round up.
    # A 60-digit intermediate sum drops the 1E-70 term, sees an exact tie and rounds
    # down to the even 0.500000000000 - the bug this replaces.
    terms = [(Decimal("1.000000000001"), 1), (Decimal("1E-70"), 1)]
    assert exact_vwap(terms) == Decimal("0.500000000001")
    agg = compute_aggregate("A", T0, W, [(T0, terms[0][0], 1), (T0 + 1, terms[1][0], 1)])
    assert agg is not None and agg["vwap"] == Decimal("0.500000000001")


def test_vwap_of_38_digit_prices_and_large_volumes_is_exact():
    price = Decimal("1.0000000000049999999999999999999999999")  # 38 digits, just below a tie
    volume = 10**30 + 7
    assert exact_vwap([(price, volume)]) == Decimal("1.00000000000")
    assert exact_vwap([(Decimal("1.0000000000050000000000000000000000001"), 3)]) == Decimal("1.00000000001")


def test_an_exact_tie_rounds_to_even():
    assert exact_vwap([(Decimal("1.000000000005"), 2)]) == Decimal("1.00000000000")
    assert exact_vwap([(Decimal("1.000000000015"), 2)]) == Decimal("1.00000000002")


def test_zero_volume_has_no_vwap_and_zero_volume_points_do_not_count():
    assert exact_vwap([(Decimal(5), 0)]) is None
    assert exact_vwap([(Decimal(5), 0), (Decimal(7), 3)]) == Decimal(7)


prices = st.builds(
    lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
    st.integers(min_value=1, max_value=10**38 - 1),
    st.integers(min_value=-60, max_value=40),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(prices, st.integers(min_value=0, max_value=10**38 - 1)), min_size=1, max_size=8))
def test_vwap_matches_an_exact_rational_oracle(terms):
    got, want = exact_vwap(terms), oracle_vwap(terms)
    assert (got is None) == (want is None)
    if got is not None:
        assert got == want, (terms, got, want)
        assert len(got.as_tuple().digits) <= 12


# --- DynamoDB's Number type ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "fits"),
    [
        (Decimal("9.9999999999999999999999999999999999999E+125"), True),
        (Decimal("1E+126"), False),
        (Decimal("1E-130"), True),
        (Decimal("9E-131"), False),
        (int("9" * 38), True),
        (int("9" * 39), False),
        (10**50, True),  # trailing zeros are trimmed: one significant digit
        (Decimal("1.000000000000000000000000000000000000000000"), True),
        (0, True),
    ],
)
def test_fits_dynamodb_number(value, fits):
    assert (fits_dynamodb_number(value) is None) is fits


def test_unstorable_reason_names_the_field():
    agg = compute_aggregate("A", T0, W, [(T0, Decimal(1), int("9" * 38)), (T0 + 1, Decimal(1), int("9" * 38))])
    assert agg is not None
    reason = unstorable_reason(agg)
    assert reason is not None and reason.startswith("volume ") and "39 significant digits" in reason
    ok = compute_aggregate("A", T0, W, [(T0, Decimal(1), 1)])
    assert ok is not None and unstorable_reason(ok) is None


# --- bars ----------------------------------------------------------------------------------
def _agg(symbol, start, price="10.5", volume=3):
    agg = compute_aggregate(symbol, start, W, [(start, Decimal(price), volume)])
    assert agg is not None
    return agg


def test_bar_json_keeps_numbers_exact():
    agg = _agg("AAPL", T0, price="123456789012345678901234567890.12345678")
    bar = json.loads(bar_json(agg, window_ms=W, version=4), parse_float=Decimal)
    assert bar["open"] == Decimal("123456789012345678901234567890.12345678")
    assert (bar["window_end"], bar["version"], bar["symbol"]) == (T0 + W, 4, "AAPL")
    none = compute_aggregate("X", T0, W, [(T0, Decimal(1), None)])
    assert json.loads(bar_json(none, window_ms=W, version=1))["vwap"] is None


def test_bars_are_packed_by_symbol_within_the_entry_size():
    aggs = [_agg(f"S{i:03d}", T0 + k * W) for i in range(400) for k in range(3)]
    bars = [(a["symbol"], a["window_start"], bar_json(a, window_ms=W, version=1)) for a in aggs]
    events = pack_bars(reversed(bars), overhead_bytes=40, max_entry_bytes=64_000)
    assert 1 < len(events) < 20
    seen = []
    for detail, keys in events:
        assert len(detail.encode()) + 40 <= 64_000
        doc = json.loads(detail)
        assert doc["symbols"] == sorted(set(doc["symbols"]))
        assert [(b["symbol"], b["window_start"]) for b in decode_bars(detail)] == keys
        assert {b["symbol"] for b in doc["bars"]} == set(doc["symbols"])
        seen += keys
    assert seen == sorted((a["symbol"], a["window_start"]) for a in aggs)  # every bar once, in order


# --- per-window retries --------------------------------------------------------------------
def test_retry_state_round_trips_and_malformed_state_is_refused():
    failure = Failure(WindowTask("AAPL", T0), "PutEvents: ThrottlingException", permanent=False)
    (retries, dead) = plan([failure], now_ms=T0 + W)
    assert dead == [] and len(retries) == 1
    body, delay = retries[0]
    assert delay == 30
    [task] = decode_tasks(body)
    assert task == WindowTask("AAPL", T0, attempt=1, since=T0 + W)
    with pytest.raises(WireFormatError, match="retry state"):
        decode_tasks('{"v":1,"points":0,"windows":[["A",0]],"retry":{"attempt":"x","since":1}}')


def test_backoff_doubles_to_the_sqs_maximum_and_stops_after_a_day():
    task = WindowTask("A", T0, attempt=4, since=T0)
    assert next_step(Failure(task, "x", False), T0 + 1000) == ("retry", 480)
    assert next_step(Failure(WindowTask("A", T0, 9, T0), "x", False), T0 + 1000) == ("retry", 900)
    assert next_step(Failure(task, "x", False), T0 + MAX_RETRY_AGE_MS) == ("dead_letter", 0)
    assert next_step(Failure(WindowTask("A", T0), "x", True), T0) == ("dead_letter", 0)


def test_dead_letters_carry_their_reason_and_redrive_with_a_fresh_budget():
    failure = Failure(WindowTask("AAPL", T0, 2, T0), "volume 1E+40 has 41 digits", permanent=True)
    retries, dead = plan([failure], now_ms=T0 + 10)
    assert retries == [] and len(dead) == 1
    body, reason = dead[0]
    assert reason == "volume 1E+40 has 41 digits"
    assert json.loads(body)["dead_letter"] == {"reason": reason, "attempts": 3, "since": T0}
    assert decode_tasks(body) == [WindowTask("AAPL", T0)]  # redriven: attempt 0 again


def test_merge_keeps_the_failure_count():
    tasks = [WindowTask("A", T0), WindowTask("A", T0, 3, T0), WindowTask("B", T0)]
    assert merge(tasks) == {("A", T0): WindowTask("A", T0, 3, T0), ("B", T0): WindowTask("B", T0)}


def test_oracle_agrees_with_decimal_on_simple_cases():
    with localcontext() as ctx:
        ctx.rounding = ROUND_HALF_EVEN
        assert oracle_vwap([(Decimal("9.9375"), 1)]) == Decimal("9.9375")
        assert oracle_vwap([(Decimal(1), 3), (Decimal(2), 0)]) == Decimal(1)
