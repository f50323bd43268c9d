"""The bootstrap stack's artifacts bucket: private, encrypted, TLS-only, versioned, expiring."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from market_cfn.deploy.bootstrap import (
    BOOTSTRAP_VERSION,
    ROLE_OUTPUT,
    VERSION_OUTPUT,
    build_bootstrap_template,
    render_bootstrap_json,
)


@pytest.fixture(scope="module")
def template() -> dict:
    return json.loads(render_bootstrap_json())


def test_rendering_is_deterministic():
    assert render_bootstrap_json() == render_bootstrap_json()
    assert render_bootstrap_json() == json.dumps(build_bootstrap_template().to_dict(), indent=2, sort_keys=True) + "\n"


def test_the_bucket_is_private_encrypted_versioned_and_retained(template):
    bucket = template["Resources"]["ArtifactsBucket"]
    assert bucket["Type"] == "AWS::S3::Bucket"
    assert bucket["DeletionPolicy"] == bucket["UpdateReplacePolicy"] == "Retain"
    props = bucket["Properties"]
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert props["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert "BucketName" not in props  # CloudFormation names it: no global-name collisions


def test_only_noncurrent_artifacts_expire(template):
    (rule,) = template["Resources"]["ArtifactsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert "ExpirationInDays" not in rule  # a stack's rollback reads its code by key, however old
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}


def test_only_tls_requests_are_allowed(template):
    policy = template["Resources"]["ArtifactsBucketPolicy"]
    assert policy["Properties"]["Bucket"] == {"Ref": "ArtifactsBucket"}
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*" and statement["Action"] == ["s3:*"]
    assert statement["Condition"]["Bool"]["aws:SecureTransport"] in (False, "false")
    assert statement["Resource"] == [
        {"Fn::GetAtt": ["ArtifactsBucket", "Arn"]},
        {"Fn::Sub": ["${Arn}/*", {"Arn": {"Fn::GetAtt": ["ArtifactsBucket", "Arn"]}}]},
    ]


def test_the_bootstrap_holds_a_retained_logging_role_but_never_sets_the_account(template):
    """AWS::ApiGateway::Account would silently replace a role the account already names, for
    every API in the region: bin/deploy sets the role only where none is (below)."""
    resources = template["Resources"]
    assert not [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::Account"]
    role = resources["ApiGatewayCloudWatchRole"]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["apigateway.amazonaws.com"]}
    assert role["Properties"]["ManagedPolicyArns"] == [
        {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"}
    ]
    assert role["DeletionPolicy"] == role["UpdateReplacePolicy"] == "Retain"
    assert template["Outputs"][ROLE_OUTPUT]["Value"] == {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}


def test_the_bootstrap_carries_its_version(template):
    assert template["Outputs"][VERSION_OUTPUT]["Value"] == str(BOOTSTRAP_VERSION)
    assert BOOTSTRAP_VERSION >= 2  # version 1 had the Account resource


@pytest.mark.skipif(shutil.which("cfn-lint") is None, reason="cfn-lint not installed")
def test_cfn_lint_is_clean(tmp_path):
    path = tmp_path / "bootstrap.json"
    path.write_text(render_bootstrap_json())
    proc = subprocess.run(["cfn-lint", str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.skipif(shutil.which("checkov") is None, reason="checkov not installed")
def test_checkov_passes_with_the_one_documented_skip(tmp_path, template):
    skips = template["Resources"]["ArtifactsBucket"]["Metadata"]["checkov"]["skip"]
    assert [s["id"] for s in skips] == ["CKV_AWS_18"] and all(s["comment"] for s in skips)
    path = tmp_path / "bootstrap.json"
    path.write_text(render_bootstrap_json())
    proc = subprocess.run(
        ["checkov", "--framework", "cloudformation", "-f", str(path), "--compact", "--quiet", "--skip-download"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
