"""Parser speed: DataIngestion's parse + validate + pack against the bare stdlib parsers, same bytes.

`measure(points)` times, best of `repeat` in CPU time of this process
(`time.process_time`, so that other processes on a shared machine do not skew the
ratio), over the workload's CSV and JSON Lines bytes:

- ours: `handlers.core.fast.ingest_batches` -> `MessagePacker.add_all` (what DataIngestion does
  per object, without the AWS calls); `ingest_vs_reference_*` also times the reference
  path it must equal, `iter_raw_records` -> `validate_records`;
- bare CSV: `csv.reader` over the decoded text; bare JSON Lines: `json.loads` per line.

and reports points/s of each and the ratios `ingest_vs_raw_csv` / `ingest_vs_raw_jsonl`
(bare time / our time: 1.0 would be as fast as the bare parser; the targets are
>= 0.08 and >= 0.40). `python -m bench.parser_speed [POINTS]` prints the JSON.
"""

from __future__ import annotations

import csv
import io
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import workload


def _best_of(fn: Callable[[], object], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        best = min(best, time.process_time() - t0)
    return best


def measure(points: list[Any] | None = None, *, size: int = 100_000, symbols: int = 500, repeat: int = 3) -> dict:
    """Points/s and ratios of ours vs csv.reader / json.loads (workload.generate when no points)."""
    from handlers.core.fast import ingest_batches
    from handlers.core.ingest import Tally, validate_records
    from handlers.core.parsing import iter_raw_records
    from handlers.core.wire import MessagePacker

    points = points if points is not None else workload.generate(size, symbols)
    csv_bytes, jsonl_bytes = workload.to_csv(points), workload.to_jsonl(points)
    now_ms = int(time.time() * 1000)
    n = len(points)

    def ours(body: bytes, key: str) -> None:  # as handlers.data_ingestion does it, minus the AWS calls
        tally, packer, batches = Tally(), MessagePacker(), []
        for items in ingest_batches(
            io.BytesIO(body), key=key, content_type=None, source=key, now_ms=now_ms, tally=tally
        ):
            packer.add_all(items, batches.append)
        batches += packer.flush()
        if tally.accepted != n:
            raise SystemExit(f"error: ingestion accepted {tally.accepted} of {n} benchmark points")

    def reference(body: bytes, key: str) -> None:
        tally, packer = Tally(), MessagePacker()
        for item in validate_records(
            iter_raw_records(io.BytesIO(body), key=key), source=key, now_ms=now_ms, tally=tally
        ):
            packer.add(item)  # type: ignore[arg-type]
        packer.flush()

    def bare_csv() -> None:
        for _row in csv.reader(io.StringIO(csv_bytes.decode("utf-8"))):
            pass

    def bare_json() -> None:
        for line in jsonl_bytes.decode("utf-8").splitlines():
            json.loads(line)

    t_csv = _best_of(lambda: ours(csv_bytes, "bench.csv"), repeat)
    t_jsonl = _best_of(lambda: ours(jsonl_bytes, "bench.jsonl"), repeat)
    t_raw_csv = _best_of(bare_csv, repeat)
    t_raw_json = _best_of(bare_json, repeat)
    t_ref_csv = _best_of(lambda: reference(csv_bytes, "bench.csv"), 1)
    t_ref_jsonl = _best_of(lambda: reference(jsonl_bytes, "bench.jsonl"), 1)
    return {
        "points": n,
        "reference_vs_raw_csv": t_raw_csv / t_ref_csv,
        "reference_vs_raw_jsonl": t_raw_json / t_ref_jsonl,
        "ingest_points_per_s_csv": n / t_csv,
        "ingest_points_per_s_jsonl": n / t_jsonl,
        "raw_csv_reader_points_per_s": n / t_raw_csv,
        "raw_json_loads_points_per_s": n / t_raw_json,
        "ingest_vs_raw_csv": t_raw_csv / t_csv,
        "ingest_vs_raw_jsonl": t_raw_json / t_jsonl,
    }


if __name__ == "__main__":
    print(json.dumps(measure(size=int(sys.argv[1]) if len(sys.argv) > 1 else 100_000), indent=2))
