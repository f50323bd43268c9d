"""The stack's customer managed KMS key and its key policy.

Both profiles encrypt the alarm topic with it (CloudWatch alarms cannot publish to a topic
under the AWS managed aws/sns key, whose policy cannot grant cloudwatch.amazonaws.com:
CloudWatch user guide, "Using Amazon SNS with encrypted topics"). The regulated profile
also encrypts both buckets, the table, every queue, every log group, the event bus and
its archive with it. With `KmsKeyArn` (regulated only) an existing key replaces it.

The key policy names exactly the services that use the key on the stack's behalf, each
bound to this stack's resources through the encryption context where the service
documents one; the functions get their grants through IAM (policies.kms_via_services),
which the first statement enables.
"""

from __future__ import annotations

from dataclasses import dataclass

import awacs.kms as kms_actions
from awacs.aws import (
    Allow,
    ArnLike,
    Condition,
    PolicyDocument,
    Principal,
    Statement,
    StringEquals,
)
from troposphere import GetAtt, If, Ref, Sub, Template, kms

from market_cfn.stack import policies
from market_cfn.stack.config import StackConfig
from market_cfn.stack.parameters import CREATE_KEY, FUNCTION_BASE_NAMES, Params
from market_cfn.stack.protection import protect

# The names these services encrypt under, as ARNs built from the deterministic names
# (a Ref to the resources would be a cycle: each of them names the key).
API_ACCESS_LOG_GROUP = "/aws/apigateway/MarketDataApi-${Env}/access"
EVENT_BUS = "market-data-${Env}"
EVENTS_TARGET_QUEUES = ("AggregationQueue", "InvocationDLQ")
KEY_ADMINISTRATION_ACTIONS = [
    "Create*",
    "Describe*",
    "Enable*",
    "List*",
    "Put*",
    "Update*",
    "Revoke*",
    "Disable*",
    "Get*",
    "Delete*",
    "TagResource",
    "UntagResource",
    "ScheduleKeyDeletion",
    "CancelKeyDeletion",
    "RotateKeyOnDemand",
]
KEY_USE_ACTIONS = ["Encrypt", "Decrypt", "ReEncrypt*", "GenerateDataKey*"]


@dataclass(frozen=True)
class Encryption:
    """key_arn: the key's ARN expression; data_key_arn: the same in the regulated profile,
    None in the default one (data stores keep SSE-S3 and AWS owned keys there)."""

    key_arn: object
    data_key_arn: object | None
    key: kms.Key | None


def _sub(text: str, params: Params) -> Sub:
    return Sub(text, Env=params.env_suffix.ref())


def _log_group_arns(params: Params) -> list[Sub]:
    names = [f"/aws/lambda/{base}-${{Env}}" for base in FUNCTION_BASE_NAMES] + [API_ACCESS_LOG_GROUP]
    arns = [
        _sub(f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:{n}", params) for n in names
    ]
    # API Gateway's execution logs: API-Gateway-Execution-Logs_<rest api id>/<stage>.
    arns.append(
        _sub(
            "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:API-Gateway-Execution-Logs_*/${Env}",
            params,
        )
    )
    return arns


def key_policy(cfg: StackConfig, params: Params) -> PolicyDocument:
    account = Sub("${AWS::AccountId}")
    statements = [
        # The default key policy's statement, with its actions spelled out: IAM policies in
        # this account decide who administers and uses the key (KMS developer guide,
        # "Default key policy"); the functions' grants are such IAM policies. The console's
        # key-administrator and key-user action sets, instead of kms:*, so bin/deploy's
        # guard sees no wildcard action (and no kms:* can slip into a review unnoticed).
        Statement(
            Sid="EnableIamPolicies",
            Effect=Allow,
            Principal=Principal("AWS", [Sub("arn:${AWS::Partition}:iam::${AWS::AccountId}:root")]),
            Action=[kms_actions.Action(a) for a in KEY_ADMINISTRATION_ACTIONS + KEY_USE_ACTIONS],
            Resource=["*"],
        ),
        # Alarms publishing to the encrypted alarm topic, as documented (CloudWatch user
        # guide, "Using Amazon SNS with encrypted topics"): no condition, the topic policy
        # admits this account's alarms only.
        Statement(
            Sid="CloudWatchAlarmsToEncryptedTopic",
            Effect=Allow,
            Principal=Principal("Service", ["cloudwatch.amazonaws.com"]),
            Action=[kms_actions.Decrypt, kms_actions.GenerateDataKey],
            Resource=["*"],
        ),
    ]
    if cfg.regulated:
        statements += [
            # CloudWatch Logs encrypts each log group under its ARN as encryption context
            # (CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS").
            Statement(
                Sid="CloudWatchLogsForThisStacksLogGroups",
                Effect=Allow,
                Principal=Principal("Service", [Sub("logs.${AWS::Region}.amazonaws.com")]),
                Action=[
                    kms_actions.Encrypt,
                    kms_actions.Decrypt,
                    kms_actions.ReEncryptFrom,
                    kms_actions.ReEncryptTo,
                    kms_actions.GenerateDataKey,
                ],
                Resource=["*"],
                Condition=Condition(ArnLike("kms:EncryptionContext:aws:logs:arn", _log_group_arns(params))),
            ),
            # EventBridge checks the key when the bus and archive are configured.
            Statement(
                Sid="EventBridgeDescribeKey",
                Effect=Allow,
                Principal=Principal("Service", ["events.amazonaws.com"]),
                Action=[kms_actions.DescribeKey],
                Resource=["*"],
                Condition=Condition(StringEquals("aws:SourceAccount", account)),
            ),
            # The bus and its archive encrypt events under the bus ARN (EventBridge user
            # guide, "Authorizing EventBridge to use a customer managed key", "Encrypting
            # EventBridge archives").
            Statement(
                Sid="EventBridgeBusAndArchive",
                Effect=Allow,
                Principal=Principal("Service", ["events.amazonaws.com"]),
                Action=[
                    kms_actions.GenerateDataKey,
                    kms_actions.Decrypt,
                    kms_actions.ReEncryptFrom,
                    kms_actions.ReEncryptTo,
                ],
                Resource=["*"],
                Condition=Condition(
                    StringEquals(
                        "kms:EncryptionContext:aws:events:event-bus:arn",
                        _sub(
                            f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:event-bus/{EVENT_BUS}",
                            params,
                        ),
                    )
                ),
            ),
            # The rules deliver to encrypted queues (AggregationQueue, and InvocationDLQ as
            # their dead-letter queue): SQS developer guide, "Enable compatibility between
            # event sources from AWS services and encrypted queues"; SQS encrypts under the
            # queue ARN as encryption context.
            Statement(
                Sid="EventBridgeToEncryptedQueues",
                Effect=Allow,
                Principal=Principal("Service", ["events.amazonaws.com"]),
                Action=[kms_actions.GenerateDataKey, kms_actions.Decrypt],
                Resource=["*"],
                Condition=Condition(
                    StringEquals(
                        "kms:EncryptionContext:aws:sqs:arn",
                        [
                            _sub(
                                f"arn:${{AWS::Partition}}:sqs:${{AWS::Region}}:${{AWS::AccountId}}:{q}-${{Env}}", params
                            )
                            for q in EVENTS_TARGET_QUEUES
                        ],
                    )
                ),
            ),
        ]
    return PolicyDocument(Version=policies.VERSION, Statement=statements)


def add_key(t: Template, cfg: StackConfig, params: Params) -> Encryption:
    """The stack's key (or, regulated with KmsKeyArn set, the operator's)."""
    key = kms.Key(
        "PipelineKey",
        Description=Sub(
            "market_cfn ${Env}: " + ("data, queues, logs, bus, alarm topic" if cfg.regulated else "alarm topic"),
            Env=params.env_suffix.ref(),
        ),
        EnableKeyRotation=True,
        KeyPolicy=key_policy(cfg, params),
        # Deleting a key makes what it encrypted unreadable: the regulated key is kept;
        # the default one (alarm topic only) is scheduled for deletion after 7 days.
        PendingWindowInDays=30 if cfg.regulated else 7,
    )
    protect(key, retain=cfg.regulated)
    alias = kms.Alias("PipelineKeyAlias", AliasName=params.name("alias/market-data"), TargetKeyId=key.ref())
    if params.kms_key_arn is None:
        t.add_resource(key)
        t.add_resource(alias)
        arn: object = GetAtt(key, "Arn")
    else:
        key.Condition = CREATE_KEY
        alias.Condition = CREATE_KEY
        t.add_resource(key)
        t.add_resource(alias)
        arn = If(CREATE_KEY, GetAtt(key, "Arn"), Ref(params.kms_key_arn))
    return Encryption(key_arn=arn, data_key_arn=arn if cfg.regulated else None, key=key)
