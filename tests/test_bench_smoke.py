"""CI smoke test of the benchmark (bench/run.py) at small sizes: the accounting and the fit, not the timings.

GIVEN three small days whose points per window differ (1,500 points over 10 symbols,
      600 over 300, 3,000 over 30: 780, 600 and 2,203 windows)
WHEN  bench/run.py pushes each through market_cfn's handlers and the naive baseline on
      moto, with --verify (moto's own request hook counts what the AWS side received)
THEN  every point is stored exactly once and written exactly once, the aggregates are
      the day's (symbol, 5-minute window) pairs, the requests the meter counted equal
      the requests moto received (in total and per operation) and those the simulator
      recorded, the reported floor and ratios follow from the counted units, and the
      fit of F, w and p passes through the three days (three parameters, three days)
      and is what the projections table evaluates.

It runs as a subprocess, as CI and a user would run it, so the handlers' log capture and
moto's mock are exactly those of a real run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # bench/ is not an installed package

from bench import workload  # noqa: E402

# (1, W, N) far from collinear: nearly equal W or N/W between two days would make the
# fit divide their measurement noise by a small difference.
SIZES = [(1_500, 10), (600, 300), (3_000, 30)]


@pytest.fixture(scope="module")
def report_text() -> str:
    """bench/run.py's whole output (the report docs/performance.md tells users to save)."""
    proc = subprocess.run(
        [
            sys.executable,
            "bench/run.py",
            "--sizes",
            ",".join(f"{n}/{s}" for n, s in SIZES),
            "--verify",
            "--skip-speed",
            "--naive-every",
            "3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


@pytest.fixture(scope="module")
def report(report_text: str) -> dict:
    return json.loads(report_text.strip().splitlines()[-1])


def test_the_saved_report_feeds_markdown(report_text, tmp_path):
    """docs/performance.md's command after the run: `python bench/markdown.py report.txt` prints the page's
    tables from the saved report."""
    saved = tmp_path / "report.txt"
    saved.write_text(report_text)
    tables = subprocess.run(
        [sys.executable, "bench/markdown.py", str(saved)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert tables.returncode == 0, tables.stderr[-2000:]
    assert tables.stdout.count("\n|") >= 4 and "1M/5000" in tables.stdout


def _size(report: dict, points: int, symbols: int) -> dict:
    (row,) = [r for r in report["sizes"] if (r["points"], r["symbols"]) == (points, symbols)]
    return row


def test_every_point_is_stored_and_written_exactly_once(report):
    assert report["accounting_ok"], report["problems"]
    for (points, symbols), acc in zip(SIZES, report["accounting"], strict=True):
        assert acc["points"] == points
        assert acc["ours_points_stored"] == acc["ours_point_writes"] == points
        generated = workload.generate(points, symbols, report["seed"])
        sampled = [p for p in generated if workload.window_of(p) % acc["naive_every"] == 0]
        assert acc["naive_points_stored"] == acc["naive_point_writes"] == len(sampled)


def test_one_aggregate_per_symbol_and_window(report):
    for points, symbols in SIZES:
        generated = workload.generate(points, symbols, report["seed"])
        windows = {(p.symbol, p.timestamp // 300_000) for p in generated}
        assert _size(report, points, symbols)["windows"] == len(windows) == workload.windows_in_day(points, symbols)


def test_counted_requests_equal_what_moto_received(report):
    for acc in report["accounting"]:
        assert acc["ours_requests_counted"] == acc["ours_moto_requests"] > 0
        assert acc["naive_requests_counted"] == acc["naive_moto_requests"] > 0


def test_request_counts_have_the_pipeline_shapes(report):
    row = _size(report, 3_000, 30)
    req = row["requests"]
    objects = row["objects"]
    # One GetObject and one processor invocation per object; one SendMessageBatch per
    # object (a 5-minute object is far below the 1 MiB message size).
    assert req["s3:GetObject"] == objects
    assert req["sqs:SendMessageBatch"] == objects
    assert row["lambda_invocations"]["DataProcessor-dev"] == objects
    assert row["lambda_invocations"]["DataAggregator-dev"] == report["schedule_runs_per_day"] == 288
    # BatchWriteItem carries at most 25 items: at least points / 25 calls.
    assert req["dynamodb:BatchWriteItem"] >= 3_000 / 25


def test_reported_ratios_follow_from_the_costs(report):
    for row in report["sizes"]:
        floor = (row["points"] + row["windows"]) * 0.625 / row["points"]
        assert row["floor_usd_per_million_points"] == pytest.approx(floor)
        assert row["ratio_to_floor"] == pytest.approx(row["usd_per_million_points"] / floor)
        assert row["naive_ratio"] == pytest.approx(row["naive_usd_per_million_points"] / row["usd_per_million_points"])
        # Our DynamoDB write bill is exactly the floor: one WRU per point and per aggregate.
        assert row["usd_by_service"]["DynamoDB writes"] == pytest.approx(floor, rel=1e-6)
        assert sum(row["usd_by_service"].values()) == pytest.approx(row["usd_per_million_points"], rel=1e-5)


def test_the_fit_passes_through_three_days_and_feeds_the_projections(report):
    fit = report["fit"]
    assert fit["max_fit_error"] < 1e-9  # three days, three parameters
    for row in report["sizes"]:
        predicted = (
            fit["fixed_usd_per_day"]
            + fit["usd_per_million_windows"] * row["windows"] / 1e6
            + fit["usd_per_million_points"] * row["points"] / 1e6
        )
        assert predicted == pytest.approx(row["usd_per_day"], rel=1e-9)
    one = report["projections_detail"]["1M/500"]
    assert one["windows"] == 39_000
    expected = fit["fixed_usd_per_day"] + fit["usd_per_million_windows"] * 0.039 + fit["usd_per_million_points"]
    assert report["projections"]["1M/500"]["usd_per_million_points"] == pytest.approx(expected)
    assert set(report["projections"]) == {"1M/500", "1M/5000", "5M/500", "5M/5000", "10M/5000", "20M/500", "20M/5000"}
    by_service = report["fit_by_service"]
    assert sum(s["usd_per_million_points"] for s in by_service.values()) == pytest.approx(fit["usd_per_million_points"])


def test_the_cost_over_time_prices_the_measured_items_for_their_retention(report):
    """bench/ownership.py gets the item sizes of the items the day stored: the attribute bytes of a point
    (symbol, timestamp, price, volume and the TTL attribute) are tens of bytes, a bar's more; every month of
    the grid costs more than its floor, and the storage of month 36 is that of month 12 when TTL bounds it."""
    own = report["ownership"]
    fp, keep = own["footprint"], own["retention"]
    assert 30 < fp["point_item_bytes"] < fp["bar_item_bytes"] < 200
    assert 0 < fp["history_bytes_per_point"] < fp["point_item_bytes"]  # gzip of the export's lines
    assert fp["raw_bytes_per_point"] > 20
    assert set(own["projections"]) == {"1M/500", "1M/5000", "10M/5000", "100M/5000"}
    for row in own["projections"].values():
        assert set(row["months"]) == {"1", "12", "36"}
        for month in row["months"].values():
            assert month["usd"] == pytest.approx(sum(month["by_line"].values()))
            assert month["ratio_to_floor"] > 1.0
    assert all(len(months) == 36 for months in own["curve"].values())
    if keep["points_days"] and keep["bars_days"]:
        row = own["projections_history_off"]["1M/5000"]["months"]
        assert row["36"]["by_line"]["DynamoDB storage"] == pytest.approx(row["12"]["by_line"]["DynamoDB storage"])


def test_the_saved_report_draws_the_cost_over_time_png(report_text, tmp_path):
    """docs/performance.md's plot: `python bench/plot.py report.txt OUT.png` (the bench extra)."""
    pytest.importorskip("matplotlib")
    saved, png = tmp_path / "report.txt", tmp_path / "cost.png"
    saved.write_text(report_text)
    proc = subprocess.run(
        [sys.executable, "bench/plot.py", str(saved), str(png)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n") and png.stat().st_size > 10_000


@pytest.mark.parametrize(
    "args",
    [
        ["--sizes", "0/1,10/1,20/1"],
        ["--sizes", "10/20,30/1,40/1"],
        ["--sizes", "1000/10,2000/10"],
        ["--sizes", "1000"],
        ["--latency-scale", "-1"],
        ["--naive-every", "-2"],
        ["--validate", "1000"],
        ["--schedule", "rate(1 hour)"],
    ],
)
def test_bad_arguments_get_a_one_line_error_and_exit_code_2(args):
    proc = subprocess.run([sys.executable, "bench/run.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and proc.stderr.count("\n") == 1
    assert proc.stdout == ""
