"""The cost curve: fit daily cost = F + w·W + p·N over measured days, and project it.

Pure arithmetic, no AWS and no simulation. A measured day is (N points, W windows,
US$ per day by service); `fit_days` finds, per service, the fixed cost F (US$ a day),
the cost per window w and per point p that minimise the squared *relative* error over
the measured days (each row divided by that day's total, the same weights for every
service, so the per-service fits add up exactly to the fit of the total), and reports
each day's relative error. `project` evaluates a fit where nothing was measured: the
US$ per million points, the ratio to the data model's floor and the naive ratio.

W is the number of (symbol, 5-minute window) pairs that have points: the aggregates
the day writes (bench/workload.py `windows_in_day`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bench import costing, workload

MILLION = 1_000_000

# The projection grid, the volumes users run: points a day / symbols.
PROJECTIONS: dict[str, tuple[int, int]] = {
    "1M/500": (1_000_000, 500),
    "1M/5000": (1_000_000, 5_000),
    "5M/500": (5_000_000, 500),
    "5M/5000": (5_000_000, 5_000),
    "10M/5000": (10_000_000, 5_000),
    "20M/500": (20_000_000, 500),
    "20M/5000": (20_000_000, 5_000),
}


@dataclass(frozen=True)
class Day:
    """One measured day: its size and what it cost, US$ per day by service."""

    points: int
    symbols: int
    windows: int
    usd_by_service: Mapping[str, float]

    @property
    def usd(self) -> float:
        return sum(self.usd_by_service.values())


@dataclass(frozen=True)
class Linear:
    """daily cost = fixed + per_window·W + per_point·N (US$)."""

    fixed_usd_per_day: float
    usd_per_window: float
    usd_per_point: float

    def usd_per_day(self, *, windows: float, points: float) -> float:
        return self.fixed_usd_per_day + self.usd_per_window * windows + self.usd_per_point * points

    def as_report(self) -> dict[str, float]:
        return {
            "fixed_usd_per_day": self.fixed_usd_per_day,
            "usd_per_million_windows": self.usd_per_window * MILLION,
            "usd_per_million_points": self.usd_per_point * MILLION,
        }


@dataclass(frozen=True)
class Fit:
    total: Linear
    by_service: dict[str, Linear]
    errors: list[float]  # (fit - measured) / measured, per measured day, in input order
    days: list[Day] = field(default_factory=list)

    @property
    def max_error(self) -> float:
        return max(abs(e) for e in self.errors)

    def as_report(self) -> dict[str, float]:
        return {**self.total.as_report(), "max_fit_error": self.max_error}


def solve(matrix: list[list[float]], rhs: list[float]) -> list[float]:
    """Solve the square system matrix·x = rhs (Gaussian elimination, partial pivoting).

    Raises ValueError when the system is singular (to the precision of the inputs).
    """
    n = len(matrix)
    a = [list(row) + [b] for row, b in zip(matrix, rhs, strict=True)]
    scale = max((abs(v) for row in matrix for v in row), default=0.0)
    if scale == 0.0:
        raise ValueError("singular system: all coefficients are zero")
    for col in range(n):
        pivot = max(range(col, n), key=lambda r: abs(a[r][col]))
        if abs(a[pivot][col]) <= 1e-12 * scale:
            raise ValueError("singular system")
        a[col], a[pivot] = a[pivot], a[col]
        for r in range(col + 1, n):
            factor = a[r][col] / a[col][col]
            for c in range(col, n + 1):
                a[r][c] -= factor * a[col][c]
    x = [0.0] * n
    for r in range(n - 1, -1, -1):
        x[r] = (a[r][n] - sum(a[r][c] * x[c] for c in range(r + 1, n))) / a[r][r]
    return x


def least_squares(rows: Sequence[Sequence[float]], values: Sequence[float]) -> list[float]:
    """x minimising sum((row·x - value)^2), by the normal equations (few, well-scaled columns)."""
    k = len(rows[0])
    ata = [[sum(row[i] * row[j] for row in rows) for j in range(k)] for i in range(k)]
    atb = [sum(row[i] * v for row, v in zip(rows, values, strict=True)) for i in range(k)]
    return solve(ata, atb)


def fit_days(days: Sequence[Day]) -> Fit:
    """Fit F, w and p per service and in total over `days` (see the module docstring).

    Needs at least three days whose (1, W, N) are linearly independent - for example
    two with the same symbols and different points and one with other symbols. With
    exactly three the fit passes through every day (zero error by construction): the
    error only means something with four or more.
    """
    if len(days) < 3:
        raise ValueError(f"fitting F, w and p needs at least 3 measured days, got {len(days)}")
    if any(d.usd <= 0 for d in days):
        raise ValueError("every measured day must cost more than 0")
    services = sorted({s for d in days for s in d.usd_by_service})
    # Columns in millions keep the normal equations well conditioned.
    rows = [[1.0 / d.usd, d.windows / MILLION / d.usd, d.points / MILLION / d.usd] for d in days]
    try:
        least_squares(rows, [1.0] * len(days))
    except ValueError:
        raise ValueError(
            "the measured days cannot separate F, w and p: their (1, windows, points) are linearly "
            "dependent; measure sizes with different points-per-window"
        ) from None
    by_service: dict[str, Linear] = {}
    for service in services:
        values = [d.usd_by_service.get(service, 0.0) / d.usd for d in days]
        f, w, p = least_squares(rows, values)
        by_service[service] = Linear(f, w / MILLION, p / MILLION)
    total = Linear(
        sum(s.fixed_usd_per_day for s in by_service.values()),
        sum(s.usd_per_window for s in by_service.values()),
        sum(s.usd_per_point for s in by_service.values()),
    )
    errors = [total.usd_per_day(windows=d.windows, points=d.points) / d.usd - 1.0 for d in days]
    return Fit(total, by_service, errors, list(days))


def floor_usd_per_day(points: int, windows: int) -> float:
    return costing.floor_usd(points, windows)


def project(ours: Linear, naive: Linear, points: int, symbols: int) -> dict[str, float]:
    """The fitted cost of a day of `points` over `symbols` (the benchmark's workload shape)."""
    windows = workload.windows_in_day(points, symbols)
    usd = ours.usd_per_day(windows=windows, points=points)
    naive_usd = naive.usd_per_day(windows=windows, points=points)
    floor = floor_usd_per_day(points, windows)
    if usd <= 0 or not math.isfinite(usd):
        raise ValueError(f"the fit predicts {usd} US$ a day at {points} points / {symbols} symbols")
    return {
        "points": points,
        "symbols": symbols,
        "windows": windows,
        "usd_per_day": usd,
        "usd_per_million_points": usd / points * MILLION,
        "floor_usd_per_million_points": floor / points * MILLION,
        "ratio_to_floor": usd / floor,
        "naive_usd_per_million_points": naive_usd / points * MILLION,
        "naive_ratio": naive_usd / usd,
    }


def projections(ours: Linear, naive: Linear, grid: Mapping[str, tuple[int, int]] = PROJECTIONS) -> dict[str, dict]:
    return {name: project(ours, naive, points, symbols) for name, (points, symbols) in grid.items()}
