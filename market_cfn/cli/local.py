"""`python -m market_cfn local`: the whole pipeline as a local AWS endpoint on 127.0.0.1, until Ctrl-C.

Starts moto's server, deploys the stack into it with bin/deploy's own path, and runs the real
handlers as AWS wires them (docs/local.md). Prints `endpoint http://127.0.0.1:PORT` and the
stack's outputs, then runs until SIGINT or SIGTERM and shuts down cleanly. Exit 0 after a
clean shutdown, 1 when the service cannot start (one line on stderr), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, TextIO

USAGE = (
    "python -m market_cfn local [--port N] [--api-port N] [--env E] [--tick SECONDS] "
    "[--retry-delay SECONDS] [--redelivery-delay SECONDS] [--verbose]"
)

EXIT_CODES = """\
exit codes:
  0  stopped cleanly (SIGINT or SIGTERM)
  1  the service could not start (one line on stderr)
  2  bad arguments
"""


def _parser() -> argparse.ArgumentParser:
    from market_cfn.cli.command import OneLineParser

    parser = OneLineParser(
        prog="python -m market_cfn local", usage=USAGE, description=__doc__.split("\n\n")[0], epilog=EXIT_CODES
    )
    parser.add_argument(
        "--port", type=int, default=5000, metavar="N", help="endpoint port on 127.0.0.1; 0 picks a free one (5000)"
    )
    parser.add_argument(
        "--api-port", type=int, default=0, metavar="N", help="port of POST /ingest; 0 picks a free one (default)"
    )
    parser.add_argument("--env", default="dev", metavar="E", help="EnvironmentSuffix of the stack (default: dev)")
    parser.add_argument(
        "--tick",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="seconds between DataAggregator runs (the schedule; default 300)",
    )
    parser.add_argument(
        "--retry-delay",
        type=float,
        metavar="SECONDS",
        default=None,
        help="seconds before each asynchronous retry (default: Lambda's 60, then 120)",
    )
    parser.add_argument(
        "--redelivery-delay",
        type=int,
        metavar="SECONDS",
        default=None,
        help="seconds until a message a function failed is visible again (default: the queue's visibility timeout)",
    )
    parser.add_argument("--verbose", action="store_true", help="echo the functions' log lines on stderr")
    return parser


def _check(args: argparse.Namespace) -> None:
    for name in ("port", "api_port"):
        value = getattr(args, name)
        if not 0 <= value <= 65535:
            raise ValueError(f"--{name.replace('_', '-')} must be between 0 and 65535, got {value}")
    if args.tick <= 0:
        raise ValueError(f"--tick must be a positive number of seconds, got {args.tick:g}")
    if args.retry_delay is not None and args.retry_delay < 0:
        raise ValueError("--retry-delay must be >= 0")
    if args.redelivery_delay is not None and not 0 <= args.redelivery_delay <= 43200:
        raise ValueError("--redelivery-delay must be between 0 and 43200 (SQS's visibility timeout range)")
    from market_cfn.stack.config import StackConfig

    StackConfig(env_suffix=args.env)  # ConfigError (a ValueError) for a bad name


def main(argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse printed the help or a one-line error
        return 0 if exc.code == 0 else 2
    try:
        _check(args)
    except ValueError as exc:
        print(f"python -m market_cfn local: {exc}", file=err)
        return 2

    from market_cfn.local.service import LocalService, ServiceError
    from market_cfn.local.stackview import WiringError

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def say(line: str) -> None:
        target = err if line.startswith("error:") else out
        print(line, file=target, flush=True)

    service = LocalService(
        port=args.port,
        api_port=args.api_port,
        env=args.env,
        tick_seconds=args.tick,
        retry_delay_seconds=args.retry_delay,
        redelivery_delay_seconds=args.redelivery_delay,
        echo_logs=err if args.verbose else None,
        say=say,
    )
    try:
        try:
            service.start()
        except (ServiceError, WiringError, OSError) as exc:
            print(f"python -m market_cfn local: {exc}", file=err)
            return 1
        _print_outputs(service, out)
        stop.wait()
        print("stopping ...", file=out, flush=True)
        return 0
    finally:
        service.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _print_outputs(service: Any, out: TextIO) -> None:
    width = max(len(k) for k in service.outputs)
    print(f"stack {service.stack_name} outputs:", file=out)
    for key, value in sorted(service.outputs.items()):
        print(f"  {key:<{width}}  {value}", file=out)
    print(
        f"credentials: AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1; "
        f"aws --endpoint-url {service.endpoint} ...",
        file=out,
    )
    print(
        f"schedule: DataAggregator every {service.tick_seconds:g} s. Ready; Ctrl-C or SIGTERM stops.",
        file=out,
        flush=True,
    )
