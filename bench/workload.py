"""The benchmark's deterministic workload: one trading day of market-data points.

`generate(points, symbols, seed)` spreads `points` over `symbols` tickers evenly across
the regular US session of one fixed day, 09:30-16:00 America/New_York (6.5 hours):
every symbol gets the same number of points (give or take one), each in its own equal
time slot with a seeded jitter, so no (symbol, timestamp) key repeats. Prices follow a
seeded random walk with two decimals; volumes are seeded integers.

`split_files(points)` cuts the day into 5-minute objects (78 a day) and writes them
alternately as CSV and JSON Lines, the two formats DataIngestion accepts from S3.
"""

from __future__ import annotations

import csv
import io
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

# A fixed, past trading day (a Monday, EDT = UTC-4): 09:30-16:00 New York time.
TRADING_DAY = "2024-06-03"
OPEN_UTC = datetime(2024, 6, 3, 13, 30, tzinfo=UTC)
CLOSE_UTC = OPEN_UTC + timedelta(hours=6, minutes=30)
OPEN_MS = int(OPEN_UTC.timestamp() * 1000)
SESSION_MS = int((CLOSE_UTC - OPEN_UTC).total_seconds() * 1000)  # 23,400,000
FILE_SPAN_MS = 5 * 60 * 1000  # one S3 object per 5 minutes (a feed drop per aggregation window)
DEFAULT_SEED = 20240603


@dataclass(frozen=True, order=True)
class WorkPoint:
    timestamp: int  # epoch ms UTC (first, so sorting is by time)
    symbol: str
    price: str  # exact decimal text, as a feed would send it
    volume: int


def make_symbols(count: int, rng: random.Random) -> list[str]:
    """`count` distinct tickers of 2-5 letters A-Z, in a seeded order."""
    if count < 1:
        raise ValueError(f"symbols must be >= 1, got {count}")
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < count:
        sym = "".join(rng.choice(letters) for _ in range(rng.randint(2, 5)))
        if sym not in seen:
            seen.add(sym)
            out.append(sym)
    return out


def generate(points: int, symbols: int, seed: int = DEFAULT_SEED) -> list[WorkPoint]:
    """The workload, sorted by time (then symbol). Same arguments, same list."""
    if points < 1:
        raise ValueError(f"points must be >= 1, got {points}")
    if symbols < 1 or symbols > points:
        raise ValueError(f"symbols must be between 1 and points ({points}), got {symbols}")
    rng = random.Random(seed)
    tickers = make_symbols(symbols, rng)
    out: list[WorkPoint] = []
    base, extra = divmod(points, symbols)
    for index, sym in enumerate(tickers):
        n = base + (1 if index < extra else 0)
        slot = SESSION_MS / n
        cents = rng.randint(1_000, 50_000)  # $10.00 - $500.00
        for i in range(n):
            ts = OPEN_MS + int(i * slot + rng.random() * (slot - 1))
            cents = max(1, cents + rng.randint(-25, 25))
            out.append(WorkPoint(ts, sym, f"{cents // 100}.{cents % 100:02d}", rng.randint(1, 10_000)))
    out.sort()
    return out


def to_csv(points: list[WorkPoint]) -> bytes:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["symbol", "timestamp", "price", "volume"])
    for p in points:
        writer.writerow([p.symbol, p.timestamp, p.price, p.volume])
    return buf.getvalue().encode("utf-8")


def to_jsonl(points: list[WorkPoint]) -> bytes:
    # Prices are JSON numbers written exactly as the decimal text (no float rounding).
    lines = [
        f'{{"symbol": {json.dumps(p.symbol)}, "timestamp": {p.timestamp}, "price": {p.price}, "volume": {p.volume}}}'
        for p in points
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


@dataclass(frozen=True)
class WorkFile:
    key: str  # S3 key
    fmt: str  # "csv" or "jsonl"
    body: bytes
    points: int
    window: int  # index of the 5-minute slot of the session (0 = 09:30-09:35)


def split_files(points: list[WorkPoint]) -> list[WorkFile]:
    """5-minute objects, alternating CSV and JSON Lines (the first is CSV)."""
    buckets: dict[int, list[WorkPoint]] = {}
    for p in points:
        buckets.setdefault((p.timestamp - OPEN_MS) // FILE_SPAN_MS, []).append(p)
    files = []
    for n, idx in enumerate(sorted(buckets)):
        chunk = buckets[idx]
        start = datetime.fromtimestamp((OPEN_MS + idx * FILE_SPAN_MS) / 1000, UTC)
        stem = f"feed/{TRADING_DAY}/{start:%H%M}Z"
        if n % 2 == 0:
            files.append(WorkFile(f"{stem}.csv", "csv", to_csv(chunk), len(chunk), idx))
        else:
            files.append(WorkFile(f"{stem}.jsonl", "jsonl", to_jsonl(chunk), len(chunk), idx))
    return files


def window_of(point: WorkPoint) -> int:
    return (point.timestamp - OPEN_MS) // FILE_SPAN_MS


WINDOWS_PER_SESSION = SESSION_MS // FILE_SPAN_MS  # 78 five-minute windows in the session


def windows_in_day(points: int, symbols: int, seed: int = DEFAULT_SEED) -> int:
    """(symbol, 5-minute window) pairs that have points in `generate(points, symbols)`.

    Exact without generating when every symbol has at least 2 x 78 points: its points
    lie one per slot of SESSION/n <= 2.5 minutes, so two consecutive points are less than
    two slots (<= 5 minutes) apart, the first is in the first window and the last in the
    last - every window of every symbol has points. Below that the day is generated and
    counted (small sizes only).
    """
    if points < 1 or not 1 <= symbols <= points:
        raise ValueError(f"need points >= 1 and 1 <= symbols <= points, got {points} / {symbols}")
    if points // symbols >= 2 * WINDOWS_PER_SESSION:
        return symbols * WINDOWS_PER_SESSION
    return len({(p.symbol, window_of(p)) for p in generate(points, symbols, seed)})


def write_files(files: list[WorkFile], directory: Path) -> list[Path]:
    paths = []
    for f in files:
        path = Path(directory) / f.key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f.body)
        paths.append(path)
    return paths


def key_digest(keys) -> str:
    """A digest of a set of (symbol, timestamp) keys, to compare stored vs generated."""
    import hashlib

    h = hashlib.sha256()
    for sym, ts in sorted(keys):
        h.update(f"{sym}\t{ts}\n".encode())
    return h.hexdigest()
