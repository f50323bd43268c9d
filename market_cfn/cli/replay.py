"""`python -m market_cfn replay --from T --to T`: replay the event archive into the bus."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

DESCRIPTION = """\
Replay the events the stack's archive (MarketEventArchive) holds from [--from, --to) into
its bus (EventBridge StartReplay), then follow it (DescribeReplay) to COMPLETED. Every rule
on the bus receives the replayed events: PointsStored events make the aggregator recompute
the windows they name. Shows the archive, range and rules and asks first (--yes skips).
T: ISO 8601 (no offset = UTC), epoch seconds or ms, now, or a DURATION ago (2h).
"""

EXIT_CODES = """\
exit codes:
  0  the replay COMPLETED
  1  the replay FAILED or was CANCELLED, the wait timed out, or an AWS error
  2  bad arguments (a bad time, --to not after --from or in the future, unknown stack)
  3  declined at the prompt, no terminal to confirm on without --yes, or Ctrl-C while
     following (the replay goes on)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("replay", DESCRIPTION, exit_codes=EXIT_CODES)
    parser.add_argument("--from", dest="start", required=True, metavar="T", help="start of the range (inclusive)")
    parser.add_argument("--to", dest="end", default="now", metavar="T", help="end of the range (default: now)")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, metavar="SECONDS", help="how long to follow the replay"
    )
    parser.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS)
    return parser


def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
    from datetime import UTC, datetime

    from market_cfn.base.console import progress
    from market_cfn.base.errors import Refused, UsageError
    from market_cfn.base.waits import Waits
    from market_cfn.ops import replay
    from market_cfn.ops.resources import load_stack
    from market_cfn.ops.values import parse_time

    args = ctx.args
    now = datetime.now(UTC)
    start, end = parse_time(args.start, now=now), parse_time(args.end, now=now)
    if end <= start:
        raise UsageError(f"--to ({end.isoformat()}) must be after --from ({start.isoformat()})")
    if args.timeout <= 0 or args.poll_interval <= 0:
        raise UsageError("--timeout and the poll interval must be positive")
    stack = load_stack(ctx.client("cloudformation"), ctx.stack_name)
    events = ctx.client("events")
    p = replay.plan(events, stack, start, end, now)
    ctx.say(
        f"Archive {p['archive']} ({p['event_count']} events, kept {p['retention_days']} days) -> bus {p['bus_arn']}"
    )
    ctx.say(
        f"Range [{start.isoformat()}, {end.isoformat()}); rules that receive the events: {', '.join(p['rules']) or 'none'}"
    )
    if not ctx.console().confirm("Start the replay?", assume_yes=args.yes):
        raise Refused("declined; no replay was started")
    name = f"market-data-{now:%Y%m%dT%H%M%S}"
    replay.start(events, p, name)
    span = max((end - start).total_seconds(), 1.0)
    waits = Waits(poll_seconds=args.poll_interval, stack_timeout_seconds=args.timeout)
    with progress(100, desc="replay", unit="%", enabled=ctx.show_progress, out=ctx.stderr) as bar:

        def on_state(state: dict[str, Any]) -> None:
            last = state.get("EventLastReplayedTime")
            if last:
                bar.n = min(100, int((last - start).total_seconds() / span * 100))
                bar.refresh()

        try:
            final = replay.follow(events, name, waits, on_state=on_state)
        except KeyboardInterrupt:
            raise Refused(
                f"stopped following; replay {name} goes on (aws events cancel-replay --replay-name {name})"
            ) from None
    state = final.get("State", "")
    ctx.say(f"Replay {name}: {state}" + (f" ({final['StateReason']})" if final.get("StateReason") else ""))
    document = {"replay": name, "state": state, "reason": final.get("StateReason", ""), "archive": p["archive"]}
    return (0 if state == "COMPLETED" else 1), document


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, _body, stdout=stdout, stderr=stderr, stdin=stdin)
