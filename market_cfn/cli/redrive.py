"""`python -m market_cfn redrive processing|aggregation|invocation`: dead letters back into the pipeline."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

DESCRIPTION = """\
processing, aggregation: move ProcessingDLQ / AggregationDLQ messages back to the queue
whose RedrivePolicy names them (SQS StartMessageMoveTask where the endpoint has it;
otherwise receive -> send -> delete, deleting only what was sent). invocation: re-invoke,
asynchronously, the failed invocations in InvocationDLQ (Lambda on-failure records carry
the original event under requestPayload; EventBridge dead letters are the event) on this
stack's function they name; anything else stays in the queue. Shows what will move and
asks first; --yes skips the question. Fix the cause first: a redriven message that fails
again returns to its dead-letter queue.
"""

EXIT_CODES = """\
exit codes:
  0  every message was moved or re-invoked (or there was nothing to move)
  1  some messages failed or were left in the queue, the move task failed, or an AWS error
  2  bad arguments (unknown stack, no region or credentials)
  3  declined at the prompt, or no terminal to confirm on without --yes (nothing moved)
"""


def build_parser() -> argparse.ArgumentParser:
    from market_cfn.ops.redrive import KINDS

    parser = command_parser("redrive", DESCRIPTION, exit_codes=EXIT_CODES)
    parser.add_argument("kind", choices=list(KINDS), help="which dead-letter queue")
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask")
    parser.add_argument(
        "--timeout", type=float, default=3600.0, metavar="SECONDS", help="how long to follow a move task"
    )
    parser.add_argument("--poll-interval", type=float, default=2.0, metavar="SECONDS", help=argparse.SUPPRESS)
    return parser


def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
    from market_cfn.base.console import progress
    from market_cfn.base.waits import Waits
    from market_cfn.ops import redrive
    from market_cfn.ops.resources import load_stack

    args = ctx.args
    stack = load_stack(ctx.client("cloudformation"), ctx.stack_name)
    sqs = ctx.client("sqs")
    p = redrive.plan(sqs, stack, args.kind)
    where = f"back to {p.target} ({p.target_url})" if p.target else "re-invoked on the functions their records name"
    ctx.say(f"{p.dlq} holds about {p.visible} messages ({p.in_flight} in flight, not movable now): {where}.")
    document: dict[str, Any] = {"dead_letter_queue": p.dlq, "visible": p.visible, "in_flight": p.in_flight}
    if p.visible == 0:
        ctx.say("Nothing to redrive.")
        return 0, document | {"result": "nothing-to-do", "moved": 0, "failed": 0, "skipped": 0}
    question = (
        f"Move {p.visible} messages from {p.dlq} to {p.target}?" if p.target else f"Re-invoke {p.visible} records?"
    )
    if not ctx.console().confirm(question, assume_yes=args.yes):
        from market_cfn.base.errors import Refused

        raise Refused("declined; nothing was moved")
    waits = Waits(poll_seconds=args.poll_interval, stack_timeout_seconds=args.timeout)
    with progress(p.visible, desc="redrive", unit="msg", enabled=ctx.show_progress, out=ctx.stderr) as bar:
        outcome = None
        notes: list[str] = []
        if p.target_url:
            outcome = redrive.move_with_task(sqs, p, waits, on_moved=bar.update)
            if outcome is None:
                notes.append("the endpoint has no StartMessageMoveTask: moved by receive -> send -> delete")
                outcome = redrive.move_by_hand(
                    sqs, p.dlq_url, redrive.send_to_queue(sqs, p.target_url, notes), on_moved=bar.update
                )
        else:
            functions = redrive.stack_functions(stack)

            def accept(message: dict[str, Any]) -> str | None:
                target = redrive.invocation_target(message, functions)
                return target if isinstance(target, str) else None

            outcome = redrive.move_by_hand(
                sqs,
                p.dlq_url,
                redrive.reinvoke(ctx.client("lambda"), functions, notes),
                accept=accept,
                on_moved=bar.update,
            )
            outcome.method = "Invoke (InvocationType Event)"
    outcome.notes = notes + outcome.notes
    verb = "moved" if p.target else "re-invoked"
    ctx.say(
        f"{p.dlq}: {outcome.moved} {verb}, {outcome.failed} failed, {outcome.skipped} left in the queue "
        f"({outcome.method}; {outcome.status})"
    )
    for note in outcome.notes:
        ctx.say(f"  {note}")
    code = 0 if outcome.failed == 0 and outcome.status == "COMPLETED" and outcome.skipped == 0 else 1
    return code, document | {"result": "ok" if code == 0 else "incomplete"} | outcome.to_json()


def _validate(args: argparse.Namespace) -> None:
    from market_cfn.base.errors import UsageError

    if args.timeout <= 0 or args.poll_interval <= 0:
        raise UsageError("--timeout and the poll interval must be positive")


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, _body, validate=_validate, stdout=stdout, stderr=stderr, stdin=stdin)
