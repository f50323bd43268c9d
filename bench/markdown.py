"""Markdown tables of a benchmark report, for docs/performance.md.

    python bench/run.py > report.txt && python bench/markdown.py report.txt

Reads the report's last line (the JSON object bench/run.py prints) and prints the
measured days, the fitted model with its per-service split, the projections, the memory
sweep and the targets, so the page shows exactly what a run measured.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fit import PROJECTIONS  # noqa: E402

TARGETS = {  # docs/performance.md "Targets": (key, comparison, bound)
    "1M/5000 ratio to floor": ("1M/5000", "ratio_to_floor", "<=", 1.10),
    "1M/500 ratio to floor": ("1M/500", "ratio_to_floor", "<=", 1.05),
    "10M/5000 ratio to floor": ("10M/5000", "ratio_to_floor", "<=", 1.03),
    "1M/500 naive ratio": ("1M/500", "naive_ratio", ">=", 6.0),
}


def _met(value: float, op: str, bound: float) -> str:
    ok = value <= bound if op == "<=" else value >= bound
    return "met" if ok else f"missed by {abs(value - bound):.3f}"


def sizes_table(r: dict) -> list[str]:
    out = [
        "| points | symbols | windows W | US$/day | fit US$/day | fit error | $/M points | x floor "
        "| naive US$/day | naive fit error | naive ratio | wall s (ours + naive) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in r["sizes"]:
        out.append(
            f"| {s['points']:,} | {s['symbols']:,} | {s['windows']:,} | {s['usd_per_day']:.5f} "
            f"| {s['fit_usd_per_day']:.5f} | {s['fit_error']:+.3%} | {s['usd_per_million_points']:.4f} "
            f"| {s['ratio_to_floor']:.3f} | {s['naive_usd_per_day']:.5f} | {s['naive_fit_error']:+.3%} "
            f"| {s['naive_ratio']:.2f} | {s['sim_wall_seconds']:.0f} + {s['naive_sim_wall_seconds']:.0f} |"
        )
    return out


def fit_table(r: dict) -> list[str]:
    out = [
        "| service | F (US$/day) | w (US$/M windows) | p (US$/M points) |",
        "| --- | ---: | ---: | ---: |",
    ]
    rows = sorted(r["fit_by_service"].items(), key=lambda kv: -(kv[1]["usd_per_million_windows"]))
    for service, f in rows:
        out.append(
            f"| {service} | {f['fixed_usd_per_day']:.5f} | {f['usd_per_million_windows']:.4f} "
            f"| {f['usd_per_million_points']:.4f} |"
        )
    t, n = r["fit"], r["naive_fit"]
    out.append(
        f"| **total** | **{t['fixed_usd_per_day']:.5f}** | **{t['usd_per_million_windows']:.4f}** "
        f"| **{t['usd_per_million_points']:.4f}** |"
    )
    out.append(
        f"| naive baseline | {n['fixed_usd_per_day']:.5f} | {n['usd_per_million_windows']:.4f} "
        f"| {n['usd_per_million_points']:.4f} |"
    )
    return out


def projections_table(r: dict) -> list[str]:
    out = [
        "| points a day / symbols | windows W | US$/day | US$/M points | floor US$/M | ratio to floor "
        "| naive US$/M | naive ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in PROJECTIONS:
        p = r["projections_detail"][name]
        out.append(
            f"| {name} | {p['windows']:,} | {p['usd_per_day']:.4f} | {p['usd_per_million_points']:.4f} "
            f"| {p['floor_usd_per_million_points']:.4f} | {p['ratio_to_floor']:.3f} "
            f"| {p['naive_usd_per_million_points']:.4f} | {p['naive_ratio']:.2f} |"
        )
    return out


def memory_table(r: dict) -> list[str]:
    sweep = r["lambda_duration_usd_by_memory"]
    sizes = sorted({int(mb) for table in sweep.values() for mb in table})
    out = [
        "| function | deployed MB | " + " | ".join(f"{mb} MB" for mb in sizes) + " | longest invocation (ms) |",
        "| --- | ---: | " + " | ".join("---:" for _ in sizes) + " | ---: |",
    ]
    for function, table in sweep.items():
        out.append(
            f"| {function} | {r['memory_mb'][function]:,} | "
            + " | ".join(f"{table[str(mb)]:.5f}" for mb in sizes)
            + f" | {r['max_invocation_ms'][function]:,.0f} |"
        )
    return out


def targets_table(r: dict) -> list[str]:
    out = ["| target | measured | |", "| --- | ---: | --- |"]
    for label, (name, key, op, bound) in TARGETS.items():
        value = r["projections"][name][key]
        out.append(f"| {label} {op} {bound} | {value:.3f} | {_met(value, op, bound)} |")
    out.append(
        f"| max fit error <= 0.02 | {r['fit']['max_fit_error']:.4f} | {_met(r['fit']['max_fit_error'], '<=', 0.02)} |"
    )
    if "ingest_vs_raw_csv" in r:
        for key, bound in (("ingest_vs_raw_csv", 0.08), ("ingest_vs_raw_jsonl", 0.40)):
            out.append(f"| {key} >= {bound} | {r[key]:.3f} | {_met(r[key], '>=', bound)} |")
        for module, ratio in r["import_vs_boto3"].items():
            out.append(f"| import {module} <= 1.3 x boto3 | {ratio:.2f} | {_met(ratio, '<=', 1.3)} |")
    return out


def ownership_table(r: dict) -> list[str]:
    own = r["ownership"]
    first = next(iter(own["projections"].values()))["months"]
    lines = list(next(iter(first.values()))["by_line"])
    out = [
        "| points a day / symbols | month | US$ a month | floor | x floor | x floor, PITR above it | "
        + " | ".join(lines)
        + " |",
        "| --- | ---: | ---: | ---: | ---: | ---: | " + " | ".join("---:" for _ in lines) + " |",
    ]
    order = sorted(own["projections"].items(), key=lambda kv: (kv[1]["points"], kv[1]["symbols"]))
    for name, row in order:
        for month, v in sorted(row["months"].items(), key=lambda kv: int(kv[0])):
            out.append(
                f"| {name} | {month} | {v['usd']:,.2f} | {v['floor_usd']:,.2f} | {v['ratio_to_floor']:.3f} "
                f"| {v['ratio_pitr_above_floor']:.3f} | " + " | ".join(f"{v['by_line'][x]:,.2f}" for x in lines) + " |"
            )
    return out


def ownership_targets(r: dict) -> list[str]:
    out = ["| target | measured | |", "| --- | ---: | --- |"]
    for t in r["ownership"]["targets"]:
        out.append(f"| {t['target']} | {t['value']:.4f} | {'met' if t['met'] else 'missed'} |")
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python bench/markdown.py REPORT (bench/run.py's output)", file=sys.stderr)
        return 2
    r = json.loads(Path(argv[0]).read_text().strip().splitlines()[-1])
    for title, lines in (
        ("Measured days", sizes_table(r)),
        ("Fitted model", fit_table(r)),
        ("Projections", projections_table(r)),
        ("Lambda duration US$/day at each memory size (largest measured day)", memory_table(r)),
        ("Targets", targets_table(r)),
        *(
            (("Cost over time, storage included", ownership_table(r)), ("Cost-over-time targets", ownership_targets(r)))
            if "ownership" in r
            else ()
        ),
    ):
        print(f"### {title}\n")
        print("\n".join(lines))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
