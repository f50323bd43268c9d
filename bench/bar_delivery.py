"""How to deliver finished bars: three options (docs/design.md "Consumer contract"), measured on real bars.

    python -m bench.bar_delivery [--symbols 500 5000] [--windows-per-symbol 1]

For one aggregation round of N bars (one 5-minute window per symbol, the steady state;
realistic prices and volumes) it builds the bars with the aggregator's own code
(handlers.core.aggregation + handlers.core.bars) and counts, per option, the API calls
and the billed units at the list prices in bench/prices.py:

- `per-bar event` (the old AggregateComputed): one EventBridge event per bar,
  10 entries per PutEvents;
- `SNS PublishBatch`: one SNS message per bar with a `symbol` message attribute (so a
  subscription filter policy on the attribute, which SNS does not bill, selects one
  symbol), 10 messages per PublishBatch, each request billed per 64 KB of payload;
- `multi-bar event` (what DataAggregator does): BarsComputed events of up to 64 KB,
  each carrying many bars and a `symbols` array a rule can match.

Every option also pays the same DynamoDB write per bar; only the delivery differs, so
that is all this compares. The archive line is the bus archive's processing of the
published bytes (SNS standard topics have no archive to pay, and no replay either).
"""

from __future__ import annotations

import argparse
import json
import math
import random
from decimal import Decimal
from typing import Any

from bench import costing
from bench.meter import EVENT_ENVELOPE_BYTES
from bench.prices import usd_per_unit
from handlers.contract import DETAIL_TYPE_BARS_COMPUTED, EVENT_SOURCE_AGGREGATOR, WINDOW_MS
from handlers.core.aggregation import compute_aggregate
from handlers.core.bars import bar_json, pack_bars

T0 = 1717421400000
SNS_CHUNK_BYTES = 64 * 1024


def round_bars(symbols: int, windows: int, seed: int = 7) -> list[tuple[str, int, str]]:
    """(symbol, window start, bar JSON) of a round: 2-4 points a window, prices like
    "192.37", volumes up to 10,000."""
    rng = random.Random(seed)
    bars = []
    for i in range(symbols):
        symbol = f"S{i:04d}" if i % 3 else f"SYM{i:05d}"[:8]
        for k in range(windows):
            start = T0 + k * WINDOW_MS
            points = [
                (start + j * 60_000, Decimal(rng.randint(1_000, 99_999)) / 100, rng.randint(1, 10_000))
                for j in range(rng.randint(2, 4))
            ]
            agg = compute_aggregate(symbol, start, WINDOW_MS, points)
            assert agg is not None
            bars.append((symbol, start, bar_json(agg, window_ms=WINDOW_MS, version=1)))
    return bars


def measure(bars: list[tuple[str, int, str]]) -> dict[str, dict[str, Any]]:
    n = len(bars)
    event_price = usd_per_unit("events", "custom_events")
    archive_price = usd_per_unit("events", "archive_gb") / costing.GB
    sns_price = usd_per_unit("sns", "requests")
    results: dict[str, dict[str, Any]] = {}

    # per-bar EventBridge event
    entries = [
        {"Source": EVENT_SOURCE_AGGREGATOR, "DetailType": "AggregateComputed", "Detail": text} for _, _, text in bars
    ]
    sizes = [costing.eventbridge_entry_bytes(e) for e in entries]
    billed = sum(costing.eventbridge_billed_events(s) for s in sizes)
    results["per-bar event"] = _result(
        n,
        calls=math.ceil(n / 10),
        billed=billed,
        usd=billed * event_price,
        archive_usd=(sum(sizes) + n * EVENT_ENVELOPE_BYTES) * archive_price,
    )

    # SNS PublishBatch, 10 a request, symbol attribute
    requests = billed_sns = 0
    for i in range(0, n, 10):
        chunk = bars[i : i + 10]
        payload = sum(len(text.encode()) + len("symbol") + len("String") + len(symbol) for symbol, _, text in chunk)
        requests += 1
        billed_sns += max(1, math.ceil(payload / SNS_CHUNK_BYTES))
    results["SNS PublishBatch"] = _result(
        n, calls=requests, billed=billed_sns, usd=billed_sns * sns_price, archive_usd=0.0
    )

    # multi-bar events (ours)
    overhead = len(EVENT_SOURCE_AGGREGATOR) + len(DETAIL_TYPE_BARS_COMPUTED)
    packed = pack_bars(bars, overhead_bytes=overhead)
    sizes = [overhead + len(detail.encode()) for detail, _ in packed]
    billed = sum(costing.eventbridge_billed_events(s) for s in sizes)
    calls = _putevents_calls(sizes)
    results["multi-bar event"] = _result(
        n,
        calls=calls,
        billed=billed,
        usd=billed * event_price,
        archive_usd=(sum(sizes) + len(sizes) * EVENT_ENVELOPE_BYTES) * archive_price,
    )
    results["multi-bar event"]["bars_per_event"] = round(n / len(packed), 1)
    return results


def _putevents_calls(sizes: list[int]) -> int:
    """PutEvents calls for entries of these sizes: <= 10 entries and < 256 KB a call."""
    calls, in_call, total = 0, 0, 0
    for size in sizes:
        if in_call and (in_call == 10 or total + size > 240_000):
            calls, in_call, total = calls + 1, 0, 0
        in_call, total = in_call + 1, total + size
    return calls + (1 if in_call else 0)


def _result(bars: int, *, calls: int, billed: int, usd: float, archive_usd: float) -> dict[str, Any]:
    per_million = 1_000_000 / bars
    return {
        "bars": bars,
        "api_calls": calls,
        "billed_units": billed,
        "usd_per_million_bars": round(usd * per_million, 4),
        "archive_usd_per_million_bars": round(archive_usd * per_million, 4),
        "total_usd_per_million_bars": round((usd + archive_usd) * per_million, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bar_delivery", description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, nargs="+", default=[500, 5000])
    parser.add_argument("--windows-per-symbol", type=int, default=1)
    args = parser.parse_args(argv)
    report = {}
    for symbols in args.symbols:
        results = measure(round_bars(symbols, args.windows_per_symbol))
        report[str(symbols)] = results
        print(f"{symbols} symbols x {args.windows_per_symbol} window(s):")
        for name, r in results.items():
            print(
                f"  {name:18} {r['api_calls']:6} calls {r['billed_units']:6} billed units  "
                f"${r['usd_per_million_bars']:.4f}/M bars + archive ${r['archive_usd_per_million_bars']:.4f}/M"
                f" = ${r['total_usd_per_million_bars']:.4f}/M"
            )
    print(json.dumps(report, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
