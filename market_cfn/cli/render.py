"""`python -m market_cfn render [--out PATH] [--env NAME] [--environment-tag VALUE] [--retain-data]
[--render-profile P]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from market_cfn.cli.command import OneLineParser, add_template_options, stack_config
from market_cfn.stack.config import ConfigError
from market_cfn.stack.render import DEFAULT_OUT, render_json, write_template

PROG = "python -m market_cfn render"

EXIT_CODES = """\
exit codes:
  0  the template was written
  2  bad arguments (an invalid parameter default, an --out that is not a writable file)
"""


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Render the market-data pipeline's CloudFormation template as JSON.",
        epilog=EXIT_CODES,
    )
    p.add_argument(
        "--out", default=str(DEFAULT_OUT), metavar="PATH", help=f"output file, or - for stdout (default: {DEFAULT_OUT})"
    )
    add_template_options(p)
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = stack_config(args)
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if args.out == "-":  # the template itself on stdout, nothing else there
        sys.stdout.write(render_json(cfg))
        return 0
    if not args.out:
        print(f"{PROG}: --out needs a file path (or - for stdout)", file=sys.stderr)
        return 2
    path = Path(args.out)
    if path.is_dir():
        print(f"{PROG}: --out {path} is a directory; give a file path", file=sys.stderr)
        return 2
    try:
        out = write_template(cfg, path)
    except OSError as exc:
        print(f"{PROG}: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
