"""The regulated profile (docs/design.md "The regulated profile"): one customer managed key for every store, queue, log group
and the bus, a key policy naming exactly the services that use it, S3 server access logs kept a
year, data retained, API execution logs at ERROR - and the default profile unchanged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from market_cfn.stack.config import ConfigError, StackConfig
from market_cfn.stack.render import render_dict

KEY_ARN = {"Fn::If": ["CreateKmsKey", {"Fn::GetAtt": ["PipelineKey", "Arn"]}, {"Ref": "KmsKeyArn"}]}


@pytest.fixture(scope="module")
def regulated() -> dict:
    return render_dict(StackConfig(profile="regulated"))


@pytest.fixture(scope="module")
def default() -> dict:
    return render_dict(StackConfig())


def of_type(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def props(template: dict, logical_id: str) -> dict:
    return template["Resources"][logical_id]["Properties"]


def sub_text(value: dict) -> str:
    """The text of an Fn::Sub (with or without a variable map)."""
    arg = value["Fn::Sub"]
    return arg if isinstance(arg, str) else arg[0]


def key_statements(template: dict) -> dict[str, dict]:
    return {s["Sid"]: s for s in props(template, "PipelineKey")["KeyPolicy"]["Statement"]}


# --- the command and the configuration ------------------------------------------------------


def test_render_profile_regulated_writes_the_regulated_template(tmp_path: Path) -> None:
    out = tmp_path / "regulated.json"
    result = subprocess.run(
        [sys.executable, "-m", "market_cfn", "render", "--render-profile", "regulated", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(out.read_text()) == render_dict(StackConfig(profile="regulated"))


def test_an_unknown_profile_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "market_cfn", "render", "--render-profile", "strict", "--out", str(tmp_path / "t.json")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "invalid choice: 'strict'" in result.stderr and not (tmp_path / "t.json").exists()
    with pytest.raises(ConfigError, match="profile 'strict' is unknown"):
        StackConfig(profile="strict")


# --- one key, everything under it -------------------------------------------------------------


def test_the_key_is_created_or_given(regulated: dict) -> None:
    key = regulated["Resources"]["PipelineKey"]
    assert key["Condition"] == "CreateKmsKey"
    assert key["DeletionPolicy"] == key["UpdateReplacePolicy"] == "Retain"
    assert key["Properties"]["EnableKeyRotation"] is True
    assert regulated["Conditions"]["CreateKmsKey"] == {"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}
    assert regulated["Parameters"]["KmsKeyArn"]["Default"] == ""
    assert regulated["Resources"]["PipelineKeyAlias"]["Condition"] == "CreateKmsKey"


def test_both_buckets_use_sse_kms_with_bucket_keys(regulated: dict) -> None:
    for bucket in ("DataBucket", "RejectsBucket"):
        (rule,) = props(regulated, bucket)["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KEY_ARN}
        assert rule["BucketKeyEnabled"] is True


def test_table_queues_log_groups_bus_archive_and_topic_use_the_key(regulated: dict) -> None:
    assert props(regulated, "MarketDataTable")["SSESpecification"] == {
        "SSEEnabled": True,
        "SSEType": "KMS",
        "KMSMasterKeyId": KEY_ARN,
    }
    queues = of_type(regulated, "AWS::SQS::Queue")
    assert len(queues) == 5 and all(q["Properties"]["KmsMasterKeyId"] == KEY_ARN for q in queues.values())
    groups = of_type(regulated, "AWS::Logs::LogGroup")
    assert len(groups) == 5  # three functions, API access and API execution logs
    assert all(g["Properties"]["KmsKeyId"] == KEY_ARN for g in groups.values())
    assert props(regulated, "MarketEventBus")["KmsKeyIdentifier"] == KEY_ARN
    assert props(regulated, "MarketEventArchive")["KmsKeyIdentifier"] == KEY_ARN
    assert props(regulated, "AlarmTopic")["KmsMasterKeyId"] == KEY_ARN


def test_the_key_policy_names_exactly_the_services_that_use_it(regulated: dict) -> None:
    statements = key_statements(regulated)
    principals = {sid: s["Principal"].get("Service", s["Principal"].get("AWS")) for sid, s in statements.items()}
    assert set(statements) == {
        "EnableIamPolicies",
        "CloudWatchAlarmsToEncryptedTopic",
        "CloudWatchLogsForThisStacksLogGroups",
        "EventBridgeDescribeKey",
        "EventBridgeBusAndArchive",
        "EventBridgeToEncryptedQueues",
    }
    assert all(s["Effect"] == "Allow" for s in statements.values())
    assert "kms:*" not in json.dumps(statements)  # spelled out, so no review meets a wildcard
    assert principals["CloudWatchAlarmsToEncryptedTopic"] == ["cloudwatch.amazonaws.com"]
    assert principals["EventBridgeBusAndArchive"] == ["events.amazonaws.com"]


def test_cloudwatch_logs_may_use_the_key_for_exactly_this_stacks_log_groups(regulated: dict) -> None:
    statement = key_statements(regulated)["CloudWatchLogsForThisStacksLogGroups"]
    allowed = [sub_text(v) for v in statement["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]]
    for logical_id, group in of_type(regulated, "AWS::Logs::LogGroup").items():
        name = sub_text(group["Properties"]["LogGroupName"]).replace("${Api}", "*")
        assert any(a.endswith(f"log-group:{name}") for a in allowed), logical_id
    assert len(allowed) == 5


def test_eventbridge_may_use_the_key_for_its_bus_and_the_queues_its_rules_deliver_to(regulated: dict) -> None:
    statements = key_statements(regulated)
    bus_name = sub_text(props(regulated, "MarketEventBus")["Name"])
    (bus_arn,) = statements["EventBridgeBusAndArchive"]["Condition"]["StringEquals"].values()
    assert sub_text(bus_arn).endswith(f":event-bus/{bus_name}")
    # every queue a rule targets or dead-letters to, and no other
    delivered = set()
    for rule in of_type(regulated, "AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            for ref in (target["Arn"], target["DeadLetterConfig"]["Arn"]):
                if ref.get("Fn::GetAtt", [""])[0] in of_type(regulated, "AWS::SQS::Queue"):
                    delivered.add(sub_text(props(regulated, ref["Fn::GetAtt"][0])["QueueName"]))
    contexts = statements["EventBridgeToEncryptedQueues"]["Condition"]["StringEquals"][
        "kms:EncryptionContext:aws:sqs:arn"
    ]
    assert (
        {sub_text(c).rsplit(":", 1)[1] for c in contexts}
        == delivered
        == {
            "AggregationQueue-${Env}",
            "InvocationDLQ-${Env}",
        }
    )


# --- audit trail, retention, protection, API logs ------------------------------------------------


def test_every_bucket_writes_server_access_logs_kept_a_year(regulated: dict) -> None:
    for bucket in ("DataBucket", "RejectsBucket", "HistoryBucket"):
        logging = props(regulated, bucket)["LoggingConfiguration"]
        assert logging == {"DestinationBucketName": {"Ref": "AccessLogsBucket"}, "LogFilePrefix": f"{bucket}/"}
    logs_bucket = regulated["Resources"]["AccessLogsBucket"]
    assert logs_bucket["DeletionPolicy"] == "Retain"
    (rule,) = logs_bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] >= 365
    # server access logging cannot deliver to an SSE-KMS bucket
    (sse,) = logs_bucket["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert sse["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    grant, tls = props(regulated, "AccessLogsBucketPolicy")["PolicyDocument"]["Statement"]
    assert grant["Principal"] == {"Service": ["logging.s3.amazonaws.com"]} and grant["Action"] == ["s3:PutObject"]
    sources = [sub_text(v) for v in grant["Condition"]["ArnLike"]["aws:SourceArn"]]
    assert len(sources) == 3 and "aws:SourceAccount" in grant["Condition"]["StringEquals"]
    assert tls["Effect"] == "Deny"


def test_data_is_retained_and_protected(regulated: dict) -> None:
    for logical_id in ("DataBucket", "RejectsBucket", "MarketDataTable", "AccessLogsBucket", "PipelineKey"):
        resource = regulated["Resources"][logical_id]
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain", logical_id
    assert props(regulated, "MarketDataTable")["DeletionProtectionEnabled"] is True


def test_every_log_group_keeps_at_least_a_year(regulated: dict) -> None:
    for logical_id, group in of_type(regulated, "AWS::Logs::LogGroup").items():
        assert group["Properties"]["RetentionInDays"] >= 365, logical_id
        assert group["DeletionPolicy"] == "Retain", logical_id


def test_api_execution_logs_at_error_into_a_group_the_stack_owns(regulated: dict) -> None:
    stage = regulated["Resources"]["IngestApiStage"]
    (setting,) = stage["Properties"]["MethodSettings"]
    assert setting["LoggingLevel"] == "ERROR" and setting["DataTraceEnabled"] is False
    group = props(regulated, "IngestApiExecutionLogGroup")
    assert group["LogGroupName"] == {
        "Fn::Sub": [
            "API-Gateway-Execution-Logs_${Api}/${Env}",
            {"Api": {"Ref": "IngestApi"}, "Env": {"Ref": "EnvironmentSuffix"}},
        ]
    }
    assert stage["DependsOn"] == ["IngestApiExecutionLogGroup"]


def test_no_encryption_or_retention_check_is_skipped(regulated: dict) -> None:
    skipped = {
        skip["id"]
        for resource in regulated["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    }
    assert not skipped & {"CKV_AWS_27", "CKV_AWS_119", "CKV_AWS_158", "CKV_AWS_338"}


# --- the default profile keeps the original design's choices ------------------------------------


def test_the_default_profile_keeps_sse_s3_and_is_destroyable(default: dict) -> None:
    assert "KmsKeyArn" not in default["Parameters"] and "AccessLogsBucket" not in default["Resources"]
    (rule,) = props(default, "DataBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
    assert "SSESpecification" not in props(default, "MarketDataTable")
    assert "KmsKeyIdentifier" not in props(default, "MarketEventBus")
    for kind in ("AWS::Logs::LogGroup", "AWS::SQS::Queue", "AWS::S3::Bucket", "AWS::DynamoDB::Table", "AWS::KMS::Key"):
        for logical_id, resource in of_type(default, kind).items():
            assert resource["DeletionPolicy"] == "Delete", logical_id
    # its key serves the alarm topic only: the account and CloudWatch, nobody else
    assert set(key_statements(default)) == {"EnableIamPolicies", "CloudWatchAlarmsToEncryptedTopic"}
    assert props(default, "AlarmTopic")["KmsMasterKeyId"] == {"Fn::GetAtt": ["PipelineKey", "Arn"]}
    # and no function may use it
    for logical_id, role in of_type(default, "AWS::IAM::Role").items():
        for policy in role["Properties"]["Policies"]:
            for statement in policy["PolicyDocument"]["Statement"]:
                if statement["Effect"] == "Allow":
                    assert not [a for a in statement["Action"] if a.startswith("kms:")], logical_id
