"""Structural tests on the rendered template: one test (or more) per requirement (docs/design.md),
each on both profiles (build/template.json is the default one, and the regulated render).

Monitoring, encryption and the regulated profile are in
tests/test_template_operable.py and tests/test_template_regulated.py."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from market_cfn.stack.config import FUNCTION_TIMEOUT_SECONDS, PROFILES, ConfigError, StackConfig
from market_cfn.stack.policies import DESTRUCTIVE_ACTIONS, RUNTIME_ACTIONS
from market_cfn.stack.render import render_dict, render_json

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("DataIngestion", "DataProcessor", "DataAggregator")
STATEFUL_TYPES = {
    "AWS::S3::Bucket",
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Logs::LogGroup",
}


@pytest.fixture(scope="module", params=PROFILES)
def profile(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def template(profile: str) -> dict:
    return render_dict(StackConfig(profile=profile))


@pytest.fixture(scope="module")
def resources(template: dict) -> dict:
    return template["Resources"]


def of_type(resources: dict, kind: str) -> dict:
    return {k: v for k, v in resources.items() if v["Type"] == kind}


def props(resources: dict, logical_id: str) -> dict:
    return resources[logical_id]["Properties"]


def refs(value: object) -> set[str]:
    """Every logical ID a value refers to (Ref, Fn::GetAtt, Fn::Sub variables)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref":
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else arg.split(".")[0])
            else:
                found |= refs(arg)
    elif isinstance(value, list):
        for item in value:
            found |= refs(item)
    return found


def statements(role: dict) -> list[dict]:
    out = []
    for policy in role["Properties"]["Policies"]:
        out.extend(policy["PolicyDocument"]["Statement"])
    return out


def as_list(value: object) -> list:
    return value if isinstance(value, list) else [value]


# --- determinism and the committed artifact --------------------------------------------


def test_rendering_is_byte_identical_and_matches_the_committed_template() -> None:
    first = render_json(StackConfig())
    assert first == render_json(StackConfig())
    assert (ROOT / "build" / "template.json").read_text(encoding="utf-8") == first, (
        "build/template.json is stale: run `python -m market_cfn render` and commit it"
    )


def test_template_is_region_and_account_neutral() -> None:
    text = render_json(StackConfig())
    assert not re.search(r"\b\d{12}\b", text), "hard-coded account ID"
    assert not re.search(r"\b(us|eu|ap|sa|ca|me|af|il|mx)-[a-z]+-\d\b", text), "hard-coded region"
    assert "arn:aws:" not in text, "hard-coded partition: use ${AWS::Partition}"


# --- environment -------------------------------------------------------------------------


def test_environment_suffix_is_a_parameter_in_every_name(template: dict, resources: dict) -> None:
    param = template["Parameters"]["EnvironmentSuffix"]
    assert param["Default"] == "dev"
    assert re.match(param["AllowedPattern"], "prod") and not re.match(param["AllowedPattern"], "Prod")
    for base in FUNCTIONS:
        name = props(resources, f"{base}Function")["FunctionName"]["Fn::Sub"]
        assert name[0] == f"{base}-${{Env}}" and name[1] == {"Env": {"Ref": "EnvironmentSuffix"}}
    assert props(resources, "ProcessingDLQ")["QueueName"]["Fn::Sub"][0] == "ProcessingDLQ-${Env}"
    assert props(resources, "MarketDataTable")["TableName"]["Fn::Sub"][0] == "market-data-${Env}"
    bucket = props(resources, "DataBucket")["BucketName"]["Fn::Sub"][0]
    assert "${AWS::AccountId}" in bucket and "${AWS::Region}" in bucket and "${Env}" in bucket


def test_render_env_option_sets_the_parameter_default() -> None:
    assert render_dict(StackConfig(env_suffix="prod"))["Parameters"]["EnvironmentSuffix"]["Default"] == "prod"


@pytest.mark.parametrize("bad", ["", "Prod", "1dev", "dev_1", "waytoolongname", "dev-1"])
def test_invalid_environment_names_are_rejected(bad: str) -> None:
    with pytest.raises(ConfigError):
        StackConfig(env_suffix=bad)


# --- S3 ------------------------------------------------------------------------------------


def test_data_bucket(resources: dict, profile: str) -> None:
    bucket = props(resources, "DataBucket")
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] == ("AES256" if profile == "default" else "aws:kms")
    rule = bucket["LifecycleConfiguration"]["Rules"][0]
    assert rule["Status"] == "Enabled" and rule["ExpirationInDays"] == 30
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] > 0
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (notification,) = bucket["NotificationConfiguration"]["LambdaConfigurations"]
    assert notification["Event"] == "s3:ObjectCreated:*"
    assert refs(notification["Function"]) == {"DataIngestionFunction"}
    assert "DataIngestionS3Permission" in as_list(resources["DataBucket"]["DependsOn"])


@pytest.mark.parametrize(
    "bucket,policy", [("DataBucket", "DataBucketPolicy"), ("RejectsBucket", "RejectsBucketPolicy")]
)
def test_bucket_policies_deny_insecure_transport(resources: dict, bucket: str, policy: str) -> None:
    document = props(resources, policy)
    assert document["Bucket"] == {"Ref": bucket}
    (statement,) = document["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Condition"]["Bool"]["aws:SecureTransport"] in (False, "false")
    assert len(statement["Resource"]) == 2  # the bucket and its objects


def test_rejects_bucket_never_triggers_ingestion(resources: dict) -> None:
    assert "NotificationConfiguration" not in props(resources, "RejectsBucket")


# --- DynamoDB --------------------------------------------------------------------------------


def test_table(resources: dict) -> None:
    (table_id,) = of_type(resources, "AWS::DynamoDB::Table")
    table = props(resources, table_id)
    assert table["KeySchema"] == [
        {"AttributeName": "symbol", "KeyType": "HASH"},
        {"AttributeName": "timestamp", "KeyType": "RANGE"},
    ]
    assert {"AttributeName": "timestamp", "AttributeType": "N"} in table["AttributeDefinitions"]
    assert {"AttributeName": "symbol", "AttributeType": "S"} in table["AttributeDefinitions"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# --- Lambda -------------------------------------------------------------------------------


@pytest.mark.parametrize("base", FUNCTIONS)
def test_function_settings(template: dict, resources: dict, base: str) -> None:
    fn = props(resources, f"{base}Function")
    major, minor = map(int, fn["Runtime"].removeprefix("python").split("."))
    assert (major, minor) >= (3, 12)
    # At most 3008 MB by default (new accounts refuse more), a parameter per function.
    assert fn["MemorySize"] == {"Ref": f"{base}MemorySize"}
    memory = template["Parameters"][f"{base}MemorySize"]
    assert memory["Type"] == "Number" and int(memory["Default"]) <= 3008
    assert (memory["MinValue"], memory["MaxValue"]) == (128, 10240)
    assert fn["Runtime"] == "python3.14" and fn["Architectures"] == ["arm64"]
    assert fn["Timeout"] == 300
    assert fn["TracingConfig"] == {"Mode": "Active"}
    assert fn["Code"] == {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}
    module, _, attr = fn["Handler"].rpartition(".")
    assert module.startswith("handlers.") and attr == "handler"
    assert fn["LoggingConfig"] == {"LogGroup": {"Ref": f"{base}LogGroup"}}
    assert refs(fn["Role"]) == {f"{base}Role"}


@pytest.mark.parametrize("base", FUNCTIONS)
def test_each_function_has_its_own_log_group_with_7_day_retention(resources: dict, base: str, profile: str) -> None:
    group = props(resources, f"{base}LogGroup")
    assert group["RetentionInDays"] == (7 if profile == "default" else 400)  # regulated: a year or more
    assert group["LogGroupName"]["Fn::Sub"][0] == f"/aws/lambda/{base}-${{Env}}"


def test_processor_is_fed_by_the_queue_in_batches_of_10_with_partial_failures(template: dict, resources: dict) -> None:
    (mapping_id,) = of_type(resources, "AWS::Lambda::EventSourceMapping")
    mapping = props(resources, mapping_id)
    # Bounded concurrency: on an account limited to 10 executions, throttled batches would
    # use up their receives; the bound is a parameter (2-1000).
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "ProcessorMaximumConcurrency"}}
    bound = template["Parameters"]["ProcessorMaximumConcurrency"]
    assert (bound["MinValue"], bound["MaxValue"]) == (2, 1000) and 2 <= int(bound["Default"]) < 10
    assert refs(mapping["EventSourceArn"]) == {"ProcessingQueue"}
    assert refs(mapping["FunctionName"]) == {"DataProcessorFunction"}
    assert mapping["BatchSize"] == 10
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_async_invocation_failures_go_to_a_dead_letter_queue(resources: dict) -> None:
    configs = {
        refs(p["Properties"]["FunctionName"]).pop(): p["Properties"]
        for p in of_type(resources, "AWS::Lambda::EventInvokeConfig").values()
    }
    assert set(configs) == {"DataIngestionFunction", "DataAggregatorFunction"}
    for config in configs.values():
        assert refs(config["DestinationConfig"]["OnFailure"]["Destination"]) == {"InvocationDLQ"}


def test_invoke_permissions(resources: dict) -> None:
    permissions = {
        p["Properties"]["Principal"]: p["Properties"] for p in of_type(resources, "AWS::Lambda::Permission").values()
    }
    assert set(permissions) == {"s3.amazonaws.com", "apigateway.amazonaws.com", "events.amazonaws.com"}
    assert refs(permissions["s3.amazonaws.com"]["FunctionName"]) == {"DataIngestionFunction"}
    assert "SourceAccount" in permissions["s3.amazonaws.com"]
    assert refs(permissions["apigateway.amazonaws.com"]["FunctionName"]) == {"DataIngestionFunction"}
    assert "/POST/ingest" in permissions["apigateway.amazonaws.com"]["SourceArn"]["Fn::Sub"][0]
    assert refs(permissions["events.amazonaws.com"]["FunctionName"]) == {"DataAggregatorFunction"}
    assert refs(permissions["events.amazonaws.com"]["SourceArn"]) == {"AggregationScheduleRule"}


# --- SQS ----------------------------------------------------------------------------------


def test_processing_queue(resources: dict) -> None:
    queue = props(resources, "ProcessingQueue")
    assert queue["MessageRetentionPeriod"] == 4 * 24 * 3600
    # The Lambda guide asks for at least 5 on a queue that triggers a function.
    assert queue["RedrivePolicy"]["maxReceiveCount"] >= 5
    assert props(resources, "AggregationQueue")["RedrivePolicy"]["maxReceiveCount"] >= 5
    assert refs(queue["RedrivePolicy"]["deadLetterTargetArn"]) == {"ProcessingDLQ"}
    # AWS: at least 6x the timeout of the function the queue triggers.
    assert queue["VisibilityTimeout"] >= 6 * FUNCTION_TIMEOUT_SECONDS
    assert props(resources, "ProcessingDLQ")["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_every_queue_is_encrypted(resources: dict, profile: str) -> None:
    queues = of_type(resources, "AWS::SQS::Queue")
    assert len(queues) == 5
    for queue in queues.values():
        if profile == "default":
            assert queue["Properties"]["SqsManagedSseEnabled"] is True
        else:
            assert "KmsMasterKeyId" in queue["Properties"] and "SqsManagedSseEnabled" not in queue["Properties"]


# --- EventBridge ---------------------------------------------------------------------------


def test_event_bus_schedule_and_routing(template: dict, resources: dict) -> None:
    (bus_id,) = of_type(resources, "AWS::Events::EventBus")
    rules = of_type(resources, "AWS::Events::Rule")
    schedule = props(resources, "AggregationScheduleRule")
    assert schedule["ScheduleExpression"] == {"Ref": "AggregationSchedule"}
    parameter = template["Parameters"]["AggregationSchedule"]
    assert parameter["Default"] == "rate(5 minutes)"
    for good in ("rate(5 minutes)", "rate(1 hour)", "cron(0/5 13-21 ? * MON-FRI *)"):
        assert re.match(parameter["AllowedPattern"], good), good
    for bad in ("every 5 minutes", "rate(0 minutes)", ""):
        assert not re.match(parameter["AllowedPattern"], bad), bad
    assert refs(schedule["Targets"][0]["Arn"]) == {"DataAggregatorFunction"}
    routing = props(resources, "PointsStoredRule")
    assert routing["EventBusName"] == {"Fn::GetAtt": [bus_id, "Name"]}  # = Ref; moto needs GetAtt
    assert routing["EventPattern"]["source"] == ["market-data.processor"]
    assert refs(routing["Targets"][0]["Arn"]) == {"AggregationQueue"}
    for rule in rules.values():
        for target in rule["Properties"]["Targets"]:
            assert refs(target["DeadLetterConfig"]["Arn"]) == {"InvocationDLQ"}
            assert target["RetryPolicy"]["MaximumRetryAttempts"] > 0
    # The processor environment names this bus.
    env = props(resources, "DataProcessorFunction")["Environment"]["Variables"]
    assert env["EVENT_BUS_NAME"] == {"Fn::GetAtt": [bus_id, "Name"]}


def test_queues_let_only_their_rules_send(resources: dict) -> None:
    policy = props(resources, "AggregationQueuePolicy")
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": ["events.amazonaws.com"]}
    assert refs(statement["Condition"]) == {"PointsStoredRule"}


# --- API Gateway --------------------------------------------------------------------------


def test_ingest_api(template: dict, resources: dict) -> None:
    assert len(of_type(resources, "AWS::ApiGateway::RestApi")) == 1
    assert props(resources, "IngestResource")["PathPart"] == "ingest"
    method = props(resources, "IngestPostMethod")
    assert method["HttpMethod"] == "POST"
    assert method["AuthorizationType"] == "AWS_IAM"
    assert method["Integration"]["Type"] == "AWS_PROXY"
    assert refs(method["Integration"]["Uri"]) == {"DataIngestionFunction"}
    assert refs(method["RequestValidatorId"]) == {"IngestBodyValidator"}
    assert props(resources, "IngestBodyValidator")["ValidateRequestBody"] is True
    # Validation whatever the Content-Type: API Gateway falls back to the $default model.
    assert method["RequestModels"] == {
        "application/json": {"Ref": "IngestBodyModel"},
        "$default": {"Ref": "IngestBodyModel"},
    }
    stage = props(resources, "IngestApiStage")
    assert stage["TracingEnabled"] is True
    (setting,) = stage["MethodSettings"]
    assert setting["ThrottlingRateLimit"] == {"Ref": "ApiThrottlingRateLimit"}
    assert setting["ThrottlingBurstLimit"] == {"Ref": "ApiThrottlingBurstLimit"}
    parameters = template["Parameters"]
    # At or below the lowest account-level default (2,500 rps, 1,250 burst); 10,000 allowed.
    rate, burst = parameters["ApiThrottlingRateLimit"], parameters["ApiThrottlingBurstLimit"]
    assert int(rate["Default"]) <= 2500 and int(burst["Default"]) <= 1250
    assert rate["MaxValue"] == burst["MaxValue"] == 10_000
    (deployment_id,) = of_type(resources, "AWS::ApiGateway::Deployment")
    assert refs(stage["DeploymentId"]) == {deployment_id}
    # The deployment refers to the method, so it is created after it (also on moto).
    assert "IngestPostMethod" in refs(props(resources, deployment_id))


def test_deployment_id_follows_the_api_definition() -> None:
    from market_cfn.stack import api

    default = [k for k in render_dict(StackConfig())["Resources"] if k.startswith("IngestApiDeployment")]
    original = api.INGEST_BODY_SCHEMA
    try:
        api.INGEST_BODY_SCHEMA = {**original, "title": "Changed"}
        changed = [k for k in render_dict(StackConfig())["Resources"] if k.startswith("IngestApiDeployment")]
    finally:
        api.INGEST_BODY_SCHEMA = original
    assert default != changed


# --- CloudWatch ------------------------------------------------------------------------------


def test_every_dead_letter_queue_has_an_alarm(resources: dict) -> None:
    alarmed = {
        refs(a["Properties"]["Dimensions"][0]["Value"]).pop()
        for a in of_type(resources, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    dlqs = {k for k in of_type(resources, "AWS::SQS::Queue") if k.endswith("DLQ")}
    assert dlqs == {"ProcessingDLQ", "AggregationDLQ", "InvocationDLQ"}
    assert alarmed == dlqs


# --- IAM -------------------------------------------------------------------------------------

EXPECTED_ALLOW = {
    "DataIngestionRole": {
        "s3:GetObject",
        "s3:GetObjectVersion",
        "s3:ListBucketVersions",
        "s3:PutObject",
        "sqs:SendMessage",
    },
    # sqs:SendMessage: the PointsStored details go straight to the AggregationQueue while PutEvents fails
    "DataProcessorRole": {"dynamodb:BatchWriteItem", "events:PutEvents", "sqs:SendMessage"},
    "DataAggregatorRole": {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:SendMessage",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",  # the stored aggregates' versions
        "dynamodb:PutItem",  # conditional: BatchWriteItem takes no condition
        "events:PutEvents",
    },
}


def test_one_role_per_function(resources: dict) -> None:
    roles = of_type(resources, "AWS::IAM::Role")
    assert set(roles) == {f"{base}Role" for base in FUNCTIONS}
    for role in roles.values():
        (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        assert trust["Principal"] == {"Service": ["lambda.amazonaws.com"]}


# Regulated profile: the stack's key, only through the services each role's calls reach
# (kms:ViaService), nothing else.
EXPECTED_KMS_VIA = {
    "DataIngestionRole": {"s3", "sqs"},
    "DataProcessorRole": {"sqs", "dynamodb", "events"},
    "DataAggregatorRole": {"sqs", "dynamodb", "events"},
}


@pytest.mark.parametrize("role_id", sorted(EXPECTED_ALLOW))
def test_allow_statements_are_least_privilege(resources: dict, role_id: str, profile: str) -> None:
    allowed = set()
    for statement in statements(resources[role_id]):
        if statement["Effect"] != "Allow":
            continue
        if statement["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"]:
            assert profile == "regulated", f"{role_id}: a KMS grant in the default profile"
            assert refs(statement["Resource"]) == {"PipelineKey", "KmsKeyArn"}  # the stack's key, or the given one
            via = statement["Condition"]["StringEquals"]["kms:ViaService"]
            assert {v["Fn::Sub"].split(".")[0] for v in via} == EXPECTED_KMS_VIA[role_id]
            continue
        allowed |= set(statement["Action"])
        if statement["Resource"] == ["*"]:
            assert set(statement["Action"]) <= {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
        else:
            for resource in statement["Resource"]:
                assert refs(resource) or "Fn::Sub" in resource, f"{role_id}: unscoped resource {resource}"
    assert allowed == EXPECTED_ALLOW[role_id] | RUNTIME_ACTIONS[role_id]


@pytest.mark.parametrize("role_id", sorted(EXPECTED_ALLOW))
def test_every_role_carries_the_explicit_denies(resources: dict, role_id: str) -> None:
    denied = {a for s in statements(resources[role_id]) if s["Effect"] == "Deny" for a in s["Action"]}
    for required in (
        "s3:DeleteBucket",
        "dynamodb:DeleteTable",
        "sqs:DeleteQueue",
        "sqs:PurgeQueue",
        "logs:DeleteLogGroup",
        "s3:PutBucketPolicy",
        "s3:DeleteBucketPolicy",
    ):
        assert required in denied
    assert denied == {f"{a.prefix}:{a.action}" for actions in DESTRUCTIVE_ACTIONS.values() for a in actions}


def _all_actions(value: object) -> list[str]:
    found: list[str] = []
    if isinstance(value, dict):
        for key, arg in value.items():
            if key in ("Action", "NotAction"):
                found.extend(as_list(arg))
            else:
                found.extend(_all_actions(arg))
    elif isinstance(value, list):
        for item in value:
            found.extend(_all_actions(item))
    return found


def test_no_wildcard_action_anywhere(template: dict) -> None:
    actions = _all_actions(template["Resources"])
    assert actions
    assert "*" not in actions
    # Only the TLS-deny statements of bucket policies use a service wildcard, and only to deny.
    for logical_id, resource in template["Resources"].items():
        for statement in _statements_in(resource):
            for action in as_list(statement.get("Action", [])):
                if action.endswith(":*"):
                    assert statement["Effect"] == "Deny", f"{logical_id} allows {action}"


def _statements_in(resource: dict) -> list[dict]:
    found = []
    p = resource.get("Properties", {})
    for policy in p.get("Policies", []):
        found.extend(policy["PolicyDocument"]["Statement"])
    if "PolicyDocument" in p:
        found.extend(p["PolicyDocument"]["Statement"])
    return found


# --- tags, data protection, outputs -------------------------------------------------------------


def test_every_taggable_resource_is_tagged(resources: dict, profile: str) -> None:
    from market_cfn.stack.tags import UNTAGGED_TYPES
    from market_cfn.stack.template import build_template

    t = build_template(StackConfig(profile=profile))
    taggable = {k for k, r in t.resources.items() if "Tags" in type(r).props and r.resource_type not in UNTAGGED_TYPES}
    assert {r.resource_type for r in t.resources.values()} >= UNTAGGED_TYPES
    assert len(taggable) > 20
    for logical_id in taggable:
        tags = {tag["Key"]: tag["Value"] for tag in props(resources, logical_id)["Tags"]}
        assert tags == {"Environment": {"Ref": "EnvironmentTag"}, "Project": "MarketAnalytics"}, logical_id


def test_environment_tag_defaults_to_production_and_follows_configuration() -> None:
    assert render_dict(StackConfig())["Parameters"]["EnvironmentTag"]["Default"] == "Production"
    assert render_dict(StackConfig(environment_tag="Staging"))["Parameters"]["EnvironmentTag"]["Default"] == "Staging"


def test_stateful_resources_state_their_policies_and_default_to_delete() -> None:
    resources = render_dict(StackConfig())["Resources"]
    stateful = {k: r for k, r in resources.items() if r["Type"] in STATEFUL_TYPES}
    assert len(stateful) >= 12
    for logical_id, resource in stateful.items():
        assert resource["DeletionPolicy"] == "Delete", logical_id
        assert resource["UpdateReplacePolicy"] == "Delete", logical_id


def test_retain_data_keeps_buckets_and_table() -> None:
    retained = render_dict(StackConfig(retain_data=True))["Resources"]
    for logical_id in ("DataBucket", "RejectsBucket", "MarketDataTable"):
        assert retained[logical_id]["DeletionPolicy"] == "Retain"
        assert retained[logical_id]["UpdateReplacePolicy"] == "Retain"
    assert retained["MarketDataTable"]["Properties"]["DeletionProtectionEnabled"] is True
    assert retained["ProcessingQueue"]["DeletionPolicy"] == "Delete"


def test_outputs(template: dict) -> None:
    outputs = template["Outputs"]
    for name in ("apiGatewayUrl", "s3BucketName", "dynamodbTableArn", "processingQueueUrl", "eventBusName"):
        assert name in outputs
    url = outputs["apiGatewayUrl"]["Value"]["Fn::Sub"]
    assert url[0].startswith("https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/")
    assert url[0].endswith("/ingest")
    assert refs(outputs["dynamodbTableArn"]["Value"]) == {"MarketDataTable"}


def test_every_suppression_has_a_reason(resources: dict) -> None:
    count = 0
    for logical_id, resource in resources.items():
        metadata = resource.get("Metadata", {})
        lint = metadata.get("cfn-lint")
        if lint:
            assert set(lint["config"]["ignore_checks"]) == set(lint["reasons"]), logical_id
            assert all(len(reason) > 30 for reason in lint["reasons"].values())
            count += len(lint["reasons"])
        for skip in metadata.get("checkov", {}).get("skip", []):
            assert len(skip["comment"]) > 20, (logical_id, skip)
            count += 1
    assert count > 0


# --- the render command ----------------------------------------------------------------------


def _render(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "market_cfn", "render", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_render_writes_build_template_by_default(tmp_path: Path) -> None:
    result = _render(cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "build" / "template.json"
    assert result.stdout.strip() == f"wrote {Path('build') / 'template.json'}"
    assert json.loads(out.read_text())["Resources"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--env", "Prod"], "environment name 'Prod' is invalid"),
        (["--env", "a-b"], "environment name 'a-b' is invalid"),
        (["--environment-tag", "bad\ttag"], "environment tag"),
        (["--out"], "expected one argument"),
    ],
)
def test_bad_options_give_one_line_and_exit_2_writing_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    result = (
        _render(*args, "--out", str(tmp_path / "t.json"), cwd=tmp_path)
        if args != ["--out"]
        else _render(*args, cwd=tmp_path)
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert not (tmp_path / "t.json").exists() and not (tmp_path / "build").exists()


def test_render_out_directory_is_an_error(tmp_path: Path) -> None:
    result = _render("--out", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "is a directory" in result.stderr


# --- the policy export parliament lints -------------------------------------------------------


def test_policy_export_resolves_every_policy_to_concrete_arns(template: dict, profile: str) -> None:
    from market_cfn.stack.policy_export import policy_documents

    documents = policy_documents(template)
    assert set(documents) == ({"AccessLogsBucketPolicy"} if profile == "regulated" else set()) | {
        "AlarmTopicPolicy",
        "DataIngestionRole.DataIngestionLeastPrivilege",
        "DataProcessorRole.DataProcessorLeastPrivilege",
        "DataAggregatorRole.DataAggregatorLeastPrivilege",
        "DataBucketPolicy",
        "RejectsBucketPolicy",
        "HistoryBucketPolicy",
        "AggregationQueuePolicy",
        "InvocationDLQPolicy",
    }
    text = json.dumps(documents)
    assert "Fn::" not in text and '"Ref"' not in text
    processor = documents["DataProcessorRole.DataProcessorLeastPrivilege"]["Statement"]
    resources = {r for s in processor if s["Effect"] == "Allow" for r in s["Resource"]}
    assert "arn:aws:dynamodb:us-east-1:123456789012:table/market-data-dev" in resources
    assert "arn:aws:sqs:us-east-1:123456789012:ProcessingQueue-dev" in resources
    assert "arn:aws:logs:us-east-1:123456789012:log-group:/aws/lambda/DataProcessor-dev:*" in resources
    bucket_policy = documents["DataBucketPolicy"]["Statement"][0]["Resource"]
    assert bucket_policy[1] == "arn:aws:s3:::market-data-dev-123456789012-us-east-1/*"
