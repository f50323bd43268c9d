"""CI smoke test of the benchmark (bench/run.py) at a small size: the accounting, not the timings.

GIVEN 2,000 points over 50 symbols (one trading day, 78 objects)
WHEN  bench/run.py pushes them through market_cfn's handlers and the naive baseline on
      moto, with --verify (moto's own request hook counts what the AWS side received)
THEN  every point is stored exactly once and written exactly once, the aggregates are
      the day's (symbol, 5-minute window) pairs, the requests the meter counted equal
      the requests moto received (in total and per operation) and those the simulator
      recorded, and the reported floor and ratios follow from the counted units.

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

POINTS, SYMBOLS = 2_000, 50


@pytest.fixture(scope="module")
def report() -> dict:
    proc = subprocess.run(
        [
            sys.executable,
            "bench/run.py",
            "--points",
            str(POINTS),
            "--symbols",
            str(SYMBOLS),
            "--verify",
            "--skip-speed",
            "--naive-every",
            "3",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    return json.loads(last)


def test_every_point_is_stored_and_written_exactly_once(report):
    points = workload.generate(POINTS, SYMBOLS, report["seed"])
    expected = {(p.symbol, p.timestamp) for p in points}
    assert report["accounting_ok"], report["problems"]
    assert report["ours_points_stored"] == POINTS
    assert report["ours_point_writes"] == POINTS
    # The digest of what was read back from the table equals the generated keys'.
    assert report["stored_key_digest"] == workload.key_digest(expected)
    assert report["rejected"] == 0
    assert report["dead_letters"] == 0
    assert report["invocation_errors"] == 0


def test_one_aggregate_per_symbol_and_window(report):
    points = workload.generate(POINTS, SYMBOLS, report["seed"])
    windows = {(p.symbol, p.timestamp // 300_000) for p in points}
    assert report["aggregates_written"] == len(windows)


def test_counted_requests_equal_what_moto_received(report):
    assert report["ours_requests_counted"] == report["ours_moto_requests"] > 0
    assert report["naive_requests_counted"] == report["naive_moto_requests"] > 0


def test_naive_sample_is_stored_once_too(report):
    points = workload.generate(POINTS, SYMBOLS, report["seed"])
    sampled = [p for p in points if workload.window_of(p) % report["naive_every"] == 0]
    assert report["naive_points_stored"] == report["naive_point_writes"] == len(sampled)
    assert report["naive_sampled_points"] == len(sampled)
    assert report["naive_scale"] == pytest.approx(POINTS / len(sampled))


def test_request_counts_have_the_pipeline_shapes(report):
    req = report["requests"]
    objects = report["objects"]
    # One GetObject and one processor invocation per object; one SendMessageBatch per
    # object (a 5-minute object is far below the 1 MiB message size).
    assert req["s3:GetObject"] == objects
    assert req["sqs:SendMessageBatch"] == objects
    assert report["lambda_invocations"]["DataProcessor-dev"] == objects
    assert report["simulation"]["aggregator_runs"] == 288
    # BatchWriteItem carries at most 25 items: at least points / 25 calls.
    assert req["dynamodb:BatchWriteItem"] >= POINTS / 25
    # The naive baseline sends one message and one PutEvents call per point.
    sampled = report["naive_sampled_points"]
    scale = report["naive_scale"]
    assert report["naive_requests"]["sqs:SendMessage"] == pytest.approx(sampled * scale)
    assert report["naive_requests"]["events:PutEvents"] == pytest.approx(sampled * scale)


def test_reported_ratios_follow_from_the_costs(report):
    floor = (POINTS + report["aggregates_written"]) * 0.625 / POINTS
    assert report["floor_usd_per_million_points"] == pytest.approx(floor)
    assert report["ratio_to_floor"] == pytest.approx(
        report["usd_per_million_points"] / report["floor_usd_per_million_points"]
    )
    assert report["naive_ratio"] == pytest.approx(
        report["naive_usd_per_million_points"] / report["usd_per_million_points"]
    )
    # Our DynamoDB write bill is exactly the floor: one WRU per point and per aggregate.
    assert report["usd_by_service"]["DynamoDB writes"] == pytest.approx(floor, rel=1e-6)
    assert sum(report["usd_by_service"].values()) == pytest.approx(report["usd_per_million_points"])


@pytest.mark.parametrize(
    "args",
    [["--points", "0"], ["--points", "10", "--symbols", "20"], ["--latency-scale", "-1"], ["--naive-every", "-2"]],
)
def test_bad_arguments_get_a_one_line_error_and_exit_code_2(args):
    proc = subprocess.run([sys.executable, "bench/run.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error:") and proc.stderr.count("\n") == 1
    assert proc.stdout == ""
