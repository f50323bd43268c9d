"""`python -m market_cfn COMMAND [ARGS...]`: a small dispatcher, one module per command."""

import importlib
import sys

COMMANDS = {
    "render": "Render the CloudFormation template to build/template.json.",
    "simulate": "Run the whole pipeline on an in-process AWS emulation (moto).",
    "deploy": "Package, create a change set, review it, and execute on confirmation.",
    "local": "Run the pipeline as a local AWS endpoint on 127.0.0.1 (moto), until Ctrl-C.",
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
    module = importlib.import_module(f"market_cfn.cli.{command}")
    return module.main(rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
