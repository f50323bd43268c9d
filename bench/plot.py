"""The cost-over-time plot of a benchmark report, as a PNG (docs/performance.md shows it).

    python bench/run.py > report.txt && python bench/plot.py report.txt docs/cost-over-time.png

Reads the report's last line (bench/run.py's JSON) and draws, for each projected volume, the
monthly cost over 36 months of operation (storage included, bench/ownership.py) next to its
storage-inclusive floor. Needs matplotlib: pip install -e '.[bench]'.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def draw(report: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    own = report["ownership"]
    keep = own["retention"]
    sizes = own["projections"]  # JSON sorts the keys: draw in order of volume
    curve = {n: own["curve"][n] for n in sorted(sizes, key=lambda n: (sizes[n]["points"], sizes[n]["symbols"]))}
    fig, axes = plt.subplots(1, len(curve), figsize=(4 * len(curve), 3.6), sharex=True)
    for ax, (name, months) in zip(axes, curve.items(), strict=True):
        xs = sorted(int(m) for m in months)
        ax.plot(xs, [months[str(m)][0] for m in xs], label="market_cfn", color="tab:blue")
        ax.plot(xs, [months[str(m)][1] for m in xs], label="floor (storage included)", color="tab:gray", ls="--")
        ax.set_title(f"{name} points/symbols a day", fontsize=10)
        ax.set_xlabel("month of operation")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("US$ a month")
    axes[0].legend(fontsize=8, loc="lower right")
    kept = ", ".join(
        f"{what} kept {f'{days} days' if days else 'for good'}"
        for what, days in (("points", keep["points_days"]), ("bars", keep["bars_days"]))
    )
    history = "history on S3" if keep["history"] else "no history"
    fig.suptitle(
        f"Monthly cost over time, us-east-1 list prices ({kept} in the table; {history}; commit {report['commit']})",
        fontsize=10,
    )
    fig.tight_layout()
    # No timestamp in the PNG metadata, so the same report draws the same bytes.
    fig.savefig(out, dpi=90, metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python bench/plot.py REPORT OUT.png (REPORT: bench/run.py's output)", file=sys.stderr)
        return 2
    report = json.loads(Path(argv[0]).read_text().strip().splitlines()[-1])
    if "ownership" not in report:
        print("error: the report has no cost over time (a --fit-from run measures no day)", file=sys.stderr)
        return 1
    draw(report, Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
