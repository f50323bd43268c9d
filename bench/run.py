"""The market_cfn benchmark: the cost curve (US$ per million points), handler speed, cold start.

    python bench/run.py [--sizes 25000/100,100000/100,20000/1000,50000/500] [--verify]
    python bench/run.py --validate 300000 [--fit-from REPORT.json]

1. Cost: each size is one trading day of points (bench/workload.py) through the real
   handlers on moto (market_cfn.simulate); every AWS request is counted and billed
   (bench/meter.py, bench/costing.py, bench/prices.py); the naive reference pipeline
   (bench/naive.py) gets the same points. The days are fitted as daily cost =
   F + w x W + p x N (bench/fit.py) per service, the fit's error is shown on each size,
   and the fit is projected to 1M-20M points a day over 500 and 5,000 symbols.
   `--validate N` measures one large size and reports the projection's error there.
2. Handler speed: ingestion parse + validate + pack vs csv.reader / json.loads over the
   same bytes; processor and aggregator CPU time per 10,000 points.
3. Cold start: import time of each handler module in a fresh interpreter, vs boto3.
4. Render: wall time of `python -m market_cfn render`.

Prints tables and, as the last line, one JSON object.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime as dt
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import costing, fit, ownership, report, speed, workload  # noqa: E402
from bench.measure import FUNCTION_NAMES, measure_naive, measure_ours, per_million_by_service  # noqa: E402
from bench.prices import CHECKED  # noqa: E402

# Four days whose points per window differ (2.6, 7.7, 1.0, 1.6), so F, w and p separate
# and the fourth leaves the fit something to be wrong about. Small enough for about 15
# minutes on 2 cores: each window costs the simulation a Query, a version read and a
# conditional write on moto, so the sizes keep W small and let N/W vary.
DEFAULT_SIZES = ((20_000, 100), (60_000, 100), (10_000, 500), (30_000, 250))
# The naive baseline costs the simulation ~5 requests per point (its cost per point is the
# same in every object): by default it runs on every Nth object, N chosen for about
# NAIVE_SAMPLE_POINTS points (at least 3 objects), and is scaled up (bench/measure.py).
NAIVE_SAMPLE_POINTS = 2_000


def naive_every(points: int) -> int:
    return max(1, min(26, round(points / NAIVE_SAMPLE_POINTS)))


def parse_sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for part in text.split(","):
        points, sep, symbols = part.strip().partition("/")
        if not sep or not points.isdigit() or not symbols.isdigit():
            raise ValueError(f"a size is POINTS/SYMBOLS, got {part.strip()!r}")
        n, s = int(points), int(symbols)
        if n < 1 or not 1 <= s <= n:
            raise ValueError(f"need points >= 1 and 1 <= symbols <= points, got {n}/{s}")
        sizes.append((n, s))
    return sizes


# Where an untracked file changes what is measured; elsewhere (report.txt, the page's own
# `python bench/run.py > report.txt`) it does not, so it does not mark the run "+changes".
CODE_DIRS = ("market_cfn", "handlers", "bench")


def _git_commit(root: Path = ROOT) -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout

    try:
        head = git("rev-parse", "--short", "HEAD").strip()
        changed = git("status", "--porcelain", "--untracked-files=no")  # every tracked file
        untracked = git("ls-files", "--others", "--exclude-standard", "--", *CODE_DIRS)
        return head + ("+changes" if (changed + untracked).strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _schedule_runs(expression: str | None) -> tuple[str, int]:
    from bench.ours import schedule_runs_per_day, template_schedule
    from market_cfn.local.pipeline import load_template

    expression = expression or template_schedule(load_template())
    return expression, schedule_runs_per_day(expression)


def measure_all(sizes, args, *, import_ms: dict, schedule_runs: int, naive: bool = True) -> list[tuple[dict, dict]]:
    """Every size's ours and naive day, in forked workers (largest first); in input order.

    With naive=False the naive baseline is not run (its part of each pair is None)."""
    every = args.naive_every
    common = {"seed": args.seed, "latency_scale": args.latency_scale, "verify": args.verify}
    pool = concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs, mp_context=multiprocessing.get_context("fork"))
    with pool:
        ours, baseline = {}, {}
        for points, symbols in sorted(sizes, key=lambda s: -s[0]):
            n_every = every or naive_every(points)
            ours[(points, symbols)] = pool.submit(
                measure_ours, points, symbols, import_ms=import_ms, schedule_runs=schedule_runs, **common
            )
            if naive:
                baseline[(points, symbols)] = pool.submit(
                    measure_naive, points, symbols, every=n_every, schedule_runs=schedule_runs, **common
                )
        for future in concurrent.futures.as_completed([*ours.values(), *baseline.values()]):
            r = future.result()
            kind = "naive" if "naive_every" in r else "ours"
            print(
                f"measured {kind} {r['points']:,}/{r['symbols']:,} in {r['sim_wall_seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
        return [(ours[s].result(), baseline[s].result() if naive else None) for s in sizes]


def size_report(o: dict, n: dict, ours_fit: fit.Fit, naive_fit: fit.Fit, index: int) -> dict:
    points, windows = o["points"], o["windows"]
    usd, naive_usd = sum(o["usd_by_service"].values()), sum(n["usd_by_service"].values())
    floor = costing.floor_usd(points, windows)
    return {
        "points": points,
        "symbols": o["symbols"],
        "windows": windows,
        "objects": o["objects"],
        "usd_per_day": usd,
        "usd_per_million_points": costing.per_million(usd, points),
        "floor_usd_per_million_points": costing.per_million(floor, points),
        "ratio_to_floor": usd / floor,
        "fit_usd_per_day": ours_fit.total.usd_per_day(windows=windows, points=points),
        "fit_error": ours_fit.errors[index],
        "naive_usd_per_day": naive_usd,
        "naive_usd_per_million_points": costing.per_million(naive_usd, points),
        "naive_fit_error": naive_fit.errors[index],
        "naive_ratio": naive_usd / usd,
        "naive_every": n["naive_every"],
        "naive_sampled_points": n["sampled_points"],
        "usd_by_service": per_million_by_service(o["usd_by_service"], points),
        "requests": o["requests"],
        "lambda_invocations": o["lambda_invocations"],
        "cpu_ms_per_10k_points": o["cpu_ms_per_10k_points"],
        "sim_wall_seconds": o["sim_wall_seconds"],
        "naive_sim_wall_seconds": n["sim_wall_seconds"],
    }


def _days(results: list[dict]) -> list[fit.Day]:
    return [fit.Day(r["points"], r["symbols"], w, r["usd_by_service"]) for r, w in results]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python bench/run.py", description=__doc__.splitlines()[0])
    p.add_argument(
        "--sizes",
        default=",".join(f"{n}/{s}" for n, s in DEFAULT_SIZES),
        help="days to measure, POINTS/SYMBOLS,... (at least 3; default %(default)s)",
    )
    p.add_argument("--seed", type=int, default=workload.DEFAULT_SEED, help="workload seed")
    p.add_argument("--latency-scale", type=float, default=1.0, help="multiply bench/meter.py LATENCY_MS")
    p.add_argument("--import-samples", type=int, default=7, help="fresh interpreters per module")
    p.add_argument("--verify", action="store_true", help="also count every request on moto's side and compare")
    p.add_argument("--skip-speed", action="store_true", help="cost only: no speed/import/render")
    p.add_argument(
        "--naive-every",
        type=int,
        default=0,
        help="run the naive baseline on every Nth 5-minute object and scale it up "
        f"(default: about {NAIVE_SAMPLE_POINTS:,} points' worth, at least 3 objects)",
    )
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    p.add_argument("--schedule", help="aggregation schedule expression (default: the template's)")
    p.add_argument(
        "--validate", type=int, metavar="N", help="also measure N points (>= 300000) and report the fit's error"
    )
    p.add_argument("--validate-symbols", type=int, default=500, help="symbols of the --validate day")
    p.add_argument("--fit-from", type=Path, help="with --validate: take the fit from this report (its last line)")
    p.add_argument(
        "--points-retention-days", type=int, help="cost over time: points' TTL (default: the template's; 0 = for good)"
    )
    p.add_argument("--bars-retention-days", type=int, help="cost over time: bars' TTL (default: the template's)")
    p.add_argument("--no-history", action="store_true", help="cost over time without the cold tier (S3 exports)")
    args = p.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes)
        if args.naive_every < 0 or args.latency_scale < 0 or args.import_samples < 1 or args.jobs < 1:
            raise ValueError("--naive-every, --latency-scale must be >= 0; --import-samples, --jobs >= 1")
        if args.validate is not None and (args.validate < 300_000 or not 1 <= args.validate_symbols <= args.validate):
            raise ValueError("--validate needs N >= 300000 and 1 <= --validate-symbols <= N")
        if args.fit_from and args.validate is None:
            raise ValueError("--fit-from only goes with --validate")
        if not args.fit_from and len(sizes) < 3:
            raise ValueError(f"fitting F, w and p needs at least 3 sizes, got {len(sizes)}")
        schedule, schedule_runs = _schedule_runs(args.schedule)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    started, commit = time.perf_counter(), _git_commit()  # the code measured, not the code at the end
    imports, rss = ({}, {}) if args.skip_speed else speed.import_times(args.import_samples)
    import_ms = {m: imports[m] * 1000 for m in FUNCTION_NAMES} if imports else {}
    measured = [] if args.fit_from else measure_all(sizes, args, import_ms=import_ms, schedule_runs=schedule_runs)
    validation_run = None
    if args.validate is not None:  # ours only: the naive baseline at 300,000 points takes hours here
        (validation_run,) = measure_all(
            [(args.validate, args.validate_symbols)],
            args,
            import_ms=import_ms,
            schedule_runs=schedule_runs,
            naive=False,
        )

    problems = [f"{o['points']}/{o['symbols']}: {x}" for o, n in measured for x in o["problems"] + n["problems"]]
    if args.fit_from:
        saved = json.loads(args.fit_from.read_text().strip().splitlines()[-1])
        ours_fit = _fit_from_report(saved["fit"], saved["sizes"])
        naive_fit = _fit_from_report(saved["naive_fit"], saved["sizes"])
        size_rows = saved["sizes"]
    else:
        ours_fit = fit.fit_days(_days([(o, o["windows"]) for o, _n in measured]))
        naive_fit = fit.fit_days(_days([(n, o["windows"]) for o, n in measured]))
        size_rows = [size_report(o, n, ours_fit, naive_fit, i) for i, (o, n) in enumerate(measured)]
    try:
        projections = fit.projections(ours_fit.total, naive_fit.total)
    except ValueError as exc:  # a fit through small, noisy days can go negative far away
        problems.append(f"no projections: {exc}; measure larger or more different sizes")
        projections = {}

    out: dict = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit,
        "seed": args.seed,
        "schedule": schedule,
        "schedule_runs_per_day": schedule_runs,
        "prices_checked": CHECKED,
        "latency_scale": args.latency_scale,
        "sizes": size_rows,
        "fit": ours_fit.as_report(),
        "fit_by_service": {s: lin.as_report() for s, lin in sorted(ours_fit.by_service.items())},
        "naive_fit": naive_fit.as_report(),
        "projections": {
            name: {k: v[k] for k in ("usd_per_million_points", "ratio_to_floor", "naive_ratio")}
            for name, v in projections.items()
        },
        "projections_detail": projections,
    }
    if measured:
        out["ownership"] = ownership_report(args, ours_fit, [o for o, _n in measured])
        largest_o, largest_n = max(measured, key=lambda r: r[0]["points"])
        big = next(r for r in size_rows if r["points"] == largest_o["points"] and r["symbols"] == largest_o["symbols"])
        out.update({k: big[k] for k in ("usd_per_million_points", "ratio_to_floor", "naive_ratio", "usd_by_service")})
        out["memory_mb"] = largest_o["memory_mb"]
        out["lambda_duration_usd_by_memory"] = largest_o["lambda_duration_usd_by_memory"]
        out["max_invocation_ms"] = largest_o["max_invocation_ms"]
        out["accounting"] = [
            {k: v for k, v in {**o, **n}.items() if k.startswith(("ours_", "naive_"))} | {"points": o["points"]}
            for o, n in measured
        ]
    if validation_run is not None:
        out["validation"] = _validation(validation_run, ours_fit, commit)
        problems += [f"validate: {x}" for x in validation_run[0]["problems"]]
    if not args.skip_speed:
        from bench import parser_speed  # the ingestion engineer's measurement of the fast path

        wp = workload.generate(100_000, 500, args.seed)
        out.update(parser_speed.measure(wp))
        base = imports["boto3"]
        out["import_seconds"] = {m: round(v, 4) for m, v in imports.items()}
        out["import_rss_mb"] = {m: round(v, 1) for m, v in rss.items()}
        out["import_vs_boto3"] = {m.rsplit(".", 1)[-1]: imports[m] / base for m in FUNCTION_NAMES}
        out["render_seconds"] = speed.render_seconds()
        out["tracing"] = speed.tracing_footprint()
    out["accounting_ok"] = not problems
    out["problems"] = problems
    out["machine"] = {"nproc": os.cpu_count(), "cpu": _cpu_model(), "python": platform.python_version()}
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    out["bench_wall_seconds"] = round(time.perf_counter() - started, 1)
    _print(out, measured, ours_fit, naive_fit, projections)
    for problem in problems:
        print(f"ACCOUNTING PROBLEM: {problem}", file=sys.stderr)
    print(json.dumps(out, sort_keys=True, default=str))
    return 0 if not problems else 1


def ownership_report(args, ours_fit: fit.Fit, measured: list[dict]) -> dict:
    """Cost over 1-36 months with storage (bench/ownership.py) at the template's retention."""
    keep = ownership.default_retention(history=not args.no_history)
    overrides = {"points_days": args.points_retention_days, "bars_days": args.bars_retention_days}
    keep = ownership.Retention(**{**keep.__dict__, **{k: v for k, v in overrides.items() if v is not None}})
    fp = ownership.footprint_from_days(measured, ours_fit.by_service)
    return ownership.report(ours_fit.total, fp, keep)


def _fit_from_report(saved: dict, sizes: list[dict]) -> fit.Fit:
    total = fit.Linear(
        saved["fixed_usd_per_day"],
        saved["usd_per_million_windows"] / fit.MILLION,
        saved["usd_per_million_points"] / fit.MILLION,
    )
    return fit.Fit(total, {}, [saved["max_fit_error"]])


def _validation(run: tuple[dict, None], ours_fit: fit.Fit, commit: str) -> dict:
    o, _ = run
    usd = sum(o["usd_by_service"].values())
    predicted = ours_fit.total.usd_per_day(windows=o["windows"], points=o["points"])
    floor = costing.floor_usd(o["points"], o["windows"])
    return {
        "points": o["points"],
        "symbols": o["symbols"],
        "windows": o["windows"],
        "usd_per_day": usd,
        "predicted_usd_per_day": predicted,
        "projection_error": predicted / usd - 1.0,
        "ratio_to_floor": usd / floor,
        "fit_ratio_to_floor": predicted / floor,
        "usd_by_service": per_million_by_service(o["usd_by_service"], o["points"]),
        "sim_wall_seconds": o["sim_wall_seconds"],
        "commit": commit,
        "memory_mb": o["memory_mb"],
    }


def _print(out: dict, measured, ours_fit: fit.Fit, naive_fit: fit.Fit, projections: dict) -> None:
    print(
        f"market_cfn benchmark {out['date']}, commit {out['commit']}; us-east-1 list prices checked "
        f"{CHECKED}; schedule {out['schedule']} ({out['schedule_runs_per_day']} runs a day)"
    )
    if measured:
        o, n = max(measured, key=lambda r: r[0]["points"])
        print(f"\nlargest measured day: {o['points']:,} points, {o['symbols']:,} symbols, {o['windows']:,} windows")
        report.print_service_table(o["rows"], n["rows"], o["points"])
        print()
        report.print_sizes(out["sizes"])
        print()
        report.print_memory(o["memory_mb"], o["lambda_duration_usd_by_memory"], o["max_invocation_ms"])
    print()
    report.print_fit(ours_fit, naive_fit) if ours_fit.by_service else print(f"fit (from file): {out['fit']}")
    print()
    report.print_projections(projections)
    if "ownership" in out:
        print()
        report.print_ownership(out["ownership"])
    if "validation" in out:
        v = out["validation"]
        print(
            f"\nvalidation at {v['points']:,} points / {v['symbols']:,} symbols: measured "
            f"US$ {v['usd_per_day']:.5f}/day, fit {v['predicted_usd_per_day']:.5f} "
            f"({v['projection_error']:+.2%}); x floor {v['ratio_to_floor']:.3f} measured, "
            f"{v['fit_ratio_to_floor']:.3f} fit"
        )
    if "ingest_vs_raw_csv" in out:
        print(
            f"\ningestion: CSV {out['ingest_points_per_s_csv']:,.0f} points/s "
            f"({out['ingest_vs_raw_csv']:.3f} x csv.reader), JSON Lines "
            f"{out['ingest_points_per_s_jsonl']:,.0f} points/s ({out['ingest_vs_raw_jsonl']:.3f} x json.loads)"
        )
        print(
            "import vs boto3: "
            + ", ".join(f"{k} {v:.2f}x" for k, v in out["import_vs_boto3"].items())
            + f"; render {out['render_seconds']:.2f} s"
        )
        t = out["tracing"]
        print(
            f"function zip {t['zip_bytes'] / 1e6:.2f} MB (active tracing, no SDK); the X-Ray SDK path would add "
            f"{t['xray_sdk_zip_bytes'] / 1e6:.2f} MB and {t['tracer_import_seconds'] * 1000:.0f} ms of import"
        )
    print(f"wall time {out['bench_wall_seconds']:.0f} s, load average {out['load_average']}")


if __name__ == "__main__":
    sys.exit(main())
