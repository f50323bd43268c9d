"""Handler speed, cold start and render time (bench/run.py's speed section).

* ingestion: parse + validate + pack of handlers.core vs bare `csv.reader` and
  `json.loads` over the same bytes, in the same process, best of 3;
* cold start: each handler module's import time in a fresh interpreter (median of
  `samples`, interleaved with `import boto3`), and the interpreter's peak RSS after it;
* render: wall time of `python -m market_cfn render`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import workload

ROOT = Path(__file__).resolve().parents[1]
HANDLER_MODULES = ("handlers.data_ingestion", "handlers.data_processor", "handlers.data_aggregator")


def _best_of(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def ingestion_speed(points: list) -> dict:
    """Points/s of parse + validate + pack (handlers.core) vs the bare stdlib parser."""
    from handlers.core.ingest import Tally, validate_records
    from handlers.core.parsing import iter_raw_records
    from handlers.core.wire import MessagePacker

    csv_bytes, jsonl_bytes = workload.to_csv(points), workload.to_jsonl(points)
    now_ms = int(time.time() * 1000)
    n = len(points)

    def ours(body: bytes, key: str) -> None:
        tally, packer = Tally(), MessagePacker()
        for item in validate_records(
            iter_raw_records(io.BytesIO(body), key=key), source=key, now_ms=now_ms, tally=tally
        ):
            packer.add(item)
        packer.flush()
        if tally.accepted != n:
            raise SystemExit(f"error: ingestion accepted {tally.accepted} of {n} benchmark points")

    def bare_csv() -> None:
        for _row in csv.reader(io.StringIO(csv_bytes.decode("utf-8"))):
            pass

    def bare_json() -> None:
        for line in jsonl_bytes.decode("utf-8").splitlines():
            json.loads(line)

    t_csv = _best_of(lambda: ours(csv_bytes, "bench.csv"))
    t_jsonl = _best_of(lambda: ours(jsonl_bytes, "bench.jsonl"))
    t_raw_csv = _best_of(bare_csv)
    t_raw_json = _best_of(bare_json)
    return {
        "ingest_points_per_s_csv": n / t_csv,
        "ingest_points_per_s_jsonl": n / t_jsonl,
        "raw_csv_reader_points_per_s": n / t_raw_csv,
        "raw_json_loads_points_per_s": n / t_raw_json,
        "ingest_vs_raw_csv": t_raw_csv / t_csv,
        "ingest_vs_raw_jsonl": t_raw_json / t_jsonl,
    }


# --- cold start and render ---------------------------------------------------------------


def _fresh_import(module: str) -> tuple[float, float]:
    """(seconds to import `module`, peak RSS in MB afterwards) in a fresh interpreter."""
    code = (
        "import resource, time; t = time.perf_counter(); import "
        + module
        + "; print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    seconds, rss_mb = out.stdout.strip().splitlines()[-1].split()
    return float(seconds), float(rss_mb)


def import_times(samples: int) -> tuple[dict[str, float], dict[str, float]]:
    """Median import seconds and peak RSS (MB) of each module in a fresh interpreter."""
    modules = ("boto3",) + HANDLER_MODULES
    times: dict[str, list[float]] = {m: [] for m in modules}
    rss: dict[str, list[float]] = {m: [] for m in modules}
    _fresh_import("boto3")  # warm the OS file cache and the .pyc files once
    for module in HANDLER_MODULES:
        _fresh_import(module)
    for _ in range(samples):  # interleaved, so drift hits every module alike
        for module in modules:
            seconds, mb = _fresh_import(module)
            times[module].append(seconds)
            rss[module].append(mb)
    return (
        {m: statistics.median(v) for m, v in times.items()},
        {m: statistics.median(v) for m, v in rss.items()},
    )


def render_seconds(samples: int = 3) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        walls = []
        for _ in range(samples):
            t0 = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "market_cfn", "render", "--out", str(Path(tmp) / "template.json")],
                cwd=ROOT,
                check=True,
                capture_output=True,
            )
            walls.append(time.perf_counter() - t0)
    return statistics.median(walls)
