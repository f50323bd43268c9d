"""`python -m market_cfn diff [--env E] [--parameter K=V]... [--render-profile P] [--retain-data]`:
what `bin/deploy` would change, without any side effect: no change set, no upload, no bootstrap.

It reads the deployed stack (DescribeStacks, GetTemplate) and compares its template with the one
a deploy would send, resource by resource, with the security changes; docs/deploy.md "Diff"."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from market_cfn.cli.command import ENV_HELP, Context, OneLineParser, non_empty

PROG = "python -m market_cfn diff"
EXIT_CODES = """\
exit codes:
  0  the difference was shown (none, or some: --json says which in "Changed")
  1  an AWS error (the stack could not be read)
  2  bad arguments or input (unknown parameter, bad value, bad deploy.toml, no region or credentials)
"""


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0], epilog=EXIT_CODES)
    p.add_argument("--env", type=non_empty, default="dev", help=ENV_HELP)
    p.add_argument("--config", type=non_empty, metavar="FILE", help="deploy settings file (default: ./deploy.toml)")
    p.add_argument("--stack-name", type=non_empty, help="stack name (default: market-data-<env>)")
    p.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", help="a template parameter")
    p.add_argument("--retain-data", action="store_true", default=None, help="render with the data retained")
    p.add_argument("--render-profile", type=non_empty, metavar="NAME", help="the template's render profile")
    p.add_argument("--bootstrap-stack-name", type=non_empty, help="stack of the artifacts bucket")
    p.add_argument("--region", type=non_empty, help="AWS region (default: from the profile or AWS_DEFAULT_REGION)")
    p.add_argument("--profile", type=non_empty, help="AWS named profile")
    p.add_argument("--endpoint-url", type=non_empty, help="a local endpoint, e.g. the one `local` prints")
    p.add_argument("--json", action="store_true", help="print the difference as one JSON document")
    p.set_defaults(rollback_alarms=None, rollback_monitoring_minutes=None, drift_check=None)
    return p


def main(argv: list[str]) -> int:
    from botocore.exceptions import BotoCoreError, ClientError

    from market_cfn.base.errors import DeployError, UsageError
    from market_cfn.deploy import command
    from market_cfn.deploy.bootstrap import DEFAULT_STACK_NAME
    from market_cfn.deploy.dryrun import dry_run, dumps, render_dry_run
    from market_cfn.deploy.flow import PipelineDeploy, validate_pipeline
    from market_cfn.deploy.packaging import PackagingError, build_package

    args = _parser().parse_args(argv)

    def fail(code: int, message: str) -> int:
        print(f"{PROG}: {' '.join(message.split())}", file=sys.stderr)
        if args.json:
            print(json.dumps({"Result": "error", "ExitCode": code, "Message": message}))
        return code

    try:
        settings = command.apply_settings(args)
        request = PipelineDeploy(
            stack_name=args.stack_name or f"market-data-{args.env}",
            env=args.env,
            region="",
            template_json=command.render(args.env, bool(args.retain_data), args.render_profile),
            parameters={**settings.parameters, **command.pairs(args.parameter, "parameter")},
            bootstrap_stack_name=args.bootstrap_stack_name or DEFAULT_STACK_NAME,
        )
        validate_pipeline(request)  # bad parameters fail before any AWS call
        if not args.endpoint_url:
            args.endpoint_url = command.local_env_endpoint() or None
        cfn = Context(args, sys.stdout, sys.stderr, sys.stdin).client("cloudformation")
        code_key = build_package().key
    except (ValueError, UsageError) as exc:
        return fail(2, str(exc))
    except PackagingError as exc:
        return fail(2, f"packaging: {exc}")
    try:
        result = dry_run(cfn, request, code_key=code_key)
    except UsageError as exc:
        return fail(2, str(exc))
    except ClientError as exc:
        error: Any = exc.response.get("Error", {})
        return fail(1, f"{exc.operation_name} failed: {error.get('Code')}: {error.get('Message')}")
    except (BotoCoreError, DeployError) as exc:
        return fail(1, str(exc)[:300])
    if args.json:
        print(dumps(result))
    else:
        print("\n".join(render_dry_run(result)))
    return 0
