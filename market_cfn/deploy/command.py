"""The deploy command's core: the command line and deploy.toml resolved into one deploy, run, and its exit code.

cli/deploy.py parses the arguments, builds the boto3 clients and prints; everything it decides is here:
which settings win (`apply_settings`), which option combinations are refused (`plan_deploy`, before any
AWS call), which deploy runs (`run_deploy`: --execute of a reviewed change set, or the pipeline's deploy,
which leaves the change set for review under --no-execute), and the exit code of its outcome.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from market_cfn.base.aws import Where
from market_cfn.base.console import Console
from market_cfn.base.waits import Waits
from market_cfn.deploy import flow
from market_cfn.deploy.bootstrap import DEFAULT_STACK_NAME
from market_cfn.deploy.changeset import change_set_arn
from market_cfn.deploy.gate import DeployOptions, Outcome
from market_cfn.deploy.review.model import Overrides
from market_cfn.deploy.settings import DEFAULT_SETTINGS_FILE, EnvSettings, load_settings
from market_cfn.deploy.triggers import DEFAULT_MONITORING_MINUTES

if TYPE_CHECKING:
    from mypy_boto3_apigateway import APIGatewayClient
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_s3 import S3Client

    from market_cfn.deploy.retained import Clients

KEY_VALUE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.:/+=@-]*)=(.*)$", re.DOTALL)

# deploy.toml fills these from [env.<env>] where the command line left them unset (None)
SETTINGS_KEYS = (
    "stack_name",
    "region",
    "profile",
    "endpoint_url",
    "bootstrap_stack_name",
    "render_profile",
    "retain_data",
    "rollback_alarms",
    "rollback_monitoring_minutes",
    "drift_check",
)

# Outcome.result -> exit code (the command's documented exit codes)
EXIT_CODES = {
    "deployed": 0,
    "no-changes": 0,
    "created-change-set": 0,
    "failed": 1,
    "blocked": 3,
    "declined": 3,
}


@dataclass(frozen=True)
class DeployPlan:
    """One deploy as decided before any AWS call: the stack, how to deploy it, and which deploy runs."""

    stack_name: str
    options: DeployOptions
    execute: str = ""  # --execute: the change set created earlier (its ARN, or its name in stack_name)
    request: flow.PipelineDeploy | None = None  # otherwise the pipeline's deploy (region, clients: run_deploy)


def pairs(values: list[str], what: str) -> dict[str, str]:
    """Repeated --<what> KEY=VALUE options as a dict; the same key twice must mean the same value."""
    found: dict[str, str] = {}
    for raw in values:
        match = KEY_VALUE.match(raw)
        if not match:
            raise ValueError(f"--{what} {raw!r}: expected KEY=VALUE")
        key, value = match.groups()
        if key in found and found[key] != value:
            raise ValueError(f"--{what} {key} given twice with different values")
        found[key] = value
    return found


def apply_settings(args: argparse.Namespace) -> EnvSettings:
    """Fill what the command line left unset from deploy.toml's [env.<env>]; return the settings."""
    path = Path(args.config) if args.config else DEFAULT_SETTINGS_FILE
    settings = load_settings(path, args.env, required=bool(args.config))
    for key in SETTINGS_KEYS:
        if getattr(args, key) is None:
            setattr(args, key, getattr(settings, key))
    return settings


def render(env: str, retain_data: bool, render_profile: str | None) -> str:
    """The template a deploy of this environment sends."""
    from market_cfn.stack.config import StackConfig
    from market_cfn.stack.render import render_json

    config: dict[str, Any] = {"env_suffix": env, "retain_data": retain_data}
    if render_profile:
        if "profile" not in {f.name for f in dataclasses.fields(StackConfig)}:
            raise ValueError("--render-profile: this version of the template has no render profiles")
        config["profile"] = render_profile
    return render_json(StackConfig(**config))


def local_env_endpoint() -> str:
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


def where(args: argparse.Namespace, region: str) -> Where:
    """Where the deploy runs, as the commands it prints repeat it."""
    return Where(region=region, profile=args.profile or "", endpoint_url=args.endpoint_url or local_env_endpoint())


def _check_combinations(args: argparse.Namespace) -> None:
    for value in (args.change_set_timeout, args.timeout, args.poll_interval):
        if value <= 0:
            raise ValueError("timeouts and intervals must be positive")
    if args.execute and (args.parameter or args.tag or args.retain_data or args.render_profile):
        raise ValueError(
            "--execute runs a change set as it was created; --parameter/--tag/--retain-data/--render-profile "
            "do not apply"
        )


def deploy_options(args: argparse.Namespace, settings: EnvSettings, *, command: str) -> DeployOptions:
    """The command line and the settings resolved into how the stack is deployed (`where` comes later)."""
    production = args.env == "prod" or bool(args.retain_data)
    return DeployOptions(
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
            DEFAULT_MONITORING_MINUTES if args.rollback_monitoring_minutes is None else args.rollback_monitoring_minutes
        ),
        review_out=Path(args.review_out) if args.review_out else None,
        command=command,
        delete_failed_stack=args.delete_failed_stack,
        reviewed_digest=args.reviewed_sha256 or "",
    )


def plan_deploy(args: argparse.Namespace, *, command: str) -> DeployPlan:
    """Resolve the settings and check every option before any AWS call (ValueError, UsageError: exit 2).

    args: the parsed command line; deploy.toml fills what it left unset (args is updated, so the
    clients are built for the resolved region, profile and endpoint). command: how the user ran it.
    """
    settings = apply_settings(args)
    parameters = {**settings.parameters, **pairs(args.parameter, "parameter")}
    tags = {**settings.tags, **pairs(args.tag, "tag")}
    _check_combinations(args)
    options = deploy_options(args, settings, command=command)
    if args.reviewed_sha256 and not args.execute:
        raise ValueError("--reviewed-sha256 goes with --execute (it names the review of that change set)")
    stack_name = args.stack_name or f"market-data-{args.env}"
    if args.execute:
        return DeployPlan(stack_name, options, execute=args.execute)
    request = flow.PipelineDeploy(
        stack_name=stack_name,
        env=args.env,
        region="",
        template_json=render(args.env, bool(args.retain_data), args.render_profile),
        parameters=parameters,
        tags=tags,
        bootstrap_stack_name=args.bootstrap_stack_name or DEFAULT_STACK_NAME,
        options=options,
    )
    flow.validate_pipeline(request)  # bad parameters fail before any AWS call
    return DeployPlan(stack_name, options, request=request)


def run_deploy(
    cfn: CloudFormationClient,
    s3: S3Client,
    plan: DeployPlan,
    at: Where,
    console: Console,
    waits: Waits,
    *,
    apigateway: Callable[[], APIGatewayClient] | None = None,
    clients: Clients | None = None,
) -> Outcome:
    """Run the planned deploy in `at`: review and execute the change set given to --execute, or deploy
    the pipeline (bootstrap, package, the main stack's change set, left for review with --no-execute).

    apigateway, clients: make the clients the pipeline's deploy needs besides cfn and s3 (PipelineDeploy).
    """
    options = replace(plan.options, where=at)
    if plan.execute:
        change_set = plan.execute
        if not change_set.startswith("arn:"):  # a name: DescribeChangeSet needs the stack beside it
            change_set = change_set_arn(cfn, plan.stack_name, change_set)
        return flow.execute_existing(cfn, change_set, console, waits, options=options)
    assert plan.request is not None  # plan_deploy builds it whenever --execute is absent
    request = replace(plan.request, region=at.region, options=options, apigateway=apigateway, clients=clients)
    return flow.deploy_pipeline(cfn, s3, request, console, waits)


def exit_code(outcome: Outcome) -> int:
    return EXIT_CODES[outcome.result]


def verdict(outcome: Outcome) -> str:
    """The line on stderr for an outcome that is not a success ("" for one that is)."""
    if outcome.result == "failed":
        return f"deployment failed: {outcome.message}"
    if exit_code(outcome) == 3:
        return f"not executed: {outcome.message}"
    return ""
