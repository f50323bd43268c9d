"""`python -m market_cfn ingest FILE...|-`: send points to POST /ingest, signed with SigV4."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

DESCRIPTION = """\
Send market-data points to the stack's POST /ingest (the apiGatewayUrl output, or --url),
signed with SigV4 for execute-api. Each FILE (or -, standard input) is one JSON document -
a point, an array of points, or {"points": [...]} - or JSON Lines. Records are sent in
bodies of at most 1 MiB, split on record boundaries; a record over the limit alone is
reported as rejected and the rest is sent. 429 and 503 answers are retried with
exponential backoff and jitter. Prints accepted / rejected and every error's position.
"""

EXIT_CODES = """\
exit codes:
  0  every record was accepted
  1  some records were rejected, or a request failed (their records are counted as failed)
  2  bad arguments or input (a file that is not JSON, unknown stack, no apiGatewayUrl)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("ingest", DESCRIPTION, exit_codes=EXIT_CODES)
    parser.add_argument("files", nargs="+", metavar="FILE", help="JSON or JSON Lines files; - reads standard input")
    parser.add_argument("--url", help="the ingest URL (default: the stack's apiGatewayUrl output)")
    parser.add_argument("--max-attempts", type=int, default=6, help="attempts per request for 429/503 (default: 6)")
    return parser


def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
    from market_cfn.base.console import progress
    from market_cfn.base.errors import UsageError
    from market_cfn.client import IngestClient
    from market_cfn.ops.ingest import Records, ingest_records, read_records
    from market_cfn.ops.resources import load_stack

    args = ctx.args
    records = Records()
    for name in args.files:
        if name == "-":
            data = ctx.stdin.buffer.read() if hasattr(ctx.stdin, "buffer") else ctx.stdin.read().encode()
        else:
            try:
                with open(name, "rb") as handle:
                    data = handle.read()
            except OSError as exc:
                raise UsageError(f"{name}: {exc.strerror}") from None
        read_records(name, data, records)
    url = args.url
    if not url:
        stack = load_stack(ctx.client("cloudformation"), ctx.stack_name)
        url = stack.outputs.get("apiGatewayUrl")
        if not url:
            raise UsageError(f"stack {stack.name} reports no apiGatewayUrl output; pass --url")
    try:
        client = IngestClient(url, session=ctx.session, region=args.region, max_attempts=args.max_attempts)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    total = len(records.records)
    with progress(total, desc="ingest", unit="record", enabled=ctx.show_progress, out=ctx.stderr) as bar:
        summary = ingest_records(client, records, on_request=bar.update)
    ctx.say(
        f"{summary['records']} records: {summary['accepted']} accepted, {summary['rejected']} rejected, "
        f"{summary['failed']} failed ({summary['requests']} requests, {summary['retries']} retries) -> {url}"
    )
    for error in summary["errors"]:
        ctx.say(f"  rejected  {error['position']}: {error['reason']}")
    if summary["errors_omitted"]:
        ctx.say(f"  ... and {summary['errors_omitted']} more rejections the API did not list")
    for failure in summary["failures"]:
        ctx.say(f"  failed    {failure}")
    code = 0 if summary["rejected"] == 0 and summary["failed"] == 0 else 1
    return code, {"result": "ok" if code == 0 else "incomplete", "url": url, **summary}


def _validate(args: argparse.Namespace) -> None:
    from market_cfn.base.errors import UsageError

    if args.max_attempts < 1 or args.max_attempts > 20:
        raise UsageError("--max-attempts must be between 1 and 20")
    if args.files.count("-") > 1:
        raise UsageError("- (standard input) can be given once")


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, _body, validate=_validate, stdout=stdout, stderr=stderr, stdin=stdin or sys.stdin)
