"""IAM as pure functions returning awacs statements (stacker_blueprints style).

Allow statements name only the actions a function's code (or the Lambda service on its
behalf) calls, on this stack's resource ARNs. Every role also carries the explicit-deny
set below, so even a policy widened by mistake later cannot destroy data stores or
rewrite their protection.
"""

from __future__ import annotations

from collections.abc import Iterable

import awacs.awslambda as awslambda
import awacs.cloudwatch as cloudwatch
import awacs.dynamodb as dynamodb
import awacs.events as events
import awacs.iam as iam
import awacs.kms as kms
import awacs.logs as logs
import awacs.s3 as s3
import awacs.sqs as sqs
import awacs.xray as xray
from awacs.aws import (
    Action,
    Allow,
    ArnEquals,
    ArnLike,
    Bool,
    Condition,
    Deny,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
)
from awacs.sts import AssumeRole
from troposphere import Sub
from troposphere.iam import Policy as RolePolicy

VERSION = "2012-10-17"

# Actions the Lambda service or runtime performs with a function's execution role, not
# the handler code: writing its logs, sending X-Ray segments, the SQS event source
# mapping polling the queue, and the asynchronous-invocation DLQ. Keyed by the role's
# logical ID. This is the one place the least-privilege test subtracts from a role's
# Allow actions before comparing them with what the handler code actually called.
_RUNTIME_COMMON = frozenset(
    {"logs:CreateLogStream", "logs:PutLogEvents", "xray:PutTraceSegments", "xray:PutTelemetryRecords"}
)
RUNTIME_ACTIONS: dict[str, frozenset[str]] = {
    # S3 invokes DataIngestion asynchronously: failures go to its DeadLetterConfig queue.
    "DataIngestionRole": _RUNTIME_COMMON | {"sqs:SendMessage"},
    # The event source mapping polls ProcessingQueue with the function's role
    # (the actions of the AWSLambdaSQSQueueExecutionRole managed policy).
    "DataProcessorRole": _RUNTIME_COMMON | {"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"},
    # EventBridge invokes DataAggregator asynchronously: failures go to its DLQ.
    "DataAggregatorRole": _RUNTIME_COMMON | {"sqs:SendMessage"},
}


def allow(sid: str, actions: Iterable[Action], resources: Iterable[object]) -> Statement:
    return Statement(Sid=sid, Effect=Allow, Action=list(actions), Resource=list(resources))


def lambda_assume_role_policy() -> PolicyDocument:
    return PolicyDocument(
        Version=VERSION,
        Statement=[
            Statement(
                Effect=Allow,
                Principal=Principal("Service", ["lambda.amazonaws.com"]),
                Action=[AssumeRole],
            )
        ],
    )


def runtime_statements(log_group_arn: object) -> list[Statement]:
    """Logs for the function's own log group; X-Ray, whose actions take no resource ARN."""
    return [
        allow("WriteOwnLogs", [logs.CreateLogStream, logs.PutLogEvents], [log_group_arn]),
        # xray:PutTraceSegments and PutTelemetryRecords support no resource-level
        # permissions (Service Authorization Reference, "Actions defined by AWS X-Ray"),
        # so "*" is the only possible resource.
        allow("WriteTraces", [xray.PutTraceSegments, xray.PutTelemetryRecords], ["*"]),
    ]


def read_objects(sid: str, objects_arn: object) -> Statement:
    # GetObjectVersion: DataIngestion reads the exact object version named in the S3
    # event, so a later overwrite of the key cannot change what one event ingests.
    return allow(sid, [s3.GetObject, s3.GetObjectVersion], [objects_arn])


def list_versions(sid: str, bucket: object) -> Statement:
    # ListObjectVersions is authorized by s3:ListBucketVersions on the bucket (S3 API
    # Reference, ListObjectVersions): DataIngestion finds a key's newest data version
    # when its current version is a delete marker (docs/input-contract.md: overwritten keys).
    return allow(sid, [s3.ListBucketVersions], [bucket])


def write_objects(sid: str, objects_arn: object) -> Statement:
    return allow(sid, [s3.PutObject], [objects_arn])


def send_messages(sid: str, queue_arns: Iterable[object]) -> Statement:
    # SendMessageBatch is authorized by sqs:SendMessage (there is no separate action).
    return allow(sid, [sqs.SendMessage], queue_arns)


def consume_queue_by_mapping(sid: str, queue_arn: object) -> Statement:
    return allow(sid, [sqs.ReceiveMessage, sqs.DeleteMessage, sqs.GetQueueAttributes], [queue_arn])


def drain_and_requeue(sid: str, queue_arn: object) -> Statement:
    # DeleteMessageBatch is authorized by sqs:DeleteMessage.
    return allow(sid, [sqs.ReceiveMessage, sqs.DeleteMessage, sqs.SendMessage], [queue_arn])


def kms_via_services(sid: str, key_arn: object, services: Iterable[str]) -> Statement:
    """Decrypt and GenerateDataKey on the stack's key, only through the named services
    (kms:ViaService, e.g. sqs.<region>.amazonaws.com): the role cannot use the key directly."""
    return Statement(
        Sid=sid,
        Effect=Allow,
        Action=[kms.Decrypt, kms.GenerateDataKey],
        Resource=[key_arn],
        Condition=Condition(
            StringEquals("kms:ViaService", [Sub(f"{service}.${{AWS::Region}}.amazonaws.com") for service in services])
        ),
    )


def write_items(sid: str, table_arn: object) -> Statement:
    return allow(sid, [dynamodb.BatchWriteItem], [table_arn])


def query_items(sid: str, table_arn: object) -> Statement:
    return allow(sid, [dynamodb.Query], [table_arn])


def read_points_and_versions(sid: str, table_arn: object) -> Statement:
    # DataAggregator: Query a window's points, BatchGetItem the stored aggregates' versions.
    return allow(sid, [dynamodb.Query, dynamodb.BatchGetItem], [table_arn])


def put_items(sid: str, table_arn: object) -> Statement:
    # Conditional writes (optimistic concurrency): BatchWriteItem takes no condition.
    return allow(sid, [dynamodb.PutItem], [table_arn])


def put_events(sid: str, bus_arn: object) -> Statement:
    return allow(sid, [events.PutEvents], [bus_arn])


# Destructive or protection-weakening operations no pipeline function ever needs. Denied
# on every resource: an explicit Deny wins over any Allow, including one added later.
DESTRUCTIVE_ACTIONS: dict[str, list[Action]] = {
    "DenyS3Destruction": [
        s3.DeleteBucket,
        s3.DeleteBucketPolicy,
        s3.PutBucketPolicy,
        s3.PutBucketAcl,
        s3.PutBucketPublicAccessBlock,
        s3.PutEncryptionConfiguration,
        s3.PutBucketVersioning,
        s3.PutLifecycleConfiguration,
        s3.DeleteObject,
        s3.DeleteObjectVersion,
    ],
    "DenyDynamoDBDestruction": [
        dynamodb.DeleteTable,
        dynamodb.UpdateTable,
        dynamodb.DeleteBackup,
        dynamodb.UpdateContinuousBackups,
        dynamodb.UpdateTimeToLive,
        dynamodb.DeleteItem,
    ],
    "DenySQSDestruction": [
        sqs.DeleteQueue,
        sqs.PurgeQueue,
        sqs.SetQueueAttributes,
        sqs.AddPermission,
        sqs.RemovePermission,
    ],
    "DenyLogsDestruction": [
        logs.DeleteLogGroup,
        logs.DeleteLogStream,
        logs.DeleteRetentionPolicy,
        logs.PutRetentionPolicy,
        logs.DeleteMetricFilter,
    ],
    "DenyEventsDestruction": [
        events.DeleteEventBus,
        events.DeleteRule,
        events.DisableRule,
        events.RemoveTargets,
        events.DeleteArchive,
    ],
    "DenyKeyDestruction": [
        kms.ScheduleKeyDeletion,
        kms.DisableKey,
        kms.DisableKeyRotation,
        kms.PutKeyPolicy,
    ],
    "DenyTampering": [
        awslambda.DeleteFunction,
        awslambda.UpdateFunctionCode,
        awslambda.UpdateFunctionConfiguration,
        awslambda.AddPermission,
        awslambda.RemovePermission,
        iam.PassRole,
        iam.PutRolePolicy,
        iam.AttachRolePolicy,
        iam.DeleteRolePolicy,
        iam.DetachRolePolicy,
        iam.UpdateAssumeRolePolicy,
        iam.CreateAccessKey,
        cloudwatch.DeleteAlarms,
        cloudwatch.DisableAlarmActions,
    ],
}


def deny_destructive_statements() -> list[Statement]:
    return [
        Statement(Sid=sid, Effect=Deny, Action=list(actions), Resource=["*"])
        for sid, actions in DESTRUCTIVE_ACTIONS.items()
    ]


def role_policy(name: str, statements: list[Statement]) -> RolePolicy:
    """The role's one inline policy: its Allow statements, then the explicit denies."""
    return RolePolicy(
        PolicyName=name,
        PolicyDocument=PolicyDocument(Version=VERSION, Statement=statements + deny_destructive_statements()),
    )


def deny_insecure_transport(sid: str, service: str, resources: Iterable[object]) -> Statement:
    """Deny every request that does not use TLS (aws:SecureTransport = false)."""
    return Statement(
        Sid=sid,
        Effect=Deny,
        Principal=Principal("*"),
        Action=[Action(service, "*")],
        Resource=list(resources),
        Condition=Condition(Bool("aws:SecureTransport", False)),
    )


def allow_service_send(sid: str, service_principal: str, queue_arn: object, source_arns: list[object]) -> Statement:
    """A queue policy statement letting an AWS service (EventBridge) send from named sources only."""
    return Statement(
        Sid=sid,
        Effect=Allow,
        Principal=Principal("Service", [service_principal]),
        Action=[sqs.SendMessage],
        Resource=[queue_arn],
        Condition=Condition(ArnEquals("aws:SourceArn", source_arns)),
    )


def allow_server_access_logs(sid: str, objects_arn: object, source_bucket_arns: list[object]) -> Statement:
    """The log bucket's grant to S3's logging service, for this account's named buckets only
    (S3 user guide, "Permissions for log delivery")."""
    return Statement(
        Sid=sid,
        Effect=Allow,
        Principal=Principal("Service", ["logging.s3.amazonaws.com"]),
        Action=[s3.PutObject],
        Resource=[objects_arn],
        Condition=Condition(
            [
                ArnLike("aws:SourceArn", source_bucket_arns),
                StringEquals("aws:SourceAccount", Sub("${AWS::AccountId}")),
            ]
        ),
    )
