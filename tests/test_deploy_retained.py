"""After `destroy` of a retaining environment its named buckets, table and log groups remain; a
new deploy of the same environment is refused before anything is created, naming each one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from market_cfn.deploy.retained import NAME_PROPERTIES, Retained, conflicts, exists, retained_names
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_dict

ROOT = Path(__file__).resolve().parents[1]
ACCOUNT, REGION = "123456789012", "eu-west-1"


def test_the_names_a_prod_stack_retains_are_resolved_before_creation():
    found = retained_names(
        render_dict(StackConfig(env_suffix="prod", retain_data=True)),
        {"EnvironmentSuffix": "prod"},
        account=ACCOUNT,
        region=REGION,
    )
    by_id = {r.logical_id: r for r in found}
    assert by_id["DataBucket"].name == f"market-data-prod-{ACCOUNT}-{REGION}"
    assert by_id["RejectsBucket"].name == f"market-data-rejects-prod-{ACCOUNT}-{REGION}"
    assert by_id["MarketDataTable"] == Retained("MarketDataTable", "AWS::DynamoDB::Table", "market-data-prod")


def test_a_destroyable_stack_retains_nothing():
    assert retained_names(render_dict(StackConfig()), {}, account=ACCOUNT, region=REGION) == []


@pytest.mark.parametrize("cfg", [StackConfig(retain_data=True), StackConfig(profile="regulated")])
def test_every_retained_resource_type_with_a_name_has_an_existence_check(cfg):
    template = render_dict(cfg)
    for logical_id, resource in template["Resources"].items():
        if resource.get("DeletionPolicy") != "Retain":
            continue
        named = [p for p in resource.get("Properties", {}) if p.endswith("Name") and p not in ("KeyName",)]
        if named:
            assert resource["Type"] in NAME_PROPERTIES, f"{logical_id}: no check for retained {resource['Type']}"
    assert {r.resource_type for r in retained_names(template, {}, account=ACCOUNT, region=REGION)} <= set(
        NAME_PROPERTIES
    )


def test_a_bucket_of_another_account_is_a_conflict_and_other_errors_are_not_taken_for_absence():
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(s3)
    stub.add_client_error("head_bucket", service_error_code="403", http_status_code=403)
    stub.add_client_error("head_bucket", service_error_code="404", http_status_code=404)
    stub.add_client_error("head_bucket", service_error_code="SlowDown", http_status_code=503)
    item = Retained("DataBucket", "AWS::S3::Bucket", "b")
    with stub:
        assert exists(lambda _: s3, item) == "exists in another account (bucket names are global)"
        assert exists(lambda _: s3, item) is None
        with pytest.raises(Exception, match="SlowDown"):
            exists(lambda _: s3, item)


def client(endpoint: str, service: str):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_a_deploy_over_retained_leftovers_is_refused_before_anything_is_created(endpoint):
    # WHAT a destroy of a retaining environment leaves behind (made by hand: the check must not
    # depend on how an emulator implements DeletionPolicy)
    account = client(endpoint, "sts").get_caller_identity()["Account"]
    client(endpoint, "s3").create_bucket(Bucket=f"market-data-leftover-{account}-us-east-1")
    client(endpoint, "dynamodb").create_table(
        TableName="market-data-leftover",
        KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "symbol", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert conflicts(
        lambda service: client(endpoint, service),
        retained_names(
            render_dict(StackConfig(env_suffix="leftover", retain_data=True)), {}, account=account, region="us-east-1"
        ),
    ) == [
        f"DataBucket (AWS::S3::Bucket) market-data-leftover-{account}-us-east-1 exists",
        "MarketDataTable (AWS::DynamoDB::Table) market-data-leftover exists",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bin" / "deploy"),
            "--endpoint-url",
            endpoint,
            "--env",
            "leftover",
            "--retain-data",
            "--yes",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("bin/deploy: ") and "MarketDataTable (AWS::DynamoDB::Table) market-data-leftover exists" in last
    )
    assert 'docs/deploy.md "After destroy"' in last
    stacks = client(endpoint, "cloudformation").list_stacks()["StackSummaries"]
    assert [s for s in stacks if s["StackName"] == "market-data-leftover"] == []
    # refused before the bootstrap, the upload and the change set
    assert "ootstrap" not in proc.stdout and "Package s3://" not in proc.stdout and "change set" not in proc.stdout
