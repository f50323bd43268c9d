"""Cost of ownership over time: the fitted request bill plus what keeping the data costs.

Pure arithmetic, no AWS. bench/fit.py prices a day of requests; this module adds, month
by month of operation, the storage the bill counts:

* the DynamoDB table (points and bars, each item's measured size + the 100-byte per-item
  overhead) held for the TTL retention of each, and point-in-time recovery on its size;
* S3 Standard for the raw objects and the rejection reports, held until the lifecycle
  expires them plus the noncurrent days;
* CloudWatch Logs storage of the ingested bytes, and the EventBridge archive, for their
  retention;
* the cold tier (docs/performance.md "History beyond the table"): one DynamoDB incremental
  export a day (billed per GB of changed data, 10 MB at least: the day's writes and the TTL
  deletions) and its gzipped DynamoDB JSON on S3 Standard, kept for good.

A month is 365.25 / 12 days of operation, every day a day of points (the projections are
"points a day"). The storage billed in month m is the mean, over the month, of the bytes
held on each day t: min(t, retention) days' worth of data.

The floor next to it: the request floor of bench/fit.py (one write unit per point
and per bar) plus what the chosen retention needs at the measured item sizes: the table's
storage, point-in-time recovery on it (the template's 35-day recovery window is a retention
too, and PITR is billed on the table's size) and, when history is kept, the cold tier's S3
storage. The export's processing, raw objects, logs and the archive are above it. Each
month also carries the ratio with PITR counted above the floor (`ratio_pitr_above_floor`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from bench import costing, workload
from bench.fit import Linear
from bench.prices import usd_per_unit

DAYS_PER_MONTH = 365.25 / 12
MONTHS = (1, 12, 36)
CURVE_MONTHS = tuple(range(1, 37))
DDB_ITEM_OVERHEAD_BYTES = 100  # developer guide, "DynamoDB item sizes and formats" (bench/prices.py)
EXPORT_MIN_BYTES = 10 * 1024**2  # an incremental export is billed at least 10 MB
GRID: dict[str, tuple[int, int]] = {
    "1M/500": (1_000_000, 500),
    "1M/5000": (1_000_000, 5_000),
    "10M/5000": (10_000_000, 5_000),
    "100M/5000": (100_000_000, 5_000),
}
TARGETS = {  # the cost-over-time targets: (grid name, month, bound on the ratio to the storage-inclusive floor)
    "1M/5000 at 12 months": ("1M/5000", 12, 1.15),
    "1M/500 at 12 months": ("1M/500", 12, 1.08),
}
FLAT_TOLERANCE = 0.005  # "flat": month 36 within 0.5% of month 12 (the table-bound part)


@dataclass(frozen=True)
class Retention:
    """How long each store keeps a day of data, in days (0: for good)."""

    points_days: int
    bars_days: int
    raw_days: int  # S3 expiration + noncurrent-version days
    logs_days: int
    archive_days: int
    history: bool = True  # the cold tier: daily incremental exports kept on S3
    pitr: bool = True


@dataclass(frozen=True)
class Footprint:
    """Bytes a day of data leaves behind, measured on the benchmark's days."""

    point_item_bytes: float  # DynamoDB item size, without the per-item overhead
    bar_item_bytes: float
    raw_bytes_per_point: float  # the S3 objects as uploaded
    rejects_bytes_per_point: float
    history_bytes_per_point: float  # gzipped incremental-export lines of a point
    history_bytes_per_bar: float
    log_bytes: Linear  # bytes ingested a day = F + w·W + p·N
    archive_bytes: Linear


def held_days_mean(month: int, retention_days: int) -> float:
    """Mean over month `month` (1-based) of min(t, retention) for t the days of operation.

    retention 0 keeps everything: the mean is the month's midpoint."""
    a, b = (month - 1) * DAYS_PER_MONTH, month * DAYS_PER_MONTH
    if retention_days <= 0 or retention_days >= b:
        return (a + b) / 2
    if retention_days <= a:
        return float(retention_days)
    r = retention_days
    # integral of t from a to r, plus r for the rest, over the month
    return ((r * r - a * a) / 2 + r * (b - r)) / (b - a)


def _gb(n_bytes: float) -> float:
    return n_bytes / costing.GB


def month_cost(
    requests: Linear, fp: Footprint, keep: Retention, points: int, symbols: int, month: int
) -> dict[str, float]:
    """US$ in month `month` of operation at `points` a day over `symbols`, by line."""
    windows = workload.windows_in_day(points, symbols)
    table_points = points * (fp.point_item_bytes + DDB_ITEM_OVERHEAD_BYTES) * held_days_mean(month, keep.points_days)
    table_bars = windows * (fp.bar_item_bytes + DDB_ITEM_OVERHEAD_BYTES) * held_days_mean(month, keep.bars_days)
    table_gb = _gb(table_points + table_bars)
    s3_bytes = points * (fp.raw_bytes_per_point + fp.rejects_bytes_per_point) * held_days_mean(month, keep.raw_days)
    logs = fp.log_bytes.usd_per_day(windows=windows, points=points) * held_days_mean(month, keep.logs_days)
    archive = fp.archive_bytes.usd_per_day(windows=windows, points=points) * held_days_mean(month, keep.archive_days)
    out = {
        "requests": requests.usd_per_day(windows=windows, points=points) * DAYS_PER_MONTH,
        "DynamoDB storage": table_gb * usd_per_unit("dynamodb", "storage_gb_month"),
        "PITR": table_gb * usd_per_unit("dynamodb", "pitr_gb_month") if keep.pitr else 0.0,
        "S3 raw + rejects": _gb(s3_bytes) * usd_per_unit("s3", "standard_gb_month"),
        "logs storage": _gb(logs) * usd_per_unit("logs", "stored_gb_month"),
        "archive storage": _gb(archive) * usd_per_unit("events", "archive_stored_gb_month"),
        "history export": 0.0,
        "history S3": 0.0,
    }
    if keep.history:
        # each item is processed when written and again when TTL deletes it (the export
        # carries the change); billed at least 10 MB an export, one export a day
        changed = points * fp.point_item_bytes * 2 + windows * fp.bar_item_bytes * 2
        out["history export"] = (
            _gb(max(changed, EXPORT_MIN_BYTES)) * usd_per_unit("dynamodb", "export_gb") * (DAYS_PER_MONTH)
        )
        history = (points * fp.history_bytes_per_point + windows * fp.history_bytes_per_bar) * held_days_mean(month, 0)
        out["history S3"] = _gb(history) * usd_per_unit("s3", "standard_gb_month")
    return out


def floor_month(fp: Footprint, keep: Retention, points: int, symbols: int, line: Mapping[str, float]) -> float:
    """The storage-inclusive floor of a month: request floor + table storage + PITR + history on S3."""
    windows = workload.windows_in_day(points, symbols)
    requests = costing.floor_usd(points, windows) * DAYS_PER_MONTH
    return requests + line["DynamoDB storage"] + line["PITR"] + line["history S3"]


def project(requests: Linear, fp: Footprint, keep: Retention, months=MONTHS, grid=GRID) -> dict[str, dict]:
    """{grid name: {"months": {m: {"usd", "floor_usd", "ratio_to_floor", "by_line"}}}}."""
    out: dict[str, dict] = {}
    for name, (points, symbols) in grid.items():
        rows = {}
        for m in months:
            line = month_cost(requests, fp, keep, points, symbols, m)
            usd, floor = sum(line.values()), floor_month(fp, keep, points, symbols, line)
            rows[m] = {
                "usd": usd,
                "floor_usd": floor,
                "ratio_to_floor": usd / floor,
                "ratio_pitr_above_floor": usd / (floor - line["PITR"]),
                "by_line": line,
            }
        out[name] = {"points": points, "symbols": symbols, "months": rows}
    return out


def targets(proj: dict[str, dict], proj_no_history: dict[str, dict]) -> list[dict]:
    """The cost-over-time targets (TARGETS) on the default projection; "flat" is checked on the table-bound
    bill (history off): the cold tier grows by design, at S3 prices, and is shown apart."""
    out = []
    for label, (name, month, bound) in TARGETS.items():
        value = proj[name]["months"][month]["ratio_to_floor"]
        out.append({"target": f"{label} <= {bound} x floor", "value": value, "met": value <= bound})
    for name, row in proj_no_history.items():
        m12, m36 = row["months"][12]["usd"], row["months"][36]["usd"]
        growth = m36 / m12 - 1.0
        out.append(
            {
                "target": f"{name} month 36 / month 12 - 1 (history off)",
                "value": growth,
                "met": growth <= FLAT_TOLERANCE,
            }
        )
    return out


def footprint_from_days(measured: list[dict], fit_by_service: Mapping[str, Linear]) -> Footprint:
    """The footprint of the measured days (sums over all of them) and the fitted log and
    archive lines converted back from US$ to bytes."""

    def ratio(num: str, den: str) -> float:
        d = sum(m["stored"][den] for m in measured)
        return sum(m["stored"][num] for m in measured) / d if d else 0.0

    def as_bytes(service: str, price: float) -> Linear:
        lin = fit_by_service.get(service, Linear(0.0, 0.0, 0.0))
        k = costing.GB / price
        return Linear(lin.fixed_usd_per_day * k, lin.usd_per_window * k, lin.usd_per_point * k)

    return Footprint(
        point_item_bytes=ratio("point_bytes", "point_items"),
        bar_item_bytes=ratio("bar_bytes", "bar_items"),
        raw_bytes_per_point=ratio("raw_bytes", "point_items"),
        rejects_bytes_per_point=ratio("rejects_bytes", "point_items"),
        history_bytes_per_point=ratio("history_point_gzip_bytes", "point_items"),
        history_bytes_per_bar=ratio("history_bar_gzip_bytes", "bar_items"),
        log_bytes=as_bytes("CloudWatch Logs", usd_per_unit("logs", "ingested_gb")),
        archive_bytes=as_bytes("EventBridge archive", usd_per_unit("events", "archive_gb")),
    )


def default_retention(*, history: bool = True) -> Retention:
    """The retention the template deploys with by default (its constants and parameter defaults)."""
    from market_cfn.stack import config, events, parameters, storage

    return Retention(
        points_days=parameters.POINTS_RETENTION_DAYS,
        bars_days=parameters.BARS_RETENTION_DAYS,
        raw_days=storage.DATA_RETENTION_DAYS + storage.NONCURRENT_VERSION_RETENTION_DAYS,
        logs_days=config.LOG_RETENTION_DAYS,
        archive_days=events.ARCHIVE_RETENTION_DAYS,
        history=history,
    )


def report(requests: Linear, fp: Footprint, keep: Retention) -> dict:
    """Everything bench/run.py prints and saves: the footprint, the retention, the months of
    the grid with and without the cold tier, the 36-month curve and the targets."""
    no_history = Retention(**{**asdict(keep), "history": False})
    proj = project(requests, fp, keep)
    proj_off = project(requests, fp, no_history)
    curve = project(requests, fp, keep, months=CURVE_MONTHS)
    footprint = asdict(fp)
    for key in ("log_bytes", "archive_bytes"):
        lin = getattr(fp, key)
        footprint[key] = {
            "fixed_bytes_per_day": lin.fixed_usd_per_day,
            "bytes_per_window": lin.usd_per_window,
            "bytes_per_point": lin.usd_per_point,
        }
    return {
        "footprint": footprint,
        "retention": asdict(keep),
        "projections": _str_months(proj),
        "projections_history_off": _str_months(proj_off),
        "curve": {
            name: {str(m): [v["usd"], v["floor_usd"]] for m, v in row["months"].items()} for name, row in curve.items()
        },
        "targets": targets(proj, proj_off),
    }


def _str_months(proj: dict) -> dict:
    return {name: {**row, "months": {str(m): v for m, v in row["months"].items()}} for name, row in proj.items()}
