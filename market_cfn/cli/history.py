"""`python -m market_cfn history`: export the table's changes to the history bucket (the cold tier)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

DESCRIPTION = """\
Keep points and bars beyond the table's retention: start the DynamoDB exports that bring the
history bucket up to date. The first run starts a full export of the table; every later run
starts incremental exports (one per 24 hours at most) from where the history ends to the latest
restorable time. Run it daily (cron, or any scheduler): a run missed for days catches up, as long
as the history still ends inside the point-in-time recovery window (35 days). docs/performance.md
"History beyond the table" has the Athena queries over the exports.
"""

EXIT_CODES = """\
exit codes:
  0  exports started (or nothing to do)
  1  failed (an AWS error, point-in-time recovery off)
  2  bad arguments (unknown stack, no region or credentials)
  3  refused (the history ends before the recovery window: a gap; --full starts again)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("history", DESCRIPTION, exit_codes=EXIT_CODES)
    parser.add_argument("--full", action="store_true", help="start a full export now (a new history baseline)")
    parser.add_argument("--dry-run", action="store_true", help="show the exports a run would start; start none")
    return parser


def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
    from market_cfn.ops import history
    from market_cfn.ops.resources import load_stack

    args = ctx.args
    stack = load_stack(ctx.client("cloudformation"), ctx.stack_name)
    bucket = stack.outputs.get("historyBucketName") or stack.physical("HistoryBucket", "AWS::S3::Bucket")
    result = history.run(ctx.client("dynamodb"), stack.table(), bucket, full=args.full, dry_run=args.dry_run)
    until = result["history_until"] or "none yet"
    verb = "would start" if args.dry_run else "started"
    ctx.say(f"history in s3://{bucket}/{history.PREFIX} until {until}; {verb} {len(result['exports'])} exports")
    for row in result["exports"]:
        span = f"{row['from']} .. {row['to']}" if row["from"] else f"at {row['to']}"
        ctx.say(f"  {row['type']:<18} {span}  {row.get('export_arn', '')}".rstrip())
    return 0, result


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, _body, stdout=stdout, stderr=stderr, stdin=stdin)
