"""What every day-2 command shares: the common options, the AWS session, and errors -> exit codes.

Each command module builds its parser with `command_parser`, then hands `run` a body that
takes a `Context` and returns (exit code, JSON document). `run` turns every expected
failure into one line on stderr (and, with --json, a JSON document on stdout) and the
documented exit code, in the style of bin/deploy.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NoReturn, TextIO, overload

from market_cfn.stack.config import PROFILES, StackConfig

if TYPE_CHECKING:
    from boto3.session import Session
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sts import STSClient

    from market_cfn.base.console import Console

EXIT_CODES = """\
exit codes:
  0  done
  1  failed (an AWS error, a failed operation, records rejected or not delivered)
  2  bad arguments or input (unknown stack, bad time or file, no region or credentials)
  3  declined at the prompt, no terminal to confirm on without --yes, or refused
"""

Body = Callable[["Context"], tuple[int, dict[str, Any]]]

ENV_HELP = (
    "environment name: 1-10 lower-case letters and digits, starting with a letter; the EnvironmentSuffix "
    "parameter and the deploy.toml section (default: dev)"
)


def non_empty(value: str) -> str:
    """An option value that must not be empty (`--region ''` is a mistake, not "the default")."""
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return value


class OneLineParser(argparse.ArgumentParser):
    """The one command-line convention (docs/operations.md "One convention"), for every command:

    - a usage error is one line on stderr, `<prog>: <reason> (see --help)`, exit 2;
    - options are never abbreviated (`--del` is not `--delete-data`: an abbreviation that
      works today breaks the day an option with the same prefix is added);
    - `--version` prints `market_cfn <version>` and exits 0; `--help` ends with the exit codes.
    """

    err: TextIO | None = None  # where the error goes (run() sets it); sys.stderr otherwise

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from market_cfn import __version__

        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)
        self.add_argument(
            "--version", action="version", version=f"market_cfn {__version__}", help="print the version and exit"
        )

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: {message} (see --help)", file=self.err or sys.stderr)
        raise SystemExit(2)


def command_parser(command: str, description: str, *, exit_codes: str = EXIT_CODES) -> argparse.ArgumentParser:
    parser = OneLineParser(prog=f"python -m market_cfn {command}", description=description, epilog=exit_codes)
    where = parser.add_argument_group("which stack, where")
    where.add_argument("--env", default="dev", help="environment suffix (default: dev)")
    where.add_argument("--stack-name", help="stack name (default: market-data-<env>)")
    where.add_argument("--region", help="AWS region (default: from the profile or AWS_REGION)")
    where.add_argument("--profile", help="AWS named profile")
    where.add_argument("--endpoint-url", help="a local endpoint, e.g. the one `python -m market_cfn local` prints")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout (for scripts)")
    return parser


class _AwsProfileIsNotATemplateProfile(argparse.Action):
    """`--profile` is the AWS named profile on every command; the template commands read no AWS account."""

    def __call__(self, parser: argparse.ArgumentParser, *_args: Any, **_kwargs: Any) -> None:
        parser.error(
            "--profile is the AWS named profile on every command and this one uses none; "
            "the template profile is --render-profile (default|regulated), as in bin/deploy"
        )


def add_template_options(p: argparse.ArgumentParser) -> None:
    """The options that choose the rendered template (`render`, `build`): --env, --environment-tag,
    --retain-data, --render-profile, and --profile refused with the way out. `stack_config` reads them."""
    p.add_argument(
        "--env",
        default=StackConfig.env_suffix,
        metavar="NAME",
        help="default of the EnvironmentSuffix parameter (1-10 lower-case letters/digits; default: dev)",
    )
    p.add_argument(
        "--environment-tag",
        default=StackConfig.environment_tag,
        metavar="VALUE",
        help="default of the EnvironmentTag parameter, the Environment tag (default: Production)",
    )
    p.add_argument(
        "--retain-data",
        action="store_true",
        help="Retain the buckets and the table on stack deletion or replacement (production)",
    )
    p.add_argument("--profile", nargs="?", action=_AwsProfileIsNotATemplateProfile, help=argparse.SUPPRESS)
    p.add_argument(
        "--render-profile",
        choices=PROFILES,
        default=StackConfig.profile,
        help="default: the original design (SSE-S3, destroyable); regulated: customer managed KMS key, "
        "access logs kept a year, data retained (default: default)",
    )


def stack_config(args: argparse.Namespace) -> StackConfig:
    """The StackConfig the template options name; ConfigError (a ValueError) for a bad value."""
    return StackConfig(
        env_suffix=args.env,
        environment_tag=args.environment_tag,
        retain_data=args.retain_data,
        profile=args.render_profile,
    )


@dataclass
class Context:
    args: argparse.Namespace
    stdout: TextIO
    stderr: TextIO
    stdin: TextIO
    _session: Session | None = None
    _clients: dict[str, Any] = field(default_factory=dict)  # service name -> its client

    @property
    def stack_name(self) -> str:
        return str(self.args.stack_name or f"market-data-{self.args.env}")

    @property
    def out(self) -> TextIO:
        """Human-readable output: stdout, or stderr when stdout carries --json."""
        return self.stderr if self.args.json else self.stdout

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    @property
    def show_progress(self) -> bool:
        return not self.args.json and self.stderr.isatty()

    def console(self) -> Console:
        from market_cfn.base.console import Console

        return Console(
            out=self.out,
            interactive=self.stdin.isatty(),
            ask=lambda prompt: (self.out.write(prompt), self.out.flush(), self.stdin.readline())[2] or "",
        )

    @property
    def session(self) -> Session:
        if self._session is None:
            import boto3

            from market_cfn.base.errors import UsageError

            session = boto3.Session(profile_name=self.args.profile, region_name=self.args.region)
            # botocore reads AWS_DEFAULT_REGION and the profile; the SDKs' AWS_REGION too.
            region = session.region_name or os.environ.get("AWS_REGION")
            if not region:
                raise UsageError("no region: pass --region, or set AWS_REGION / AWS_DEFAULT_REGION / a profile region")
            session = boto3.Session(profile_name=self.args.profile, region_name=region)
            if session.get_credentials() is None:
                raise UsageError("no AWS credentials found (environment, --profile, or instance role)")
            self._session = session
        return self._session

    # One overload per service a command uses (their stubs are pinned in the test extra), in name order
    # (deploy/retained.py's Clients keeps the same order, as mypy matches overloads in order): a call
    # with any other name is a type error, and each client returned is checked as that service's.
    @overload
    def client(self, service: Literal["apigateway"]) -> APIGatewayClient: ...
    @overload
    def client(self, service: Literal["cloudformation"]) -> CloudFormationClient: ...
    @overload
    def client(self, service: Literal["cloudwatch"]) -> CloudWatchClient: ...
    @overload
    def client(self, service: Literal["dynamodb"]) -> DynamoDBClient: ...
    @overload
    def client(self, service: Literal["events"]) -> EventBridgeClient: ...
    @overload
    def client(self, service: Literal["lambda"]) -> LambdaClient: ...
    @overload
    def client(self, service: Literal["logs"]) -> CloudWatchLogsClient: ...
    @overload
    def client(self, service: Literal["s3"]) -> S3Client: ...
    @overload
    def client(self, service: Literal["sqs"]) -> SQSClient: ...
    @overload
    def client(self, service: Literal["sts"]) -> STSClient: ...
    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            endpoint = self.args.endpoint_url
            config = Config(
                retries={"mode": "standard", "max_attempts": 5},
                s3={"addressing_style": "path"} if endpoint else {},
            )
            self._clients[service] = self.session.client(  # type: ignore[call-overload]  # a name the overloads allow
                service, endpoint_url=endpoint, config=config
            )
        return self._clients[service]


def run(
    parser: argparse.ArgumentParser,
    argv: list[str],
    body: Body,
    *,
    validate: Callable[[argparse.Namespace], None] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    stdin: TextIO | None = None,
) -> int:
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
        ProfileNotFound,
    )

    from market_cfn.base.errors import DeployError, OpsError, Refused, UsageError

    stdout, stderr, stdin = stdout or sys.stdout, stderr or sys.stderr, stdin or sys.stdin
    if isinstance(parser, OneLineParser):
        parser.err = stderr
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the help (0) or a one-line usage error (2)
        return 0 if exc.code in (0, None) else 2
    prog = parser.prog

    def fail(code: int, message: str) -> int:
        print(f"{prog}: {' '.join(str(message).split())}", file=stderr)
        if getattr(args, "json", False):
            print(json.dumps({"result": "error", "exit_code": code, "message": message}), file=stdout)
        return code

    ctx = Context(args, stdout, stderr, stdin)
    try:
        if validate is not None:
            validate(args)
        code, document = body(ctx)
    except UsageError as exc:
        return fail(2, str(exc))
    except (ProfileNotFound, NoCredentialsError, NoRegionError) as exc:
        return fail(2, str(exc))
    except Refused as exc:
        return fail(3, str(exc))
    except (OpsError, DeployError) as exc:
        return fail(1, str(exc))
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return fail(1, f"{exc.operation_name} failed: {error.get('Code')}: {error.get('Message')}")
    except EndpointConnectionError as exc:
        return fail(1, str(exc))
    except BotoCoreError as exc:
        return fail(1, str(exc)[:300])
    except KeyboardInterrupt:
        return fail(3, "interrupted")
    if args.json:
        from market_cfn.ops.values import pretty_json

        print(pretty_json(document | {"exit_code": code}), file=stdout)
    return code
