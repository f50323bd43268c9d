"""Handler speed, cold start and render time (bench/run.py's speed section).

* ingestion: bench/parser_speed.py (parse + validate + pack vs bare `csv.reader` and
  `json.loads` over the same bytes, CPU time, best of 3), called by bench/run.py;
* cold start: each handler module's import time in a fresh interpreter (median of
  `samples`, interleaved with `import boto3`), and the interpreter's peak RSS after it;
* render: wall time of `python -m market_cfn render`;
* tracing: the function zip's size and what the X-Ray SDK path would add to it and to the import.
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
# What a handler would import for the X-Ray SDK path: Powertools' Tracer and the SDK it patches boto with.
TRACER_IMPORT = "aws_lambda_powertools.tracing, aws_xray_sdk.core"


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


def tracing_footprint(samples: int = 5) -> dict[str, float]:
    """Tracing's cost in the function zip and the cold start (docs/performance.md "Tracing").

    The functions use Lambda active tracing with no tracing SDK in the zip (no handler imports
    the Powertools Tracer, so market_cfn.deploy.packaging bundles neither aws_xray_sdk nor
    wrapt). Measured here: the zip as deployed, the bytes the X-Ray SDK path (Powertools Tracer)
    would add to it, and what importing that path adds to DataProcessor's import in a fresh
    interpreter (medians)."""
    from market_cfn.deploy import packaging

    package = packaging.build_package()
    sdk: dict[str, bytes] = {}
    for dist_name, import_name in packaging.TRACER_BUNDLE:
        sdk.update(packaging._distribution_entries(dist_name, import_name)[0])
    with_sdk = packaging.zip_bytes({**dict.fromkeys(package.entries, b""), **sdk})
    handler = "handlers.data_processor"
    _fresh_import(f"{handler}, {TRACER_IMPORT}")  # warm the file cache once
    alone, traced = [], []
    for _ in range(samples):  # interleaved, so drift hits both alike
        alone.append(_fresh_import(handler)[0])
        traced.append(_fresh_import(f"{handler}, {TRACER_IMPORT}")[0])
    return {
        "zip_bytes": len(package.data),
        "xray_sdk_zip_bytes": len(with_sdk) - len(packaging.zip_bytes(dict.fromkeys(package.entries, b""))),
        "handler_import_seconds": statistics.median(alone),
        "tracer_import_seconds": statistics.median(traced) - statistics.median(alone),
        "bundled": list(package.bundled),
    }
