"""`python -m market_cfn render [--out PATH] [--env NAME] [--environment-tag VALUE] [--retain-data] [--profile P]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

from market_cfn import __version__
from market_cfn.stack.config import PROFILES, ConfigError, StackConfig
from market_cfn.stack.render import DEFAULT_OUT, render_json, write_template


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2, nothing written
        print(f"render: {message}", file=sys.stderr)
        raise SystemExit(2)


def _parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="python -m market_cfn render",
        description="Render the market-data pipeline's CloudFormation template as JSON.",
    )
    p.add_argument(
        "--out", default=str(DEFAULT_OUT), metavar="PATH", help=f"output file, or - for stdout (default: {DEFAULT_OUT})"
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument(
        "--env",
        default=StackConfig.env_suffix,
        metavar="NAME",
        help="default of the EnvironmentSuffix parameter (1-10 lower-case letters/digits; default: dev)",
    )
    p.add_argument(
        "--environment-tag",
        default=StackConfig.environment_tag,
        metavar="VALUE",
        help="default of the EnvironmentTag parameter, the Environment tag (default: Production)",
    )
    p.add_argument(
        "--retain-data",
        action="store_true",
        help="Retain the buckets and the table on stack deletion or replacement (production)",
    )
    p.add_argument(
        "--profile",
        choices=PROFILES,
        default=StackConfig.profile,
        help="default: the original design (SSE-S3, destroyable); regulated: customer managed KMS key, "
        "access logs kept a year, data retained (default: default)",
    )
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = StackConfig(
            env_suffix=args.env,
            environment_tag=args.environment_tag,
            retain_data=args.retain_data,
            profile=args.profile,
        )
    except ConfigError as exc:
        print(f"render: {exc}", file=sys.stderr)
        return 2
    if args.out == "-":  # the template itself on stdout, nothing else there
        sys.stdout.write(render_json(cfg))
        return 0
    if not args.out:
        print("render: --out needs a file path (or - for stdout)", file=sys.stderr)
        return 2
    path = Path(args.out)
    if path.is_dir():
        print(f"render: --out {path} is a directory; give a file path", file=sys.stderr)
        return 2
    try:
        out = write_template(cfg, path)
    except OSError as exc:
        print(f"render: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0
