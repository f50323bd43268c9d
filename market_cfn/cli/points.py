"""`python -m market_cfn points SYMBOL --from T --to T`: the stored raw points of one symbol."""

from __future__ import annotations

from typing import TextIO

from market_cfn.cli._common import run
from market_cfn.cli.bars import body, build_parser


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser("points"), argv, body("points"), stdout=stdout, stderr=stderr, stdin=stdin)
