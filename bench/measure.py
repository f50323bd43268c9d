"""One measured day: a workload size through market_cfn's handlers and the naive baseline.

`measure_ours(points, symbols, ...)` and `measure_naive(...)` each generate the day's
workload (bench/workload.py), run it on a fresh moto (one process per call: bench/run.py
runs them in forked workers), check the accounting (every point stored and written
once; with `verify`, the requests counted equal those moto received) and return a
plain, picklable summary: US$ per day by service, requests, invocations, windows.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from types import SimpleNamespace

from bench import costing, workload
from bench.meter import AwsMeter

NAIVE_MEMORY_MB = 3072  # the naive baseline's functions, as first defined: kept so runs compare
COLD_STARTS_PER_FUNCTION = 1  # one INIT per function per day, billed at the measured import time
FUNCTION_NAMES = {
    "handlers.data_ingestion": "DataIngestionFunction",
    "handlers.data_processor": "DataProcessorFunction",
    "handlers.data_aggregator": "DataAggregatorFunction",
}
SWEEP_MEMORY_MB = (256, 512, 1024, 1769, 3008)  # memory sizes the report prices every function at


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


def stored_footprint(table_name: str, rejects_bucket: str, files) -> dict[str, int]:
    """What the day leaves in storage, read from moto's backend state (no API call): the
    DynamoDB item sizes of points and bars (bench/costing.py, the developer guide's rules),
    the raw objects and rejection reports in S3, and the gzipped size of the lines an
    incremental export would write for these items (NEW_IMAGE view, DynamoDB JSON: a
    `Keys` and a `NewImage` object per item, developer guide "DynamoDB table export output
    format"; gzip level 6, the export's own compression level is not documented)."""
    import gzip
    import json

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    from handlers.contract import AGGREGATE_KEY_SUFFIX

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].tables[table_name]
    out: Counter = Counter()
    lines: dict[str, list[str]] = {"point": [], "bar": []}
    for partition in table.items.values():
        for item in partition.values():
            wire = item.to_json()["Attributes"]
            kind = "bar" if str(item.hash_key.value).endswith(AGGREGATE_KEY_SUFFIX) else "point"
            out[f"{kind}_items"] += 1
            out[f"{kind}_bytes"] += costing.dynamodb_item_bytes(wire)
            record = {
                "Metadata": {"WriteTimestampMicros": {"N": "1717421400000000"}},
                "Keys": {"symbol": wire["symbol"], "timestamp": wire["timestamp"]},
                "NewImage": wire,
            }
            lines[kind].append(json.dumps(record, separators=(",", ":")))
    for kind, text in lines.items():
        body = "\n".join(text).encode()
        out[f"history_{kind}_gzip_bytes"] = len(gzip.compress(body, compresslevel=6)) if text else 0
    out["raw_bytes"] = sum(len(f.body) for f in files)
    bucket = s3_backends[DEFAULT_ACCOUNT_ID]["global"].buckets[rejects_bucket]
    out["rejects_bytes"] = sum(key.size for key in bucket.keys.values())
    return dict(out)


def run_ours(files, *, latency_scale: float, verify: bool, import_ms: dict, schedule_runs: int) -> dict:
    from bench.ours import metered_pipeline_class, run_day

    meter = AwsMeter(latency_scale=latency_scale, capture_logs=False)
    meter.install()
    pipe = metered_pipeline_class()(meter)
    result: dict = {}
    try:
        pipe.start()
        meter.reset()
        first_call = len(pipe.calls)
        recorder = _Recorder() if verify else None
        if recorder:
            recorder.start()
        t0 = time.perf_counter()
        stats = run_day(pipe, files, schedule_runs=schedule_runs)
        result["wall_seconds"] = time.perf_counter() - t0
        if recorder:
            result["moto_requests"] = recorder.stop()
        meter.enabled = False
        meter.add_idle_pollers()
        for module, ms in import_ms.items():
            name = FUNCTION_NAMES[module]
            for _ in range(COLD_STARTS_PER_FUNCTION):
                meter.add_init(pipe.physical[name]["Ref"], ms)
        result["pipeline_calls"] = Counter((c.service, c.operation) for c in pipe.calls[first_call:])
        from handlers.contract import AGGREGATE_KEY_SUFFIX

        items = stored_items(pipe.table)
        point_keys = [k for k in items if not k[0].endswith(AGGREGATE_KEY_SUFFIX)]
        result["aggregates_stored"] = len(items) - len(point_keys)
        result["stored"] = stored_footprint(pipe.table, pipe.rejects_bucket, files)
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


def run_naive(files, *, latency_scale: float, verify: bool, every: int, schedule_runs: int) -> dict:
    from moto import mock_aws

    from bench.naive import NaivePipeline

    meter = AwsMeter(memory_mb=NAIVE_MEMORY_MB, latency_scale=latency_scale, capture_logs=False)
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
            _run_naive_counting_logs(naive, sample, meter, out, ticks=len(files), schedule_runs=schedule_runs)
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
        meter.add_idle_pollers()
        items = stored_items(naive.table)
    result["point_keys"] = [k for k in items if "#" not in k[0]]
    result["aggregates_stored"] = len(items) - len(result["point_keys"])
    # What the report needs of the meter, picklable (this may run in a child process).
    result["meter"] = SimpleNamespace(
        usage=meter.usage,
        calls=meter.calls,
        failed_calls=meter.failed_calls,
        items_written=meter.items_written,
        unpriced_calls=meter.unpriced_calls,
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


def _run_naive_counting_logs(naive, files, meter, out, *, ticks: int, schedule_runs: int) -> None:
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
        naive.run(files, ticks=ticks, schedule_runs=schedule_runs)
    finally:
        del meter.invocation


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
    if meter.unpriced_calls:
        problems.append(f"{name}: calls to services the meter cannot bill: {dict(meter.unpriced_calls)}")
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


# --- one size, in one process -------------------------------------------------------------


def _requests(usage) -> dict[str, float]:
    return {f"{s}:{o}": c for (s, o), c in sorted(usage.requests.items())}


def measure_ours(
    points: int,
    symbols: int,
    *,
    seed: int,
    latency_scale: float,
    verify: bool,
    import_ms: dict,
    schedule_runs: int,
) -> dict:
    """Run one day of `points` over `symbols` through market_cfn's handlers; a plain summary."""
    from bench import speedups
    from bench.meter import billed_ms
    from bench.prices import PRICES

    _aws_env()
    speedups.apply()
    generated = workload.generate(points, symbols, seed)
    files = workload.split_files(generated)
    expected = {(p.symbol, p.timestamp) for p in generated}
    run = run_ours(files, latency_scale=latency_scale, verify=verify, import_ms=import_ms, schedule_runs=schedule_runs)
    out: dict = {}
    problems = check_accounting("ours", run, expected, out)
    meter: AwsMeter = run["meter"]
    rows = meter.usage.service_rows()
    names = run["function_names"]  # logical -> physical
    gb_price = PRICES[("lambda", "gb_seconds_arm64")].usd_per_unit
    sweep: dict[str, dict[int, float]] = {}
    for logical, function in names.items():
        module = next((m for m, lg in FUNCTION_NAMES.items() if lg == logical), None)
        init_ms = import_ms.get(module, 0.0) * COLD_STARTS_PER_FUNCTION
        sweep[function] = {
            mb: (meter.gb_seconds_at(function, mb) + costing.lambda_gb_seconds(billed_ms(init_ms, 0.0, mb), mb))
            * gb_price
            for mb in SWEEP_MEMORY_MB
        }
    per10k = 10_000 / points
    out.update(
        {
            "points": points,
            "symbols": symbols,
            "objects": len(files),
            "windows": run["aggregates_stored"],
            "aggregates_written": run["aggregates_stored"],
            "stored": run["stored"],
            "usd_by_service": {r["service"]: r["usd"] for r in rows},
            "rows": rows,
            "requests": _requests(meter.usage),
            "lambda_invocations": dict(meter.usage.lambda_invocations),
            "memory_mb": {f: meter.memory_of(f) for f in names.values()},
            "lambda_billed_seconds": {
                f: round(g / (meter.memory_of(f) / 1024), 3) for f, g in meter.usage.lambda_gb_seconds.items()
            },
            "lambda_duration_usd_by_memory": sweep,
            "max_invocation_ms": {
                f: max((i.duration_ms for i in meter.invocations if i.function == f), default=0.0)
                for f in names.values()
            },
            "cpu_ms_per_10k_points": {
                logical.removesuffix("Function"): meter.handler_cpu_seconds[f] * 1000 * per10k
                for logical, f in names.items()
            },
            "simulation": run["stats"],
            "dead_letters": run["dead_letters"],
            "invocation_errors": len(run["invocation_errors"]),
            "rejected": run["rejected"],
            "sim_wall_seconds": round(run["wall_seconds"], 2),
            "key_digest": workload.key_digest(expected),
            "stored_key_digest": workload.key_digest(set(run["point_keys"])),
            "problems": problems,
            "pid": os.getpid(),
        }
    )
    return out


def measure_naive(
    points: int, symbols: int, *, seed: int, latency_scale: float, verify: bool, every: int, schedule_runs: int
) -> dict:
    """Run the naive baseline on every `every`-th object of the same day, scaled up."""
    from bench import speedups

    _aws_env()
    speedups.apply()
    generated = workload.generate(points, symbols, seed)
    files = workload.split_files(generated)
    t0 = time.perf_counter()
    run = run_naive(files, latency_scale=latency_scale, verify=verify, every=every, schedule_runs=schedule_runs)
    sampled = {(p.symbol, p.timestamp) for p in generated if workload.window_of(p) % every == 0}
    out: dict = {}
    problems = check_accounting("naive", run, sampled, out)
    usage = run["meter"].usage
    out.update(
        {
            "points": points,
            "symbols": symbols,
            "usd_by_service": {r["service"]: r["usd"] for r in usage.service_rows()},
            "rows": usage.service_rows(),
            "requests": _requests(usage),
            "lambda_invocations": dict(usage.lambda_invocations),
            "naive_every": every,
            "sampled_points": run["sampled_points"],
            "scale": run.get("scale", 1.0),
            "stored_key_digest": workload.key_digest(set(run["point_keys"])),
            "sim_wall_seconds": round(time.perf_counter() - t0, 2),
            "problems": problems,
        }
    )
    return out


def per_million_by_service(usd_by_service: dict[str, float], points: int) -> dict[str, float]:
    return {s: round(costing.per_million(v, points), 6) for s, v in usd_by_service.items()}
