"""Unit tests of the cost of ownership over time (bench/ownership.py): storage held for its
retention, billed month by month, next to the storage-inclusive floor.

Pure arithmetic: each test builds a footprint with round numbers and checks the bill by hand.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is not installed

from bench import costing, ownership, workload
from bench.fit import Linear
from bench.ownership import DAYS_PER_MONTH as M

ZERO = Linear(0.0, 0.0, 0.0)
GB = costing.GB


def _fp(**kw) -> ownership.Footprint:
    base = dict(
        point_item_bytes=0.0,
        bar_item_bytes=0.0,
        raw_bytes_per_point=0.0,
        rejects_bytes_per_point=0.0,
        history_bytes_per_point=0.0,
        history_bytes_per_bar=0.0,
        log_bytes=ZERO,
        archive_bytes=ZERO,
    )
    return ownership.Footprint(**{**base, **kw})


KEEP = ownership.Retention(points_days=35, bars_days=90, raw_days=37, logs_days=7, archive_days=7, history=False)


def test_held_days_grow_until_the_retention_then_stay():
    # month 1 of a 35-day retention: the mean of t over [0, 30.44]
    assert ownership.held_days_mean(1, 35) == pytest.approx(M / 2)
    # month 2 crosses day 35: part growing, part capped
    a, b, r = M, 2 * M, 35
    assert ownership.held_days_mean(2, 35) == pytest.approx(((r * r - a * a) / 2 + r * (b - r)) / M)
    assert ownership.held_days_mean(12, 35) == 35 == ownership.held_days_mean(36, 35)
    # 0 keeps everything: month 12's mean is its midpoint, 11.5 months of days
    assert ownership.held_days_mean(12, 0) == pytest.approx(11.5 * M)


def test_the_table_is_billed_with_the_100_byte_overhead_and_pitr_on_its_size():
    # GIVEN points of 50 bytes (150 billed), 1M a day, kept 35 days; empty bars (100 billed), 90 days
    fp = _fp(point_item_bytes=50.0)
    line = ownership.month_cost(ZERO, fp, KEEP, 1_000_000, 500, 12)
    gb = (1_000_000 * 150 * 35 + workload.windows_in_day(1_000_000, 500) * 100 * 90) / GB
    # THEN storage is $0.25 and PITR $0.20 per GB-month of the table
    assert line["DynamoDB storage"] == pytest.approx(gb * 0.25)
    assert line["PITR"] == pytest.approx(gb * 0.20)
    assert line["history export"] == 0.0 == line["history S3"]
    no_pitr = ownership.Retention(**{**KEEP.__dict__, "pitr": False})
    assert ownership.month_cost(ZERO, fp, no_pitr, 1_000_000, 500, 12)["PITR"] == 0.0


def test_bars_have_their_own_retention_and_count_by_window():
    fp = _fp(bar_item_bytes=100.0)
    windows = workload.windows_in_day(1_000_000, 5_000)
    line = ownership.month_cost(ZERO, fp, KEEP, 1_000_000, 5_000, 12)
    # points of 0 bytes still cost their overhead: 100 bytes, 35 days
    assert line["DynamoDB storage"] == pytest.approx((windows * 200 * 90 + 1_000_000 * 100 * 35) / GB * 0.25)


def test_s3_logs_and_archive_are_held_for_their_days():
    fp = _fp(raw_bytes_per_point=40.0, rejects_bytes_per_point=10.0, log_bytes=Linear(1e6, 0.0, 0.0))
    line = ownership.month_cost(ZERO, fp, KEEP, 1_000_000, 500, 12)
    assert line["S3 raw + rejects"] == pytest.approx(1_000_000 * 50 * 37 / GB * 0.023)
    assert line["logs storage"] == pytest.approx(1e6 * 7 / GB * 0.03)
    assert line["archive storage"] == 0.0


def test_history_pays_the_export_per_day_and_grows_on_s3():
    fp = _fp(point_item_bytes=50.0, history_bytes_per_point=20.0)
    keep = ownership.Retention(**{**KEEP.__dict__, "history": True})
    m12 = ownership.month_cost(ZERO, fp, keep, 1_000_000, 500, 12)
    # writes and TTL deletions: 2 x 50 MB a day processed at $0.10 per GB
    assert m12["history export"] == pytest.approx(100e6 / GB * 0.10 * M)
    assert m12["history S3"] == pytest.approx(20e6 * 11.5 * M / GB * 0.023)
    m36 = ownership.month_cost(ZERO, fp, keep, 1_000_000, 500, 36)
    assert m36["history S3"] > 3 * m12["history S3"]
    # a tiny day is billed the 10 MB minimum of an export
    tiny = ownership.month_cost(ZERO, fp, keep, 1_000, 1, 1)
    assert tiny["history export"] == pytest.approx(10 * 1024**2 / GB * 0.10 * M)


def test_the_floor_holds_the_request_floor_and_what_the_retention_stores():
    fp = _fp(point_item_bytes=50.0, bar_item_bytes=100.0, raw_bytes_per_point=40.0)
    requests = Linear(0.0, 0.7e-6, 0.7e-6)
    proj = ownership.project(requests, fp, KEEP, months=(12,), grid={"1M/500": (1_000_000, 500)})
    row = proj["1M/500"]["months"][12]
    line = row["by_line"]
    floor_requests = costing.floor_usd(1_000_000, workload.windows_in_day(1_000_000, 500)) * M
    assert row["floor_usd"] == pytest.approx(floor_requests + line["DynamoDB storage"] + line["PITR"])
    assert row["usd"] == pytest.approx(sum(line.values()))
    assert row["ratio_pitr_above_floor"] > row["ratio_to_floor"] > 1.0


def test_flat_is_met_with_ttl_and_missed_without():
    fp = _fp(point_item_bytes=50.0, bar_item_bytes=100.0)
    requests = Linear(0.01, 0.7e-6, 0.7e-6)
    forever = ownership.Retention(**{**KEEP.__dict__, "points_days": 0, "bars_days": 0})
    for keep, flat in ((KEEP, True), (forever, False)):
        proj = ownership.project(requests, fp, keep)
        checks = [t for t in ownership.targets(proj, proj) if "month 36" in t["target"]]
        assert checks and all(t["met"] is flat for t in checks)


def test_the_footprint_is_measured_bytes_over_measured_items():
    stored = {
        "point_items": 100,
        "point_bytes": 4_500,
        "bar_items": 10,
        "bar_bytes": 1_100,
        "raw_bytes": 5_000,
        "rejects_bytes": 0,
        "history_point_gzip_bytes": 2_000,
        "history_bar_gzip_bytes": 300,
    }
    logs = Linear(0.5 / GB * 1e6, 0.0, 0.5 / GB * 200)  # $ of 1 MB a day + 200 bytes a point at $0.50/GB
    fp = ownership.footprint_from_days([{"stored": stored}], {"CloudWatch Logs": logs})
    assert (fp.point_item_bytes, fp.bar_item_bytes, fp.raw_bytes_per_point) == (45.0, 110.0, 50.0)
    assert (fp.history_bytes_per_point, fp.history_bytes_per_bar) == (20.0, 30.0)
    assert fp.log_bytes.fixed_usd_per_day == pytest.approx(1e6)
    assert fp.log_bytes.usd_per_point == pytest.approx(200)
    assert fp.archive_bytes == ZERO
