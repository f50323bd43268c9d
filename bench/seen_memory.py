"""Memory of DataIngestion's duplicate check: bytes per accepted point on each path, and a run at the cap.

`measure(points)`: one object of `points` distinct points per (format, path), ingested
under tracemalloc; the peak traced memory over `points` is what each accepted point
costs while the object is read (the `rules.Accepter.seen` entry: key tuple, timestamp,
price Decimal, volume, position; the symbol when it is not shared). Two shapes: the
benchmark's workload (`bench.workload`, 500 symbols) and a wide one (a 12-character
symbol per point, 38-digit prices, 32-digit volumes: the costliest shape measured).
`rules.POINT_BUDGET_BYTES` must stay above every number here.

`at_cap(memory_mb)`: a child process streams a CSV object of `rules.max_points(memory_mb)`
+ 1 points from a file (as S3 streams it, never whole in memory) through the fast path
and the message packer, as DataIngestion does (with the function's imports: boto3,
Powertools; the batches are dropped, not sent), and reports its peak RSS next to that of
the imports alone, the object's size, the CPU time, and the counts (the point past the
cap is the one rejection).

`python -m bench.seen_memory [POINTS]` and `python -m bench.seen_memory --at-cap MEMORY_MB
[csv|json]` print the JSON.
"""

from __future__ import annotations

import io
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from bench import workload
from handlers.core.fast import ingest_batches
from handlers.core.ingest import Tally, validate_records
from handlers.core.parsing import iter_raw_records
from handlers.core.rules import POINT_BUDGET_BYTES, max_points

NOW_MS = 1_717_500_000_000
PATHS = [("csv", "fast"), ("jsonl", "fast"), ("json", "fast"), ("csv", "reference")]


def _rows(points: int, shape: str) -> list[dict[str, Any]]:
    if shape == "workload":
        return [
            {"symbol": p.symbol, "timestamp": p.timestamp, "price": p.price, "volume": p.volume}
            for p in workload.generate(points, min(500, points))
        ]
    rng = random.Random(1)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    price = "0." + "0" * 16 + "12345678901234567890123456789012345678"  # 38 digits; x volume < 1E+15
    return [
        {
            "symbol": "".join(rng.choice(letters) for _ in range(12)),
            "timestamp": NOW_MS - 10**9 + i,
            "price": price,
            "volume": 10**31 - 1,
        }
        for i in range(points)
    ]


def _body(rows: list[dict[str, Any]], fmt: str) -> bytes:
    if fmt == "csv":
        lines = ["symbol,timestamp,price,volume"] + [
            f"{r['symbol']},{r['timestamp']},{r['price']},{r['volume']}" for r in rows
        ]
        return ("\n".join(lines) + "\n").encode()
    texts = [
        f'{{"symbol":"{r["symbol"]}","timestamp":{r["timestamp"]},"price":{r["price"]},"volume":{r["volume"]}}}'
        for r in rows
    ]
    return ("\n".join(texts) + "\n").encode() if fmt == "jsonl" else ("[" + ",\n".join(texts) + "]").encode()


def _peak(body: bytes, fmt: str, path: str) -> tuple[int, Tally]:
    tally = Tally()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    if path == "fast":
        for _ in ingest_batches(
            io.BytesIO(body), key=f"x.{fmt}", content_type=None, source="x", now_ms=NOW_MS, tally=tally
        ):
            pass
    else:
        records = iter_raw_records(io.BytesIO(body), key=f"x.{fmt}")
        for _ in validate_records(records, source="x", now_ms=NOW_MS, tally=tally):
            pass
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak, tally


def measure(points: int = 100_000) -> dict[str, Any]:
    """Bytes per accepted point, per shape, format and path."""
    report: dict[str, Any] = {"points": points, "budget_bytes": POINT_BUDGET_BYTES, "bytes_per_point": {}}
    for shape in ("workload", "wide"):
        rows = _rows(points, shape)
        for fmt, path in PATHS:
            peak, tally = _peak(_body(rows, fmt), fmt, path)
            if tally.accepted != points:
                raise RuntimeError(f"{shape} {fmt} {path}: {tally.accepted} of {points} accepted")
            report["bytes_per_point"][f"{shape} {fmt} {path}"] = round(peak / points, 1)
    report["worst"] = max(report["bytes_per_point"].values())
    return report


def _peak_rss_mib() -> float:
    """This process's peak RSS: VmHWM (Linux; ru_maxrss would include the parent's, kept across exec)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _child(memory_mb: int, path: str, fmt: str) -> None:
    """In the child: stream the object at `path` as DataIngestion would; print the JSON."""
    import handlers.data_ingestion  # noqa: F401  # what the function imports: boto3, Powertools
    from handlers.core.wire import MessagePacker

    cap = max_points(memory_mb)
    tally = Tally()
    packer = MessagePacker()
    rejected: list[Any] = []
    start = time.process_time()
    with open(path, "rb") as stream:
        for batch in ingest_batches(
            stream, key=f"x.{fmt}", content_type=None, source="x", now_ms=NOW_MS, tally=tally, max_points=cap
        ):
            rejected += packer.add_all(batch, lambda _batch: None)
    packer.flush()
    seconds = time.process_time() - start
    print(
        json.dumps(
            {
                "max_rss_mib": _peak_rss_mib(),
                "cpu_seconds": round(seconds, 1),
                "records_in": tally.records_in,
                "accepted": tally.accepted,
                "rejected": tally.rejected,
                "rejections": [list(r) for r in rejected],
            }
        )
    )


def at_cap(memory_mb: int, fmt: str = "csv") -> dict[str, Any]:
    """Peak RSS of a child that ingests an object one point past the cap at `memory_mb`.

    `fmt`: "csv" (the fast path) or "json" (an array: the reference path, the costlier one).
    """
    cap = max_points(memory_mb)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"object.{fmt}"
        with path.open("wb") as out:  # written in slices: the object is never whole in memory
            out.write(b"symbol,timestamp,price,volume\n" if fmt == "csv" else b"[")
            step = 200_000
            for first in range(0, cap + 1, step):
                n = min(step, cap + 1 - first)
                shift = first // step * workload.SESSION_MS  # each slice a session earlier: no key repeats
                rows = [{**r, "timestamp": r["timestamp"] - shift} for r in _rows(n, "workload")]
                if fmt == "csv":
                    out.write(_body(rows, "csv").split(b"\n", 1)[1])
                else:
                    out.write((b",\n" if first else b"") + _body(rows, "json")[1:-1])
            out.write(b"" if fmt == "csv" else b"]")
        size = path.stat().st_size
        idle = subprocess.run(
            [sys.executable, "-m", "bench.seen_memory", "--idle"], check=True, capture_output=True, text=True
        )
        run = subprocess.run(
            [sys.executable, "-m", "bench.seen_memory", "--child", str(memory_mb), str(path), fmt],
            check=True,
            capture_output=True,
            text=True,
        )
    report = json.loads(run.stdout)
    report.update(
        memory_mb=memory_mb,
        format=fmt,
        max_points=cap,
        object_mb=round(size / 1e6, 3),
        idle_rss_mib=float(idle.stdout),
    )
    return report


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--idle"]:  # what the function's imports alone take
        import handlers.data_ingestion  # noqa: F401

        print(_peak_rss_mib())
    elif args[:1] == ["--child"]:
        _child(int(args[1]), args[2], args[3])
    elif args[:1] == ["--at-cap"]:
        print(json.dumps(at_cap(int(args[1]), *args[2:3]), indent=2))
    else:
        print(json.dumps(measure(int(args[0]) if args else 100_000), indent=2))
