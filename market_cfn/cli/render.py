"""`python -m market_cfn render [--out PATH] [--env NAME] [--environment-tag VALUE] [--retain-data]
[--render-profile P]`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from market_cfn.cli.command import OneLineParser
from market_cfn.stack.config import PROFILES, ConfigError, StackConfig
from market_cfn.stack.render import DEFAULT_OUT, render_json, write_template

PROG = "python -m market_cfn render"

EXIT_CODES = """\
exit codes:
  0  the template was written
  2  bad arguments (an invalid parameter default, an --out that is not a writable file)
"""


class _AwsProfileIsNotATemplateProfile(argparse.Action):
    """`--profile` is the AWS named profile on every command; render reads no AWS account."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        parser.error(
            "--profile is the AWS named profile on every command and render uses none; "
            "the template profile is --render-profile (default|regulated), as in bin/deploy"
        )


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog=PROG,
        description="Render the market-data pipeline's CloudFormation template as JSON.",
        epilog=EXIT_CODES,
    )
    p.add_argument(
        "--out", default=str(DEFAULT_OUT), metavar="PATH", help=f"output file, or - for stdout (default: {DEFAULT_OUT})"
    )
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
    p.add_argument("--profile", nargs="?", action=_AwsProfileIsNotATemplateProfile, help=argparse.SUPPRESS)
    p.add_argument(
        "--render-profile",
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
            profile=args.render_profile,
        )
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
