"""bin/deploy's argument handling: exit codes, --help, one-line errors."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from market_cfn.cli import deploy as deploy_cli
from market_cfn.deploy import Where, command, flow

ROOT = Path(__file__).resolve().parents[1]


class NotATerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


def run(*argv: str) -> tuple[int, str, str]:
    out, err = NotATerminal(), NotATerminal()
    code = deploy_cli.main(list(argv), prog="bin/deploy", stdout=out, stderr=err, stdin=NotATerminal())
    return code, out.getvalue(), err.getvalue()


def test_help_documents_every_exit_code():
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "deploy"), "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0
    for line in ("0  deployed", "1  the deployment failed", "2  bad arguments", "3  not executed"):
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
        "--allow-unprotect",
        "--allow-drift",
        "--allow-broadening",
        "--keep-change-set",
        "--review-out",
        "--rollback-alarms",
        "--no-rollback-alarms",
        "--no-drift-check",
        "--config",
        "--render-profile",
        "--json",
        "--retain-data",
    ):
        assert option in proc.stdout
    assert proc.stdout.startswith("usage: bin/deploy ")
    # the environment-name rule, as market_cfn/stack/config.py enforces it
    assert "1-10 lower-case letters and digits, starting with a letter" in " ".join(proc.stdout.split())


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
        (["--execute", ""], "argument --execute: must not be empty"),
        (["--region", ""], "argument --region: must not be empty"),
        (["--env", ""], "argument --env: must not be empty"),
        (["--stack-name", " "], "argument --stack-name: must not be empty"),
        (["--allow-replacement", ""], "argument --allow-replacement: must not be empty"),
        (["--rollback-monitoring-minutes", "181"], "must be 0-180"),
        (["--config", "/nonexistent/deploy.toml"], "settings file /nonexistent/deploy.toml does not exist"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(argv, message):
    code, out, err = run("--region", "us-east-1", *argv)
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


def test_python_m_market_cfn_deploy_dispatches_here_and_names_itself_so():
    proc = subprocess.run(
        [sys.executable, "-m", "market_cfn", "deploy", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60
    )
    assert proc.returncode == 0 and "exit codes:" in proc.stdout
    assert proc.stdout.startswith("usage: python -m market_cfn deploy ")
    bad = subprocess.run(
        [sys.executable, "-m", "market_cfn", "deploy", "--region", ""],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert bad.returncode == 2
    assert bad.stderr == "python -m market_cfn deploy: argument --region: must not be empty (see --help)\n"


def _capture(monkeypatch) -> dict:
    from market_cfn.deploy.gate import Outcome

    seen: dict = {}

    def fake_pipeline(cfn, s3, request, console, waits):
        seen["request"] = request
        return Outcome("created-change-set", request.stack_name, "arn:aws:cloudformation:eu-west-1:1:changeSet/x/y")

    monkeypatch.setattr(flow, "deploy_pipeline", fake_pipeline)
    monkeypatch.setattr(deploy_cli, "_clients", lambda ctx: (None, None, ctx.args.region or "eu-west-1"))
    return seen


def test_options_reach_the_deploy(monkeypatch, tmp_path):
    import json as _json

    monkeypatch.chdir(tmp_path)  # no deploy.toml here
    seen = _capture(monkeypatch)
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
        "--allow-unprotect",
        "DataBucket",
        "--allow-drift",
        "RejectsBucket",
        "--allow-broadening",
        "--stateful-type",
        "AWS::Custom::Ledger",
        "--keep-change-set",
        "--no-drift-check",
        "--review-out",
        "review.md",
        "--endpoint-url",
        "http://127.0.0.1:5055",
        "--profile",
        "ci",
        "--no-execute",
        "--json",
    )
    assert code == 0, err
    request = seen["request"]
    assert request.stack_name == "market-data-prod" and request.env == "prod" and request.region == "eu-west-1"
    assert request.parameters == {"EnvironmentTag": "Production"} and request.tags == {"team": "markets"}
    o = request.options
    assert o.overrides.allow_replacement == {"MarketDataTable"} and o.overrides.allow_unprotect == {"DataBucket"}
    assert o.overrides.allow_drift == {"RejectsBucket"} and o.overrides.allow_broadening is True
    assert o.overrides.extra_stateful_types == {"AWS::Custom::Ledger"}
    assert o.execute is False and o.assume_yes is False and o.keep_change_set is True and o.drift_check is False
    assert o.rollback_alarms is True  # on by default for prod
    assert str(o.review_out) == "review.md" and o.command == "bin/deploy"
    assert o.where == Where(region="eu-west-1", profile="ci", endpoint_url="http://127.0.0.1:5055")
    resources = _json.loads(request.template_json)["Resources"]
    assert resources["MarketDataTable"]["DeletionPolicy"] == "Retain"  # --retain-data reached the template
    assert _json.loads(out)["ChangeSetId"] == "arn:aws:cloudformation:eu-west-1:1:changeSet/x/y"


def test_deploy_toml_remembers_an_environment_and_the_command_line_wins(monkeypatch, tmp_path):
    import json as _json

    (tmp_path / "deploy.toml").write_text(
        "[env.prod]\n"
        'stack_name = "md-prod"\n'
        'region = "eu-west-2"\n'
        "retain_data = true\n"
        "rollback_alarms = false\n"
        "[env.prod.parameters]\n"
        'EnvironmentTag = "Prod"\n'
        'AlarmActionArn = "arn:aws:sns:eu-west-2:123456789012:alarms"\n'
        "[env.prod.tags]\n"
        'team = "markets"\n'
    )
    monkeypatch.chdir(tmp_path)
    seen = _capture(monkeypatch)
    code, _, err = run("--env", "prod", "--parameter", "EnvironmentTag=Production", "--no-execute")
    assert code == 0, err
    request = seen["request"]
    assert request.stack_name == "md-prod" and request.region == "eu-west-2"
    assert request.parameters == {
        "EnvironmentTag": "Production",  # the command line wins for this key only
        "AlarmActionArn": "arn:aws:sns:eu-west-2:123456789012:alarms",
    }
    assert request.tags == {"team": "markets"} and request.options.rollback_alarms is False
    assert _json.loads(request.template_json)["Resources"]["MarketDataTable"]["DeletionPolicy"] == "Retain"
    # --no-retain-data on the command line beats the file
    code, _, err = run("--env", "prod", "--no-retain-data", "--no-execute")
    assert code == 0, err
    assert _json.loads(seen["request"].template_json)["Resources"]["MarketDataTable"]["DeletionPolicy"] == "Delete"


def test_an_unknown_key_in_deploy_toml_is_a_usage_error(monkeypatch, tmp_path):
    (tmp_path / "deploy.toml").write_text("[env.prod]\nretain_date = true\n")
    monkeypatch.chdir(tmp_path)
    code, out, err = run("--env", "prod", "--region", "us-east-1")
    assert code == 2 and "unknown key 'retain_date'" in err and err.count("\n") == 1


def test_a_blocked_change_set_exits_3_with_the_review_in_json(monkeypatch, tmp_path):
    from market_cfn.deploy.gate import Outcome
    from market_cfn.deploy.review.merge import build_review
    from market_cfn.deploy.review.model import Overrides, ReviewInput

    monkeypatch.chdir(tmp_path)
    review = build_review(ReviewInput.from_change_set({"ChangeSetId": "arn:cs", "StackName": "s"}), Overrides())
    monkeypatch.setattr(
        flow,
        "deploy_pipeline",
        lambda *a: Outcome("blocked", "market-data-dev", "arn:cs", review, message="blocked by the guard: X"),
    )
    monkeypatch.setattr(deploy_cli, "_clients", lambda ctx: (None, None, "us-east-1"))
    code, out, err = run("--yes", "--json")
    assert code == 3
    assert '"ExitCode": 3' in out and '"Review"' in out and '"CleanedUp"' in out
    assert err == "bin/deploy: not executed: blocked by the guard: X\n"


@pytest.mark.parametrize(
    ("url", "emulator"),
    [
        ("http://127.0.0.1:5055", True),
        ("http://localhost:4566", True),
        ("http://[::1]:5000", True),
        ("https://vpce-0abc.cloudformation.us-east-1.vpce.amazonaws.com", False),
        ("http://10.0.0.5:4566", False),
        ("", False),
    ],
)
def test_aws_endpoint_url_counts_as_an_emulator_only_on_loopback(monkeypatch, url, emulator):
    """The emulator degradations (drift, termination protection) apply to AWS_ENDPOINT_URL only when it
    names this machine; a proxy or VPC endpoint may be real AWS, where a failure must fail the deploy."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    assert bool(command.local_env_endpoint()) is emulator


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--reviewed-sha256", "ab" * 32], "--reviewed-sha256 goes with --execute"),
        (["--execute", "arn:x", "--reviewed-sha256", "abc"], "must be the 64 hex digits --no-execute printed"),
    ],
)
def test_reviewed_digest_options_are_checked_before_any_call(argv, message):
    code, _, err = run(*argv)
    assert code == 2 and message in err and err.count("\n") == 1


def test_the_core_decides_the_deploy_before_any_client_exists(monkeypatch, tmp_path):
    """plan_deploy needs no AWS client: --execute plans no template, a deploy plans a checked one."""
    monkeypatch.chdir(tmp_path)  # no deploy.toml here
    parser = deploy_cli.build_parser("bin/deploy")
    plan = command.plan_deploy(parser.parse_args(["--execute", "deploy-1", "--env", "qa"]), command="bin/deploy")
    assert (plan.stack_name, plan.execute, plan.request) == ("market-data-qa", "deploy-1", None)
    plan = command.plan_deploy(parser.parse_args(["--no-execute", "--yes"]), command="bin/deploy")
    assert plan.request is not None and plan.request.options is plan.options
    assert plan.options.execute is False and plan.options.assume_yes is True and plan.options.rollback_alarms is False


@pytest.mark.parametrize(
    ("result", "code", "line"),
    [
        ("deployed", 0, ""),
        ("no-changes", 0, ""),
        ("created-change-set", 0, ""),
        ("failed", 1, "deployment failed: why"),
        ("blocked", 3, "not executed: why"),
        ("declined", 3, "not executed: why"),
    ],
)
def test_every_outcome_has_its_documented_exit_code_and_line(result, code, line):
    from market_cfn.deploy.gate import Outcome

    outcome = Outcome(result, "s", message="why")
    assert (command.exit_code(outcome), command.verdict(outcome)) == (code, line)
