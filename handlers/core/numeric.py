"""Numbers and timestamps read with magnitude and precision bounded before any arithmetic.

Python's `Decimal` builds a value of any exponent exactly, but arithmetic on it does
not stay cheap or safe: `abs(Decimal("1E+1000000"))` raises `Overflow` (the default
context's Emax is 999,999), `math.floor(Decimal("1e999999"))` builds a million-digit
integer (~30 s), `Decimal("1e" + "9" * 20)` raises `InvalidOperation`, and the default
28-digit context rounds `1717236299.99999999999999999999 * 1000` up into the next
5-minute window. So every value is checked here, by its exponent and digit count,
before anything is computed from it, and each bound has its own rejection reason
(docs/input-contract.md, "Number limits"):

- a number text (JSON number or CSV cell) whose exponent has more than
  `MAX_EXPONENT_DIGITS` digits: `<field> out of range (exponent of more than 6 digits)`;
- a timestamp number: `timestamp out of range` beyond 1E+18 in absolute value,
  `timestamp has more than 40 digits`; then exact arithmetic (an 80-digit context),
  floored to the millisecond;
- an ISO 8601 timestamp: `timestamp is not a valid date and time`, `timestamp offset
  out of range`; the instant is computed in integers (days since the epoch), so no
  year / offset combination can overflow `datetime` (0001-01-01T00:00:00+01:00 is
  simply before 1900).
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_FLOOR, Context, Decimal
from typing import Any

MAX_EXPONENT_DIGITS = 6  # |exponent| <= 999,999: a number beyond it is far out of every range
MAX_TIMESTAMP_DIGITS = 40  # digits of an epoch number (1717236000.123456789 has 19)
MAX_TIMESTAMP_MAGNITUDE_EXPONENT = 17  # |timestamp| < 1E+18
# Epoch numbers with an absolute value below this are seconds, otherwise milliseconds.
SECONDS_MS_THRESHOLD = 100_000_000_000
_EXACT = Context(prec=80)  # <= 40 digits x 1000: exact, and then floored exactly
_NUMERIC_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class Rejected(ValueError):
    """A record failed validation; `str(exc)` is the one-line reason."""


def show(value: Any) -> str:
    """`repr(value)` cut to 40 characters, for a reason."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class HugeNumber:
    """A JSON number whose exponent is too long to be a `Decimal` we compute with.

    The JSON decoder hands it to validation, which rejects the record with
    `<field> out of range` (one record, never the document).
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _exponent_too_long(text: str) -> bool:
    cut = max(text.rfind("e"), text.rfind("E"))
    if cut < 0:
        return False
    digits = text[cut + 1 :].lstrip("+-").lstrip("0")
    return len(digits) > MAX_EXPONENT_DIGITS


def json_number(text: str) -> Decimal | HugeNumber:
    """The `parse_float` hook of the JSON decoder: exact, or `HugeNumber`."""
    if len(text) > MAX_EXPONENT_DIGITS + 2 and ("e" in text or "E" in text) and _exponent_too_long(text):
        return HugeNumber(text)
    return Decimal(text)


def out_of_range(field: str, value: Any) -> Rejected:
    return Rejected(f"{field} out of range (exponent of more than {MAX_EXPONENT_DIGITS} digits): {show(value)}")


def decimal_from_text(text: str, field: str, value: Any) -> Decimal | None:
    """A number text (already stripped) as an exact Decimal; None when it is not one."""
    if not _NUMERIC_RE.fullmatch(text):
        return None
    if _exponent_too_long(text):
        raise out_of_range(field, value)
    return Decimal(text)


def epoch_ms(number: Decimal, value: Any) -> int:
    """Epoch seconds (|n| < 1e11) or milliseconds to integer ms, floored; bounds first."""
    if not number.is_finite():
        raise Rejected(f"timestamp must be finite, got {show(value)}")
    if number.is_zero():
        return 0
    if number.adjusted() > MAX_TIMESTAMP_MAGNITUDE_EXPONENT:
        raise Rejected(f"timestamp out of range: {show(value)}")
    if len(number.as_tuple().digits) > MAX_TIMESTAMP_DIGITS:
        raise Rejected(f"timestamp has more than {MAX_TIMESTAMP_DIGITS} digits: {show(value)}")
    if number.adjusted() < -3:  # below a millisecond even as seconds
        return 0 if number > 0 else -1
    if number.copy_abs() < SECONDS_MS_THRESHOLD:
        number = _EXACT.multiply(number, 1000)
    return int(number.to_integral_value(rounding=ROUND_FLOOR, context=_EXACT))


# RFC 3339 date-time (`T`/`t`/space, `Z`/`z`, seconds and fraction optional as ISO
# 8601 extended format allows; `,` or `.` before the fraction); or a date alone.
_ISO_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
    r"(?:[Tt ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:[.,]([0-9]+))?)?"
    r"([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?)?"
)


def iso_ms(text: str, value: Any) -> int | None:
    """Epoch ms of an ISO 8601 / RFC 3339 date-time; None if `text` is not in that grammar.

    Every field is at most 2-4 digits (the grammar), the calendar is checked by
    `date()`, and the instant is integer arithmetic: nothing here can overflow.
    """
    match = _ISO_RE.fullmatch(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    h, m, s = int(hour or 0), int(minute or 0), int(second or 0)
    try:
        ordinal = date(int(year), int(month), int(day)).toordinal()
    except ValueError:
        ordinal = -1
    if ordinal < 0 or h > 23 or m > 59 or s > 60:
        raise Rejected(f"timestamp is not a valid date and time: {show(value)}")
    seconds = (ordinal - _EPOCH_ORDINAL) * 86_400 + h * 3600 + m * 60 + min(s, 59)
    if offset and offset not in ("Z", "z"):
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            raise Rejected(f"timestamp offset out of range (at most 23:59): {show(value)}")
        shift = hours * 3600 + minutes * 60
        seconds = seconds - shift if offset[0] == "+" else seconds + shift
    if s == 60:
        # A leap second exists only as 23:59:60 UTC; epoch time has no slot for it, so
        # it is folded into the day's last millisecond (same day, same 5-minute window).
        if seconds % 86_400 != 86_399:
            raise Rejected(f"second 60 is only valid as the leap second 23:59:60 UTC: {show(value)}")
        return seconds * 1000 + 999
    return seconds * 1000 + int((fraction or "0")[:3].ljust(3, "0"))
