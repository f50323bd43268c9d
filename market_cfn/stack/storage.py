"""Data stores: the raw-data bucket, the rejections bucket and the DynamoDB table."""

from __future__ import annotations

from awacs.aws import PolicyDocument
from troposphere import GetAtt, Sub, Template, awslambda, dynamodb, s3

from handlers import contract
from market_cfn.stack import policies
from market_cfn.stack.config import REGULATED_LOG_RETENTION_DAYS, StackConfig
from market_cfn.stack.encryption import Encryption
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


def _encryption(key_arn: object | None) -> s3.BucketEncryption:
    if key_arn is None:
        rule = s3.ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(SSEAlgorithm="AES256")
        )
    else:
        # SSE-KMS with an S3 Bucket Key: S3 asks KMS for a bucket-level key instead of one
        # data key per object, cutting KMS requests (and their cost) by up to 99% (S3 user
        # guide, "Reducing the cost of SSE-KMS with Amazon S3 Bucket Keys").
        rule = s3.ServerSideEncryptionRule(
            ServerSideEncryptionByDefault=s3.ServerSideEncryptionByDefault(
                SSEAlgorithm="aws:kms", KMSMasterKeyID=key_arn
            ),
            BucketKeyEnabled=True,
        )
    return s3.BucketEncryption(ServerSideEncryptionConfiguration=[rule])


def private_bucket(
    logical_id: str, *, lifecycle: s3.LifecycleConfiguration, key_arn: object | None = None, **properties: object
) -> s3.Bucket:
    """A versioned bucket with every public-access block on and ACLs off, encrypted with
    SSE-S3, or SSE-KMS under `key_arn`."""
    return s3.Bucket(
        logical_id,
        VersioningConfiguration=s3.VersioningConfiguration(Status="Enabled"),
        BucketEncryption=_encryption(key_arn),
        LifecycleConfiguration=lifecycle,
        PublicAccessBlockConfiguration=s3.PublicAccessBlockConfiguration(
            BlockPublicAcls=True, BlockPublicPolicy=True, IgnorePublicAcls=True, RestrictPublicBuckets=True
        ),
        OwnershipControls=s3.OwnershipControls(Rules=[s3.OwnershipControlsRule(ObjectOwnership="BucketOwnerEnforced")]),
        **properties,
    )


def _bucket(
    logical_id: str,
    cfg: StackConfig,
    enc: Encryption,
    *,
    name: Sub,
    notification: s3.NotificationConfiguration | None,
    access_logs: s3.Bucket | None,
    lifecycle: s3.LifecycleConfiguration | None = None,
) -> s3.Bucket:
    bucket = private_bucket(
        logical_id,
        BucketName=name,
        key_arn=enc.data_key_arn,
        lifecycle=lifecycle
        or expiring_lifecycle(
            "ExpireRawData", days=DATA_RETENTION_DAYS, noncurrent_days=NONCURRENT_VERSION_RETENTION_DAYS
        ),
    )
    if access_logs is not None:
        bucket.LoggingConfiguration = s3.LoggingConfiguration(
            DestinationBucketName=access_logs.ref(), LogFilePrefix=f"{logical_id}/"
        )
    else:
        suppress(
            bucket,
            checkov={
                "CKV_AWS_18": "No server access logging in the default profile: it needs a log bucket; "
                "the regulated profile logs both buckets to one.",
            },
        )
    if notification is not None:
        bucket.NotificationConfiguration = notification
    return protect(bucket, retain=cfg.retains_data)


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


def history_bucket_name(params: Params) -> Sub:
    return params.global_name("market-data-history")


def access_logs_bucket_name(params: Params) -> Sub:
    return params.global_name("market-data-access-logs")


def add_access_logs_bucket(t: Template, cfg: StackConfig, params: Params) -> s3.Bucket:
    """Regulated profile: the S3 server access logs of the data, rejects and history buckets, kept 400 days.

    S3 server access logging writes only to a bucket encrypted with SSE-S3 (S3 user guide,
    "Enabling Amazon S3 server access logging": SSE-KMS is not supported on the target), and
    with ACLs disabled it needs a bucket policy for logging.s3.amazonaws.com.
    """
    name = access_logs_bucket_name(params)
    bucket = private_bucket(
        "AccessLogsBucket",
        BucketName=name,
        lifecycle=expiring_lifecycle(
            "ExpireAccessLogs", days=REGULATED_LOG_RETENTION_DAYS, noncurrent_days=NONCURRENT_VERSION_RETENTION_DAYS
        ),
    )
    suppress(
        bucket,
        checkov={"CKV_AWS_18": "This is the access-log bucket itself: logging it to itself would loop."},
    )
    bucket = t.add_resource(protect(bucket, retain=True))
    t.add_resource(
        s3.BucketPolicy(
            "AccessLogsBucketPolicy",
            Bucket=bucket.ref(),
            PolicyDocument=PolicyDocument(
                Version=policies.VERSION,
                Statement=[
                    policies.allow_server_access_logs(
                        "AllowServerAccessLogs",
                        bucket_arn(name, "/*"),
                        [
                            bucket_arn(data_bucket_name(params)),
                            bucket_arn(rejects_bucket_name(params)),
                            bucket_arn(history_bucket_name(params)),
                        ],
                    ),
                    policies.deny_insecure_transport(
                        "DenyInsecureTransport", "s3", [bucket_arn(name), bucket_arn(name, "/*")]
                    ),
                ],
            ),
        )
    )
    return bucket


def add_data_bucket(
    t: Template,
    cfg: StackConfig,
    params: Params,
    enc: Encryption,
    *,
    ingestion_fn: awslambda.Function,
    access_logs: s3.Bucket | None,
) -> s3.Bucket:
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
    bucket = t.add_resource(
        _bucket("DataBucket", cfg, enc, name=name, notification=notification, access_logs=access_logs)
    )
    # S3 checks that it may invoke the function when the notification is configured.
    bucket.DependsOn = [permission.title]
    t.add_resource(_tls_only_policy("DataBucketPolicy", bucket, name))
    return bucket


def add_rejects_bucket(
    t: Template, cfg: StackConfig, params: Params, enc: Encryption, *, access_logs: s3.Bucket | None
) -> s3.Bucket:
    """Rejection reports, one per source object. No notifications: writing here never
    re-triggers ingestion."""
    name = rejects_bucket_name(params)
    bucket = t.add_resource(_bucket("RejectsBucket", cfg, enc, name=name, notification=None, access_logs=access_logs))
    t.add_resource(_tls_only_policy("RejectsBucketPolicy", bucket, name))
    return bucket


def add_history_bucket(
    t: Template, cfg: StackConfig, params: Params, enc: Encryption, *, access_logs: s3.Bucket | None
) -> s3.Bucket:
    """The cold tier: DynamoDB exports of the table (`python -m market_cfn history`), kept for good.

    Only noncurrent versions and unfinished uploads expire: the exports are the history of points
    and bars past their TTL (docs/performance.md "History beyond the table"). No notification:
    an export never triggers ingestion."""
    name = history_bucket_name(params)
    lifecycle = s3.LifecycleConfiguration(
        Rules=[
            s3.LifecycleRule(
                Id="KeepHistory",
                Status="Enabled",
                NoncurrentVersionExpiration=s3.NoncurrentVersionExpiration(
                    NoncurrentDays=NONCURRENT_VERSION_RETENTION_DAYS
                ),
                AbortIncompleteMultipartUpload=s3.AbortIncompleteMultipartUpload(
                    DaysAfterInitiation=INCOMPLETE_UPLOAD_DAYS
                ),
            )
        ]
    )
    bucket = t.add_resource(
        _bucket("HistoryBucket", cfg, enc, name=name, notification=None, access_logs=access_logs, lifecycle=lifecycle)
    )
    t.add_resource(_tls_only_policy("HistoryBucketPolicy", bucket, name))
    return bucket


def add_table(t: Template, cfg: StackConfig, params: Params, enc: Encryption) -> dynamodb.Table:
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
        # Items carry their expiry (epoch seconds) in this attribute when PointsRetentionDays /
        # BarsRetentionDays are not 0; DynamoDB deletes expired items at no cost, typically
        # within a few days (developer guide, "Using time to live (TTL) in DynamoDB").
        TimeToLiveSpecification=dynamodb.TimeToLiveSpecification(AttributeName=contract.TTL_ATTRIBUTE, Enabled=True),
        DeletionProtectionEnabled=cfg.retains_data,
    )
    if enc.data_key_arn is not None:
        table.SSESpecification = dynamodb.SSESpecification(
            SSEEnabled=True, SSEType="KMS", KMSMasterKeyId=enc.data_key_arn
        )
    else:
        suppress(
            table,
            checkov={
                "CKV_AWS_119": "Encrypted at rest with the AWS owned key (DynamoDB default); a customer "
                "managed KMS key (the regulated profile) adds cost per request and a key policy to run.",
            },
        )
    return t.add_resource(protect(table, retain=cfg.retains_data))
