"""BarsComputed events: finished 5-minute bars, many per event, matchable by symbol.

Consumer contract (docs/design.md "Consumer contract"): DataAggregator publishes on the
custom bus events with source `market-data.aggregator`, detail-type `BarsComputed` and
this detail, version 1::

    {"v":1,"symbols":["AAPL","MSFT"],
     "bars":[{"symbol":"AAPL","window_start":1717421400000,"window_end":1717421700000,
              "open":192.9,"high":193.1,"low":192.9,"close":193.1,"count":2,
              "volume":2000,"vwap":192.98,"version":3}, ...]}

- `symbols` lists every symbol that has a bar in `bars`, once, so a rule can select the
  events of one symbol: `{"detail": {"symbols": ["AAPL"]}}` matches an event whose
  array contains "AAPL" (EventBridge: "If the value in the event is an array, then the
  event pattern matches if the intersection of the event pattern array and the event
  array is non-empty" - user guide, "Arrays in Amazon EventBridge event patterns").
  The consumer then keeps the bars whose `symbol` it wants.
- Numbers are written exactly as stored (JSON numbers of any length, never rounded
  through a float); `vwap` is null when the window's volume is 0.
- `version` increases every time the stored bar of (symbol, window_start) is replaced:
  a consumer upserts by (symbol, window_start) and ignores a bar whose version is not
  higher than the one it holds (events may arrive more than once and out of order).

Packing: bars are sorted by (symbol, window_start), so one symbol's bars sit in as few
events as possible, and an event is filled while its entry size (as EventBridge
computes it: Source + DetailType + Detail, UTF-8 bytes - user guide, "Calculating
PutEvents event entry size") stays within `MAX_ENTRY_BYTES`: EventBridge bills each
64 KB chunk of an event as one event (pricing page), so a full event costs one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

BARS_VERSION = 1
MAX_ENTRY_BYTES = 64_000  # one billed 64 KB chunk, with room to spare
_BAR_FIELDS = ("open", "high", "low", "close", "count", "volume", "vwap")


def _number(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError(f"not a number: {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise ValueError(f"not a finite number: {value}")
    return str(value)  # Decimal's text is a valid JSON number (digits, '.', 'E+n')


def bar_json(agg: dict[str, Any], *, window_ms: int, version: int) -> str:
    """One bar as compact JSON, numbers exact."""
    start = int(agg["window_start"])
    parts = [
        f'"symbol":{json.dumps(agg["symbol"])}',
        f'"window_start":{start}',
        f'"window_end":{start + window_ms}',
        *(f'"{field}":{_number(agg.get(field))}' for field in _BAR_FIELDS),
        f'"version":{int(version)}',
    ]
    return "{" + ",".join(parts) + "}"


def _detail(symbols: list[str], bars: list[str]) -> str:
    return f'{{"v":{BARS_VERSION},"symbols":{json.dumps(symbols, separators=(",", ":"))},"bars":[{",".join(bars)}]}}'


def pack_bars(
    bars: Iterable[tuple[str, int, str]], *, overhead_bytes: int, max_entry_bytes: int = MAX_ENTRY_BYTES
) -> list[tuple[str, list[tuple[str, int]]]]:
    """Group (symbol, window_start, bar_json) into event details.

    Returns (detail, [(symbol, window_start), ...]) per event; each detail plus
    `overhead_bytes` (Source + DetailType) is at most `max_entry_bytes`. A single bar
    larger than that still gets an event of its own (up to EventBridge's 256 KB).
    """
    events: list[tuple[str, list[tuple[str, int]]]] = []
    symbols: list[str] = []
    texts: list[str] = []
    keys: list[tuple[str, int]] = []
    size = overhead_bytes + len(_detail([], []))
    for symbol, start, text in sorted(bars, key=lambda bar: (bar[0], bar[1])):
        new_symbol = not symbols or symbols[-1] != symbol
        extra = len(text.encode()) + (1 if texts else 0)
        if new_symbol:
            extra += len(json.dumps(symbol).encode()) + (1 if symbols else 0)
        if texts and size + extra > max_entry_bytes:
            events.append((_detail(symbols, texts), keys))
            symbols, texts, keys = [], [], []
            size = overhead_bytes + len(_detail([], []))
            extra = len(text.encode()) + len(json.dumps(symbol).encode())
            new_symbol = True
        if new_symbol:
            symbols.append(symbol)
        texts.append(text)
        keys.append((symbol, start))
        size += extra
    if texts:
        events.append((_detail(symbols, texts), keys))
    return events


def decode_bars(detail: str | dict[str, Any]) -> list[dict[str, Any]]:
    """The bars of a BarsComputed detail, numbers as Decimal (for consumers and tests)."""
    doc = json.loads(detail, parse_float=Decimal) if isinstance(detail, str) else detail
    if not isinstance(doc, dict) or doc.get("v") != BARS_VERSION or not isinstance(doc.get("bars"), list):
        raise ValueError("not a BarsComputed v1 detail")
    return list(doc["bars"])
