"""The benchmark's printed tables (bench/run.py decides, this only formats)."""

from __future__ import annotations

from bench import costing
from bench.fit import MILLION, Fit


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.4f}" if value < 100 else f"{value:,.1f}"
    return f"{int(value):,}"


def print_service_table(ours_rows: list[dict], naive_rows: list[dict], points: int) -> None:
    head = (
        f"{'service':<20} {'requests':>10} {'billed':>14} {'unit':<15} {'US$':>10} {'$/M pts':>8}"
        f" | {'requests':>10} {'billed':>14} {'US$':>10} {'$/M pts':>8}"
    )
    print(f"{'':<20} {'--- market_cfn (ours) ':-<62} | {'--- naive baseline ':-<46}")
    print(head)
    print("-" * len(head))
    for o, n in zip(ours_rows, naive_rows, strict=True):
        print(
            f"{o['service']:<20} {_fmt(o['requests']):>10} {_fmt(o['billed']):>14} {o['unit']:<15} "
            f"{o['usd']:>10.5f} {costing.per_million(o['usd'], points):>8.4f} | "
            f"{_fmt(n['requests']):>10} {_fmt(n['billed']):>14} {n['usd']:>10.5f} "
            f"{costing.per_million(n['usd'], points):>8.4f}"
        )
    to = sum(r["usd"] for r in ours_rows)
    tn = sum(r["usd"] for r in naive_rows)
    print("-" * len(head))
    print(
        f"{'total':<20} {'':>10} {'':>14} {'':<15} {to:>10.5f} {costing.per_million(to, points):>8.4f} | "
        f"{'':>10} {'':>14} {tn:>10.5f} {costing.per_million(tn, points):>8.4f}"
    )


def print_sizes(sizes: list[dict]) -> None:
    print(
        f"{'points':>9} {'symbols':>7} {'windows':>8} {'US$/day':>9} {'fit':>9} {'error':>7} "
        f"{'$/M pts':>8} {'x floor':>7} {'naive/day':>9} {'n. fit err':>10} {'x naive':>7} {'wall s':>7}"
    )
    for s in sizes:
        print(
            f"{s['points']:>9,} {s['symbols']:>7,} {s['windows']:>8,} {s['usd_per_day']:>9.5f} "
            f"{s['fit_usd_per_day']:>9.5f} {s['fit_error']:>+7.2%} {s['usd_per_million_points']:>8.4f} "
            f"{s['ratio_to_floor']:>7.3f} {s['naive_usd_per_day']:>9.5f} {s['naive_fit_error']:>+10.2%} "
            f"{s['naive_ratio']:>7.2f} {s['sim_wall_seconds'] + s['naive_sim_wall_seconds']:>7.0f}"
        )


def print_fit(fit: Fit, naive: Fit) -> None:
    print("fitted daily cost = F + w x W + p x N (W windows, N points), least squares on relative error")
    print(f"{'service':<20} {'F US$/day':>10} {'w $/M win':>10} {'p $/M pts':>10}")
    for service, lin in sorted(fit.by_service.items(), key=lambda kv: -kv[1].usd_per_point):
        print(
            f"{service:<20} {lin.fixed_usd_per_day:>10.5f} {lin.usd_per_window * MILLION:>10.4f} "
            f"{lin.usd_per_point * MILLION:>10.4f}"
        )
    t = fit.total
    print(
        f"{'total':<20} {t.fixed_usd_per_day:>10.5f} {t.usd_per_window * MILLION:>10.4f} "
        f"{t.usd_per_point * MILLION:>10.4f}   max fit error {fit.max_error:.2%}"
    )
    n = naive.total
    print(
        f"{'naive baseline':<20} {n.fixed_usd_per_day:>10.5f} {n.usd_per_window * MILLION:>10.4f} "
        f"{n.usd_per_point * MILLION:>10.4f}   max fit error {naive.max_error:.2%}"
    )


def print_projections(projections: dict[str, dict]) -> None:
    print("projections (the fit, the benchmark's workload shape: points spread evenly over the session)")
    print(
        f"{'points/symbols':<15} {'windows':>9} {'US$/day':>9} {'$/M pts':>8} {'floor $/M':>9} "
        f"{'x floor':>7} {'naive $/M':>9} {'x naive':>7}"
    )
    for name, p in projections.items():
        print(
            f"{name:<15} {p['windows']:>9,} {p['usd_per_day']:>9.4f} {p['usd_per_million_points']:>8.4f} "
            f"{p['floor_usd_per_million_points']:>9.4f} {p['ratio_to_floor']:>7.3f} "
            f"{p['naive_usd_per_million_points']:>9.4f} {p['naive_ratio']:>7.2f}"
        )


def print_memory(memory_mb: dict[str, int], by_memory: dict[str, dict], max_ms: dict[str, float]) -> None:
    sizes = sorted({mb for table in by_memory.values() for mb in table})
    print("Lambda duration US$/day of the largest size at each memory size (CPU stretched below 1,769 MB)")
    print(f"{'function':<22} {'now MB':>7} " + " ".join(f"{mb:>8}" for mb in sizes) + f" {'max ms':>8}")
    for function, table in by_memory.items():
        print(
            f"{function:<22} {memory_mb[function]:>7} "
            + " ".join(f"{table[mb]:>8.5f}" for mb in sizes)
            + f" {max_ms.get(function, 0.0):>8.0f}"
        )


def print_ownership(own: dict) -> None:
    fp, keep = own["footprint"], own["retention"]
    print(
        f"cost over time (US$ a month of operation), storage included: points kept {keep['points_days'] or 'for good'}"
        f" days, bars {keep['bars_days'] or 'for good'}, raw objects {keep['raw_days']}, logs {keep['logs_days']}; "
        f"history on S3 {'on' if keep['history'] else 'off'}; PITR {'on' if keep['pitr'] else 'off'}"
    )
    print(
        f"measured item sizes: point {fp['point_item_bytes']:.1f} B, bar {fp['bar_item_bytes']:.1f} B (+100 B "
        f"overhead each); raw {fp['raw_bytes_per_point']:.1f} B/point; history gzip "
        f"{fp['history_bytes_per_point']:.1f} B/point, {fp['history_bytes_per_bar']:.1f} B/bar"
    )
    lines = list(next(iter(next(iter(own["projections"].values()))["months"].values()))["by_line"])
    print(
        f"{'size':<10} {'month':>5} {'US$':>10} {'floor':>10} {'x floor':>7}  "
        + " ".join(f"{x[:12]:>12}" for x in lines)
    )
    for name, row in own["projections"].items():
        for m, v in row["months"].items():
            print(
                f"{name:<10} {m:>5} {v['usd']:>10.2f} {v['floor_usd']:>10.2f} {v['ratio_to_floor']:>7.3f} "
                f"{v['ratio_pitr_above_floor']:>8.3f}  " + " ".join(f"{v['by_line'][x]:>12.2f}" for x in lines)
            )
    for t in own["targets"]:
        print(f"target {t['target']}: {t['value']:.4f} {'met' if t['met'] else 'MISSED'}")
