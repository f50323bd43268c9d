"""Handler speed, cold start and render time (bench/run.py's speed section).

* ingestion: bench/parser_speed.py (parse + validate + pack vs bare `csv.reader` and
  `json.loads` over the same bytes, CPU time, best of 3), called by bench/run.py;
* cold start: each handler module's import time in a fresh interpreter (median of
  `samples`, interleaved with `import boto3`), and the interpreter's peak RSS after it;
* render: wall time of `python -m market_cfn render`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HANDLER_MODULES = ("handlers.data_ingestion", "handlers.data_processor", "handlers.data_aggregator")


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
