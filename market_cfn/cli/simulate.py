"""`python -m market_cfn simulate FILE...`: the whole pipeline on moto, one JSON document out.

Each FILE is uploaded with its path relative to the current directory as the key
(so `AAPL/2024-06-01.csv` supplies the symbol AAPL). Exit 0 when the run completed
(rejections are not errors), 2 for unreadable arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

USAGE = "python -m market_cfn simulate [--env NAME] [--verbose] FILE..."

EXIT_CODES = """\
exit codes:
  0  the run completed (rejected records are counted in the document, not errors)
  1  the emulation failed (one line on stderr)
  2  bad arguments (a file that cannot be read or lies outside the current directory)
"""


def _parser() -> argparse.ArgumentParser:
    from market_cfn.cli.command import OneLineParser

    parser = OneLineParser(
        prog="python -m market_cfn simulate", usage=USAGE, description=__doc__.split("\n\n")[0], epilog=EXIT_CODES
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="market-data files (CSV, JSON, JSON Lines, maybe .gz)")
    parser.add_argument("--env", default="dev", help="EnvironmentSuffix of the emulated stack (default: dev)")
    parser.add_argument("--verbose", action="store_true", help="send the handlers' log lines to stderr")
    return parser


class _UsageError(Exception):
    pass


def _read_files(paths: list[str]) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise _UsageError(f"{path}: not a readable file")
        key = os.path.relpath(path).replace(os.sep, "/")
        if key.startswith("../"):
            raise _UsageError(f"{path}: outside the current directory (its key would start with '../')")
        try:
            with open(path, "rb") as handle:
                files[key] = handle.read()
        except OSError as exc:
            raise _UsageError(f"{path}: {exc.strerror}") from None
    return files


def main(argv: list[str]) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed a one-line error / the help
        return 0 if exc.code == 0 else 2
    try:
        files = _read_files(args.files)
        from market_cfn.stack.config import ConfigError, StackConfig

        StackConfig(env_suffix=args.env)
    except _UsageError as exc:
        print(f"python -m market_cfn simulate: {exc}", file=sys.stderr)
        return 2
    except ConfigError as exc:
        print(f"python -m market_cfn simulate: {exc}", file=sys.stderr)
        return 2
    from market_cfn.local.pipeline import Pipeline

    try:
        with Pipeline(env_suffix=args.env, log_stream=sys.stderr if args.verbose else None) as pipe:
            summary = pipe.run(files)
    except Exception as exc:  # noqa: BLE001  # the emulation itself failed: one line, not moto's traceback
        print(f"python -m market_cfn simulate: the emulation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(format_summary(summary))
    return 0


def format_summary(summary: dict[str, Any]) -> str:
    """The summary as JSON, one list item per line (still one valid JSON document)."""
    lines = []
    for key, value in summary.items():
        if isinstance(value, list) and value:
            items = ",\n".join("    " + json.dumps(item) for item in value)
            lines.append(f"  {json.dumps(key)}: [\n{items}\n  ]")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"
