"""`bin/deploy` / `python -m market_cfn deploy`: arguments in, exit code out.

This module only parses and validates arguments, builds the boto3 clients, and calls
market_cfn.deploy; everything that talks to AWS lives there.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import ipaddress
import json
import os
import re
import sys
import urllib.parse
from pathlib import Path
from typing import Any, TextIO

from market_cfn.cli.command import OneLineParser

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

ENV_HELP = (
    "environment name: 1-10 lower-case letters and digits, starting with a letter; the EnvironmentSuffix "
    "parameter and the deploy.toml section (default: dev)"
)

KEY_VALUE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.:/+=@-]*)=(.*)$", re.DOTALL)


def _text(value: str) -> str:
    """An option value that must not be empty (`--region ''` is a mistake, not "the default")."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


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
    target = parser.add_argument_group("what to deploy")
    target.add_argument("--env", type=_text, default="dev", help=ENV_HELP)
    target.add_argument(
        "--config", type=_text, metavar="FILE", help="deploy settings file (default: ./deploy.toml if it exists)"
    )
    target.add_argument("--stack-name", type=_text, help="stack name (default: market-data-<env>)")
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
    target.add_argument("--render-profile", type=_text, metavar="NAME", help="template render profile, e.g. regulated")
    target.add_argument(
        "--bootstrap-stack-name",
        type=_text,
        help="stack that provides the artifacts bucket (default: market-data-bootstrap)",
    )
    aws = parser.add_argument_group("where")
    aws.add_argument("--region", type=_text, help="AWS region (default: from the profile or AWS_REGION)")
    aws.add_argument("--profile", type=_text, help="AWS named profile")
    aws.add_argument(
        "--endpoint-url", type=_text, help="endpoint of a local AWS emulation, e.g. http://127.0.0.1:5000 (moto_server)"
    )
    flow = parser.add_argument_group("review and execution")
    flow.add_argument("--yes", "-y", action="store_true", help="execute without asking (the guard still applies)")
    mode = flow.add_mutually_exclusive_group()
    mode.add_argument("--no-execute", action="store_true", help="create and review the change set, leave it for later")
    mode.add_argument(
        "--execute",
        type=_text,
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
    flow.add_argument("--review-out", type=_text, metavar="FILE", help="write the review as Markdown (a PR comment)")
    flow.add_argument(
        "--keep-change-set",
        action="store_true",
        help="keep a change set the guard blocked, for inspection (default: deleted)",
    )
    overrides = parser.add_argument_group("overrides (each names exactly what it allows; repeatable)")
    overrides.add_argument(
        "--allow-replacement",
        action="append",
        default=[],
        type=_text,
        metavar="LOGICAL_ID",
        help="let the change set replace or remove this stateful resource (the stack policy opens it for this run)",
    )
    overrides.add_argument(
        "--allow-unprotect",
        action="append",
        default=[],
        type=_text,
        metavar="LOGICAL_ID",
        help="let an in-place change weaken this resource's protection (DeletionPolicy, deletion protection, PITR...)",
    )
    overrides.add_argument(
        "--allow-drift",
        action="append",
        default=[],
        type=_text,
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
        type=_text,
        metavar="LOGICAL_ID.PROPERTY",
        help="let this in-place change, not on the allow-list of harmless changes, execute under --yes",
    )
    overrides.add_argument(
        "--stateful-type",
        action="append",
        default=[],
        type=_text,
        metavar="TYPE",
        help="treat this resource type as stateful too, e.g. AWS::Custom::Ledger",
    )
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
    return parser


def _pairs(values: list[str], what: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for raw in values:
        match = KEY_VALUE.match(raw)
        if not match:
            raise ValueError(f"--{what} {raw!r}: expected KEY=VALUE")
        key, value = match.groups()
        if key in pairs and pairs[key] != value:
            raise ValueError(f"--{what} {key} given twice with different values")
        pairs[key] = value
    return pairs


def _clients(args: argparse.Namespace) -> tuple[Any, Any, str]:
    import boto3
    from botocore.config import Config

    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    # botocore 1.35 reads AWS_DEFAULT_REGION and the profile; the SDKs' AWS_REGION too.
    region = session.region_name or os.environ.get("AWS_REGION")
    if not region:
        raise ValueError("no region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION / a profile region")
    session = boto3.Session(profile_name=args.profile, region_name=region)
    if session.get_credentials() is None:
        raise ValueError("no AWS credentials found (environment, --profile, or instance role)")
    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, s3={"addressing_style": "path"} if args.endpoint_url else {}
    )
    cfn = session.client("cloudformation", endpoint_url=args.endpoint_url, config=config)
    s3 = session.client("s3", endpoint_url=args.endpoint_url, config=config)
    return cfn, s3, region


def _client(args: argparse.Namespace, region: str, service: str) -> Any:
    import boto3
    from botocore.config import Config

    session = boto3.Session(profile_name=args.profile, region_name=region)
    config = Config(
        retries={"mode": "standard", "max_attempts": 5}, s3={"addressing_style": "path"} if args.endpoint_url else {}
    )
    return session.client(service, endpoint_url=args.endpoint_url, config=config)  # type: ignore[call-overload]


def _apigateway(args: argparse.Namespace, region: str) -> Any:
    """The client the bootstrap step reads and (only where unset) sets API Gateway's CloudWatch role with."""
    import boto3
    from botocore.config import Config

    session = boto3.Session(profile_name=args.profile, region_name=region)
    return session.client(
        "apigateway", endpoint_url=args.endpoint_url, config=Config(retries={"mode": "standard", "max_attempts": 5})
    )


def _apply_settings(args: argparse.Namespace) -> Any:
    """Fill what the command line left unset from deploy.toml's [env.<env>]; return the settings."""
    from pathlib import Path

    from market_cfn.deploy.settings import DEFAULT_SETTINGS_FILE, load_settings

    path = Path(args.config) if args.config else DEFAULT_SETTINGS_FILE
    settings = load_settings(path, args.env, required=bool(args.config))
    for key in ("stack_name", "region", "profile", "endpoint_url", "bootstrap_stack_name", "render_profile"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(settings, key))
    for key in ("retain_data", "rollback_alarms", "rollback_monitoring_minutes", "drift_check"):
        if getattr(args, key) is None:
            setattr(args, key, getattr(settings, key))
    return settings


def _render(env: str, retain_data: bool, render_profile: str | None) -> str:
    import dataclasses

    from market_cfn.stack.config import StackConfig
    from market_cfn.stack.render import render_json

    config: dict[str, Any] = {"env_suffix": env, "retain_data": retain_data}
    if render_profile:
        if "profile" not in {f.name for f in dataclasses.fields(StackConfig)}:
            raise ValueError("--render-profile: this version of the template has no render profiles")
        config["profile"] = render_profile
    return render_json(StackConfig(**config))


def _local_env_endpoint() -> str:
    """AWS_ENDPOINT_URL when it names this machine, else "".

    boto3 sends every client to AWS_ENDPOINT_URL (AWS SDKs and Tools reference guide, "Service-specific
    endpoints"). On loopback that is a local emulator, as --endpoint-url is; anywhere else (a proxy, a
    VPC or FIPS endpoint) it may be real AWS, so the emulator degradations must not apply: fail closed.
    """
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    return url if loopback else ""


def main(
    argv: list[str],
    *,
    prog: str = "python -m market_cfn deploy",
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    waits: Any = None,
) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
    from botocore.parsers import ResponseParserError

    from market_cfn.base.aws import Where
    from market_cfn.base.console import Console
    from market_cfn.base.errors import DeployError, Refused, UsageError
    from market_cfn.base.waits import Waits
    from market_cfn.deploy.bootstrap import DEFAULT_STACK_NAME
    from market_cfn.deploy.changeset import change_set_arn
    from market_cfn.deploy.flow import PipelineDeploy, deploy_pipeline, execute_existing, validate_pipeline
    from market_cfn.deploy.gate import DeployOptions
    from market_cfn.deploy.review.model import Overrides
    from market_cfn.deploy.triggers import DEFAULT_MONITORING_MINUTES

    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    parser = build_parser(prog)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed its message (one line) or --help; --help exits 0
        return int(exc.code or 0)

    human = stderr if args.json else stdout
    console = Console(
        out=human,
        interactive=stdin.isatty(),
        ask=lambda prompt: (human.write(prompt), human.flush(), stdin.readline())[2] or "",
        color=human.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb",
    )
    waits = waits or Waits(
        poll_seconds=args.poll_interval,
        change_set_timeout_seconds=args.change_set_timeout,
        stack_timeout_seconds=args.timeout,
    )

    def fail(code: int, message: str) -> int:
        print(f"{prog}: {message}", file=stderr)
        if args.json:
            print(json.dumps({"Result": "error", "ExitCode": code, "Message": message}), file=stdout)
        return code

    try:
        settings = _apply_settings(args)
        parameters = {**settings.parameters, **_pairs(args.parameter, "parameter")}
        tags = {**settings.tags, **_pairs(args.tag, "tag")}
        for value in (args.change_set_timeout, args.timeout, args.poll_interval):
            if value <= 0:
                raise ValueError("timeouts and intervals must be positive")
        if args.execute and (args.parameter or args.tag or args.retain_data or args.render_profile):
            raise ValueError(
                "--execute runs a change set as it was created; --parameter/--tag/--retain-data/--render-profile "
                "do not apply"
            )
        production = args.env == "prod" or bool(args.retain_data)
        options = DeployOptions(
            assume_yes=args.yes,
            execute=not args.no_execute,
            overrides=Overrides(
                allow_replacement=frozenset(args.allow_replacement),
                allow_unprotect=frozenset(args.allow_unprotect),
                allow_drift=frozenset(args.allow_drift),
                allow_broadening=args.allow_broadening,
                allow_change=frozenset(args.allow_change),
                extra_stateful_types=frozenset(args.stateful_type) | frozenset(settings.stateful_types),
            ),
            keep_change_set=args.keep_change_set,
            drift_check=args.drift_check is not False,
            rollback_alarms=production if args.rollback_alarms is None else args.rollback_alarms,
            rollback_monitoring_minutes=(
                DEFAULT_MONITORING_MINUTES
                if args.rollback_monitoring_minutes is None
                else args.rollback_monitoring_minutes
            ),
            review_out=Path(args.review_out) if args.review_out else None,
            command=prog,
            delete_failed_stack=args.delete_failed_stack,
            reviewed_digest=args.reviewed_sha256 or "",
        )
        if args.reviewed_sha256 and not args.execute:
            raise ValueError("--reviewed-sha256 goes with --execute (it names the review of that change set)")
        stack_name = args.stack_name or f"market-data-{args.env}"
        request = None
        if not args.execute:
            request = PipelineDeploy(
                stack_name=stack_name,
                env=args.env,
                region="",
                template_json=_render(args.env, bool(args.retain_data), args.render_profile),
                parameters=parameters,
                tags=tags,
                bootstrap_stack_name=args.bootstrap_stack_name or DEFAULT_STACK_NAME,
                options=options,
            )
            validate_pipeline(request)  # bad parameters fail before any AWS call
        cfn, s3, region = _clients(args)
        options = dataclasses.replace(
            options,
            where=Where(
                region=region,
                profile=args.profile or "",
                endpoint_url=args.endpoint_url or _local_env_endpoint(),
            ),
        )
    except (ValueError, UsageError) as exc:  # includes config.ConfigError
        return fail(2, str(exc))
    except ProfileNotFound as exc:
        return fail(2, str(exc))

    try:
        if args.execute:
            change_set = args.execute
            if not change_set.startswith("arn:"):  # a name: DescribeChangeSet needs the stack beside it
                change_set = change_set_arn(cfn, stack_name, change_set)
            outcome = execute_existing(cfn, change_set, console, waits, options=options)
        else:
            assert request is not None  # built above whenever --execute is absent
            outcome = deploy_pipeline(
                cfn,
                s3,
                dataclasses.replace(
                    request,
                    region=region,
                    options=options,
                    apigateway=lambda: _apigateway(args, region),
                    clients=lambda service: _client(args, region, service),
                ),
                console,
                waits,
            )
    except Refused as exc:
        return fail(3, str(exc))
    except UsageError as exc:
        return fail(2, str(exc))
    except NoCredentialsError as exc:
        return fail(2, str(exc))
    except DeployError as exc:
        return fail(1, str(exc))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return fail(1, f"{exc.operation_name} failed: {error.get('Code')}: {error.get('Message')}")
    except (BotoCoreError, ResponseParserError) as exc:
        return fail(1, " ".join(str(exc).split())[:300])
    except KeyboardInterrupt:
        return fail(1, "interrupted (a stack operation already started goes on in CloudFormation)")
    except Exception as exc:  # PackagingError and friends: one line, not a traceback
        from market_cfn.deploy.packaging import PackagingError

        if isinstance(exc, PackagingError):
            return fail(2, f"packaging: {exc}")
        raise

    code = {
        "deployed": 0,
        "no-changes": 0,
        "created-change-set": 0,
        "failed": 1,
        "blocked": 3,
        "declined": 3,
    }[outcome.result]
    if args.json:
        print(json.dumps(outcome.to_json() | {"ExitCode": code}, indent=2, sort_keys=True, default=str), file=stdout)
    if outcome.result == "failed":
        print(f"{prog}: deployment failed: {outcome.message}", file=stderr)
    elif code == 3:
        print(f"{prog}: not executed: {outcome.message}", file=stderr)
    return code
