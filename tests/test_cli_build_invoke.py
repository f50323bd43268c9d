"""`build` writes exactly what bin/deploy ships; `invoke` runs one real handler on one event; the
`market-cfn` console script is declared beside `python -m market_cfn`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from market_cfn.cli import build, invoke
from market_cfn.deploy.packaging import build_package
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_json

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "tests" / "events"


def test_build_writes_the_template_and_the_zip_deploy_would_upload(tmp_path, capsys):
    assert build.main(["--out-dir", str(tmp_path / "a"), "--env", "qa"]) == 0
    out = capsys.readouterr().out
    package = build_package()
    assert (tmp_path / "a" / "function.zip").read_bytes() == package.data
    assert (tmp_path / "a" / "template.json").read_text() == render_json(StackConfig(env_suffix="qa"))
    assert package.sha256 in out and package.key in out
    assert build.main(["--out-dir", str(tmp_path / "b"), "--env", "qa", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["zip_sha256"] == package.sha256 and document["zip_bytes"] == len(package.data)
    assert (tmp_path / "b" / "function.zip").read_bytes() == (tmp_path / "a" / "function.zip").read_bytes()


def test_build_refuses_an_out_dir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert build.main(["--out-dir", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m market_cfn build: --out-dir") and err.count("\n") == 1


def test_invoke_runs_the_real_ingestion_handler_on_an_api_event(capsys):
    assert invoke.main(["dataingestion", "--event", str(EVENTS / "api_post_ingest.json")]) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["statusCode"] == 202
    assert json.loads(response["body"])["accepted"] >= 1


def test_invoke_runs_the_processor_on_an_sqs_batch(capsys):
    assert invoke.main(["DataProcessor", "--event", str(EVENTS / "sqs_processing_batch.json")]) == 0
    assert json.loads(capsys.readouterr().out) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    "argv,message",
    [
        (["Nope", "--event", str(EVENTS / "scheduled.json")], "unknown function 'Nope'"),
        (["DataAggregator", "--event", "/no/such/file.json"], "--event /no/such/file.json:"),
    ],
)
def test_invoke_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    assert invoke.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_invoke_an_event_that_is_not_an_object_is_exit_2(tmp_path, capsys):
    (tmp_path / "e.json").write_text("[1, 2]")
    assert invoke.main(["DataAggregator", "--event", str(tmp_path / "e.json")]) == 2
    assert "a Lambda event is a JSON object, this is a list" in capsys.readouterr().err


def test_a_handler_that_raises_is_one_line_and_exit_1(monkeypatch, capsys):
    from market_cfn.local.pipeline import Pipeline

    def boom(self, logical, event, **_):
        raise RuntimeError(f"{logical} failed\non two lines")

    monkeypatch.setattr(Pipeline, "invoke", boom)
    assert invoke.main(["DataAggregator", "--event", str(EVENTS / "scheduled.json")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "python -m market_cfn invoke: DataAggregator raised RuntimeError: DataAggregatorFunction failed on two lines\n"
    )


def test_the_market_cfn_console_script_is_declared_for_the_same_entry_point():
    from market_cfn.__main__ import run

    assert callable(run)
    metadata = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"""market-cfn\s*=\s*["']?market_cfn\.__main__:run""", metadata)
