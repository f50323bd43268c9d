"""Per-cell cost of hostile numbers and timestamps (bounds before arithmetic): bounded, not a timed test.

For each hostile cell (huge exponents, long digit runs, calendar extremes with offsets)
an object of `rows` records carrying it is ingested through the fast path
(`handlers.core.fast.ingest_batches`, CSV and JSON Lines), and the CPU time per record
is compared with the same object carrying a plain cell. Before the bounds, `"1e999999"`
cost ~30 s per cell; now every cell must cost about what a plain one does (the report's
`worst_ratio`). `python -m bench.cell_cost [ROWS]` prints the JSON.
"""

from __future__ import annotations

import io
import json
import sys
import time

from handlers.core.fast import ingest_batches
from handlers.core.ingest import Tally

NOW_MS = 1_717_500_000_000
PLAIN = "1717421400"
HOSTILE = [
    "1e999999999",
    "1E+1000000",
    "1e999999",
    "1e-999999",
    "1e" + "9" * 30,
    "1717421400." + "9" * 40,
    "9" * 4000,
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59.9999999-05:00",
    "2024-06-03T13:30:00." + "9" * 5000 + "Z",
]


def _cost(stamp: str, rows: int, fmt: str) -> float:
    if fmt == "csv":
        body = ("symbol,price,timestamp\n" + f"A,1.5,{stamp}\n" * rows).encode()
    else:
        value = stamp if stamp[0].isdigit() and "-" not in stamp[1:] and ":" not in stamp else json.dumps(stamp)
        body = (f'{{"symbol":"A","price":1.5,"timestamp":{value}}}\n' * rows).encode()
    start = time.process_time()
    for _ in ingest_batches(
        io.BytesIO(body), key=f"x.{fmt}", content_type=None, source="x", now_ms=NOW_MS, tally=Tally()
    ):
        pass
    return (time.process_time() - start) / rows


def measure(rows: int = 2_000) -> dict:
    """Microseconds per record of each hostile cell and its ratio to a plain one."""
    report: dict = {"rows": rows, "cells": {}}
    worst = 0.0
    for fmt in ("csv", "jsonl"):
        # the plain cell once through the reference rules too: a duplicate key after the
        # first row, like the hostile objects (every row but the first is rejected there)
        plain = max(_cost(PLAIN, rows, fmt), _cost(PLAIN + ".5", rows, fmt))
        for stamp in HOSTILE:
            us = _cost(stamp, rows, fmt)
            worst = max(worst, us / plain)
            report["cells"][f"{fmt} {stamp[:40]}"] = round(us * 1e6, 2)
        report[f"{fmt}_plain_us"] = round(plain * 1e6, 2)
    report["worst_ratio"] = round(worst, 2)
    return report


if __name__ == "__main__":
    print(json.dumps(measure(int(sys.argv[1]) if len(sys.argv) > 1 else 2_000), indent=2))
