"""Five-minute OHLC / VWAP aggregates, computed exactly with Decimal.

For the points of one symbol in the UTC window [start, start + 300 s), in timestamp
order: open = price of the earliest point, close = price of the latest, high / low =
max / min price, count = number of points, volume = sum of volumes (absent = 0),
vwap = sum(price x volume) / sum(volume), or None when that volume is 0.

Rounding: open, high, low, close and volume are exact copies / sums of stored values.
Only vwap is rounded: it is computed with 60 significant digits and rounded half-even
to `VWAP_DIGITS` (12) significant digits, well inside DynamoDB's 38.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

VWAP_DIGITS = 12
_WIDE = Context(prec=60)
_VWAP = Context(prec=VWAP_DIGITS, rounding=ROUND_HALF_EVEN)


def compute_aggregate(
    symbol: str, window_start: int, window_ms: int, points: Iterable[tuple[int, Decimal, int | None]]
) -> dict[str, Any] | None:
    """Aggregate (timestamp, price, volume) tuples of one window; None if there are none."""
    first_ts = last_ts = None
    open_ = close = high = low = None
    count = 0
    volume = 0
    notional = Decimal(0)
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
            notional = _WIDE.add(notional, _WIDE.multiply(price, Decimal(vol)))
    if count == 0:
        return None
    vwap = _VWAP.divide(notional, Decimal(volume)) if volume else None
    return {
        "symbol": symbol,
        "window_start": window_start,
        "open": open_,
        "high": high,
        "low": low,
        "close": close,
        "count": count,
        "volume": volume,
        "vwap": vwap,
    }
