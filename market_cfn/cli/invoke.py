"""`python -m market_cfn invoke FUNCTION --event FILE [--env NAME] [--verbose]`: run one handler
on one event, locally, and print what it returned.

The handler runs as `simulate` runs it: the real code with its template environment, in an
in-process AWS emulation (moto) holding the stack's queues, table, buckets and bus, so what it
writes goes somewhere. FUNCTION is DataIngestion, DataProcessor or DataAggregator (any case);
FILE is a JSON event (an API Gateway proxy request, an SQS batch, a schedule event, as in
tests/events/), or - for standard input. An S3 event names an object the fresh emulation does not
hold: use `simulate FILE` for files.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from market_cfn.cli.command import OneLineParser

PROG = "python -m market_cfn invoke"
FUNCTIONS = ("DataIngestion", "DataProcessor", "DataAggregator")
EXIT_CODES = """\
exit codes:
  0  the handler returned (its result is printed as JSON on stdout)
  1  the handler raised (one line on stderr: the exception's type and message)
  2  bad arguments (an unknown function, an event that cannot be read or is not a JSON object)
"""


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0], epilog=EXIT_CODES)
    p.add_argument("function", metavar="FUNCTION", help=f"one of {', '.join(FUNCTIONS)}")
    p.add_argument("--event", required=True, metavar="FILE", help="the event as JSON, or - for standard input")
    p.add_argument("--env", default="dev", metavar="NAME", help="EnvironmentSuffix of the emulated stack (dev)")
    p.add_argument("--verbose", action="store_true", help="the handler's log lines on stderr")
    return p


def _function(name: str) -> str:
    for known in FUNCTIONS:
        if name.lower() == known.lower():
            return known
    raise ValueError(f"unknown function {name!r}: choose from {', '.join(FUNCTIONS)}")


def _event(path: str) -> dict[str, Any]:
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as exc:
        raise ValueError(f"--event {path}: {exc.strerror or exc}") from None
    try:
        event = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"--event {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(event, dict):
        raise ValueError(f"--event {path}: a Lambda event is a JSON object, this is a {type(event).__name__}")
    return event


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        function, event = _function(args.function), _event(args.event)
        from market_cfn.stack.config import StackConfig

        StackConfig(env_suffix=args.env)
    except ValueError as exc:  # ConfigError is a ValueError
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    from market_cfn.local.pipeline import Pipeline

    try:
        with Pipeline(env_suffix=args.env, log_stream=sys.stderr if args.verbose else None) as pipe:
            result = pipe.invoke(f"{function}Function", event)
    except Exception as exc:  # noqa: BLE001  # the handler's (or the emulation's) failure, in one line
        print(f"{PROG}: {function} raised {type(exc).__name__}: {' '.join(str(exc).split())[:300]}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, sort_keys=True, default=str))
    return 0
