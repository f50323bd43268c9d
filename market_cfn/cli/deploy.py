"""`bin/deploy` / `python -m market_cfn deploy`: arguments in, exit code out.

This module only parses the arguments, builds the boto3 clients, calls the command's core
(market_cfn/deploy/command.py: settings, option checks, which deploy runs, the exit code) and
prints its outcome; everything that decides or talks to AWS lives in market_cfn.deploy.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
from typing import TYPE_CHECKING, TextIO

from market_cfn.cli.command import ENV_HELP, Context, OneLineParser, non_empty

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_s3 import S3Client

    from market_cfn.base.console import Console
    from market_cfn.base.waits import Waits

EXIT_CODES = """\
exit codes:
  0  deployed, or nothing to do ("No changes"), or the change set was left for review
  1  the deployment failed (stack rolled back, change set failed, timed out, AWS error,
     interrupted while executing: the operation goes on in CloudFormation)
  2  bad arguments or input (unknown parameter, bad value, empty value, missing
     region/credentials, bad deploy.toml, an --allow-* override that names nothing,
     change set given to --execute not found or not AVAILABLE)
  3  not executed: declined or interrupted at the prompt, no terminal to confirm on
     without --yes, blocked by the guard (the change set is deleted), the change set or
     its stack changed since the review (--reviewed-sha256), or a failed stack in the
     way that --yes does not delete (--delete-failed-stack)
"""

DESCRIPTION = """\
Package the handlers, create a CloudFormation change set, review it, guard the data, and
execute it on confirmation, following the stack events.

The guard blocks, with --yes too, a change set that removes, replaces or unprotects a
stateful resource (or overwrites a drifted one) unless an --allow-* option names it, and,
without a human at a terminal, security broadening unless --allow-broadening and an in-place
change of a stateful, policy- or role-bearing resource that is not on the allow-list of
harmless changes unless --allow-change LOGICAL_ID.PROPERTY names it. A blocked
change set is deleted. A stack policy on the stack denies replacing or deleting its
stateful resources, whoever executes the change set. See docs/deploy.md.

Remembered settings: deploy.toml (or --config FILE), one [env.<name>] section per
environment; the command line wins, key by key.
"""


def _sha256(value: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F]{64}", value):
        raise argparse.ArgumentTypeError("must be the 64 hex digits --no-execute printed")
    return value.lower()


def _minutes(value: str) -> int:
    try:
        minutes = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number of minutes") from None
    if not 0 <= minutes <= 180:
        raise argparse.ArgumentTypeError("must be 0-180 (RollbackConfiguration's limit)")
    return minutes


def build_parser(prog: str = "python -m market_cfn deploy") -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description=DESCRIPTION, epilog=EXIT_CODES)
    _what_and_where(parser)
    _review_and_execution(parser)
    _overrides(parser)
    _safety_and_timing(parser)
    return parser


def _what_and_where(parser: argparse.ArgumentParser) -> None:
    target = parser.add_argument_group("what to deploy")
    target.add_argument("--env", type=non_empty, default="dev", help=ENV_HELP)
    target.add_argument(
        "--config", type=non_empty, metavar="FILE", help="deploy settings file (default: ./deploy.toml if it exists)"
    )
    target.add_argument("--stack-name", type=non_empty, help="stack name (default: market-data-<env>)")
    target.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter (repeatable); names are checked against the template",
    )
    target.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE", help="a stack tag (repeatable)")
    target.add_argument(
        "--retain-data",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="render the template with DeletionPolicy/UpdateReplacePolicy Retain on the data stores",
    )
    target.add_argument(
        "--render-profile", type=non_empty, metavar="NAME", help="template render profile, e.g. regulated"
    )
    target.add_argument(
        "--bootstrap-stack-name",
        type=non_empty,
        help="stack that provides the artifacts bucket (default: market-data-bootstrap)",
    )
    aws = parser.add_argument_group("where")
    aws.add_argument("--region", type=non_empty, help="AWS region (default: from the profile or AWS_REGION)")
    aws.add_argument("--profile", type=non_empty, help="AWS named profile")
    aws.add_argument(
        "--endpoint-url",
        type=non_empty,
        help="endpoint of a local AWS emulation, e.g. http://127.0.0.1:5000 (moto_server)",
    )


def _review_and_execution(parser: argparse.ArgumentParser) -> None:
    flow = parser.add_argument_group("review and execution")
    flow.add_argument("--yes", "-y", action="store_true", help="execute without asking (the guard still applies)")
    mode = flow.add_mutually_exclusive_group()
    mode.add_argument("--no-execute", action="store_true", help="create and review the change set, leave it for later")
    mode.add_argument(
        "--execute",
        type=non_empty,
        metavar="CHANGE_SET",
        help="review and execute a change set created earlier (its ARN, or its name with --env/--stack-name)",
    )
    flow.add_argument(
        "--reviewed-sha256",
        type=_sha256,
        metavar="HEX",
        help="with --execute: execute only if the change set and the stack are still what that review showed "
        "(the digest --no-execute prints); otherwise refuse (exit 3)",
    )
    flow.add_argument(
        "--delete-failed-stack",
        action="store_true",
        help="delete a stack whose creation failed (ROLLBACK_COMPLETE, or never created) before deploying; "
        "--yes never does",
    )
    flow.add_argument(
        "--json",
        action="store_true",
        help="print the result, every field, as JSON on stdout (the review goes to stderr)",
    )
    flow.add_argument(
        "--review-out", type=non_empty, metavar="FILE", help="write the review as Markdown (a PR comment)"
    )
    flow.add_argument(
        "--keep-change-set",
        action="store_true",
        help="keep a change set the guard blocked, for inspection (default: deleted)",
    )


def _overrides(parser: argparse.ArgumentParser) -> None:
    overrides = parser.add_argument_group("overrides (each names exactly what it allows; repeatable)")
    overrides.add_argument(
        "--allow-replacement",
        action="append",
        default=[],
        type=non_empty,
        metavar="LOGICAL_ID",
        help="let the change set replace or remove this stateful resource (the stack policy opens it for this run)",
    )
    overrides.add_argument(
        "--allow-unprotect",
        action="append",
        default=[],
        type=non_empty,
        metavar="LOGICAL_ID",
        help="let an in-place change weaken this resource's protection (DeletionPolicy, deletion protection, PITR...)",
    )
    overrides.add_argument(
        "--allow-drift",
        action="append",
        default=[],
        type=non_empty,
        metavar="LOGICAL_ID",
        help="let the change set overwrite this drifted stateful resource",
    )
    overrides.add_argument(
        "--allow-broadening", action="store_true", help="let security broadening execute without a human (--yes, CI)"
    )
    overrides.add_argument(
        "--allow-change",
        action="append",
        default=[],
        type=non_empty,
        metavar="LOGICAL_ID.PROPERTY",
        help="let this in-place change, not on the allow-list of harmless changes, execute under --yes",
    )
    overrides.add_argument(
        "--stateful-type",
        action="append",
        default=[],
        type=non_empty,
        metavar="TYPE",
        help="treat this resource type as stateful too, e.g. AWS::Custom::Ledger",
    )


def _safety_and_timing(parser: argparse.ArgumentParser) -> None:
    safety = parser.add_argument_group("before executing")
    safety.add_argument(
        "--drift-check",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="detect drift of the stateful resources first (default: on)",
    )
    safety.add_argument(
        "--rollback-alarms",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="pass the stack's function-error and dead-letter alarms as rollback triggers "
        "(default: on for prod and for --retain-data)",
    )
    safety.add_argument(
        "--rollback-monitoring-minutes",
        type=_minutes,
        metavar="MINUTES",
        help="how long CloudFormation watches the alarms after the update (default: 10)",
    )
    timing = parser.add_argument_group("timing")
    timing.add_argument(
        "--change-set-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the change set (and drift detection) (default: 600)",
    )
    timing.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long to follow the stack operation (default: 3600)",
    )
    timing.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS)


def _clients(ctx: Context) -> tuple[CloudFormationClient, S3Client, str]:
    """The two clients every deploy takes and the region they are in: Context's session (--profile,
    --region, else the profile's or AWS_REGION), Context's client settings (retries, --endpoint-url)."""
    return ctx.client("cloudformation"), ctx.client("s3"), ctx.session.region_name


def _console(human: TextIO, stdin: TextIO) -> Console:
    from market_cfn.base.console import Console

    return Console(
        out=human,
        interactive=stdin.isatty(),
        ask=lambda prompt: (human.write(prompt), human.flush(), stdin.readline())[2] or "",
        color=human.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb",
    )


def _waits(args: argparse.Namespace) -> Waits:
    from market_cfn.base.waits import Waits

    return Waits(
        poll_seconds=args.poll_interval,
        change_set_timeout_seconds=args.change_set_timeout,
        stack_timeout_seconds=args.timeout,
    )


def _failure(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the one line for an error the deploy can meet; None: a bug, re-raised."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
    from botocore.parsers import ResponseParserError

    from market_cfn.base.errors import DeployError, Refused, UsageError
    from market_cfn.deploy.packaging import PackagingError

    if isinstance(exc, Refused):
        return 3, str(exc)
    if isinstance(exc, (UsageError, NoCredentialsError)):
        return 2, str(exc)
    if isinstance(exc, DeployError):
        return 1, str(exc)
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return 1, f"{exc.operation_name} failed: {error.get('Code')}: {error.get('Message')}"
    if isinstance(exc, (BotoCoreError, ResponseParserError)):
        return 1, " ".join(str(exc).split())[:300]
    if isinstance(exc, KeyboardInterrupt):
        return 1, "interrupted (a stack operation already started goes on in CloudFormation)"
    if isinstance(exc, PackagingError):  # one line, not a traceback
        return 2, f"packaging: {exc}"
    return None


def main(
    argv: list[str],
    *,
    prog: str = "python -m market_cfn deploy",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    waits: Waits | None = None,
) -> int:
    from botocore.exceptions import ProfileNotFound

    from market_cfn.base.errors import UsageError
    from market_cfn.deploy import command as core

    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = build_parser(prog).parse_args(argv)
    except SystemExit as exc:  # argparse printed its message (one line) or --help; --help exits 0
        return int(exc.code or 0)

    def fail(code: int, message: str) -> int:
        print(f"{prog}: {message}", file=stderr)
        if args.json:
            print(json.dumps({"Result": "error", "ExitCode": code, "Message": message}), file=stdout)
        return code

    try:
        plan = core.plan_deploy(args, command=prog)  # every check that needs no AWS call, first
        aws = Context(args, stdout, stderr, stdin)  # after plan_deploy: deploy.toml may set region, profile
        cfn, s3, region = _clients(aws)
    except (ValueError, UsageError, ProfileNotFound) as exc:  # ValueError includes config.ConfigError
        return fail(2, str(exc))
    try:
        outcome = core.run_deploy(
            cfn,
            s3,
            plan,
            core.where(args, region),
            _console(stderr if args.json else stdout, stdin),
            waits or _waits(args),
            # the bootstrap step's API Gateway CloudWatch role; the retained-names check's reads
            apigateway=lambda: aws.client("apigateway"),
            clients=aws.client,
        )
    except (Exception, KeyboardInterrupt) as exc:
        failure = _failure(exc)
        if failure is None:
            raise
        return fail(*failure)
    code = core.exit_code(outcome)
    if args.json:
        print(json.dumps(outcome.to_json() | {"ExitCode": code}, indent=2, sort_keys=True, default=str), file=stdout)
    line = core.verdict(outcome)
    if line:
        print(f"{prog}: {line}", file=stderr)
    return code
