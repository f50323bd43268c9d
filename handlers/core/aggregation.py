"""Five-minute OHLC / VWAP aggregates, computed exactly, and whether DynamoDB can store them.

For the points of one symbol in the UTC window [start, start + 300 s), in timestamp
order: open = price of the earliest point, close = price of the latest, high / low =
max / min price, count = number of points, volume = sum of volumes (absent = 0),
vwap = sum(price x volume) / sum(volume), or None when that volume is 0.

Rounding: open, high, low, close and volume are exact copies / sums of stored values.
Only vwap is rounded, once: sum(price x volume) is computed exactly in integers (each
price is an integer coefficient times a power of ten; the terms are brought to the
smallest exponent among them, so no digit is ever dropped however far apart the
magnitudes are), and the exact quotient by the volume is rounded half-even to
`VWAP_DIGITS` (12) significant digits by Decimal division, which the General Decimal
Arithmetic specification requires to be correctly rounded.

DynamoDB's Number type holds at most 38 significant digits (leading and trailing zeros
trimmed), with a magnitude from 1E-130 to 9.9999999999999999999999999999999999999E+125
(DynamoDB developer guide, "Supported data types": Number). `unstorable_reason` says
which field of an aggregate does not fit, so the caller can isolate that window with a
clear reason instead of failing a whole round on DynamoDB's ValidationException.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

VWAP_DIGITS = 12
_VWAP = Context(prec=VWAP_DIGITS, rounding=ROUND_HALF_EVEN)
DYNAMODB_MAX_DIGITS = 38
DYNAMODB_MIN_MAGNITUDE = Decimal("1E-130")
DYNAMODB_MAX_MAGNITUDE = Decimal("9.9999999999999999999999999999999999999E+125")
# Prices read back from DynamoDB have exponents within about -167 .. +125; a larger
# spread can only come from a hand-made message. Refuse it rather than build an
# integer of millions of digits.
MAX_EXPONENT_SPREAD = 400
STORED_FIELDS = ("open", "high", "low", "close", "volume", "vwap")


def exact_vwap(terms: Iterable[tuple[Decimal, int]]) -> Decimal | None:
    """sum(price x volume) / sum(volume), exact, rounded once half-even to 12 digits.

    `terms` are (price, volume) pairs; a zero volume adds nothing. None when the total
    volume is 0.
    """
    weighted: list[tuple[int, int, int]] = []  # (coefficient, exponent, volume)
    volume = 0
    for price, vol in terms:
        if not vol:
            continue
        if not price.is_finite():
            raise ValueError(f"price {price} is not finite")
        sign, digits, exponent = price.as_tuple()
        assert isinstance(exponent, int)  # finite, checked above
        coefficient = int("".join(map(str, digits)) or "0")
        weighted.append((-coefficient if sign else coefficient, exponent, vol))
        volume += vol
    if not volume:
        return None
    low = min(exponent for _, exponent, _ in weighted)
    high = max(exponent for _, exponent, _ in weighted)
    if high - low > MAX_EXPONENT_SPREAD:
        raise ValueError(f"prices span {high - low} decimal orders of magnitude; at most {MAX_EXPONENT_SPREAD}")
    notional = sum(coefficient * vol * 10 ** (exponent - low) for coefficient, exponent, vol in weighted)
    # Decimal(str) is exact whatever the context; the division is the only rounding.
    return _VWAP.divide(Decimal(f"{notional}E{low}"), Decimal(volume))


def compute_aggregate(
    symbol: str, window_start: int, window_ms: int, points: Iterable[tuple[int, Decimal, int | None]]
) -> dict[str, Any] | None:
    """Aggregate (timestamp, price, volume) tuples of one window; None if there are none."""
    first_ts = last_ts = None
    open_ = close = high = low = None
    count = 0
    volume = 0
    terms: list[tuple[Decimal, int]] = []
    for ts, price, vol in points:
        if not window_start <= ts < window_start + window_ms:
            raise ValueError(f"point at {ts} is outside window {window_start}")
        count += 1
        if first_ts is None or ts < first_ts:
            first_ts, open_ = ts, price
        if last_ts is None or ts > last_ts:
            last_ts, close = ts, price
        high = price if high is None or price > high else high
        low = price if low is None or price < low else low
        if vol:
            volume += vol
            terms.append((price, vol))
    if count == 0:
        return None
    return {
        "symbol": symbol,
        "window_start": window_start,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "count": count,
        "volume": volume,
        "vwap": exact_vwap(terms),
    }


def fits_dynamodb_number(value: Decimal | int) -> str | None:
    """None if DynamoDB can store `value` as a Number; otherwise why not (one line)."""
    number = Decimal(value)
    if not number.is_finite():
        return f"{number} is not a finite number"
    if number.is_zero():
        return None
    digits = len("".join(map(str, number.as_tuple().digits)).strip("0"))  # DynamoDB trims zeros
    if digits > DYNAMODB_MAX_DIGITS:
        return f"has {digits} significant digits, more than DynamoDB's {DYNAMODB_MAX_DIGITS}"
    magnitude = number.copy_abs()  # exact (abs() would round to the context)
    if magnitude > DYNAMODB_MAX_MAGNITUDE:
        return "is larger than DynamoDB's largest number (9.99...E+125)"
    if magnitude < DYNAMODB_MIN_MAGNITUDE:
        return "is smaller in magnitude than DynamoDB's smallest number (1E-130)"
    return None


def unstorable_reason(agg: dict[str, Any]) -> str | None:
    """None if every number of the aggregate fits DynamoDB's Number type, else the reason."""
    for field in STORED_FIELDS:
        value = agg.get(field)
        if value is None:
            continue
        problem = fits_dynamodb_number(value)
        if problem is not None:
            return f"{field} {short(value)} {problem}"
    return None


def short(value: Decimal | int) -> str:
    text = str(value)
    return text if len(text) <= 48 else f"{text[:20]}...{text[-12:]} ({len(text)} characters)"
