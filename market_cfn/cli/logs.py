"""`python -m market_cfn logs FUNCTION`: read or follow a pipeline function's log lines."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

DESCRIPTION = """\
Print the log lines of DataIngestion, DataProcessor or DataAggregator from the stack's
log group (FilterLogEvents, every page), oldest first. --level keeps the handlers' JSON
lines at or above a level. --follow keeps polling (every --interval seconds, 1-60) until
Ctrl-C. With --json, one JSON object per line (timestamp, stream, message).
"""

EXIT_CODES = """\
exit codes:
  0  done (Ctrl-C ends --follow with 0)
  1  failed (an AWS error)
  2  bad arguments (unknown function, bad duration or level, unknown stack)
"""


def build_parser() -> argparse.ArgumentParser:
    from market_cfn.ops.logs import LEVELS
    from market_cfn.ops.resources import FUNCTIONS

    parser = command_parser("logs", DESCRIPTION, exit_codes=EXIT_CODES)
    parser.add_argument("function", metavar="FUNCTION", help="one of " + ", ".join(FUNCTIONS))
    parser.add_argument(
        "--since", default="10m", metavar="DURATION", help="how far back: 30s, 15m, 2h, 7d (default 10m)"
    )
    parser.add_argument("--follow", "-f", action="store_true", help="keep polling for new lines until Ctrl-C")
    parser.add_argument("--level", type=str.upper, choices=LEVELS, help="only lines at or above this level")
    parser.add_argument(
        "--interval", type=float, default=2.0, metavar="SECONDS", help="--follow poll interval (default 2)"
    )
    return parser


def _validate(args: argparse.Namespace) -> None:
    from market_cfn.base.errors import UsageError
    from market_cfn.ops.resources import FUNCTIONS
    from market_cfn.ops.values import parse_duration

    names = {f.lower(): f for f in FUNCTIONS}
    if args.function.lower() not in names:
        raise UsageError(f"unknown function {args.function!r} (choose from {', '.join(FUNCTIONS)})")
    args.function = names[args.function.lower()]
    parse_duration(args.since)
    if not 1 <= args.interval <= 60:
        raise UsageError("--interval must be between 1 and 60 seconds")


def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
    from datetime import UTC, datetime

    from market_cfn.ops import logs
    from market_cfn.ops.resources import load_stack
    from market_cfn.ops.values import epoch_ms, parse_duration

    args = ctx.args
    stack = load_stack(ctx.client("cloudformation"), ctx.stack_name)
    group = stack.log_group(args.function)
    start_ms = epoch_ms(datetime.now(UTC) - parse_duration(args.since))
    client = ctx.client("logs")

    shown = [0]

    def emit(event: dict[str, Any]) -> None:
        shown[0] += 1
        if args.json:
            line = {"timestamp": event["timestamp"], "stream": event.get("logStreamName"), "message": event["message"]}
            print(json.dumps(line), file=ctx.stdout, flush=True)
        else:
            print(logs.format_event(event, args.function), file=ctx.stdout, flush=True)

    if args.follow:
        try:
            logs.follow(
                client,
                group,
                start_ms=start_ms,
                minimum=args.level,
                emit=emit,
                sleep=time.sleep,
                interval_seconds=args.interval,
            )
        except KeyboardInterrupt:
            pass
    else:
        for event in logs.events(client, group, start_ms=start_ms, minimum=args.level):
            emit(event)
    if not args.json:
        ctx.stderr.write(f"{shown[0]} lines from {group}\n")
    # With --json the lines themselves are the output (JSON Lines); no closing document.
    args.json = False
    return 0, {}


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, _body, validate=_validate, stdout=stdout, stderr=stderr, stdin=stdin)
