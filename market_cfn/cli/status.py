"""`python -m market_cfn status`: the stack, its queues and dead letters, alarms, aggregates, rejections."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

DESCRIPTION = """\
One read-only look at a deployed pipeline: stack status and outputs; each queue's depth
(visible, in flight, delayed) and oldest message age (CloudWatch ApproximateAgeOfOldestMessage,
"unknown" when the endpoint has no datapoint); each dead-letter queue's depth; the alarms'
states; the newest aggregate of each --symbol (one Query each; never a Scan) and the last
DataAggregator run (from its log group); the newest rejection reports.
"""

EXIT_CODES = """\
exit codes:
  0  shown (a figure the endpoint cannot give is shown as unknown, not an error)
  1  failed (an AWS error reading the stack or its resources)
  2  bad arguments (unknown stack, bad --symbol, no region or credentials)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("status", DESCRIPTION, exit_codes=EXIT_CODES)
    parser.add_argument(
        "--symbol", action="append", default=[], help="show this symbol's newest aggregate (repeatable)"
    )
    return parser


def _count(value: Any) -> str:
    return "unknown" if value is None else str(value)


def _age(entry: dict[str, Any]) -> str:
    seconds = entry.get("seconds")
    return entry["note"] if seconds is None else f"{seconds:.0f} s ({entry['note']})"


def _print(ctx: Context, report: dict[str, Any]) -> None:
    from market_cfn.base.console import table

    stack = report["stack"]
    ctx.say(f"Stack {stack['name']}: {stack['status']}" + (f" ({stack['reason']})" if stack["reason"] else ""))
    ctx.say("")
    ctx.say("Outputs:" + (f" ({report['outputs_note']})" if report["outputs_note"] else ""))
    for line in table([[k, v] for k, v in sorted(report["outputs"].items())]):
        ctx.say(line)
    ctx.say("")
    rows = [["Queue", "Visible", "In flight", "Delayed", "Oldest message"]]
    for q in report["queues"]:
        if not q["dead_letter"]:
            rows.append(
                [q["name"], _count(q["visible"]), _count(q["in_flight"]), _count(q["delayed"]), _age(q["oldest_age"])]
            )
    for line in table(rows):
        ctx.say(line)
    ctx.say("")
    rows = [["Dead-letter queue", "Messages", "Oldest message"]]
    for q in report["queues"]:
        if q["dead_letter"]:
            depth = None if q["visible"] is None else q["visible"] + (q["in_flight"] or 0) + (q["delayed"] or 0)
            rows.append([q["name"], _count(depth), _age(q["oldest_age"])])
    for line in table(rows):
        ctx.say(line)
    ctx.say("")
    ctx.say("Alarms:" + ("" if report["alarms"] else " none among the stack's resources"))
    for line in table([[a["alarm"], a["state"]] for a in report["alarms"]]):
        ctx.say(line)
    ctx.say("")
    run_ = report["last_aggregation_run"]
    ctx.say(f"Last aggregation run: {run_['time'] or ''}" + (f" ({run_['note']})" if run_["note"] else ""))
    if report["newest_aggregates"]:
        ctx.say("Newest aggregate (window start):")
        for line in table([[a["symbol"], a["window_start"] or "none"] for a in report["newest_aggregates"]]):
            ctx.say(line)
    else:
        ctx.say("Newest aggregate: pass --symbol SYMBOL (across all symbols it would take a Scan of the table)")
    ctx.say("")
    rejections = report["rejections"]
    if rejections["reports"] is None:
        ctx.say(f"Rejection reports: {rejections['note']}")
    else:
        ctx.say(f"Rejection reports: {rejections['reports']}" + (", newest:" if rejections["newest"] else ""))
        for line in table([[r["time"], r["key"], f"{r['bytes']} bytes"] for r in rejections["newest"]]):
            ctx.say(line)


def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
    from market_cfn.ops.query import normalize_symbol
    from market_cfn.ops.resources import load_stack
    from market_cfn.ops.status import status

    symbols = [normalize_symbol(s) for s in ctx.args.symbol]
    stack = load_stack(ctx.client("cloudformation"), ctx.stack_name)
    clients = {s: ctx.client(s) for s in ("cloudformation", "sqs", "cloudwatch", "dynamodb", "logs", "s3")}
    report = status(clients, stack, symbols=symbols)
    if not ctx.args.json:
        _print(ctx, report)
    return 0, report


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, _body, stdout=stdout, stderr=stderr, stdin=stdin)
