"""`python -m market_cfn rejects`: list, show or download the rejection reports."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

DESCRIPTION = """\
The rejection reports in the stack's rejects bucket: one per source object version,
rejects/<source key>@<version id>.jsonl. Without options: every report (oldest first).
--source KEY: the reports of that data-bucket key, with each rejection's position and
reason. --download DIR: save the listed reports under DIR (keys kept as paths).
"""

EXIT_CODES = """\
exit codes:
  0  done
  1  failed (an AWS error, a report key that would be written outside DIR)
  2  bad arguments (unknown stack, --download is a file, no region or credentials)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("rejects", DESCRIPTION, exit_codes=EXIT_CODES)
    parser.add_argument(
        "--source", metavar="KEY", help="only the reports of this source key (e.g. AAPL/2024-06-03.csv)"
    )
    parser.add_argument("--download", metavar="DIR", help="download the reports into DIR")
    return parser


def _validate(args: argparse.Namespace) -> None:
    import os

    from market_cfn.base.errors import UsageError

    if args.source is not None and (not args.source.strip() or args.source.startswith("/")):
        raise UsageError(f"--source {args.source!r}: expected an object key such as AAPL/2024-06-03.csv")
    if args.download is not None and os.path.exists(args.download) and not os.path.isdir(args.download):
        raise UsageError(f"--download {args.download}: exists and is not a directory")


def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
    from market_cfn.base.console import progress, table
    from market_cfn.ops import rejects
    from market_cfn.ops.resources import load_stack

    args = ctx.args
    stack = load_stack(ctx.client("cloudformation"), ctx.stack_name)
    bucket = stack.rejects_bucket()
    s3 = ctx.client("s3")
    reports = rejects.list_reports(s3, bucket, source=args.source)
    document: dict[str, Any] = {"bucket": bucket, "reports": reports}
    if args.source:
        for report in reports:
            report["rejections"] = rejects.read_report(s3, bucket, report["key"])
    what = f" for {args.source}" if args.source else ""
    ctx.say(f"{len(reports)} rejection reports{what} in s3://{bucket}/{rejects.PREFIX}")
    for report in reports:
        ctx.say(f"  {report['time']}  {report['key']}  {report['bytes']} bytes")
        if "rejections" in report:
            for line in table(
                [[r.get("position", ""), r.get("reason", "")] for r in report["rejections"]], indent="      "
            ):
                ctx.say(line)
    if args.download:
        with progress(len(reports), desc="download", unit="file", enabled=ctx.show_progress, out=ctx.stderr) as bar:
            written = rejects.download(s3, bucket, reports, args.download, on_file=bar.update)
        ctx.say(f"Downloaded {len(written)} reports into {args.download}")
        document["downloaded"] = written
    return 0, document


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, _body, validate=_validate, stdout=stdout, stderr=stderr, stdin=stdin)
