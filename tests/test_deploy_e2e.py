"""bin/deploy end to end against a real local endpoint: moto's server on 127.0.0.1.

This is how a user tries the deploy without an AWS account: `moto_server`, then
`bin/deploy --endpoint-url http://127.0.0.1:<port> --yes`. The server runs in this
process (ThreadedMotoServer), so its state is the ground truth for what was uploaded.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from market_cfn.stack.functions import RUNTIME

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "bin" / "deploy"


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    e.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_REGION="us-east-1",
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        NO_COLOR="1",
    )
    return e


def deploy(endpoint: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(DEPLOY), "--endpoint-url", endpoint, "--poll-interval", "0.05", *args],
        env=env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )


def client(endpoint: str, service: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def bucket_name(endpoint: str) -> str:
    cfn = client(endpoint, "cloudformation")
    resources = cfn.describe_stack_resources(StackName="market-data-bootstrap")["StackResources"]
    (bucket,) = [r for r in resources if r.get("LogicalResourceId") == "ArtifactsBucket"]
    return bucket["PhysicalResourceId"]


def artifact_versions(endpoint: str) -> dict[str, list[str]]:
    """Every object version in the artifacts bucket: one version per PutObject."""
    s3 = client(endpoint, "s3")
    bucket = bucket_name(endpoint)
    versions: dict[str, list[str]] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        for v in page.get("Versions", []):
            versions.setdefault(v["Key"], []).append(v["VersionId"])
    return versions


def test_first_deploy_creates_the_stack_and_the_second_finds_no_changes(endpoint):
    # GIVEN an empty local endpoint WHEN the project is deployed
    first = deploy(endpoint, "--yes")
    assert first.returncode == 0, first.stdout + first.stderr
    out = first.stdout
    assert "Bootstrap stack market-data-bootstrap has no ArtifactsBucketName output: deploying it first." in out
    assert "Stack market-data-bootstrap: CREATE_COMPLETE" in out
    assert "Creating CREATE change set" in out and "Stack market-data-dev: CREATE_COMPLETE" in out
    assert "passed as TemplateURL" in out  # the rendered template is over 51,200 bytes
    outputs = out[out.index("Outputs:") :]
    assert "s3BucketName                market-data-dev-123456789012-us-east-1" in outputs
    assert "dynamodbTableName           market-data-dev" in outputs
    after_first = artifact_versions(endpoint)
    assert sorted(k.split("/")[0] for k in after_first) == ["market-data", "templates"]
    assert all(len(v) == 1 for v in after_first.values())
    # moto does not apply the template's VersioningConfiguration, so turn versioning on
    # here: from now on every PutObject, even of the same bytes, adds a version.
    bucket = bucket_name(endpoint)
    client(endpoint, "s3").put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    # the stack really exists on the endpoint, with the resources of the template
    cfn = client(endpoint, "cloudformation")
    assert cfn.describe_stacks(StackName="market-data-dev")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    lam = client(endpoint, "lambda")
    fn = lam.get_function(FunctionName="DataIngestion-dev")["Configuration"]
    assert fn["Handler"] == "handlers.data_ingestion.handler" and fn["Runtime"] == RUNTIME

    # WHEN the unchanged project is deployed again
    second = deploy(endpoint, "--yes")
    # THEN nothing changes and nothing is uploaded again
    assert second.returncode == 0, second.stdout + second.stderr
    assert artifact_versions(endpoint) == after_first  # no PutObject: no new object version
    assert "No changes: stack market-data-dev is up to date" in second.stdout
    assert "already in the bucket, not uploaded again" in second.stdout
    assert "deploying it first" not in second.stdout


def test_no_execute_leaves_a_change_set_for_review_with_the_hint_to_run_it(endpoint):
    # A CREATE change set for another environment.
    left = deploy(endpoint, "--env", "stage", "--no-execute", "--json", "--parameter", "EnvironmentTag=Staging")
    assert left.returncode == 0, left.stderr
    result = json.loads(left.stdout)
    assert result["Result"] == "created-change-set" and result["ExitCode"] == 0
    arn = result["ChangeSetId"]
    assert ":changeSet/deploy-" in arn and result["StackName"] == "market-data-stage"
    assert "Resource changes" in left.stderr  # with --json the review goes to stderr
    assert "Change set left for review (not executed)" in left.stderr
    assert (
        f"Execute it later with: bin/deploy --execute {arn} --endpoint-url {endpoint} --region us-east-1" in left.stderr
    )
    cfn = client(endpoint, "cloudformation")
    assert cfn.describe_change_set(ChangeSetName=arn)["ExecutionStatus"] == "AVAILABLE"

    # moto returns neither this change set's template (GetTemplate gives {} for a stack in
    # REVIEW_IN_PROGRESS) nor property values, so the guard cannot see what the new policies grant and
    # fails closed on them without a human: --allow-broadening names that risk explicitly. (A CREATE
    # destroys nothing; an UPDATE change set is refused outright on an emulator: Stubber tests.)
    declined = deploy(endpoint, "--execute", arn, "--allow-broadening")  # no terminal and no --yes: refuse, keep it
    assert declined.returncode == 3
    assert "no terminal" in declined.stderr
    assert cfn.describe_change_set(ChangeSetName=arn)["ExecutionStatus"] == "AVAILABLE"

    run = deploy(endpoint, "--execute", arn, "--yes", "--allow-broadening")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Stack market-data-stage: CREATE_COMPLETE" in run.stdout
    params = {
        p["ParameterKey"]: p["ParameterValue"]
        for p in cfn.describe_stacks(StackName="market-data-stage")["Stacks"][0]["Parameters"]
    }
    assert params["EnvironmentTag"] == "Staging" and params["EnvironmentSuffix"] == "stage"
    # the backstop protects what is deployed, although the review could not see the template
    policy = json.loads(cfn.get_stack_policy(StackName="market-data-stage")["StackPolicyBody"])
    assert "LogicalResourceId/MarketDataTable" in policy["Statement"][1]["Resource"]

    again = deploy(endpoint, "--execute", arn, "--yes")  # executed already: no longer AVAILABLE
    assert again.returncode == 2
    assert "not AVAILABLE" in again.stderr


def test_unknown_parameter_is_refused_before_any_aws_call():
    # the endpoint is a closed port: the run must fail on the argument alone
    bad = deploy("http://127.0.0.1:9", "--parameter", "Nope=1", "--yes")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1].startswith("bin/deploy: unknown parameter 'Nope'")
    assert bad.stdout == ""


# --- the guard and the backstop, end to end --------------------------------------------
#
# These run bin/deploy's main() in this process (so a test can change the rendered template or
# the handlers the way a developer would) against the same moto server. moto's change sets carry
# no Replacement or Details, so everything the guard blocks here it blocks from the template diff.


class _NotATerminal(io.StringIO):
    def isatty(self) -> bool:
        return False


@pytest.fixture
def aws_env(monkeypatch, tmp_path):
    for key, value in env().items():
        if key.startswith("AWS_") or key == "NO_COLOR":
            monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # no deploy.toml: the command line alone
    return tmp_path


def run_main(endpoint: str, *args: str) -> tuple[int, str, str]:
    from market_cfn.cli import deploy as deploy_cli

    out, err = _NotATerminal(), _NotATerminal()
    code = deploy_cli.main(
        ["--endpoint-url", endpoint, "--poll-interval", "0.05", *args],
        prog="bin/deploy",
        stdout=out,
        stderr=err,
        stdin=_NotATerminal(),
    )
    return code, out.getvalue(), err.getvalue()


def change_sets(endpoint: str, stack_name: str) -> list[tuple[str, str]]:
    summaries = client(endpoint, "cloudformation").list_change_sets(StackName=stack_name)["Summaries"]
    # moto lists every stack's change sets here: keep this stack's
    return [(s["ChangeSetName"], s["ExecutionStatus"]) for s in summaries if s["StackName"] == stack_name]


def deployed(endpoint: str, stack_name: str) -> dict:
    cfn = client(endpoint, "cloudformation")
    body = cfn.get_template(StackName=stack_name)["TemplateBody"]
    return json.loads(body) if isinstance(body, str) else json.loads(json.dumps(body))


def patched_render(monkeypatch, change) -> None:
    from market_cfn.deploy import command

    real = command.render

    def render(env_name: str, retain_data: bool, profile: str | None) -> str:
        template = json.loads(real(env_name, retain_data, profile))
        change(template)
        return json.dumps(template, indent=2, sort_keys=True)

    monkeypatch.setattr(command, "render", render)


def test_the_documented_prod_sequence_without_retain_data_is_blocked(endpoint, aws_env):
    # GIVEN prod deployed with --retain-data
    code, out, err = run_main(endpoint, "--env", "prod", "--retain-data", "--yes")
    assert code == 0, out + err
    assert deployed(endpoint, "market-data-prod")["Resources"]["MarketDataTable"]["DeletionPolicy"] == "Retain"
    assert "Stack policy (from now on) on stack market-data-prod: replace/delete denied for" in out
    assert "Termination protection: this endpoint does not implement it; not set." in out
    policy = json.loads(
        client(endpoint, "cloudformation").get_stack_policy(StackName="market-data-prod")["StackPolicyBody"]
    )
    assert "LogicalResourceId/MarketDataTable" in policy["Statement"][1]["Resource"]
    # WHEN prod is deployed again without it, with --yes
    code, out, err = run_main(endpoint, "--env", "prod", "--yes")
    # THEN nothing is executed, and nothing executable is left behind
    assert code == 3, out + err
    assert "not executed" in err and "MarketDataTable" in err
    assert "Deleted change set deploy-" in out  # it existed, and is gone
    assert deployed(endpoint, "market-data-prod")["Resources"]["MarketDataTable"]["DeletionPolicy"] == "Retain"
    assert [s for s in change_sets(endpoint, "market-data-prod") if s[1] == "AVAILABLE"] == []


def test_renaming_the_table_is_blocked_by_the_template_diff(endpoint, aws_env, monkeypatch):
    code, out, err = run_main(endpoint, "--env", "ren", "--yes")
    assert code == 0, out + err
    patched_render(
        monkeypatch,
        lambda t: t["Resources"]["MarketDataTable"]["Properties"].update(
            TableName={"Fn::Sub": "md-v2-${EnvironmentSuffix}"}
        ),
    )
    code, out, err = run_main(endpoint, "--env", "ren", "--yes")
    assert code == 3, out + err
    assert "MarketDataTable" in err and "Deleted change set deploy-" in out
    assert client(endpoint, "dynamodb").describe_table(TableName="market-data-ren")["Table"]["TableStatus"] == "ACTIVE"
    assert [s for s in change_sets(endpoint, "market-data-ren") if s[1] == "AVAILABLE"] == []


def test_harmless_changes_still_deploy_with_yes(endpoint, aws_env, monkeypatch):
    code, out, err = run_main(endpoint, "--env", "hm", "--yes")
    assert code == 0, out + err
    # a visibility-timeout change
    patched_render(
        monkeypatch, lambda t: t["Resources"]["ProcessingQueue"]["Properties"].update(VisibilityTimeout=1799)
    )
    code, out, err = run_main(endpoint, "--env", "hm", "--yes")
    assert code == 0, out + err
    assert "Stack market-data-hm: UPDATE_COMPLETE" in out
    url = client(endpoint, "sqs").get_queue_url(QueueName="ProcessingQueue-hm")["QueueUrl"]
    attributes = client(endpoint, "sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "1799"
    # every alarm also notifies a paging topic of the account (AlarmActionArn): notifications only;
    # moto's change set lists none of it, the template diff shows it (and the allow-list reads that)
    paging = "arn:aws:sns:us-east-1:123456789012:paging"
    code, out, err = run_main(endpoint, "--env", "hm", "--yes", "--parameter", f"AlarmActionArn={paging}")
    assert code == 0, out + err
    assert "Changes not known to be harmless" not in out and "UPDATE_COMPLETE" in out
    # an alarm action that terminates an instance is not a notification: it waits for its names
    ec2 = "arn:aws:automate:us-east-1:ec2:terminate"
    code, out, err = run_main(endpoint, "--env", "hm", "--yes", "--parameter", f"AlarmActionArn={ec2}")
    assert code == 3, out + err
    assert "--allow-change ProcessingDLQAlarm.AlarmActions" in out
    # a new code zip: one handler changes, so the package's key (its sha256) changes
    handlers = aws_env / "handlers"
    shutil.copytree(ROOT / "handlers", handlers, ignore=shutil.ignore_patterns("__pycache__"))
    with (handlers / "data_ingestion.py").open("a") as f:
        f.write("\n# a harmless change\n")
    from market_cfn.deploy import packaging

    monkeypatch.setattr(packaging, "HANDLERS_DIR", handlers)
    code, out, err = run_main(endpoint, "--env", "hm", "--yes", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["Result"] == "deployed"
    (new_key,) = [k for k in result["Uploaded"] if k.startswith("market-data/")]
    stack = client(endpoint, "cloudformation").describe_stacks(StackName="market-data-hm")["Stacks"][0]
    assert {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}["CodeS3Key"] == new_key
    # every Output printed, the GetAtt/Sub ones included, and marked as resolved here
    assert result["Outputs"]["dynamodbTableArn"] == "arn:aws:dynamodb:us-east-1:123456789012:table/market-data-hm"
    assert result["Outputs"]["apiGatewayUrl"].endswith(".execute-api.us-east-1.amazonaws.com/hm/ingest")
    assert result["Outputs"]["eventBusName"] == "market-data-hm"  # moto reports no physical id for the bus
    assert "dynamodbTableArn" in result["OutputsResolvedLocally"]
    assert sorted(result["Outputs"]) == sorted(deployed(endpoint, "market-data-hm")["Outputs"])  # every one


def test_a_named_replacement_is_executed_and_the_stack_policy_closed_again(endpoint, aws_env, monkeypatch):
    # GIVEN a deployed stack WHEN its table is renamed (a replacement) and --allow-replacement names it
    code, out, err = run_main(endpoint, "--env", "rep", "--yes")
    assert code == 0, out + err
    patched_render(
        monkeypatch,
        lambda t: t["Resources"]["MarketDataTable"]["Properties"].update(
            TableName={"Fn::Sub": "md-v2-${EnvironmentSuffix}"}
        ),
    )
    code, out, err = run_main(endpoint, "--env", "rep", "--allow-replacement", "MarketDataTable", "--yes")
    # THEN the guard allows exactly it, the policy opens it for this execution only, and the change
    # set is executed (moto does not replace resources on an UPDATE, so the table itself is not checked)
    assert code == 0, out + err
    assert "allowed by --allow-replacement MarketDataTable" in out + err
    assert "open for this execution: MarketDataTable" in out
    assert "UPDATE_COMPLETE" in out
    policy = json.loads(
        client(endpoint, "cloudformation").get_stack_policy(StackName="market-data-rep")["StackPolicyBody"]
    )
    denied = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert any("LogicalResourceId/MarketDataTable" in json.dumps(s["Resource"]) for s in denied), policy


def test_the_printed_hint_executes_exactly_the_reviewed_change_set_as_printed(endpoint):
    import shlex

    left = deploy(endpoint, "--env", "hint", "--no-execute", "--yes", "--allow-broadening")
    assert left.returncode == 0, left.stdout + left.stderr
    (hint,) = [line for line in left.stdout.splitlines() if line.startswith("Execute it later with: ")]
    argv = shlex.split(hint.removeprefix("Execute it later with: "))
    assert argv[0] == "bin/deploy" and "--yes" in argv and "--allow-broadening" in argv
    digest = argv[argv.index("--reviewed-sha256") + 1]
    assert f"Reviewed state: sha256 {digest}" in left.stdout
    arn = argv[argv.index("--execute") + 1]

    # a digest of some other review: refused, and the change set is still there to execute
    other = "0" * 64
    wrong = deploy(endpoint, *[other if a == digest else a for a in argv[1:]])
    assert wrong.returncode == 3 and "changed since the review" in wrong.stderr, wrong.stdout + wrong.stderr
    cfn = client(endpoint, "cloudformation")
    assert cfn.describe_change_set(ChangeSetName=arn)["ExecutionStatus"] == "AVAILABLE"

    # the hint itself, word for word (its --endpoint-url given twice is the same value)
    run = deploy(endpoint, *argv[1:])
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Stack market-data-hint: CREATE_COMPLETE" in run.stdout


def test_execute_takes_the_change_set_name_with_the_stack(endpoint):
    left = deploy(endpoint, "--env", "byname", "--no-execute", "--json")
    assert left.returncode == 0, left.stderr
    name = json.loads(left.stdout)["ChangeSetId"].split(":changeSet/")[1].split("/")[0]
    run = deploy(endpoint, "--env", "byname", "--execute", name, "--yes", "--allow-broadening")
    assert run.returncode == 0, run.stdout + run.stderr
    missing = deploy(endpoint, "--env", "byname", "--execute", "deploy-nope", "--yes")
    assert (
        missing.returncode == 2 and "change set 'deploy-nope' of stack market-data-byname not found" in missing.stderr
    )
