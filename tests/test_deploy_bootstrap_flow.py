"""bin/deploy's bootstrap: created when missing, updated through a reviewed change set when older,
refused when newer; the account's API Gateway CloudWatch role set only where none is, through
IAM propagation (Stubber: moto never refuses a fresh role)."""

from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.stub import Stubber
from moto_local import reset_moto

from market_cfn.base.aws import Where
from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError
from market_cfn.base.waits import Waits
from market_cfn.deploy.bootstrap import (
    BOOTSTRAP_VERSION,
    ROLE_NOT_READY,
    ROLE_PROPAGATION_DELAYS_SECONDS,
    VERSION_OUTPUT,
    build_bootstrap_template,
    ensure_api_gateway_logging_role,
)
from market_cfn.deploy.flow import ensure_bootstrap
from market_cfn.deploy.gate import DeployOptions

ROLE = "arn:aws:iam::123456789012:role/market-data-bootstrap-ApiGatewayCloudWatchRole-ABC"
OTHER = "arn:aws:iam::123456789012:role/their-own-apigateway-logging-role"
REGION = "us-east-1"


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(out=out, interactive=False), out


def waits(sleeps: Sleeps | None = None) -> Waits:
    return Waits(sleep=sleeps or Sleeps(), poll_seconds=0.0)


def stubbed_apigateway() -> tuple[object, Stubber]:
    client = boto3.client(
        "apigateway", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    return client, Stubber(client)


PATCH = {"patchOperations": [{"op": "replace", "path": "/cloudwatchRoleArn", "value": ROLE}]}


# --- the account setting ------------------------------------------------------------------------


def test_an_account_role_already_set_is_never_replaced():
    client, stub = stubbed_apigateway()
    stub.add_response("get_account", {"cloudwatchRoleArn": OTHER})  # and no update_account
    out_console, out = console()
    with stub:
        assert ensure_api_gateway_logging_role(client, ROLE, out_console, waits()) == OTHER
    stub.assert_no_pending_responses()
    assert f"already logs to CloudWatch with role {OTHER}: kept" in out.getvalue()


def test_an_account_without_a_role_gets_the_bootstraps():
    client, stub = stubbed_apigateway()
    stub.add_response("get_account", {})
    stub.add_response("update_account", {"cloudwatchRoleArn": ROLE}, PATCH)
    with stub:
        assert ensure_api_gateway_logging_role(client, ROLE, console()[0], waits()) == ROLE
    stub.assert_no_pending_responses()


def test_the_propagation_error_is_retried_with_growing_delays():
    # GIVEN a role IAM has not propagated yet: API Gateway refuses it twice (aws/aws-cdk#2194)
    client, stub = stubbed_apigateway()
    stub.add_response("get_account", {})
    for _ in range(2):
        stub.add_client_error(
            "update_account",
            "BadRequestException",
            f"{ROLE_NOT_READY} set to API Gateway",
            400,
            expected_params=PATCH,
        )
    stub.add_response("update_account", {"cloudwatchRoleArn": ROLE}, PATCH)
    sleeps = Sleeps()
    with stub:
        assert ensure_api_gateway_logging_role(client, ROLE, console()[0], waits(sleeps)) == ROLE
    assert sleeps.calls == list(ROLE_PROPAGATION_DELAYS_SECONDS[:2])
    assert sleeps.calls[0] < sleeps.calls[1]


def test_propagation_retries_are_bounded():
    client, stub = stubbed_apigateway()
    stub.add_response("get_account", {})
    for _ in range(len(ROLE_PROPAGATION_DELAYS_SECONDS) + 1):
        stub.add_client_error("update_account", "BadRequestException", f"{ROLE_NOT_READY} configured.", 400)
    sleeps = Sleeps()
    with stub, pytest.raises(DeployError, match="still refuses the CloudWatch role"):
        ensure_api_gateway_logging_role(client, ROLE, console()[0], waits(sleeps))
    assert sleeps.calls == list(ROLE_PROPAGATION_DELAYS_SECONDS)
    assert sum(sleeps.calls) <= 180


def test_any_other_refusal_fails_at_once():
    client, stub = stubbed_apigateway()
    stub.add_response("get_account", {})
    stub.add_client_error("update_account", "AccessDeniedException", "not authorized: iam:PassRole", 403)
    sleeps = Sleeps()
    with stub, pytest.raises(DeployError, match="AccessDeniedException: not authorized"):
        ensure_api_gateway_logging_role(client, ROLE, console()[0], waits(sleeps))
    assert sleeps.calls == []


# --- versions -----------------------------------------------------------------------------------


def _deploy_raw(cfn, template: dict) -> None:
    cfn.create_stack(
        StackName="market-data-bootstrap", TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_IAM"]
    )


def _version_one() -> dict:
    """The version-1 template as far as moto can run it: no version output (the Account
    resource it also had is one moto's CloudFormation cannot create)."""
    template = build_bootstrap_template().to_dict()
    del template["Outputs"][VERSION_OUTPUT]
    return template


@pytest.fixture
def aws(endpoint):
    # `endpoint` is moto's server (tests/conftest.py), a real local endpoint as bin/deploy meets it:
    # calls moto has not implemented answer with an error response there, as an unsupported call
    # would on AWS. Each test starts from an empty moto.
    def client(service: str):
        return boto3.client(
            service,
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    cfn, apigateway = client("cloudformation"), client("apigateway")
    # As bin/deploy --endpoint-url runs it: what the emulator lacks degrades as documented.
    options = DeployOptions(assume_yes=True, where=Where(region=REGION, endpoint_url=endpoint))
    yield cfn, apigateway, options
    reset_moto(endpoint)


def test_a_missing_bootstrap_is_created_and_the_account_role_set(aws):
    cfn, apigateway, options = aws
    out_console, out = console()
    bucket = ensure_bootstrap(
        cfn, "market-data-bootstrap", out_console, waits(), assume_yes=True, options=options, apigateway=apigateway
    )
    assert bucket.startswith("market-data-bootstrap-artifactsbucket")
    assert "deploying it first" in out.getvalue()
    assert apigateway.get_account()["cloudwatchRoleArn"].startswith("arn:aws:iam::123456789012:role/")


def test_an_outdated_bootstrap_is_updated_through_a_reviewed_change_set(aws):
    cfn, apigateway, options = aws
    _deploy_raw(cfn, _version_one())
    out_console, out = console()
    ensure_bootstrap(cfn, "market-data-bootstrap", out_console, waits(), assume_yes=True, options=options)
    text = out.getvalue()
    assert f"is version 1; this bin/deploy needs version {BOOTSTRAP_VERSION}: updating it first" in text
    assert "Creating UPDATE change set" in text and "Execute this change set?" in text
    (change_set,) = cfn.list_change_sets(StackName="market-data-bootstrap")["Summaries"]
    assert change_set["ExecutionStatus"] in ("EXECUTE_COMPLETE", "AVAILABLE")


def test_a_version_two_bootstrap_is_upgraded_under_yes_by_the_changes_its_code_names(aws):
    # GIVEN version 2 (current artifacts expired after 365 days, under another rule Id)
    cfn, apigateway, options = aws
    two = build_bootstrap_template().to_dict()
    two["Outputs"][VERSION_OUTPUT]["Value"] = "2"
    two["Resources"]["ArtifactsBucket"]["Properties"]["LifecycleConfiguration"] = {
        "Rules": [
            {
                "Id": "ExpireOldArtifacts",
                "Status": "Enabled",
                "ExpirationInDays": 365,
                "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }
        ]
    }
    _deploy_raw(cfn, two)
    out_console, out = console()
    # WHEN bin/deploy --yes meets it THEN the lifecycle change (not on the allow-list of harmless changes,
    # but named by bootstrap.UPGRADE_CHANGES) executes, and the renamed rule is no "expiration added"
    ensure_bootstrap(cfn, "market-data-bootstrap", out_console, waits(), assume_yes=True, options=options)
    text = out.getvalue()
    assert "allowed by --allow-change ArtifactsBucket.LifecycleConfiguration" in text, text
    assert "Not executed" not in text and "[unprotect]" not in text
    (change_set,) = cfn.list_change_sets(StackName="market-data-bootstrap")["Summaries"]
    assert change_set["ExecutionStatus"] in ("EXECUTE_COMPLETE", "AVAILABLE")
    assert "UPDATE_COMPLETE" in text


def test_a_current_bootstrap_is_left_alone(aws):
    cfn, apigateway, options = aws
    _deploy_raw(cfn, build_bootstrap_template().to_dict())
    out_console, out = console()
    ensure_bootstrap(cfn, "market-data-bootstrap", out_console, waits(), assume_yes=True, options=options)
    assert out.getvalue() == ""
    assert cfn.list_change_sets(StackName="market-data-bootstrap")["Summaries"] == []


def test_a_newer_bootstrap_is_refused(aws):
    cfn, apigateway, options = aws
    template = build_bootstrap_template().to_dict()
    template["Outputs"][VERSION_OUTPUT]["Value"] = str(BOOTSTRAP_VERSION + 1)
    _deploy_raw(cfn, template)
    with pytest.raises(DeployError, match=f"is version {BOOTSTRAP_VERSION + 1}, newer than this market_cfn knows"):
        ensure_bootstrap(cfn, "market-data-bootstrap", console()[0], waits(), assume_yes=True, options=options)
