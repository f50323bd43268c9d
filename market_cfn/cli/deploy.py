"""`bin/deploy` / `python -m market_cfn deploy`: arguments in, exit code out.

This module only parses and validates arguments, builds the boto3 clients, and calls
market_cfn.deploy; everything that talks to AWS lives there.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from typing import Any, TextIO

EXIT_CODES = """\
exit codes:
  0  deployed, or nothing to do ("No changes"), or the change set was left for review
  1  the deployment failed (stack rolled back, change set failed, timed out, AWS error)
  2  bad arguments or input (unknown parameter, bad value, missing region/credentials,
     change set given to --execute not found or not AVAILABLE)
  3  declined at the prompt, no terminal to confirm on without --yes, or blocked by the
     guard (a stateful resource would be removed or replaced without --allow-replacement)
"""

DESCRIPTION = """\
Package the handlers, create a CloudFormation change set, show it for review, guard the
stateful resources, and execute it on confirmation, following the stack events.

The guard refuses to execute a change set that removes or replaces (Replacement True or
Conditional) a stateful resource - S3 bucket, DynamoDB table, SQS queue, log group,
EventBridge archive - unless --allow-replacement names each one. --yes does not bypass it.
"""

KEY_VALUE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.:/+=@-]*)=(.*)$", re.DOTALL)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bin/deploy",
        description=DESCRIPTION,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    target = parser.add_argument_group("what to deploy")
    target.add_argument(
        "--env", default="dev", help="environment suffix, the EnvironmentSuffix parameter (default: dev)"
    )
    target.add_argument("--stack-name", help="stack name (default: market-data-<env>)")
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
        action="store_true",
        help="render the template with DeletionPolicy/UpdateReplacePolicy Retain on the buckets and table",
    )
    target.add_argument(
        "--bootstrap-stack-name",
        default="market-data-bootstrap",
        help="stack that provides the artifacts bucket (default: market-data-bootstrap)",
    )
    aws = parser.add_argument_group("where")
    aws.add_argument("--region", help="AWS region (default: from the profile or AWS_REGION)")
    aws.add_argument("--profile", help="AWS named profile")
    aws.add_argument(
        "--endpoint-url", help="endpoint of a local AWS emulation, e.g. http://127.0.0.1:5000 (moto_server)"
    )
    flow = parser.add_argument_group("review and execution")
    flow.add_argument("--yes", "-y", action="store_true", help="execute without asking (the guard still applies)")
    mode = flow.add_mutually_exclusive_group()
    mode.add_argument("--no-execute", action="store_true", help="create and review the change set, leave it for later")
    mode.add_argument("--execute", metavar="CHANGE_SET_ARN", help="review and execute a change set created earlier")
    flow.add_argument(
        "--allow-replacement",
        action="append",
        default=[],
        metavar="LOGICAL_ID",
        help="let the change set remove or replace this stateful resource (repeatable)",
    )
    flow.add_argument(
        "--json", action="store_true", help="print the result as JSON on stdout (the review goes to stderr)"
    )
    flow.add_argument(
        "--change-set-timeout",
        type=float,
        default=600.0,
        metavar="SECONDS",
        help="how long to wait for the change set to be created (default: 600)",
    )
    flow.add_argument(
        "--timeout",
        type=float,
        default=3600.0,
        metavar="SECONDS",
        help="how long to follow the stack operation (default: 3600)",
    )
    flow.add_argument("--poll-interval", type=float, default=5.0, metavar="SECONDS", help=argparse.SUPPRESS)
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


def main(
    argv: list[str],
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
    waits: Any = None,
) -> int:
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound
    from botocore.parsers import ResponseParserError

    from market_cfn import deploy as core

    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse prints its own message; --help exits 0
        return int(exc.code or 0)

    human = stderr if args.json else stdout
    console = core.Console(
        out=human,
        interactive=stdin.isatty(),
        ask=lambda prompt: (human.write(prompt), human.flush(), stdin.readline())[2] or "",
        color=human.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb",
    )
    waits = waits or core.Waits(
        poll_seconds=args.poll_interval,
        change_set_timeout_seconds=args.change_set_timeout,
        stack_timeout_seconds=args.timeout,
    )

    def fail(code: int, message: str) -> int:
        print(f"bin/deploy: {message}", file=stderr)
        if args.json:
            print(json.dumps({"Result": "error", "ExitCode": code, "Message": message}), file=stdout)
        return code

    try:
        parameters = _pairs(args.parameter, "parameter")
        tags = _pairs(args.tag, "tag")
        for value in (args.change_set_timeout, args.timeout, args.poll_interval):
            if value <= 0:
                raise ValueError("timeouts and intervals must be positive")
        if args.execute and (args.parameter or args.tag or args.retain_data):
            raise ValueError(
                "--execute runs a change set as it was created; --parameter/--tag/--retain-data do not apply"
            )
        stack_name = args.stack_name or f"market-data-{args.env}"
        request = None
        if not args.execute:
            from market_cfn.stack.config import StackConfig
            from market_cfn.stack.render import render_json

            template_json = render_json(StackConfig(env_suffix=args.env, retain_data=args.retain_data))
            request = core.PipelineDeploy(
                stack_name=stack_name,
                env=args.env,
                region="",
                template_json=template_json,
                parameters=parameters,
                tags=tags,
                bootstrap_stack_name=args.bootstrap_stack_name,
                assume_yes=args.yes,
                execute=not args.no_execute,
                allow_replacement=tuple(args.allow_replacement),
            )
            core.validate_pipeline(request)  # bad parameters fail before any AWS call
        cfn, s3, region = _clients(args)
    except (ValueError, core.UsageError) as exc:  # includes config.ConfigError
        return fail(2, str(exc))
    except ProfileNotFound as exc:
        return fail(2, str(exc))

    try:
        if args.execute:
            outcome = core.execute_existing(
                cfn, args.execute, console, waits, assume_yes=args.yes, allow_replacement=args.allow_replacement
            )
        else:
            from dataclasses import replace

            assert request is not None  # built above whenever --execute is absent

            outcome = core.deploy_pipeline(cfn, s3, replace(request, region=region), console, waits)
    except core.Refused as exc:
        return fail(3, str(exc))
    except core.UsageError as exc:
        return fail(2, str(exc))
    except NoCredentialsError as exc:
        return fail(2, str(exc))
    except core.DeployError as exc:
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
        "created-change-set": 3 if outcome.review and outcome.review.blocked else 0,
        "failed": 1,
    }[outcome.result]
    if args.json:
        print(json.dumps(outcome.to_json() | {"ExitCode": code}, indent=2, sort_keys=True, default=str), file=stdout)
    if outcome.result == "failed":
        print(f"bin/deploy: deployment failed: {outcome.message}", file=stderr)
    return code
