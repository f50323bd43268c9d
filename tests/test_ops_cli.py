"""Every day-2 command: --help, documented exit codes, and a one-line error for bad input.

The bad-input cases fail before any AWS call (no endpoint is needed, none is contacted:
the endpoint given is a closed port), with exit code 2 and exactly one line on stderr.
"""

from __future__ import annotations

import importlib
import io
import re
import socket
from pathlib import Path

import pytest

from market_cfn.__main__ import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
OPS_COMMANDS = ["ingest", "upload", "bars", "points", "status", "logs", "rejects", "redrive", "replay", "destroy"]


def closed_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def run(command: str, *args: str) -> tuple[int, str, str]:
    module = importlib.import_module(f"market_cfn.cli.{command}")
    out, err = io.StringIO(), io.StringIO()
    code = module.main(list(args), stdout=out, stderr=err, stdin=io.StringIO(""))
    return code, out.getvalue(), err.getvalue()


def test_every_day_2_command_is_registered():
    assert set(OPS_COMMANDS) <= set(COMMANDS)


@pytest.mark.parametrize("command", OPS_COMMANDS)
def test_help_shows_the_exit_codes_that_docs_operations_documents(command, capsys):
    module = importlib.import_module(f"market_cfn.cli.{command}")
    with pytest.raises(SystemExit) as exit_info:
        module.build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--stack-name", "--env", "--region", "--profile", "--endpoint-url", "--json"):
        assert option in text
    codes = text[text.index("exit codes:") :].strip()
    docs = (ROOT / "docs" / "operations.md").read_text()
    section = docs[docs.index(f"### `{command}`") :]
    section = section[: section.index("\n### ", 1)] if "\n### " in section[1:] else section
    assert codes in section, f"docs/operations.md `{command}` does not show the exit codes of --help:\n{codes}"


BAD_INPUT = [
    ("ingest", ["/nonexistent/points.json"], "No such file"),
    ("ingest", ["x.json", "--max-attempts", "0"], "--max-attempts"),
    ("ingest", [], "required"),
    ("upload", ["/nonexistent.csv"], "not a readable file"),
    ("upload", ["README.md", "--symbol", "a/b"], "not a valid symbol"),
    ("bars", ["AAPL", "--from", "yesterday-ish"], "bad time"),
    ("bars", ["AAPL", "--from", "2024-06-04", "--to", "2024-06-03"], "must be after"),
    ("bars", ["AAPL$", "--from", "2024-06-03"], "bad symbol"),
    ("bars", ["AAPL", "--from", "2024-06-03", "--format", "xml"], "invalid choice"),
    ("points", ["AAPL"], "--from"),
    ("status", ["--symbol", "$$"], "bad symbol"),
    ("logs", ["DataFrobnicator"], "unknown function"),
    ("logs", ["DataIngestion", "--since", "5"], "bad duration"),
    ("logs", ["DataIngestion", "--level", "LOUD"], "invalid choice"),
    ("logs", ["DataIngestion", "--interval", "0"], "--interval"),
    ("rejects", ["--download", "README.md"], "not a directory"),
    ("rejects", ["--source", "/abs"], "--source"),
    ("redrive", ["everything"], "invalid choice"),
    ("redrive", ["processing", "--timeout", "0"], "positive"),
    ("replay", ["--from", "soon"], "bad time"),
    ("replay", ["--from", "2h", "--to", "3h"], "must be after"),
    ("destroy", ["--timeout", "-1"], "positive"),
    ("destroy", ["--bogus"], "unrecognized"),
]


@pytest.mark.parametrize("command,args,fragment", BAD_INPUT)
def test_bad_input_is_one_line_and_exit_code_2(command, args, fragment, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    code, out, err = run(command, *args, "--endpoint-url", closed_port())
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert fragment in err
    assert re.match(rf"python -m market_cfn {command}: ", err)


def test_json_errors_are_a_json_document_too(monkeypatch):
    import json

    code, out, err = run("bars", "AAPL", "--from", "nope", "--json")
    assert code == 2 and json.loads(out) == {
        "result": "error",
        "exit_code": 2,
        "message": err.split(": ", 1)[1].strip(),
    }


def test_no_region_is_a_usage_error(monkeypatch, tmp_path):
    for key in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    code, _, err = run("status", "--endpoint-url", closed_port())
    assert code == 2 and "no region" in err


def test_an_unreachable_endpoint_is_one_line_and_exit_1(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    code, _, err = run("status", "--endpoint-url", closed_port())
    assert code == 1 and len(err.strip().splitlines()) == 1 and "Could not connect" in err
