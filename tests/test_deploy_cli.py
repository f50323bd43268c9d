"""bin/deploy's argument handling: exit codes, --help, one-line errors."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from market_cfn.cli import deploy as deploy_cli

ROOT = Path(__file__).resolve().parents[1]


class NotATerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


def run(*argv: str) -> tuple[int, str, str]:
    out, err = NotATerminal(), NotATerminal()
    code = deploy_cli.main(list(argv), stdout=out, stderr=err, stdin=NotATerminal())
    return code, out.getvalue(), err.getvalue()


def test_help_documents_every_exit_code():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "deploy"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    for line in ("0  deployed", "1  the deployment failed", "2  bad arguments", "3  declined"):
        assert line in proc.stdout
    for option in (
        "--stack-name",
        "--env",
        "--region",
        "--profile",
        "--endpoint-url",
        "--parameter",
        "--tag",
        "--yes",
        "--no-execute",
        "--execute",
        "--allow-replacement",
        "--json",
        "--retain-data",
    ):
        assert option in proc.stdout


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--parameter", "NoEquals"], "--parameter 'NoEquals': expected KEY=VALUE"),
        (["--tag", "=x"], "--tag '=x': expected KEY=VALUE"),
        (["--parameter", "Unknown=1"], "unknown parameter 'Unknown'"),
        (["--parameter", "EnvironmentSuffix=prod"], "set EnvironmentSuffix with --env"),
        (["--parameter", "CodeS3Key=x.zip"], "CodeS3Key is filled in by the package step"),
        (["--parameter", "AlarmActionArn=not-an-arn"], "does not match"),
        (["--env", "Prod"], "environment name 'Prod' is invalid"),
        (
            ["--execute", "arn:aws:cloudformation:us-east-1:1:changeSet/x/y", "--parameter", "A=1"],
            "--execute runs a change set as it was created",
        ),
        (["--timeout", "0"], "must be positive"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message):
    code, out, err = run(*argv, "--region", "us-east-1")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("bin/deploy: ") and message in err
    assert out == ""


def test_bad_arguments_with_json_also_print_a_json_error():
    code, out, err = run("--parameter", "Unknown=1", "--json", "--region", "us-east-1")
    assert code == 2
    assert '"Result": "error"' in out and '"ExitCode": 2' in out


def test_no_execute_and_execute_are_exclusive():
    code, _, _ = run("--no-execute", "--execute", "arn:x")
    assert code == 2


def test_missing_region_is_a_usage_error(monkeypatch):
    for var in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    code, _, err = run()
    assert code == 2 and "no region" in err


def test_python_m_market_cfn_deploy_dispatches_here():
    proc = subprocess.run(
        [sys.executable, "-m", "market_cfn", "deploy", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 0 and "exit codes:" in proc.stdout


def test_options_reach_the_deploy(monkeypatch):
    """--env, --retain-data, --parameter, --tag, --allow-replacement and --no-execute wiring."""
    import json as _json

    from market_cfn import deploy as core

    seen = {}

    def fake_pipeline(cfn, s3, request, console, waits):
        seen["request"] = request
        return core.Outcome(
            "created-change-set", request.stack_name, "arn:aws:cloudformation:eu-west-1:1:changeSet/x/y"
        )

    monkeypatch.setattr(core, "deploy_pipeline", fake_pipeline)
    monkeypatch.setattr(deploy_cli, "_clients", lambda args: (None, None, "eu-west-1"))
    code, out, err = run(
        "--env",
        "prod",
        "--retain-data",
        "--parameter",
        "EnvironmentTag=Production",
        "--tag",
        "team=markets",
        "--allow-replacement",
        "MarketDataTable",
        "--no-execute",
        "--json",
    )
    assert code == 0, err
    request = seen["request"]
    assert request.stack_name == "market-data-prod" and request.env == "prod" and request.region == "eu-west-1"
    assert request.parameters == {"EnvironmentTag": "Production"} and request.tags == {"team": "markets"}
    assert (
        request.allow_replacement == ("MarketDataTable",) and request.execute is False and request.assume_yes is False
    )
    resources = _json.loads(request.template_json)["Resources"]
    assert resources["MarketDataTable"]["DeletionPolicy"] == "Retain"  # --retain-data reached the template
    assert _json.loads(out)["ChangeSetId"] == "arn:aws:cloudformation:eu-west-1:1:changeSet/x/y"


def test_a_change_set_left_for_review_that_the_guard_would_block_exits_3(monkeypatch):
    from market_cfn import deploy as core

    blocked = core.build_review(
        {
            "ChangeSetId": "arn:cs",
            "StackName": "market-data-dev",
            "Changes": [
                {
                    "Type": "Resource",
                    "ResourceChange": {
                        "Action": "Remove",
                        "LogicalResourceId": "DataBucket",
                        "ResourceType": "AWS::S3::Bucket",
                        "Details": [],
                    },
                }
            ],
        }
    )
    monkeypatch.setattr(
        core, "deploy_pipeline", lambda *a: core.Outcome("created-change-set", "market-data-dev", "arn:cs", blocked)
    )
    monkeypatch.setattr(deploy_cli, "_clients", lambda args: (None, None, "us-east-1"))
    code, out, _ = run("--no-execute", "--json")
    assert code == 3
    assert '"DataBucket"' in out and '"ExitCode": 3' in out
