"""Validation and normalization of one market-data record into a `Point`.

A record is a mapping of field names to values, as decoded from JSON or CSV. The
rules (docs/input-contract.md):

- `symbol`: required; a string, stripped and upper-cased, 1-12 of A-Z 0-9 . -.
  When a record has none (absent or empty), the caller's `default_symbol` (the first
  segment of the S3 key, when that segment is itself a valid symbol) is used.
- `price`: required; finite and > 0, at most 38 significant digits (DynamoDB numbers).
  JSON records must give a JSON number; CSV cells are text and are parsed.
- `timestamp`: epoch seconds (|value| < 1e11), epoch milliseconds (otherwise), or ISO
  8601 with or without an offset (no offset means UTC); normalized to integer epoch
  milliseconds UTC (fractions of a millisecond are floored). Accepted range:
  1900-01-01 up to 24 h after the current time. A record without one gets
  `default_timestamp_ms` (the API's receipt time) or is rejected (S3 objects).
- `volume`: optional (absent, null or empty); an integer >= 0.
- Field names are matched case-insensitively; unknown fields are dropped.

Everything is exact: prices stay `Decimal` as written, never float.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NamedTuple

SYMBOL_RE = re.compile(r"[A-Z0-9.\-]{1,12}")
# Epoch numbers with an absolute value below this are seconds, otherwise milliseconds.
# 1e11 s is the year 5138; 1e11 ms is 1973-03-03, so millisecond timestamps before
# March 1973 cannot be written as plain numbers (use ISO 8601 for those).
SECONDS_MS_THRESHOLD = 100_000_000_000
MIN_TIMESTAMP_MS = -2_208_988_800_000  # 1900-01-01T00:00:00Z
MAX_FUTURE_MS = 24 * 3600 * 1000  # a timestamp may lie at most 24 h in the future
MAX_DIGITS = 38  # DynamoDB numbers: up to 38 significant digits
_NUMERIC_RE = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class Point(NamedTuple):
    """One validated market-data point. `timestamp` is epoch ms UTC."""

    symbol: str
    timestamp: int
    price: Decimal
    volume: int | None


class Rejected(ValueError):
    """A record failed validation; `str(exc)` is the one-line reason."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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


def symbol_from_key(key: str) -> str | None:
    """The symbol implied by an S3 key's first segment (`AAPL/2024-06-01.csv`), if any."""
    if "/" not in key:
        return None
    head = key.split("/", 1)[0].strip().upper()
    return head if SYMBOL_RE.fullmatch(head) else None


def parse_symbol(value: Any, default: str | None) -> str:
    if value is None or value == "":
        if default is None:
            raise Rejected("missing symbol")
        return default
    if not isinstance(value, str):
        raise Rejected(f"symbol must be a string, got {_type_name(value)}")
    if _has_bad_text(value):
        raise Rejected("symbol is not valid UTF-8")
    symbol = value.strip().upper()
    if not SYMBOL_RE.fullmatch(symbol):
        raise Rejected(f"invalid symbol {_show(value)} (1-12 of A-Z 0-9 . -)")
    return symbol


def _to_decimal(value: Any, field: str, *, text_ok: bool) -> Decimal:
    if isinstance(value, bool) or value is None:
        raise Rejected(f"{field} must be a number, got {_type_name(value)}")
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            shown = "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
            raise Rejected(f"{field} must be finite, got {shown}")
        return Decimal(repr(value))
    if isinstance(value, str) and text_ok:
        text = value.strip()
        if _has_bad_text(text):
            raise Rejected(f"{field} is not valid UTF-8")
        if text.lower() in ("nan", "+nan", "-nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"):
            raise Rejected(f"{field} must be finite, got {_show(value)}")
        if not _NUMERIC_RE.fullmatch(text):
            raise Rejected(f"{field} is not a number: {_show(value)}")
        try:
            return Decimal(text)
        except InvalidOperation:  # pragma: no cover - the regex admits only valid text
            raise Rejected(f"{field} is not a number: {_show(value)}") from None
    raise Rejected(f"{field} must be a number, got {_type_name(value)}")


def _fits_dynamodb(value: Decimal) -> bool:
    digits = value.as_tuple().digits
    significant = len("".join(map(str, digits)).rstrip("0")) or 1
    return significant <= MAX_DIGITS and -130 <= value.adjusted() <= 125


def parse_price(value: Any, *, text_ok: bool) -> Decimal:
    if value is None or value == "":
        raise Rejected("missing price")
    price = _to_decimal(value, "price", text_ok=text_ok)
    if not price.is_finite():
        raise Rejected(f"price must be finite, got {_show(value)}")
    if price <= 0:
        raise Rejected(f"price must be > 0, got {_show(value)}")
    if not _fits_dynamodb(price):
        raise Rejected(f"price out of range (at most {MAX_DIGITS} significant digits)")
    return price


def parse_volume(value: Any, *, text_ok: bool) -> int | None:
    if value is None or value == "":
        return None
    volume = _to_decimal(value, "volume", text_ok=text_ok)
    if not volume.is_finite() or volume != volume.to_integral_value():
        raise Rejected(f"volume must be an integer >= 0, got {_show(value)}")
    if volume < 0:
        raise Rejected(f"volume must be an integer >= 0, got {_show(value)}")
    if volume.adjusted() >= MAX_DIGITS:
        raise Rejected(f"volume out of range (at most {MAX_DIGITS} digits)")
    return int(volume)


def _epoch_ms(number: Decimal) -> int:
    if abs(number) < SECONDS_MS_THRESHOLD:
        number = number * 1000
    return math.floor(number)


def parse_timestamp(value: Any, *, now_ms: int) -> int:
    if isinstance(value, bool):
        raise Rejected("timestamp must be a number or an ISO 8601 string, got boolean")
    if isinstance(value, (int, float, Decimal)):
        number = _to_decimal(value, "timestamp", text_ok=False)
        if not number.is_finite():
            raise Rejected(f"timestamp must be finite, got {_show(value)}")
        if abs(number) > Decimal(10) ** 18:
            raise Rejected(f"timestamp out of range: {_show(value)}")
        ms = _epoch_ms(number)
    elif isinstance(value, str):
        text = value.strip()
        if _has_bad_text(text):
            raise Rejected("timestamp is not valid UTF-8")
        if _NUMERIC_RE.fullmatch(text) and len(text) <= 40:
            ms = _epoch_ms(Decimal(text))
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise Rejected(f"unparsable timestamp {_show(value)}") from None
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
            ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
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
    fields: dict[str, Any] = {}
    for name, value in record.items():
        if isinstance(name, str):
            fields[name.strip().lower()] = value
    symbol = parse_symbol(fields.get("symbol"), default_symbol)
    price = parse_price(fields.get("price"), text_ok=text_fields)
    raw_ts = fields.get("timestamp")
    if raw_ts is None or raw_ts == "":
        if default_timestamp_ms is None:
            raise Rejected("missing timestamp")
        timestamp = default_timestamp_ms
    else:
        timestamp = parse_timestamp(raw_ts, now_ms=now_ms)
    volume = parse_volume(fields.get("volume"), text_ok=text_fields)
    return Point(symbol, timestamp, price, volume)
