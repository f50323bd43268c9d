"""The market_cfn benchmark (issue 5): US$ per million points, handler speed, cold start.

    python bench/run.py [--points 100000] [--symbols 500] [--seed N] [--verify]

1. Cost: one trading day of points (bench/workload.py) goes through the real handlers
   on moto (market_cfn.simulate), every AWS request is counted and billed
   (bench/meter.py, bench/costing.py, bench/prices.py); the naive reference pipeline
   (bench/naive.py) gets the same points; the floor is one WRU per item written.
2. Handler speed: ingestion parse + validate + pack vs csv.reader / json.loads over the
   same bytes; processor and aggregator CPU time per 10,000 points.
3. Cold start: import time of each handler module in a fresh interpreter, vs boto3.
4. Render: wall time of `python -m market_cfn render`.

Prints a table per service and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import costing, speedups, workload  # noqa: E402
from bench.meter import AwsMeter  # noqa: E402
from bench.prices import CHECKED, PRICES  # noqa: E402

MEMORY_MB = 3072  # the template's MemorySize for every function (checked at run time)
HANDLER_MODULES = ("handlers.data_ingestion", "handlers.data_processor", "handlers.data_aggregator")
COLD_STARTS_PER_FUNCTION = 1  # one INIT per function per day, billed at the measured import time


# --- cost --------------------------------------------------------------------------------


def _aws_env() -> None:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        os.environ.setdefault(key, value)


class _Recorder:
    """What the emulated AWS side received: moto's request-recording hook, counted.

    moto calls `recorder._record_request(request)` for every request it dispatches
    (moto/core/botocore_stubber.py). Its own implementation reads the request body
    stream without rewinding it (an S3 PutObject would then store an empty object), so
    this replaces it, for the run, with one that keeps the method, URL and headers only.
    """

    def __init__(self) -> None:
        from moto.moto_api import recorder

        self.recorder = recorder
        self.entries: list[dict] = []
        self._saved = None

    def _record(self, request, body=None) -> None:
        self.entries.append(
            {
                "method": request.method,
                "url": request.url,
                "headers": {k: (v.decode() if isinstance(v, bytes) else v) for k, v in dict(request.headers).items()},
            }
        )

    def start(self) -> None:
        self._saved = self.recorder.__dict__.get("_record_request")
        self.recorder._record_request = self._record

    def stop(self) -> Counter:
        if self._saved is None:
            del self.recorder._record_request
        else:
            self.recorder._record_request = self._saved
        return count_recorded(self.entries)


def count_recorded(entries: list[dict]) -> Counter:
    """(service, operation) counts of recorded requests."""
    import re
    from urllib.parse import urlparse

    counts: Counter = Counter()
    scope = re.compile(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/")
    for entry in entries:
        headers = {k.lower(): v for k, v in entry["headers"].items()}
        match = scope.search(headers.get("authorization", ""))
        service = match.group(1) if match else "?"
        target = headers.get("x-amz-target")
        if target:
            op = target.rsplit(".", 1)[-1]
        elif service == "s3":
            url = urlparse(entry["url"])
            has_key = url.path.strip("/").count("/") >= 1 or (not url.netloc.startswith("s3.") and url.path.strip("/"))
            op = {
                ("GET", True): "GetObject",
                ("GET", False): "ListObjects",
                ("PUT", True): "PutObject",
                ("PUT", False): "CreateBucket",
                ("HEAD", True): "HeadObject",
                ("DELETE", True): "DeleteObject",
            }.get((entry["method"], bool(has_key)), entry["method"])
        else:
            op = "?"
        counts[(service, op)] += 1
    return counts


def stored_items(table_name: str) -> list[tuple[str, int]]:
    """(symbol, timestamp) of every item of a moto table, read from moto's backend state
    (no API call: a Scan of 139,000 items through moto's serializer takes minutes)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[table_name]
    keys = []
    for partition in table.items.values():
        for item in partition.values():
            keys.append((str(item.hash_key.value), int(item.range_key.value)))
    return keys


def run_ours(files, *, latency_scale: float, verify: bool, import_ms: dict) -> dict:
    from bench.ours import metered_pipeline_class, run_day

    meter = AwsMeter(memory_mb=MEMORY_MB, latency_scale=latency_scale, capture_logs=False)
    meter.install()
    pipe = metered_pipeline_class()(meter)
    result: dict = {}
    try:
        pipe.start()
        memory = {
            int(pipe.resources[f]["Properties"]["MemorySize"])
            for f in ("DataIngestionFunction", "DataProcessorFunction", "DataAggregatorFunction")
        }
        if memory != {MEMORY_MB}:
            raise SystemExit(
                f"error: the template's function memory is {sorted(memory)} MB, "
                f"the benchmark bills {MEMORY_MB} MB; update MEMORY_MB"
            )
        meter.reset()
        first_call = len(pipe.calls)
        recorder = _Recorder() if verify else None
        if recorder:
            recorder.start()
        t0 = time.perf_counter()
        stats = run_day(pipe, files)
        result["wall_seconds"] = time.perf_counter() - t0
        if recorder:
            result["moto_requests"] = recorder.stop()
        meter.enabled = False
        for module, ms in import_ms.items():
            name = {
                "handlers.data_ingestion": "DataIngestionFunction",
                "handlers.data_processor": "DataProcessorFunction",
                "handlers.data_aggregator": "DataAggregatorFunction",
            }[module]
            for _ in range(COLD_STARTS_PER_FUNCTION):
                meter.add_init(pipe.physical[name]["Ref"], ms)
        result["pipeline_calls"] = Counter((c.service, c.operation) for c in pipe.calls[first_call:])
        from handlers.contract import AGGREGATE_KEY_SUFFIX

        items = stored_items(pipe.table)
        point_keys = [k for k in items if not k[0].endswith(AGGREGATE_KEY_SUFFIX)]
        result["aggregates_stored"] = len(items) - len(point_keys)
        result["point_keys"] = point_keys
        result["stats"] = stats
        result["dead_letters"] = pipe.dead_letters()
        result["invocation_errors"] = list(pipe.invocation_errors)
        result["rejected"] = sum(r["rejected"] for r in pipe.ingestion_results)
        result["function_names"] = {
            logical: pipe.physical[logical]["Ref"]
            for logical in ("DataIngestionFunction", "DataProcessorFunction", "DataAggregatorFunction")
        }
    finally:
        meter.uninstall()
        pipe.stop()
    result["meter"] = meter
    return result


def naive_sample(files: list, every: int) -> list:
    """Every `every`-th 5-minute object of the day (all of them when every == 1)."""
    return [f for f in files if f.window % every == 0]


def run_naive(files, *, latency_scale: float, verify: bool, every: int = 1) -> dict:
    from moto import mock_aws

    from bench.naive import NaivePipeline

    meter = AwsMeter(memory_mb=MEMORY_MB, latency_scale=latency_scale, capture_logs=False)
    result: dict = {}
    with mock_aws():
        meter.install()
        try:
            naive = NaivePipeline(meter)
            naive.create()
            meter.reset()
            recorder = _Recorder() if verify else None
            if recorder:
                recorder.start()
            out = _StdoutCounter()
            t0 = time.perf_counter()
            sample = naive_sample(files, every)
            snapshot: dict = {}
            naive.after_ticks = lambda: snapshot.update(usage=meter.usage.copy())
            _run_naive_counting_logs(naive, sample, meter, out, ticks=len(files))
            result["sampled_points"] = sum(f.points for f in sample)
            result["sampled_objects"] = len(sample)
            if every > 1:
                # ticks part scaled up to the whole day, idle runs after the close as measured
                ticks_usage = snapshot["usage"]
                idle_usage = meter.usage.minus(ticks_usage)
                factor = sum(f.points for f in files) / result["sampled_points"]
                result["scale"] = factor
                meter.usage = idle_usage.combine(ticks_usage, factor)
            result["wall_seconds"] = time.perf_counter() - t0
            if recorder:
                result["moto_requests"] = recorder.stop()
        finally:
            meter.uninstall()
        meter.enabled = False
        items = stored_items(naive.table)
    result["point_keys"] = [k for k in items if "#" not in k[0]]
    result["aggregates_stored"] = len(items) - len(result["point_keys"])
    # What the report needs of the meter, picklable (this may run in a child process).
    result["meter"] = SimpleNamespace(
        usage=meter.usage, calls=meter.calls, failed_calls=meter.failed_calls, items_written=meter.items_written
    )
    return result


class _StdoutCounter:
    def __init__(self) -> None:
        from bench.ours import LogCounter

        self.counter = LogCounter()

    def write(self, text: str) -> int:
        return self.counter.write(text)

    def flush(self) -> None:
        pass


def _run_naive_counting_logs(naive, files, meter, out, *, ticks: int) -> None:
    """Run the naive day with its print() lines counted per invocation."""
    import contextlib

    original = meter.invocation

    @contextlib.contextmanager
    def counted(function):
        out.counter.take()
        with original(function) as inv:
            try:
                with contextlib.redirect_stdout(out):
                    yield inv
            finally:
                inv.log_bytes = out.counter.take()

    meter.invocation = counted
    try:
        naive.run(files, ticks=ticks)
    finally:
        del meter.invocation


# --- handler speed -------------------------------------------------------------------------


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


def _fresh_import_seconds(module: str) -> float:
    code = "import time; t = time.perf_counter(); import " + module + "; print(time.perf_counter() - t)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )
    return float(out.stdout.strip().splitlines()[-1])


def import_times(samples: int) -> dict:
    """Median import time of each module in a fresh interpreter (`samples` each)."""
    modules = ("boto3",) + HANDLER_MODULES
    times: dict[str, list[float]] = {m: [] for m in modules}
    _fresh_import_seconds("boto3")  # warm the OS file cache and the .pyc files once
    for module in HANDLER_MODULES:
        _fresh_import_seconds(module)
    for _ in range(samples):  # interleaved, so drift hits every module alike
        for module in modules:
            times[module].append(_fresh_import_seconds(module))
    return {m: statistics.median(v) for m, v in times.items()}


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


# --- report ---------------------------------------------------------------------------------


def _fmt(value, unit="") -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4f}" if value < 100 else f"{value:,.1f}"
    return f"{int(value):,}"


def print_table(ours_rows, naive_rows, points: int) -> None:
    head = (
        f"{'service':<20} {'requests':>10} {'billed':>14} {'unit':<15} {'US$':>10} {'$/M pts':>8}"
        f" | {'requests':>10} {'billed':>14} {'US$':>10} {'$/M pts':>8}"
    )
    print(f"{'':<20} {'--- market_cfn (ours) ':-<62} | {'--- naive baseline ':-<46}")
    print(head)
    print("-" * len(head))
    for o, n in zip(ours_rows, naive_rows, strict=True):
        print(
            f"{o['service']:<20} {_fmt(o['requests']):>10} {_fmt(o['billed']):>14} {o['unit']:<15} "
            f"{o['usd']:>10.5f} {costing.per_million(o['usd'], points):>8.4f} | "
            f"{_fmt(n['requests']):>10} {_fmt(n['billed']):>14} {n['usd']:>10.5f} "
            f"{costing.per_million(n['usd'], points):>8.4f}"
        )
    to = sum(r["usd"] for r in ours_rows)
    tn = sum(r["usd"] for r in naive_rows)
    print("-" * len(head))
    print(
        f"{'total':<20} {'':>10} {'':>14} {'':<15} {to:>10.5f} {costing.per_million(to, points):>8.4f} | "
        f"{'':>10} {'':>14} {tn:>10.5f} {costing.per_million(tn, points):>8.4f}"
    )


def check_accounting(name: str, run: dict, expected_keys: set, report: dict) -> list[str]:
    """Every point stored once; counted requests equal what moto (and the simulator) saw."""
    problems = []
    keys = run["point_keys"]
    meter: AwsMeter = run["meter"]
    stored_once = len(keys) == len(set(keys)) == len(expected_keys) and set(keys) == expected_keys
    if not stored_once:
        problems.append(
            f"{name}: {len(set(keys))} distinct points stored, {len(keys)} items, {len(expected_keys)} expected"
        )
    if meter.items_written["point"] != len(expected_keys):
        problems.append(f"{name}: {meter.items_written['point']} point writes for {len(expected_keys)} points")
    counted = meter.calls + meter.failed_calls
    if "moto_requests" in run:
        moto = run["moto_requests"]
        if sum(moto.values()) != sum(counted.values()):
            problems.append(f"{name}: meter counted {sum(counted.values())} requests, moto saw {sum(moto.values())}")
        by_op_meter = Counter({op: n for (_s, op), n in counted.items()})
        by_op_moto = Counter({op: n for (_s, op), n in moto.items()})
        if by_op_meter != by_op_moto:
            problems.append(f"{name}: per-operation counts differ: meter {dict(by_op_meter)}, moto {dict(by_op_moto)}")
        report[f"{name}_moto_requests"] = sum(moto.values())
    if "pipeline_calls" in run and run["pipeline_calls"] != counted:
        problems.append(f"{name}: meter {dict(counted)} != simulator {dict(run['pipeline_calls'])}")
    report[f"{name}_requests_counted"] = sum(counted.values())
    report[f"{name}_points_stored"] = len(set(keys))
    report[f"{name}_point_writes"] = meter.items_written["point"]
    return problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=100_000, help="points in the day (default 100000)")
    p.add_argument("--symbols", type=int, default=500, help="distinct symbols (default 500)")
    p.add_argument("--seed", type=int, default=workload.DEFAULT_SEED, help="workload seed")
    p.add_argument(
        "--latency-scale",
        type=float,
        default=1.0,
        help="multiply the assumed AWS call latencies (bench/meter.py LATENCY_MS)",
    )
    p.add_argument("--import-samples", type=int, default=7, help="fresh interpreters per module")
    p.add_argument(
        "--verify", action="store_true", help="also record every request on moto's side and compare (slower)"
    )
    p.add_argument("--skip-speed", action="store_true", help="cost only: no speed/import/render")
    p.add_argument(
        "--naive-every",
        type=int,
        default=0,
        help="run the naive baseline on every Nth 5-minute object and scale it up "
        "(default: 1 up to 20,000 points, else 10; 1 = every point)",
    )
    p.add_argument("--workload-dir", type=Path, help="also write the workload files here")
    args = p.parse_args(argv)
    if args.points < 1 or not 1 <= args.symbols <= args.points:
        print("error: need --points >= 1 and 1 <= --symbols <= --points", file=sys.stderr)
        return 2
    if args.naive_every < 0:
        print("error: --naive-every must be >= 1 (0 = automatic)", file=sys.stderr)
        return 2
    every = args.naive_every or (1 if args.points <= 20_000 else 10)
    if args.latency_scale < 0 or args.import_samples < 1:
        print("error: --latency-scale must be >= 0 and --import-samples >= 1", file=sys.stderr)
        return 2

    _aws_env()
    speedups.apply()
    started = time.perf_counter()
    points = workload.generate(args.points, args.symbols, args.seed)
    files = workload.split_files(points)
    if args.workload_dir:
        workload.write_files(files, args.workload_dir)
    expected = {(wp.symbol, wp.timestamp) for wp in points}

    report: dict = {
        "points": args.points,
        "symbols": args.symbols,
        "seed": args.seed,
        "objects": len(files),
        "prices_checked": CHECKED,
        "key_digest": workload.key_digest(expected),
    }
    imports = {} if args.skip_speed else import_times(args.import_samples)
    # The naive baseline runs in a forked child, on the second core, while ours runs here.
    import concurrent.futures
    import multiprocessing

    pool = concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork"))
    naive_future = pool.submit(run_naive, files, latency_scale=args.latency_scale, verify=args.verify, every=every)
    ours = run_ours(
        files,
        latency_scale=args.latency_scale,
        verify=args.verify,
        import_ms={m: imports[m] * 1000 for m in HANDLER_MODULES} if imports else {},
    )
    naive = naive_future.result()
    pool.shutdown()

    problems = check_accounting("ours", ours, expected, report)
    naive_expected = {(wp.symbol, wp.timestamp) for wp in points if workload.window_of(wp) % every == 0}
    problems += check_accounting("naive", naive, naive_expected, report)
    report["naive_every"] = every
    report["naive_sampled_points"] = naive["sampled_points"]
    report["naive_scale"] = naive.get("scale", 1.0)
    report["stored_key_digest"] = workload.key_digest(set(ours["point_keys"]))
    report["naive_stored_key_digest"] = workload.key_digest(set(naive["point_keys"]))

    om, nm = ours["meter"], naive["meter"]
    ours_rows, naive_rows = om.usage.service_rows(), nm.usage.service_rows()
    usd, naive_usd = om.usage.total_usd(), nm.usage.total_usd()
    floor = costing.floor_usd(args.points, ours["aggregates_stored"])
    n = args.points
    report.update(
        {
            "usd_per_million_points": costing.per_million(usd, n),
            "naive_usd_per_million_points": costing.per_million(naive_usd, n),
            "floor_usd_per_million_points": costing.per_million(floor, n),
            "ratio_to_floor": usd / floor,
            "naive_ratio": naive_usd / usd,
            "aggregates_written": ours["aggregates_stored"],
            "usd_by_service": {r["service"]: round(costing.per_million(r["usd"], n), 6) for r in ours_rows},
            "naive_usd_by_service": {r["service"]: round(costing.per_million(r["usd"], n), 6) for r in naive_rows},
            "lambda_invocations": dict(om.usage.lambda_invocations),
            "naive_lambda_invocations": dict(nm.usage.lambda_invocations),
            "requests": {f"{s}:{o}": c for (s, o), c in sorted(om.usage.requests.items())},
            "naive_requests": {f"{s}:{o}": c for (s, o), c in sorted(nm.usage.requests.items())},
            "simulation": ours["stats"],
            "dead_letters": ours["dead_letters"],
            "invocation_errors": len(ours["invocation_errors"]),
            "rejected": ours["rejected"],
            "sim_wall_seconds": round(ours["wall_seconds"], 2),
            "naive_sim_wall_seconds": round(naive["wall_seconds"], 2),
            "latency_scale": args.latency_scale,
        }
    )
    names = ours["function_names"]
    per10k = 10_000 / n
    report["processor_cpu_ms_per_10k_points"] = om.handler_cpu_seconds[names["DataProcessorFunction"]] * 1000 * per10k
    report["aggregator_cpu_ms_per_10k_points"] = om.handler_cpu_seconds[names["DataAggregatorFunction"]] * 1000 * per10k
    report["ingestion_cpu_ms_per_10k_points"] = om.handler_cpu_seconds[names["DataIngestionFunction"]] * 1000 * per10k
    report["lambda_billed_seconds"] = {
        f: round(g / (MEMORY_MB / 1024), 3) for f, g in om.usage.lambda_gb_seconds.items()
    }
    if not args.skip_speed:
        report.update(ingestion_speed(points))
        base = imports["boto3"]
        report["import_seconds"] = {m: round(v, 4) for m, v in imports.items()}
        report["import_vs_boto3"] = {m.rsplit(".", 1)[-1]: imports[m] / base for m in HANDLER_MODULES}
        report["render_seconds"] = render_seconds()
    report["accounting_ok"] = not problems
    report["problems"] = problems
    report["machine"] = {"nproc": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version()}
    report["bench_wall_seconds"] = round(time.perf_counter() - started, 1)

    print(
        f"market_cfn benchmark: {n:,} points, {args.symbols} symbols, {len(files)} objects, "
        f"one trading day; us-east-1 list prices checked {CHECKED}; Lambda arm64 "
        f"{MEMORY_MB} MB at ${PRICES[('lambda', 'gb_seconds_arm64')].usd}/GB-s"
    )
    print_table(ours_rows, naive_rows, n)
    print(
        f"floor (1 WRU per point + per aggregate written, {ours['aggregates_stored']:,} "
        f"aggregates): ${report['floor_usd_per_million_points']:.4f} per million points"
    )
    print(
        f"ours ${report['usd_per_million_points']:.4f}/M = {report['ratio_to_floor']:.3f} x floor "
        f"(target <= 1.10); naive ${report['naive_usd_per_million_points']:.4f}/M = "
        f"{report['naive_ratio']:.2f} x ours (target >= 4)"
    )
    if not args.skip_speed:
        print(
            f"ingestion: CSV {report['ingest_points_per_s_csv']:,.0f} points/s "
            f"({report['ingest_vs_raw_csv']:.2f} x csv.reader), JSON Lines "
            f"{report['ingest_points_per_s_jsonl']:,.0f} points/s "
            f"({report['ingest_vs_raw_jsonl']:.2f} x json.loads) (target >= 0.3)"
        )
        print(
            "import vs boto3: "
            + ", ".join(f"{k} {v:.2f}x" for k, v in report["import_vs_boto3"].items())
            + " (target <= 1.3)"
        )
        print(f"render: {report['render_seconds']:.2f} s")
    print(
        f"processor CPU {report['processor_cpu_ms_per_10k_points']:.0f} ms / 10k points, "
        f"aggregator CPU {report['aggregator_cpu_ms_per_10k_points']:.0f} ms / 10k points"
    )
    for problem in problems:
        print(f"ACCOUNTING PROBLEM: {problem}", file=sys.stderr)
    print(json.dumps(report, sort_keys=True, default=str))
    return 0 if not problems else 1


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


if __name__ == "__main__":
    sys.exit(main())
