"""The values day-2 commands read and write: times and durations, and JSON whose numbers stay exact."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from market_cfn.base.errors import UsageError

# --- Time ---------------------------------------------------------------------------

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """`90s`, `15m`, `2h`, `7d`, `1w` -> a positive timedelta."""
    match = _DURATION.match(text.strip().lower())
    if not match or float(match.group(1)) <= 0:
        raise UsageError(f"bad duration {text!r} (expected a number and a unit: 30s, 15m, 2h, 7d, 1w)")
    return timedelta(seconds=float(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def parse_time(text: str, *, now: datetime | None = None) -> datetime:
    """An instant: ISO 8601 (no offset = UTC), epoch seconds or milliseconds, `now`, or DURATION ago (`2h`, `-2h`)."""
    raw = text.strip()
    now = now or datetime.now(UTC)
    if raw.lower() == "now":
        return now
    ago = raw[1:] if raw.startswith("-") else raw
    if _DURATION.match(ago.lower()):
        return now - parse_duration(ago)
    if re.fullmatch(r"\d{1,13}(\.\d+)?", raw):
        value = float(raw)
        # The input contract's rule: below 1e11 the number is seconds, otherwise milliseconds.
        return datetime.fromtimestamp(value if value < 1e11 else value / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"bad time {text!r} (expected ISO 8601 like 2024-06-03T13:30:00Z, epoch seconds or ms, now, or 15m = ago)"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def epoch_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def iso_ms(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC (`2024-06-03T13:30:00Z`, milliseconds only when there are some)."""
    when = datetime.fromtimestamp(ms / 1000, UTC)
    text = when.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{ms % 1000:03d}Z" if ms % 1000 else "Z")


# --- Exact JSON -----------------------------------------------------------------------


class RawNumber(str):
    """A JSON number kept as written (NaN and Infinity included) so nothing is rounded on the way."""


def loads_exact(text: str) -> Any:
    """json.loads keeping every number's text: floats become Decimal, NaN/Infinity RawNumber."""
    return json.loads(text, parse_float=Decimal, parse_constant=RawNumber)


def dumps_exact(value: Any) -> str:
    """Compact JSON in which Decimal and RawNumber values are written exactly as they were read."""
    if isinstance(value, RawNumber):
        return str(value)
    if isinstance(value, Decimal):
        return str(value)  # Decimal's str is valid JSON for finite values; NaN/Infinity as Python's json writes them
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{dumps_exact(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps_exact(v) for v in value) + "]"
    return json.dumps(value)


_DECIMAL_TOKEN = "\u0000decimal:"
_DECIMAL_QUOTED = re.compile(r'"\\u0000decimal:([^"\\]*)\\u0000"')


def _mark_decimals(value: Any) -> Any:
    if isinstance(value, Decimal):
        return f"{_DECIMAL_TOKEN}{value}\u0000"
    if isinstance(value, dict):
        return {k: _mark_decimals(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mark_decimals(v) for v in value]
    return value


def pretty_json(document: Any) -> str:
    """Indented JSON for --json output; Decimal values are written as exact JSON numbers."""
    text = json.dumps(_mark_decimals(document), indent=2, sort_keys=True, default=str)
    return _DECIMAL_QUOTED.sub(lambda m: m.group(1), text)
