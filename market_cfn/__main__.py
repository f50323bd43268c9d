"""`python -m market_cfn COMMAND [ARGS...]`: a small dispatcher, one module per command."""

import importlib
import os
import sys
from collections.abc import Callable

CLOSED_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a writer whose reader went away
TRACEBACK_VARIABLE = "MARKET_CFN_TRACEBACK"
# The commands that run on the emulation, and what they import from its [local] extra: without
# it `pip install market_cfn` still renders, deploys and operates.
EMULATION_NEEDS = {"simulate": ("moto",), "invoke": ("moto",), "local": ("moto", "moto.server", "jsonschema")}

COMMANDS = {
    "render": "Render the CloudFormation template to build/template.json.",
    "build": "Write the template and the function zip bin/deploy ships to build/, for inspection.",
    "simulate": "Run the whole pipeline on an in-process AWS emulation (moto).",
    "deploy": "Package, create a change set, review it, and execute on confirmation.",
    "diff": "What a deploy would change, with no side effect (no change set, no upload).",
    "local": "Run the pipeline as a local AWS endpoint on 127.0.0.1 (moto), until Ctrl-C.",
    "invoke": "Run one handler locally on one event (moto) and print what it returned.",
    "ingest": "Send points to POST /ingest, SigV4-signed, split at 1 MiB, 429/503 retried.",
    "upload": "Upload market-data files into the data bucket under their symbol's key.",
    "bars": "Read one symbol's 5-minute aggregates over a time range (Query).",
    "points": "Read one symbol's stored points over a time range (Query).",
    "status": "Stack, queues, dead letters, alarms, newest aggregates, recent rejections.",
    "logs": "Read or follow a function's log lines (FilterLogEvents).",
    "rejects": "List, show or download the rejection reports.",
    "redrive": "Move dead letters back to their queue, or re-invoke failed invocations.",
    "replay": "Replay the event archive into the bus over a time range.",
    "history": "Export the table's changes to the history bucket (the cold tier past the TTL).",
    "destroy": "Review, empty the buckets (--delete-data) and delete the stack.",
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: python -m market_cfn {" + ",".join(COMMANDS) + "} [options]   (--version: the version)\n")
        for name, text in COMMANDS.items():
            print(f"  {name:<10} {text}")
        return 0 if argv else 2
    if argv[0] == "--version":
        from market_cfn import __version__

        print(f"market_cfn {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"market_cfn: unknown command {command!r} (choose from {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    for needed in () if {"-h", "--help"} & set(rest) else EMULATION_NEEDS.get(command, ()):
        try:
            importlib.import_module(needed)
        except ModuleNotFoundError as exc:
            print(
                f"python -m market_cfn {command}: the emulation is not installed (no module {exc.name!r}); "
                "install it with: pip install 'market_cfn[local]'",
                file=sys.stderr,
            )
            return 1
    module = importlib.import_module(f"market_cfn.cli.{command}")
    return module.main(rest)


def quiet_on_closed_pipe(call: Callable[[], int]) -> int:
    """Run a command; when its reader has gone (`... | head`), end quietly with 141; an error no
    command expected is one line (exit 1), its traceback only with MARKET_CFN_TRACEBACK=1.

    Python ignores SIGPIPE, so a write to a closed pipe raises BrokenPipeError, and a traceback
    would follow. As the Python documentation advises (signal module, "Note on SIGPIPE"),
    stdout is pointed at /dev/null so the interpreter's last flush cannot raise again, and the
    exit code is the one a shell gives a writer killed by SIGPIPE (docs/operations.md).
    """
    try:
        code = call()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return CLOSED_PIPE
    except KeyboardInterrupt:
        print(f"{_prog()}: interrupted", file=sys.stderr)
        return 130  # 128 + SIGINT, as a shell reports it
    except Exception as exc:  # what no command expected: one line, the traceback only when asked for
        if os.environ.get(TRACEBACK_VARIABLE):
            raise
        message = " ".join(str(exc).split())[:300]
        print(
            f"{_prog()}: unexpected error: {type(exc).__name__}: {message} "
            f"(a bug: {TRACEBACK_VARIABLE}=1 shows the traceback for a report)",
            file=sys.stderr,
        )
        return 1


def _prog() -> str:
    argv = sys.argv
    if argv and argv[0].endswith("deploy"):
        return "bin/deploy"
    return f"python -m market_cfn {argv[1]}" if len(argv) > 1 and argv[1] in COMMANDS else "python -m market_cfn"


def run() -> int:
    """The `market-cfn` console script and `python -m market_cfn`."""
    return quiet_on_closed_pipe(lambda: main(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(run())
