"""Helpers for the deploy tests that drive CloudFormation through botocore's Stubber.

Stubber validates every response against botocore's cloudformation service model, so the
responses below have the shapes the real API returns. What each field means is taken from
the CloudFormation API reference (cited where a test relies on it):
- DescribeChangeSet: `NextToken` paging, `StatusReason`, `Parameters`; the response and its
  `Changes[].ResourceChange` are built by tests/deploy_changesets.py.
- GetTemplate: `TemplateBody` (a JSON body comes back decoded by botocore).
- DetectStackDrift / DescribeStackDriftDetectionStatus / DescribeStackResourceDrifts:
  `StackDriftDetectionId`, `DetectionStatus`, `StackResourceDrifts[].StackResourceDriftStatus`.
- ListStackResources: `StackResourceSummaries[]` with LogicalResourceId/PhysicalResourceId.
- DescribeStackEvents: `StackEvents`, newest first.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from botocore.stub import ANY, Stubber

from market_cfn.base.console import Console
from market_cfn.base.waits import Waits
from market_cfn.deploy.backstop import stack_policy
from tests.deploy_changesets import change_set

REGION = "us-east-1"
ACCOUNT = "123456789012"
STACK = "market-data-dev"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/6f1f0c10-ca8e-11ef-9bbc-0affd3cb5c2d"
CS_NAME = "deploy-20261125T101500Z-abc123"
CS_ARN = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:changeSet/{CS_NAME}/0b1cd3e4-ca8f-11ef"
T0 = datetime(2026, 11, 25, 10, 15, 0, tzinfo=UTC)


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.elapsed = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.elapsed += seconds

    def monotonic(self) -> float:
        return self.elapsed

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.elapsed)


def make_waits(fake_time: FakeTime) -> Waits:
    return Waits(
        sleep=fake_time.sleep,
        clock=fake_time.monotonic,
        now=fake_time.now,
        poll_seconds=5,
        change_set_timeout_seconds=60,
        stack_timeout_seconds=600,
    )


def make_client() -> Any:
    return boto3.client(
        "cloudformation", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing"
    )


def console(answer: str | None = None, *, interrupt: bool = False) -> Console:
    """A console; with an answer it is interactive and answers the prompt with it; `interrupt`
    presses Ctrl-C at the prompt."""
    asked: list[str] = []

    def ask(prompt: str) -> str:
        asked.append(prompt)
        c.out.write(prompt)  # as the command line's console does
        if interrupt:
            raise KeyboardInterrupt
        return answer or ""

    c = Console(out=io.StringIO(), interactive=answer is not None or interrupt, ask=ask)
    c.asked = asked  # type: ignore[attr-defined]
    return c


def output(c: Console) -> str:
    return c.out.getvalue()  # type: ignore[attr-defined]


# --- templates -------------------------------------------------------------------------


def template(*, retain: bool = True, table_name: str = "market-data-${EnvironmentSuffix}", timeout: int = 900) -> dict:
    """A small template with the shapes the real one has: a table, a queue with a DLQ, a function,
    the function's Errors alarm and the DLQ's depth alarm, outputs built with Ref/GetAtt/Sub."""
    table: dict[str, Any] = {
        "Type": "AWS::DynamoDB::Table",
        "Properties": {
            "TableName": {"Fn::Sub": table_name},
            "BillingMode": "PAY_PER_REQUEST",
            "DeletionProtectionEnabled": retain,
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        },
    }
    if retain:
        table["DeletionPolicy"] = table["UpdateReplacePolicy"] = "Retain"
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Parameters": {
            "EnvironmentSuffix": {"Type": "String", "Default": "dev"},
            "CodeS3Key": {"Type": "String"},
        },
        "Resources": {
            "MarketDataTable": table,
            "ProcessingDLQ": {"Type": "AWS::SQS::Queue", "Properties": {"MessageRetentionPeriod": 1209600}},
            "ProcessingQueue": {
                "Type": "AWS::SQS::Queue",
                "Properties": {
                    "VisibilityTimeout": timeout,
                    "RedrivePolicy": {
                        "deadLetterTargetArn": {"Fn::GetAtt": ["ProcessingDLQ", "Arn"]},
                        "maxReceiveCount": 3,
                    },
                },
            },
            "DataIngestionFunction": {
                "Type": "AWS::Lambda::Function",
                "Properties": {"Code": {"S3Bucket": "artifacts", "S3Key": {"Ref": "CodeS3Key"}}},
            },
            "DataIngestionInvocationErrorAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Namespace": "AWS/Lambda",
                    "MetricName": "Errors",
                    "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": "DataIngestionFunction"}}],
                },
            },
            "ProcessingDLQAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "Namespace": "AWS/SQS",
                    "MetricName": "ApproximateNumberOfMessagesVisible",
                    "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["ProcessingDLQ", "QueueName"]}}],
                },
            },
        },
        "Outputs": {
            "dynamodbTableName": {"Value": {"Ref": "MarketDataTable"}},
            "dynamodbTableArn": {"Value": {"Fn::GetAtt": ["MarketDataTable", "Arn"]}},
            "processingQueueUrl": {"Value": {"Ref": "ProcessingQueue"}},
            "apiGatewayUrl": {
                "Value": {
                    "Fn::Sub": [
                        "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/${Stage}/ingest",
                        {"Api": "abc123", "Stage": {"Ref": "EnvironmentSuffix"}},
                    ]
                }
            },
        },
    }


PHYSICAL = {
    "MarketDataTable": ("market-data-dev", "AWS::DynamoDB::Table"),
    "ProcessingDLQ": (f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/ProcessingDLQ-dev", "AWS::SQS::Queue"),
    "ProcessingQueue": (f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/ProcessingQueue-dev", "AWS::SQS::Queue"),
    "DataIngestionFunction": ("DataIngestion-dev", "AWS::Lambda::Function"),
    "DataIngestionInvocationErrorAlarm": ("DataIngestion-dev-invocation-errors", "AWS::CloudWatch::Alarm"),
    "ProcessingDLQAlarm": ("ProcessingDLQ-dev-depth", "AWS::CloudWatch::Alarm"),
}


# --- responses, shaped as the CloudFormation API reference documents them -------------


def stack(status: str, **extra: Any) -> dict:
    return {
        "Stacks": [
            {
                "StackName": STACK,
                "StackId": STACK_ID,
                "CreationTime": T0 - timedelta(days=30),
                "StackStatus": status,
                **extra,
            }
        ]
    }


def event(logical_id, resource_type, state, at_seconds, reason=None, token="TOKEN", event_id=None):
    e = {
        "StackId": STACK_ID,
        "EventId": event_id or f"{logical_id}-{state}-{at_seconds}",
        "StackName": STACK,
        "LogicalResourceId": logical_id,
        "ResourceType": resource_type,
        "Timestamp": T0 + timedelta(seconds=at_seconds),
        "ResourceStatus": state,
    }
    if reason:
        e["ResourceStatusReason"] = reason
    if token:
        e["ClientRequestToken"] = token
    return e


class Flow:
    """Adds the calls of one deploy to a Stubber, in the order the deploy makes them."""

    def __init__(self, stubber: Stubber) -> None:
        self.s = stubber

    # preflight and inputs
    def no_stack(self, name: str = STACK) -> None:
        self.s.add_client_error(
            "describe_stacks", "ValidationError", f"Stack with id {name} does not exist", 400, {"StackName": name}
        )

    def existing_stack(self, parameters: dict[str, str] | None = None, **extra: Any) -> None:
        params = [{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()]
        self.s.add_response(
            "describe_stacks", stack("UPDATE_COMPLETE", Parameters=params, **extra), {"StackName": STACK}
        )

    def get_template(self, body: dict, *, stack_name: str = STACK_ID) -> None:
        # botocore decodes a JSON TemplateBody; the stub hands the string the API sends
        self.s.add_response(
            "get_template",
            {"TemplateBody": json.dumps(body), "StagesAvailable": ["Original", "Processed"]},
            {"StackName": stack_name, "TemplateStage": "Original"},
        )

    def list_resources(self, physical: dict[str, tuple[str, str]] | None = None, stack_name: str = STACK_ID) -> None:
        summaries = [
            {
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": pid,
                "ResourceType": kind,
                "LastUpdatedTimestamp": T0,
                "ResourceStatus": "UPDATE_COMPLETE",
            }
            for logical_id, (pid, kind) in sorted((physical or PHYSICAL).items())
        ]
        self.s.add_response("list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": stack_name})

    def create(self, change_set_type: str, *, rollback: dict | None = None, url: bool = False) -> None:
        params = {
            "StackName": STACK,
            "ChangeSetName": ANY,
            "ChangeSetType": change_set_type,
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            "Parameters": ANY,
            "Tags": ANY,
            "Description": ANY,
            "ClientToken": ANY,
            "IncludeNestedStacks": True,
            "TemplateURL" if url else "TemplateBody": ANY,
        }
        if rollback is not None:
            params["RollbackConfiguration"] = rollback
        self.s.add_response("create_change_set", {"Id": CS_ARN, "StackId": STACK_ID}, params)

    def status(self, state: str = "CREATE_COMPLETE", reason: str | None = None, execution: str = "AVAILABLE") -> None:
        response = change_set(
            change_set_id=CS_ARN, stack_id=STACK_ID, status=state, execution_status=execution, status_reason=reason
        )
        self.s.add_response("describe_change_set", response, {"ChangeSetName": CS_ARN})

    def pages(
        self,
        changes: list[dict],
        *,
        per_page: int = 2,
        parameters: dict[str, str] | None = None,
        include_values: bool = True,
        arn: str = CS_ARN,
        status_reason: str | None = None,
        **extra: Any,
    ) -> None:
        """DescribeChangeSet, `per_page` changes a page (NextToken), with or without property values."""
        chunks = [changes[i : i + per_page] for i in range(0, len(changes), per_page)] or [[]]
        for n, chunk in enumerate(chunks):
            response = change_set(
                *chunk,
                change_set_id=arn,
                stack_id=STACK_ID,
                parameters=parameters or {},
                status_reason=status_reason,
                CreationTime=T0,
                Capabilities=["CAPABILITY_IAM"],
                IncludeNestedStacks=True,
                **extra,
            )
            if n + 1 < len(chunks):
                response["NextToken"] = f"page-{n + 2}"
            params: dict[str, Any] = {"ChangeSetName": arn}
            if include_values:
                params["IncludePropertyValues"] = True
            if n:
                params["NextToken"] = f"page-{n + 1}"
            self.s.add_response("describe_change_set", response, params)

    def drift(self, ids: list[str], drifted: dict[str, str] | None = None, *, statuses=("DETECTION_COMPLETE",)) -> None:
        self.list_resources()
        self.s.add_response(
            "detect_stack_drift",
            {"StackDriftDetectionId": "drift-1"},
            {"StackName": STACK_ID, "LogicalResourceIds": sorted(ids)},
        )
        for state in statuses:
            self.s.add_response(
                "describe_stack_drift_detection_status",
                {
                    "StackId": STACK_ID,
                    "StackDriftDetectionId": "drift-1",
                    "DetectionStatus": state,
                    "Timestamp": T0,
                    **(
                        {"StackDriftStatus": "DRIFTED" if drifted else "IN_SYNC"}
                        if state != "DETECTION_IN_PROGRESS"
                        else {}
                    ),
                },
                {"StackDriftDetectionId": "drift-1"},
            )
        self.s.add_response(
            "describe_stack_resource_drifts",
            {
                "StackResourceDrifts": [
                    {
                        "StackId": STACK_ID,
                        "LogicalResourceId": logical_id,
                        "PhysicalResourceId": PHYSICAL.get(logical_id, (logical_id,))[0],
                        "ResourceType": PHYSICAL.get(logical_id, ("", "AWS::DynamoDB::Table"))[1],
                        "StackResourceDriftStatus": state,
                        "Timestamp": T0,
                        "PropertyDifferences": [
                            {
                                "PropertyPath": "/DeletionProtectionEnabled",
                                "ExpectedValue": "true",
                                "ActualValue": "false",
                                "DifferenceType": "NOT_EQUAL",
                            }
                        ]
                        if state == "MODIFIED"
                        else [],
                    }
                    for logical_id, state in (drifted or {}).items()
                ]
            },
            {"StackName": STACK_ID, "StackResourceDriftStatusFilters": ["MODIFIED", "DELETED"]},
        )

    def delete(self, *, review_in_progress: bool = False) -> None:
        self.s.add_response("delete_change_set", {}, {"ChangeSetName": CS_ARN})
        if review_in_progress:
            self.s.add_response("describe_stacks", stack("REVIEW_IN_PROGRESS"), {"StackName": STACK_ID})
            self.s.add_response("list_stack_resources", {"StackResourceSummaries": []}, {"StackName": STACK_ID})
            self.s.add_response("delete_stack", {}, {"StackName": STACK_ID})
        else:
            self.s.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK_ID})

    def set_policy(self, denied: list[str]) -> None:
        policy = stack_policy(denied)
        self.s.add_response(
            "set_stack_policy",
            {},
            {"StackName": STACK_ID, "StackPolicyBody": json.dumps(policy, sort_keys=True, separators=(",", ":"))},
        )

    def execute(self, final: str = "UPDATE_COMPLETE", *, outputs: list[dict] | None = None) -> None:
        """ExecuteChangeSet and one poll that finds the stack settled."""
        self.s.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": STACK_ID})
        self.s.add_response("execute_change_set", {}, {"ChangeSetName": CS_ARN, "ClientRequestToken": ANY})
        progress = (
            final.split("_")[0] + "_IN_PROGRESS" if not final.startswith("UPDATE_ROLLBACK") else "UPDATE_IN_PROGRESS"
        )
        self.s.add_response(
            "describe_stack_events",
            {
                "StackEvents": [
                    event(STACK, "AWS::CloudFormation::Stack", final, 9, token=None),
                    event(STACK, "AWS::CloudFormation::Stack", progress, 1, "User Initiated", token=None),
                ]
            },
            {"StackName": STACK_ID},
        )
        self.s.add_response(
            "describe_stacks", stack(final, **({"Outputs": outputs} if outputs else {})), {"StackName": STACK_ID}
        )
