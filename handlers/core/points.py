"""Validation and normalization of one market-data record into a `Point`.

A record is a mapping of field names to values, as decoded from JSON or CSV. The
rules (docs/input-contract.md):

- `symbol`: required; an ASCII string, stripped and upper-cased, 1-12 of A-Z 0-9 . -.
  When a record has none (absent or empty), the caller's `default_symbol` is used:
  the symbol an S3 key names by the documented layout (`key_symbol`).
- `price`: required; finite, > 0, below `MAX_NOTIONAL` (1E+15), at least 1E-130 and
  with at most 38 significant digits (DynamoDB's Number; trailing zeros not counted):
  every float a standard encoder prints (17 significant digits at most, `repr(1/150)`
  = 0.006666666666666667, `1e-08`) fits. JSON records must give a JSON number; CSV
  cells are text and are parsed.
- `volume`: optional (absent, null or empty); an integer >= 0, below `MAX_VOLUME`
  (1E+32), with price x volume below `MAX_NOTIONAL`.
- `timestamp`: epoch seconds (|value| < 1e11), epoch milliseconds (otherwise), or an
  RFC 3339 / ISO 8601 extended date-time (`_ISO_RE`; no offset means UTC); normalized
  to integer epoch milliseconds UTC (fractions of a millisecond are floored). A leap
  second (`23:59:60` UTC) is folded into 23:59:59.999. Accepted range: 1900-01-01 up
  to 24 h after the current time. A record without one gets `default_timestamp_ms`
  (the API's receipt time) or is rejected (S3 objects).
- Field names are matched case-insensitively and without surrounding blanks
  (`fold_name`, the CSV header's rule too); a record that gives one name twice
  (`price` and `Price`) is rejected, never resolved by order. Unknown fields are dropped.
- A text cell of blanks only is empty (`is_blank`): `" "` is a missing symbol, volume
  or timestamp, as on every path.

Why these number limits: every stored number must fit DynamoDB's Number type - at
most 38 significant digits, magnitude 1E-130 to 9.9999999999999999999999999999999999999E+125
(DynamoDB Developer Guide, "Supported data types and naming rules", Number) - and every
aggregate except vwap must be exact. A window's stored aggregates are open / high /
low / close (copies of prices: so a price is itself a DynamoDB number, the bound
above), volume (an exact integer sum of at most `MAX_POINTS_PER_WINDOW` = 300,000
volumes below 1E+32: below 3E+37, 38 digits) and vwap (rounded once to 12 significant
digits, between the lowest and highest price, so within 1E-130 .. 1E+15). The vwap
numerator sum(price x volume) is never stored: the aggregator computes it exactly in
Python integers (handlers/core/aggregation.py), so it needs no decimal-places bound -
the 17-decimal rule this replaces refused `repr(1/150)`. price x volume < 1E+15 keeps
that integer small (a window's numerator below 3E+20). `_check_limits` re-derives this
at import.

Everything is exact: prices stay `Decimal` as written, never float.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from decimal import Context, Decimal
from typing import Any, NamedTuple

from .numeric import SECONDS_MS_THRESHOLD, HugeNumber, Rejected, decimal_from_text, epoch_ms, iso_ms, out_of_range, show

__all__ = ["SECONDS_MS_THRESHOLD", "Point", "Rejected", "key_symbol", "validate"]

SYMBOL_RE = re.compile(r"[A-Z0-9.\-]{1,12}")
# SECONDS_MS_THRESHOLD (numeric.py): epoch numbers below 1e11 are seconds, others ms.
# 1e11 s is the year 5138; 1e11 ms is 1973-03-03, so millisecond timestamps before
# March 1973 cannot be written as plain numbers (use ISO 8601 for those).
MIN_TIMESTAMP_MS = -2_208_988_800_000  # 1900-01-01T00:00:00Z
MAX_FUTURE_MS = 24 * 3600 * 1000  # a timestamp may lie at most 24 h in the future
MAX_DIGITS = 38  # DynamoDB numbers: up to 38 significant digits
DYNAMODB_MAX_EXPONENT = 125  # largest adjusted exponent of a DynamoDB number
DYNAMODB_MIN_EXPONENT = -130  # smallest
MAX_NOTIONAL = Decimal("1E+15")  # price, and price x volume, are below this
MAX_VOLUME = 10**32  # volume is below this: 300,000 of them sum to < 3E+37 (38 digits)
MAX_POINTS_PER_WINDOW = 300_000  # one point per (symbol, millisecond) in 300 s
MAX_INT_BITS = 199  # an integer below 2**199 (about 8E+59) has at most 60 digits; no field holds more
_EXACT = Context(prec=80)  # price (<= 38 digits) x volume (< 1E+32): exact in 80 digits


def _check_limits() -> None:
    """The derivation in the module docstring, as arithmetic: fail at import if edited wrongly."""
    volume_sum = MAX_POINTS_PER_WINDOW * (MAX_VOLUME - 1)
    assert len(str(volume_sum)) <= MAX_DIGITS, "sum(volume) would not fit 38 digits"
    assert MAX_NOTIONAL.adjusted() <= DYNAMODB_MAX_EXPONENT, "a price would not fit DynamoDB"
    assert _EXACT.prec >= MAX_DIGITS + len(str(MAX_VOLUME)), "price x volume would be rounded"


_check_limits()


class Point(NamedTuple):
    """One validated market-data point. `timestamp` is epoch ms UTC."""

    symbol: str
    timestamp: int
    price: Decimal
    volume: int | None


_show = show


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float, Decimal)):
        return "number"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


_BAD_BYTE = re.compile("[\udc80-\udcff]")


def _has_bad_text(text: str) -> bool:
    # Parsers decode with errors="surrogateescape": undecodable bytes become lone
    # surrogates, which is how a wrong-encoding record is recognised here.
    return not text.isascii() and _BAD_BYTE.search(text) is not None


def _as_symbol(text: str) -> str | None:
    """`text` stripped and upper-cased if it is an ASCII symbol, else None.

    ASCII first: str.upper() maps 'ſ' to 'S' and 'ı' to 'I', so `ſpy` would become SPY.
    """
    text = text.strip()
    if not text.isascii():
        return None
    symbol = text.upper()
    return symbol if SYMBOL_RE.fullmatch(symbol) else None


class KeySymbol(NamedTuple):
    """The symbol an S3 key names, and which part of the key named it."""

    symbol: str
    origin: str  # e.g. "key segment 'symbol=AAPL/'" or "parent folder 'AAPL/'"


# Folder names that say what a folder holds, not which symbol: never a key's symbol,
# whatever their case (a symbol spelled like one needs `symbol=XYZ/`). Matched after
# upper-casing; docs/input-contract.md lists them.
GENERIC_FOLDERS = frozenset(
    """RAW INCOMING INBOX INPUT INPUTS IN UPLOAD UPLOADS DATA FILES FEED FEEDS LANDING STAGING
    ARCHIVE ARCHIVES TMP TEMP NEW OLD DAILY HOURLY EXPORT EXPORTS IMPORT IMPORTS CSV JSON JSONL
    NDJSON GZ TEST TESTS SAMPLE SAMPLES BACKUP BACKUPS DROP DROPS PENDING PROCESSED OUT OUTPUT
    QUOTES TRADES TICKS PRICES POINTS BARS MARKET MARKETDATA LATEST CURRENT BATCH BATCHES""".split()
)


def generic_folder(key: str) -> str | None:
    """The key's parent folder when it would be a symbol but is a generic name, else None."""
    folders = key.split("/")[:-1]
    if not folders or any(f[:7].lower() == "symbol=" for f in folders):
        return None
    symbol = _as_symbol(folders[-1])
    return folders[-1] if symbol is not None and symbol in GENERIC_FOLDERS else None


def key_symbol(key: str) -> KeySymbol | None:
    """The symbol an S3 key names by the documented layout, or None.

    1. A folder segment `symbol=XYZ` (any depth, Hive style): XYZ. Several that disagree,
       or one that is not a valid symbol, name none (never a guess).
    2. Otherwise the object's immediate parent folder, when it is a valid symbol with at
       least one letter and not a generic name (`GENERIC_FOLDERS`: `raw/`, `incoming/`,
       ...) (`.../AAPL/2024-06-03.csv`; a date folder such as `2024/06/` or `03/` is not
       a symbol). Deeper ancestors are never used.
    """
    folders = key.split("/")[:-1]
    tagged = [f for f in folders if f[:7].lower() == "symbol="]
    if tagged:
        found = {_as_symbol(f[7:]) for f in tagged}
        if len(found) != 1 or None in found:
            return None
        symbol = found.pop()
        assert symbol is not None
        return KeySymbol(symbol, f"key segment '{tagged[-1]}/'")
    if not folders:
        return None
    parent = folders[-1]
    symbol = _as_symbol(parent)
    if symbol is None or not any("A" <= c <= "Z" for c in symbol) or symbol in GENERIC_FOLDERS:
        return None
    return KeySymbol(symbol, f"parent folder '{parent}/'")


def symbol_from_key(key: str) -> str | None:
    """The symbol an S3 key names (`key_symbol`), or None."""
    found = key_symbol(key)
    return found.symbol if found else None


def is_blank(value: Any) -> bool:
    """Absent, null, or a text of blanks only: a cell is stripped before the empty test."""
    return value is None or (isinstance(value, str) and not value.strip())


class NamedTwice(dict[str, Any]):
    """A decoded JSON object that gave one key twice (`{"price": 1, "price": 2}`).

    The JSON decoder keeps the last value of a repeated key silently; the parsers'
    `object_pairs_hook` returns this instead, so that validation refuses the record.
    """

    twice: str = ""


def json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """The parsers' `object_pairs_hook`: a dict, or `NamedTwice` when a key repeats."""
    found = dict(pairs)
    if len(found) == len(pairs):
        return found
    named = NamedTwice(found)
    seen: set[str] = set()
    named.twice = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
    return named


def fold_name(name: str) -> str:
    """The field-name rule of every path (JSON keys, CSV header): stripped, lower-cased."""
    return name.strip().lower()


def parse_symbol(value: Any, default: str | None) -> str:
    if is_blank(value):
        if default is None:
            raise Rejected("missing symbol")
        return default
    if not isinstance(value, str):
        raise Rejected(f"symbol must be a string, got {_type_name(value)}")
    if _has_bad_text(value):
        raise Rejected("symbol is not valid UTF-8")
    symbol = _as_symbol(value)
    if symbol is None:
        raise Rejected(f"invalid symbol {_show(value)} (1-12 of ASCII A-Z 0-9 . -)")
    return symbol


def _to_decimal(value: Any, field: str, *, text_ok: bool) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise Rejected(f"{field} must be a number, got {_type_name(value)}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:  # converting or printing it costs quadratic time
            raise Rejected(f"{field} out of range (an integer of more than 60 digits)")
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            raise Rejected(f"{field} must be finite, got {shown}")
        return Decimal(repr(value))
    if isinstance(value, HugeNumber):
        raise out_of_range(field, value)
    if isinstance(value, str) and text_ok:
        text = value.strip()
        if _has_bad_text(text):
            raise Rejected(f"{field} is not valid UTF-8")
        if text.lower() in ("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"):
            raise Rejected(f"{field} must be finite, got {_show(value)}")
        number = decimal_from_text(text, field, value)
        if number is None:
            raise Rejected(f"{field} is not a number: {_show(value)}")
        return number
    raise Rejected(f"{field} must be a number, got {_type_name(value)}")


def _decimal_places(value: Decimal) -> int:
    """Decimal places of a finite value once trailing zeros are dropped (no rounding)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:
        return 0
    zeros = len(digits) - len(bytes(digits).rstrip(b"\0")) if any(digits) else len(digits)
    return max(0, -(exponent + zeros))


def parse_price(value: Any, *, text_ok: bool) -> Decimal:
    if is_blank(value):
        raise Rejected("missing price")
    price = _to_decimal(value, "price", text_ok=text_ok)
    if not price.is_finite():
        raise Rejected(f"price must be finite, got {_show(value)}")
    if price <= 0:
        raise Rejected(f"price must be > 0, got {_show(value)}")
    if price >= MAX_NOTIONAL:
        raise Rejected(f"price out of range: must be below 1E+15, got {_show(value)}")
    if price.adjusted() < DYNAMODB_MIN_EXPONENT:
        raise Rejected(f"price out of range: must be at least 1E-130 (DynamoDB's smallest number), got {_show(value)}")
    digits = price.as_tuple().digits
    if len(digits) > MAX_DIGITS:
        significant = len(bytes(digits).rstrip(b"\0"))
        if significant > MAX_DIGITS:
            raise Rejected(
                f"price has more than {MAX_DIGITS} significant digits (DynamoDB's precision): {_show(value)}"
            )
        # only trailing zeros beyond 38 digits: drop them (exact), DynamoDB would trim them
        price = price.quantize(Decimal(1).scaleb(-_decimal_places(price)), context=_EXACT)
    return price


def _is_integral(value: Decimal) -> bool:
    """Whether a finite value is a whole number, from its digits (no arithmetic, any exponent)."""
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    return exponent >= 0 or not any(digits[exponent:])


def parse_volume(value: Any, price: Decimal, *, text_ok: bool) -> int | None:
    if is_blank(value):
        return None
    volume = _to_decimal(value, "volume", text_ok=text_ok)
    if not volume.is_finite() or not _is_integral(volume) or volume < 0:
        raise Rejected(f"volume must be an integer >= 0, got {_show(value)}")
    # Compare magnitudes before multiplying (cheap), then exactly.
    if volume and (volume.adjusted() + price.adjusted() >= 16 or _EXACT.multiply(price, volume) >= MAX_NOTIONAL):
        raise Rejected(
            f"price x volume out of range: must be below 1E+15 (keeps a window's vwap numerator small), "
            f"got volume {_show(value)}"
        )
    if volume >= MAX_VOLUME:  # only reachable with a price below 1E-17
        raise Rejected(
            f"volume out of range: must be below 1E+32 (a window's volume sum must fit DynamoDB's 38 digits), "
            f"got {_show(value)}"
        )
    return int(volume)


def parse_timestamp(value: Any, *, now_ms: int) -> int:
    if isinstance(value, bool):
        raise Rejected("timestamp must be a number or an ISO 8601 string, got boolean")
    if isinstance(value, (int, float, Decimal, HugeNumber)):
        ms = epoch_ms(_to_decimal(value, "timestamp", text_ok=False), value)
    elif isinstance(value, str):
        text = value.strip()
        if _has_bad_text(text):
            raise Rejected("timestamp is not valid UTF-8")
        number = decimal_from_text(text, "timestamp", value)
        if number is not None:
            ms = epoch_ms(number, value)
        else:
            found = iso_ms(text, value)
            if found is None:
                raise Rejected(f"unparsable timestamp {_show(value)}")
            ms = found
    else:
        raise Rejected(f"timestamp must be a number or an ISO 8601 string, got {_type_name(value)}")
    if ms < MIN_TIMESTAMP_MS:
        raise Rejected(f"timestamp before 1900-01-01: {_show(value)}")
    if ms > now_ms + MAX_FUTURE_MS:
        raise Rejected(f"timestamp more than 24 h in the future: {_show(value)}")
    return ms


def validate(
    record: Any,
    *,
    now_ms: int,
    default_symbol: str | None = None,
    default_timestamp_ms: int | None = None,
    text_fields: bool = False,
) -> Point:
    """Validate one record and return its `Point`, or raise `Rejected` with the reason.

    `text_fields` is True for CSV, whose cells are all text: numbers are then parsed
    from strings. JSON records must use JSON numbers for price and volume.
    """
    if not isinstance(record, Mapping):
        raise Rejected(f"record must be a JSON object, got {_type_name(record)}")
    if type(record) is NamedTwice:
        raise Rejected(f"field {fold_name(record.twice)!r} given twice (the key {record.twice!r} repeats)")
    fields: dict[str, Any] = {}
    for name, value in record.items():
        if isinstance(name, str):
            folded = fold_name(name)
            if folded in fields:
                first = next(n for n in record if isinstance(n, str) and fold_name(n) == folded)
                raise Rejected(f"field {folded!r} given twice ({first!r} and {name!r}); names are case-insensitive")
            fields[folded] = value
    symbol = parse_symbol(fields.get("symbol"), default_symbol)
    price = parse_price(fields.get("price"), text_ok=text_fields)
    raw_ts = fields.get("timestamp")
    if is_blank(raw_ts):
        if default_timestamp_ms is None:
            raise Rejected("missing timestamp")
        timestamp = default_timestamp_ms
    else:
        timestamp = parse_timestamp(raw_ts, now_ms=now_ms)
    volume = parse_volume(fields.get("volume"), price, text_ok=text_fields)
    return Point(symbol, timestamp, price, volume)
