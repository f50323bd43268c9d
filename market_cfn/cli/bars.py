"""`python -m market_cfn bars SYMBOL --from T --to T`: the stored 5-minute aggregates of one symbol."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

EXIT_CODES = """\
exit codes:
  0  done (an empty range is not an error)
  1  failed (an AWS error)
  2  bad arguments (a bad symbol or time, --to not after --from, unknown stack,
     no region or credentials)
"""
TIMES = "T: ISO 8601 (no offset = UTC), epoch seconds or milliseconds, now, or a DURATION ago (2h: two hours ago)"


def build_parser(what: str = "bars") -> argparse.ArgumentParser:
    if what == "bars":
        description = (
            "The 5-minute aggregates (open, high, low, close, volume, vwap, count) of SYMBOL whose window\n"
            "starts in [--from, --to), read from the table with Query (every page; never a Scan).\n" + TIMES
        )
    else:
        description = (
            "The stored points (time, price, volume) of SYMBOL stamped in [--from, --to), read from the\n"
            "table with Query (every page; never a Scan).\n" + TIMES
        )
    parser = command_parser(what, description, exit_codes=EXIT_CODES)
    parser.add_argument("symbol", metavar="SYMBOL")
    parser.add_argument("--from", dest="start", required=True, metavar="T", help="start of the range (inclusive)")
    parser.add_argument(
        "--to", dest="end", default="now", metavar="T", help="end of the range (exclusive; default: now)"
    )
    parser.add_argument(
        "--format", choices=("table", "csv", "json"), default="table", help="output format (default: table)"
    )
    return parser


def body(what: str) -> Any:
    def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
        from market_cfn.base.errors import UsageError
        from market_cfn.ops import query
        from market_cfn.ops.resources import load_stack
        from market_cfn.ops.values import epoch_ms, iso_ms, parse_time

        args = ctx.args
        start_ms, end_ms = epoch_ms(parse_time(args.start)), epoch_ms(parse_time(args.end))
        symbol = query.normalize_symbol(args.symbol)
        if end_ms <= start_ms:
            raise UsageError(f"--to ({iso_ms(end_ms)}) must be after --from ({iso_ms(start_ms)})")
        stack = load_stack(ctx.client("cloudformation"), ctx.stack_name)
        read = query.bars if what == "bars" else query.points
        rows = read(ctx.client("dynamodb"), stack.table(), symbol, start_ms, end_ms)
        fields = query.BAR_FIELDS if what == "bars" else query.POINT_FIELDS
        if not args.json:
            if rows or args.format != "table":
                print(query.render(rows, fields, args.format), file=ctx.stdout)
            if args.format == "table":
                ctx.say(f"{len(rows)} {what} for {symbol} in [{iso_ms(start_ms)}, {iso_ms(end_ms)})")
        return 0, {"symbol": symbol, "from": iso_ms(start_ms), "to": iso_ms(end_ms), what: rows}

    return _body


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser("bars"), argv, body("bars"), stdout=stdout, stderr=stderr, stdin=stdin)
