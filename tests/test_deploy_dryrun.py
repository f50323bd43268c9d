"""`diff`: what a deploy would change, with no side effect - against moto's server on 127.0.0.1,
through the command as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    e["PYTHONPATH"] = str(ROOT)
    return e


def run(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(argv, env=env(), capture_output=True, text=True, timeout=180, cwd=cwd, check=False)


def client(endpoint: str, service: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def diff(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    return run(sys.executable, "-m", "market_cfn", "diff", "--endpoint-url", endpoint, *args)


def test_diff_before_any_deploy_adds_everything_and_creates_nothing(endpoint, tmp_path):
    result = diff(endpoint, "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["StackExists"] is False and document["Changed"] is True
    actions = {r["LogicalId"]: r["Action"] for r in document["Resources"]}
    assert actions["MarketDataTable"] == "Add" and set(actions.values()) == {"Add"}
    # no side effect: no stack (not even the bootstrap), no change set, no bucket
    assert client(endpoint, "cloudformation").list_stacks()["StackSummaries"] == []
    assert client(endpoint, "s3").list_buckets()["Buckets"] == []


def test_diff_after_a_deploy_shows_only_what_changes_and_changes_nothing(endpoint, tmp_path):
    deployed = run(
        sys.executable, str(ROOT / "bin" / "deploy"), "--endpoint-url", endpoint, "--yes", "--poll-interval", "0.05"
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    same = diff(endpoint)
    assert same.returncode == 0 and same.stdout.strip().endswith("No differences."), same.stdout + same.stderr

    cfn = client(endpoint, "cloudformation")
    before = cfn.describe_stacks(StackName="market-data-dev")["Stacks"][0]
    change_sets = cfn.list_change_sets(StackName="market-data-dev")["Summaries"]
    changed = diff(endpoint, "--parameter", "DataProcessorMemorySize=2048")
    assert changed.returncode == 0, changed.stderr
    assert "DataProcessorMemorySize: 1024 -> 2048" in changed.stdout
    assert "~ Modify DataProcessorFunction (AWS::Lambda::Function)" in changed.stdout
    assert "Properties.MemorySize: 1024 -> 2048" in changed.stdout
    assert "bin/deploy --no-execute" in changed.stdout  # what only a change set can tell
    after = cfn.describe_stacks(StackName="market-data-dev")["Stacks"][0]
    assert after == before
    assert cfn.list_change_sets(StackName="market-data-dev")["Summaries"] == change_sets  # none created


def test_diff_refuses_a_bad_parameter_before_any_call():
    bad = run(
        sys.executable, "-m", "market_cfn", "diff", "--endpoint-url", "http://127.0.0.1:9", "--parameter", "Nope=1"
    )
    assert bad.returncode == 2
    assert bad.stderr.startswith("python -m market_cfn diff: unknown parameter 'Nope'") and bad.stderr.count("\n") == 1
