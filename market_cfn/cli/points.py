"""`python -m market_cfn points SYMBOL --from T --to T`: the stored raw points of one symbol."""

from __future__ import annotations

import argparse
from typing import TextIO

from market_cfn.cli import bars
from market_cfn.cli.command import run


def build_parser() -> argparse.ArgumentParser:
    return bars.build_parser("points")


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, bars.body("points"), stdout=stdout, stderr=stderr, stdin=stdin)
