"""Data stores: the raw-data bucket, the rejections bucket and the DynamoDB table."""

from __future__ import annotations

from awacs.aws import PolicyDocument
from troposphere import GetAtt, Sub, Template, awslambda, dynamodb, s3

from market_cfn.stack import policies
from market_cfn.stack.config import StackConfig
from market_cfn.stack.parameters import Params
from market_cfn.stack.protection import protect
from market_cfn.stack.suppressions import suppress

DATA_RETENTION_DAYS = 30
NONCURRENT_VERSION_RETENTION_DAYS = 7
INCOMPLETE_UPLOAD_DAYS = 1


def data_bucket_name(params: Params) -> Sub:
    return params.global_name("market-data")


def rejects_bucket_name(params: Params) -> Sub:
    return params.global_name("market-data-rejects")


def bucket_arn(name: Sub, suffix: str = "") -> Sub:
    """The ARN of a bucket from its name, without a reference to the bucket resource.

    Roles and the S3 invoke permission must name the bucket before it exists: the bucket's
    notification configuration needs the function, whose role needs the bucket ARN.
    Building the ARN from the deterministic name breaks that cycle.
    """
    return Sub(f"arn:${{AWS::Partition}}:s3:::${{Name}}{suffix}", Name=name)


def expiring_lifecycle(rule_id: str, *, days: int, noncurrent_days: int) -> s3.LifecycleConfiguration:
    """Expire objects after `days`, their noncurrent versions `noncurrent_days` later."""
    return s3.LifecycleConfiguration(
        Rules=[
            s3.LifecycleRule(
                Id=rule_id,
                Status="Enabled",
                ExpirationInDays=days,
                # Versioning keeps every overwritten or expired object as a noncurrent
                # version; without this rule they would be kept (and billed) forever.
                NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(NoncurrentDays=noncurrent_days),
                AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                    DaysAfterInitiation=INCOMPLETE_UPLOAD_DAYS
                ),
            )
        ]
    )


def private_bucket(logical_id: str, *, lifecycle: s3.LifecycleConfiguration, **properties: object) -> s3.Bucket:
    """A versioned, SSE-S3-encrypted bucket with every public-access block on and ACLs off."""
    return s3.Bucket(
        logical_id,
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        BucketEncryption=s3.BucketEncryption(
            ServerSideEncryptionConfiguration=[
                s3.ServerSideEncryptionRule(
                    ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
                )
            ]
        ),
        LifecycleConfiguration=lifecycle,
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
        ),
        OwnershipControls=s3.OwnershipControls(Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        **properties,
    )


def _bucket(
    logical_id: str, cfg: StackConfig, *, name: Sub, notification: s3.NotificationConfiguration | None
) -> s3.Bucket:
    bucket = private_bucket(
        logical_id,
        BucketName=name,
        lifecycle=expiring_lifecycle(
            "ExpireRawData", days=DATA_RETENTION_DAYS, noncurrent_days=NONCURRENT_VERSION_RETENTION_DAYS
        ),
    )
    suppress(
        bucket,
        checkov={
            "CKV_AWS_18": "No server access logging: it needs a second log bucket per bucket; "
            "object-level audit belongs in the account's CloudTrail data events.",
        },
    )
    if notification is not None:
        bucket.NotificationConfiguration = notification
    return protect(bucket, retain=cfg.retain_data)


def _tls_only_policy(logical_id: str, bucket: s3.Bucket, name: Sub) -> s3.BucketPolicy:
    return s3.BucketPolicy(
        logical_id,
        Bucket=bucket.ref(),
        PolicyDocument=PolicyDocument(
            Version=policies.VERSION,
            Statement=[
                policies.deny_insecure_transport(
                    "DenyInsecureTransport", "s3", [bucket_arn(name), bucket_arn(name, "/*")]
                )
            ],
        ),
    )


def add_data_bucket(t: Template, cfg: StackConfig, params: Params, *, ingestion_fn: awslambda.Function) -> s3.Bucket:
    """Raw market data lands here; every ObjectCreated event invokes DataIngestion."""
    name = data_bucket_name(params)
    permission = t.add_resource(
        awslambda.Permission(
            "DataIngestionS3Permission",
            FunctionName=ingestion_fn.ref(),
            Action="lambda:InvokeFunction",
            Principal="s3.amazonaws.com",
            SourceArn=bucket_arn(name),
            SourceAccount=Sub("${AWS::AccountId}"),
        )
    )
    notification = s3.NotificationConfiguration(
        LambdaConfigurations=[s3.LambdaConfigurations(Event="s3:ObjectCreated:*", Function=GetAtt(ingestion_fn, "Arn"))]
    )
    bucket = t.add_resource(_bucket("DataBucket", cfg, name=name, notification=notification))
    # S3 checks that it may invoke the function when the notification is configured.
    bucket.DependsOn = [permission.title]
    t.add_resource(_tls_only_policy("DataBucketPolicy", bucket, name))
    return bucket


def add_rejects_bucket(t: Template, cfg: StackConfig, params: Params) -> s3.Bucket:
    """Rejection reports, one per source object. No notifications: writing here never
    re-triggers ingestion."""
    name = rejects_bucket_name(params)
    bucket = t.add_resource(_bucket("RejectsBucket", cfg, name=name, notification=None))
    t.add_resource(_tls_only_policy("RejectsBucketPolicy", bucket, name))
    return bucket


def add_table(t: Template, cfg: StackConfig, params: Params) -> dynamodb.Table:
    """Points keyed by (symbol, timestamp ms); 5-minute aggregates under "<symbol>#5m"."""
    table = dynamodb.Table(
        "MarketDataTable",
        TableName=params.name("market-data"),
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            dynamodb.AttributeDefinition(AttributeName="symbol", AttributeType="S"),
            dynamodb.AttributeDefinition(AttributeName="timestamp", AttributeType="N"),
        ],
        KeySchema=[
            dynamodb.KeySchema(AttributeName="symbol", KeyType="HASH"),
            dynamodb.KeySchema(AttributeName="timestamp", KeyType="RANGE"),
        ],
        PointInTimeRecoverySpecification=dynamodb.PointInTimeRecoverySpecification(PointInTimeRecoveryEnabled=True),
        DeletionProtectionEnabled=cfg.retain_data,
    )
    suppress(
        table,
        checkov={
            "CKV_AWS_119": "Encrypted at rest with the AWS owned key (DynamoDB default); a customer "
            "managed KMS key adds cost per request and a key policy to run.",
        },
    )
    return t.add_resource(protect(table, retain=cfg.retain_data))
