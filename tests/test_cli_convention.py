"""One command-line convention across every command (docs/operations.md "One convention"), checked
by walking each command's real parser, and the closed-pipe rule checked on real processes."""

from __future__ import annotations

import argparse
import importlib
import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from market_cfn import __version__
from market_cfn.__main__ import CLOSED_PIPE, COMMANDS
from market_cfn.cli.command import OneLineParser

ROOT = Path(__file__).resolve().parents[1]
# argparse's help printer swallows the write error itself (exit 0); every other write ends in 141.
HELP_TO_A_CLOSED_PIPE = (0, CLOSED_PIPE)


def parser_of(command: str) -> argparse.ArgumentParser:
    module = importlib.import_module(f"market_cfn.cli.{command}")
    build = getattr(module, "build_parser", None) or module._parser
    return build()


def options_of(parser: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    return {option: action for action in parser._actions for option in action.option_strings}


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    if isinstance(parser, OneLineParser):
        parser.err = err
    with redirect_stdout(out), redirect_stderr(err):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            return int(exc.code or 0), out.getvalue(), err.getvalue()
    return -1, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_command_uses_the_one_parser_and_names_itself(command):
    parser = parser_of(command)
    assert isinstance(parser, OneLineParser)
    assert parser.prog == f"python -m market_cfn {command}"
    assert parser.allow_abbrev is False


@pytest.mark.parametrize("command", list(COMMANDS))
def test_version_and_help_with_exit_codes(command):
    parser = parser_of(command)
    code, out, _ = parse(parser, ["--version"])
    assert (code, out.strip()) == (0, f"market_cfn {__version__}")
    code, out, _ = parse(parser, ["--help"])
    assert code == 0
    codes = out[out.index("exit codes:") :].splitlines()[1:]
    listed = [line.split()[0] for line in codes if line[:3].strip().isdigit()]
    assert listed[0] == "0" and "2" in listed  # every command documents success and bad arguments


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_usage_error_is_one_prefixed_line_and_exit_2(command):
    code, out, err = parse(parser_of(command), ["--no-such-option"])
    assert code == 2 and out == ""
    assert err.startswith(f"python -m market_cfn {command}: ") and err.endswith("(see --help)\n")
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", list(COMMANDS))
def test_options_are_never_abbreviated(command):
    parser = parser_of(command)
    for option in options_of(parser):
        if option.startswith("--") and len(option) > 4 and option not in ("--help", "--version"):
            code, _, err = parse(parser, [option[:-1]])
            assert code == 2, f"{command} accepted {option[:-1]!r} for {option}"


@pytest.mark.parametrize("command", list(COMMANDS))
def test_profile_means_the_aws_profile_everywhere(command):
    action = options_of(parser_of(command)).get("--profile")
    if action is None:
        return
    if command in ("render", "build"):  # they read no AWS account: --profile is refused with the way out
        code, _, err = parse(parser_of(command), ["--profile", "regulated"])
        assert code == 2 and "--render-profile" in err
        return
    assert "AWS" in (action.help or "") and action.choices is None


@pytest.mark.parametrize("command", list(COMMANDS))
def test_format_comes_with_json(command):
    """`--json` is the one machine-readable document of every AWS command; `--format` only picks
    how data rows are printed, and never replaces --json."""
    options = options_of(parser_of(command))
    if "--format" in options:
        assert "--json" in options
    if "--endpoint-url" in options:
        assert "--json" in options


def closed_pipe_run(argv: list[str]) -> subprocess.CompletedProcess[bytes]:
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first write: `... | head -0`
    try:
        return subprocess.run(argv, stdout=write, stderr=subprocess.PIPE, cwd=ROOT, timeout=120, check=False)
    finally:
        os.close(write)


@pytest.mark.parametrize("command", list(COMMANDS))
def test_help_to_a_closed_pipe_ends_quietly(command):
    proc = closed_pipe_run([sys.executable, "-m", "market_cfn", command, "--help"])
    assert proc.stderr == b"" and proc.returncode in HELP_TO_A_CLOSED_PIPE


def test_a_template_to_a_closed_pipe_ends_quietly():
    proc = closed_pipe_run([sys.executable, "-m", "market_cfn", "render", "--out", "-"])
    assert proc.stderr == b"" and proc.returncode == CLOSED_PIPE


def test_bin_deploy_help_to_a_closed_pipe_ends_quietly():
    proc = closed_pipe_run([sys.executable, str(ROOT / "bin" / "deploy"), "--help"])
    assert proc.stderr == b"" and proc.returncode in HELP_TO_A_CLOSED_PIPE


def test_top_level_help_to_a_closed_pipe_ends_quietly():
    proc = closed_pipe_run([sys.executable, "-m", "market_cfn", "--help"])
    assert proc.stderr == b"" and proc.returncode == CLOSED_PIPE


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_docs_show_each_commands_exit_codes_as_help_prints_them(command):
    _, out, _ = parse(parser_of(command), ["--help"])
    codes = out[out.index("exit codes:") :].strip()
    docs = "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("*.md")))
    assert codes in docs, f"no doc shows `{command}`'s exit codes as --help prints them:\n{codes}"


def test_one_environment_convention_in_the_docs_and_the_local_banner():
    """boto3 and both AWS CLI versions read AWS_DEFAULT_REGION (AWS CLI v1 reads no AWS_REGION:
    https://docs.aws.amazon.com/cli/v1/userguide/cli-configure-envvars.html), so every
    `export` the docs show names it, as the `local` banner prints it."""
    import re

    from market_cfn.cli import local

    banner = re.search(r"credentials: (.*?);", Path(local.__file__).read_text()).group(1)
    exports = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        exports += [line for line in doc.read_text().splitlines() if "export" in line and "AWS_" in line]
    assert exports
    for line in exports:
        assert "AWS_REGION=" not in line, line
        if "AWS_ACCESS_KEY_ID" in line:
            assert banner in line, line


def test_an_unexpected_error_is_one_line_and_its_traceback_only_on_request(tmp_path):
    # an out path whose parent is a file: render's own errors are one line already; force one it does not expect
    code = (
        "import sys, market_cfn.cli.render as r\n"
        "r.main = lambda argv: (_ for _ in ()).throw(KeyError('moto said something odd'))\n"
        "from market_cfn.__main__ import run\n"
        "sys.argv = ['market_cfn', 'render']\n"
        "sys.exit(run())\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr == (
        "python -m market_cfn render: unexpected error: KeyError: 'moto said something odd' "
        "(a bug: MARKET_CFN_TRACEBACK=1 shows the traceback for a report)\n"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={**os.environ, "MARKET_CFN_TRACEBACK": "1"},
    )
    assert shown.returncode == 1 and "Traceback (most recent call last)" in shown.stderr
