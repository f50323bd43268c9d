"""`python -m market_cfn destroy`: review, empty the buckets (--delete-data), delete the stack, follow it."""

from __future__ import annotations

import argparse
import uuid
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

DESCRIPTION = """\
Delete the stack after a review of every resource it removes (the deploy's review: the
deletion as a change set of Removes) and of what each data store holds now. Buckets,
table and queues that hold data are deleted only with --delete-data, which also empties
the buckets completely (every object version and delete marker) so CloudFormation can
delete them; resources whose DeletionPolicy is Retain are kept and never emptied.
Termination protection is lifted only after you confirm. Then DeleteStack, followed to
DELETE_COMPLETE.
"""

EXIT_CODES = """\
exit codes:
  0  the stack is deleted
  1  the deletion failed (DELETE_FAILED, a bucket that could not be emptied, an AWS error)
  2  bad arguments (no such stack, no region or credentials)
  3  declined, no terminal to confirm on without --yes, or refused: data would be deleted
     without --delete-data, a table has deletion protection, or the stack is busy
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("destroy", DESCRIPTION, exit_codes=EXIT_CODES)
    parser.add_argument("--yes", "-y", action="store_true", help="do not ask")
    parser.add_argument(
        "--delete-data", action="store_true", help="delete the data too: empty the buckets, delete table and queues"
    )
    parser.add_argument(
        "--timeout", type=float, default=3600.0, metavar="SECONDS", help="how long to follow the deletion"
    )
    parser.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS)
    return parser


def _print_review(ctx: Context, rev: Any, rows: list[dict[str, Any]]) -> None:
    from market_cfn.base.console import table

    held = {r["logical_id"]: r for r in rows}
    ctx.say(f"Deleting stack {rev.change_set['StackName']} removes {len(rev.changes)} resources:")
    lines = [["Logical ID", "Type", "On deletion", "Holds now"]]
    for change in rev.changes:
        kept = change.policy_action in ("Retain", "Snapshot")
        row = held.get(change.logical_id)
        lines.append(
            [
                change.logical_id,
                change.resource_type,
                "kept (Retain)" if kept else "deleted",
                row["holds"] if row else "",
            ]
        )
    for line in table(lines):
        ctx.say(line)
    lost = [v.logical_id for v in rev.violations if not held.get(v.logical_id, {}).get("kept")]
    if lost:
        ctx.say("Data stores deleted with the stack: " + ", ".join(lost))


def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
    from market_cfn.base.console import progress
    from market_cfn.base.errors import Refused, UsageError
    from market_cfn.base.waits import Waits
    from market_cfn.ops import destroy
    from market_cfn.ops.resources import load_stack

    args = ctx.args
    if args.timeout <= 0 or args.poll_interval <= 0:
        raise UsageError("--timeout and the poll interval must be positive")
    cfn = ctx.client("cloudformation")
    stack = load_stack(cfn, ctx.stack_name)
    if stack.status.endswith("_IN_PROGRESS"):
        raise Refused(f"stack {stack.name} is {stack.status}; try again when it has finished")
    rev = destroy.review(stack)
    s3 = ctx.client("s3")
    clients = {"s3": s3, "dynamodb": ctx.client("dynamodb"), "sqs": ctx.client("sqs")}
    rows = destroy.holdings(clients, stack, rev)
    _print_review(ctx, rev, rows)
    document: dict[str, Any] = {"stack": stack.name, "review": rev.to_json(), "holdings": rows}
    reasons = destroy.blockers(rows, delete_data=args.delete_data)
    if reasons:
        for reason in reasons[1:]:
            ctx.say(f"  refused: {reason}")
        raise Refused(reasons[0] + (f" (and {len(reasons) - 1} more, above)" if len(reasons) > 1 else ""))
    if stack.termination_protection:
        ctx.say(f"Termination protection is on for {stack.name}; it is lifted only if you confirm.")
    doomed = [r for r in rows if r["type"] == "AWS::S3::Bucket" and not r["kept"] and r["items"]]
    what = f" and delete {sum(r['items'] for r in doomed):,} object versions" if doomed else ""
    if not ctx.console().confirm(f"Delete stack {stack.name}{what}?", assume_yes=args.yes):
        raise Refused("declined; nothing was deleted")
    if stack.termination_protection:
        cfn.update_termination_protection(StackName=stack.stack_id, EnableTerminationProtection=False)
        ctx.say(f"Termination protection lifted on {stack.name}.")
    emptied = {}
    for row in doomed:
        with progress(
            row["items"], desc=f"empty {row['physical_id']}", unit="obj", enabled=ctx.show_progress, out=ctx.stderr
        ) as bar:
            emptied[row["physical_id"]] = destroy.empty_bucket(s3, row["physical_id"], on_deleted=bar.update)
        ctx.say(
            f"Emptied s3://{row['physical_id']}: {emptied[row['physical_id']]:,} versions and delete markers deleted."
        )
    document["emptied"] = emptied
    ctx.say(f"Deleting stack {stack.name} ...")
    waits = Waits(poll_seconds=args.poll_interval, stack_timeout_seconds=args.timeout)
    result = destroy.delete_stack(cfn, stack, waits, token=f"market-cfn-destroy-{uuid.uuid4().hex}")
    document |= result
    if result["status"] == "DELETE_COMPLETE":
        ctx.say(f"Stack {stack.name}: DELETE_COMPLETE")
        kept = [r["physical_id"] for r in rows if r["kept"]]
        if kept:
            ctx.say("Kept (DeletionPolicy Retain): " + ", ".join(kept))
        return 0, document | {"result": "deleted"}
    ctx.say(f"Stack {stack.name}: {result['status']}" + (f" ({result['reason']})" if result.get("reason") else ""))
    for failure in result["failures"]:
        ctx.say(f"  {failure}")
    return 1, document | {"result": "failed"}


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, _body, stdout=stdout, stderr=stderr, stdin=stdin)
