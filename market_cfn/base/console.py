"""Terminal output every command shares: the console (say, paint, confirm), tables, short values, progress bars."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

from market_cfn.base.errors import Refused


@dataclass
class Console:
    """Where the human-readable output goes and how to ask a yes/no question."""

    out: TextIO
    interactive: bool
    ask: Callable[[str], str] = input
    color: bool = False

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.color else text

    def confirm(self, question: str, *, assume_yes: bool) -> bool:
        if assume_yes:
            self.say(f"{question} y (--yes)")
            return True
        if not self.interactive:
            raise Refused(f"{question} needs an answer, but there is no terminal to ask on; pass --yes to confirm")
        try:
            answer = self.ask(f"{question} [y/N] ")
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")


def table(rows: list[list[str]], *, indent: str = "  ") -> list[str]:
    """Left-aligned columns, two spaces apart; the last column is not padded."""
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(max(len(r) for r in rows))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) if i < len(row) - 1 else cell for i, cell in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def short(value: Any, limit: int = 120) -> str:
    if value is None:
        return "(none)"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@contextmanager
def progress(total: float | None, *, desc: str, unit: str, enabled: bool, out: TextIO | None = None) -> Iterator[Any]:
    """A tqdm bar on stderr when `enabled` (a terminal, no --json), otherwise a silent one."""
    from tqdm import tqdm

    stream = out or sys.stderr
    bar = tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=stream,
        disable=not enabled,
        leave=False,
        unit_scale=unit == "B",
        dynamic_ncols=True,
    )
    try:
        yield bar
    finally:
        bar.close()
