"""Deploy-time values: the template's Parameters and Conditions, and physical naming."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import Equals, Not, Parameter, Ref, Sub, Template

from market_cfn.stack.config import (
    ENVIRONMENT_SUFFIX_PATTERN,
    ENVIRONMENT_TAG_PATTERN,
    FUNCTION_DEFAULT_MEMORY_MB,
    StackConfig,
)
from market_cfn.stack.schedule import SCHEDULE_PATTERN

HAS_ALARM_ACTION = "HasAlarmAction"
HAS_ALARM_EMAIL = "HasAlarmEmail"
CREATE_KEY = "CreateKmsKey"
FUNCTION_BASE_NAMES = ("DataIngestion", "DataProcessor", "DataAggregator")

# Lambda accepts 128-10,240 MB; accounts with reduced quotas (new accounts) accept at most
# 3,008, hence the default (Lambda developer guide, "Configure Lambda function memory").
MEMORY_MIN_MB, MEMORY_MAX_MB = 128, 10_240
# ScalingConfig.MaximumConcurrency: 2-1,000 (Lambda API reference, ScalingConfig). 5 leaves
# half of a new account's 10 concurrent executions to DataIngestion and DataAggregator.
PROCESSOR_MAX_CONCURRENCY = 5
# API Gateway's account-level throttle is 10,000 requests/s with a 5,000 burst in most
# regions and 2,500/1,250 in the newer ones (API Gateway developer guide, "Amazon API
# Gateway quotas"): the defaults stay at or below it everywhere. The original design's
# 10,000/10,000 remains available through the parameters.
API_RATE_LIMIT, API_BURST_LIMIT, API_LIMIT_MAX = 2_500, 1_250, 10_000
SCHEDULE = "rate(5 minutes)"
KMS_KEY_ARN_PATTERN = r"^(|arn:[a-z-]+:kms:[a-z0-9-]+:[0-9]{12}:key/[a-zA-Z0-9-]+)$"

# How long DynamoDB keeps points and bars after they are stored (TTL; docs/performance.md
# "Retention"): 0 keeps them for good. Points 35 days, the point-in-time recovery window, so
# whatever the table held can still be restored or exported; bars 180 days of 5-minute
# history (a bar is ~2.6-100 points' worth of storage). The cold tier (S3) keeps both beyond.
POINTS_RETENTION_DAYS, BARS_RETENTION_DAYS, RETENTION_MAX_DAYS = 35, 180, 36_600


@dataclass(frozen=True)
class Params:
    env_suffix: Parameter
    environment_tag: Parameter
    code_bucket: Parameter
    code_key: Parameter
    alarm_action_arn: Parameter
    alarm_email: Parameter
    memory_mb: dict[str, Parameter]
    processor_max_concurrency: Parameter
    aggregation_schedule: Parameter
    api_rate_limit: Parameter
    api_burst_limit: Parameter
    kms_key_arn: Parameter | None  # regulated profile only
    points_retention_days: Parameter
    bars_retention_days: Parameter

    def name(self, base: str) -> Sub:
        """`<base>-<EnvironmentSuffix>`, the physical name of a resource in this environment."""
        return Sub(f"{base}-${{Env}}", Env=self.env_suffix.ref())

    def account_name(self, base: str) -> Sub:
        """`<base>-<EnvironmentSuffix>-<Region>`: a name unique per account, not per region
        (CloudWatch dashboards: their ARN has no Region, arn:aws:cloudwatch::ACCOUNT:dashboard/NAME,
        and PutDashboard replaces a dashboard of the same name), so the same environment
        deployed in two regions of one account gets two."""
        return Sub(f"{base}-${{Env}}-${{AWS::Region}}", Env=self.env_suffix.ref())

    def global_name(self, base: str) -> Sub:
        """A name that must be unique per partition (S3 buckets): add account and region."""
        return Sub(f"{base}-${{Env}}-${{AWS::AccountId}}-${{AWS::Region}}", Env=self.env_suffix.ref())


def _number(t: Template, title: str, *, default: int, low: int, high: int, description: str) -> Parameter:
    # The default as a string, the form DescribeStacks reports every parameter value in, so
    # a redeploy that keeps it compares equal and sends nothing (market_cfn.deploy.changeset).
    return t.add_parameter(
        Parameter(title, Type="Number", Default=str(default), MinValue=low, MaxValue=high, Description=description)
    )


def add_parameters(t: Template, cfg: StackConfig) -> Params:
    env_suffix = t.add_parameter(
        Parameter(
            "EnvironmentSuffix",
            Type="String",
            Default=cfg.env_suffix,
            AllowedPattern=ENVIRONMENT_SUFFIX_PATTERN,
            ConstraintDescription="1-10 lower-case letters and digits, starting with a letter",
            Description="Suffix of every physical name (DataIngestion-<suffix>, market-data-<suffix>, ...).",
        )
    )
    environment_tag = t.add_parameter(
        Parameter(
            "EnvironmentTag",
            Type="String",
            Default=cfg.environment_tag,
            AllowedPattern=ENVIRONMENT_TAG_PATTERN,
            Description="Value of the Environment tag on every taggable resource.",
        )
    )
    code_bucket = t.add_parameter(
        Parameter(
            "CodeS3Bucket",
            Type="String",
            MinLength=3,
            MaxLength=63,
            Description="S3 bucket holding the Lambda code zip (filled in by bin/deploy).",
        )
    )
    code_key = t.add_parameter(
        Parameter(
            "CodeS3Key",
            Type="String",
            MinLength=1,
            MaxLength=1024,
            Description="S3 key of the Lambda code zip, named by its sha256 (filled in by bin/deploy).",
        )
    )
    alarm_action_arn = t.add_parameter(
        Parameter(
            "AlarmActionArn",
            Type="String",
            Default="",
            AllowedPattern=r"^(|arn:[a-z-]+:[a-z0-9-]+:.*)$",
            Description="Optional extra ARN (e.g. an SNS topic of your paging system) every alarm also "
            "notifies, besides the stack's alarm topic; empty for none.",
        )
    )
    alarm_email = t.add_parameter(
        Parameter(
            "AlarmEmail",
            Type="String",
            Default="",
            AllowedPattern=r"^(|[^@\s]+@[^@\s]+\.[^@\s]+)$",
            ConstraintDescription="empty, or one e-mail address",
            Description="Optional e-mail address subscribed to the alarm topic (SNS asks it to confirm).",
        )
    )
    memory_mb = {
        base: _number(
            t,
            f"{base}MemorySize",
            default=FUNCTION_DEFAULT_MEMORY_MB[base],
            low=MEMORY_MIN_MB,
            high=MEMORY_MAX_MB,
            description=f"Memory of {base} in MB (128-10240; accounts with reduced quotas accept at most 3008).",
        )
        for base in FUNCTION_BASE_NAMES
    }
    processor_max_concurrency = _number(
        t,
        "ProcessorMaximumConcurrency",
        default=PROCESSOR_MAX_CONCURRENCY,
        low=2,
        high=1000,
        description="Most concurrent DataProcessor invocations the queue's event source mapping starts (2-1000).",
    )
    aggregation_schedule = t.add_parameter(
        Parameter(
            "AggregationSchedule",
            Type="String",
            Default=SCHEDULE,
            AllowedPattern=SCHEDULE_PATTERN,
            ConstraintDescription="an EventBridge rate(VALUE UNIT) or six-field cron(...) expression as the "
            "EventBridge user guide documents them",
            Description="When DataAggregator runs: rate(5 minutes), or a market-hours cron such as "
            "cron(0/5 13-21 ? * MON-FRI *) (UTC).",
        )
    )
    api_rate_limit = _number(
        t,
        "ApiThrottlingRateLimit",
        default=API_RATE_LIMIT,
        low=1,
        high=API_LIMIT_MAX,
        description="POST /ingest steady-state requests per second (the original design: 10000).",
    )
    api_burst_limit = _number(
        t,
        "ApiThrottlingBurstLimit",
        default=API_BURST_LIMIT,
        low=1,
        high=API_LIMIT_MAX,
        description="POST /ingest burst, in requests (the original design: 10000).",
    )
    kms_key_arn = None
    if cfg.regulated:
        kms_key_arn = t.add_parameter(
            Parameter(
                "KmsKeyArn",
                Type="String",
                Default="",
                AllowedPattern=KMS_KEY_ARN_PATTERN,
                ConstraintDescription="empty, or the ARN of a symmetric KMS key in this account",
                Description="Empty: the stack creates its customer managed key. Or the ARN of an existing "
                "key, whose policy must grant what docs/design.md lists.",
            )
        )
        t.add_condition(CREATE_KEY, Equals(Ref(kms_key_arn), ""))
    points_retention_days = _number(
        t,
        "PointsRetentionDays",
        default=POINTS_RETENTION_DAYS,
        low=0,
        high=RETENTION_MAX_DAYS,
        description="Days DynamoDB keeps a point after storing it (TTL); 0 keeps points for good. Shortening "
        "it is guarded like a replacement.",
    )
    bars_retention_days = _number(
        t,
        "BarsRetentionDays",
        default=BARS_RETENTION_DAYS,
        low=0,
        high=RETENTION_MAX_DAYS,
        description="Days DynamoDB keeps a 5-minute bar after storing it (TTL); 0 keeps bars for good.",
    )
    t.add_condition(HAS_ALARM_ACTION, Not(Equals(Ref(alarm_action_arn), "")))
    t.add_condition(HAS_ALARM_EMAIL, Not(Equals(Ref(alarm_email), "")))
    return Params(
        env_suffix,
        environment_tag,
        code_bucket,
        code_key,
        alarm_action_arn,
        alarm_email,
        memory_mb,
        processor_max_concurrency,
        aggregation_schedule,
        api_rate_limit,
        api_burst_limit,
        kms_key_arn,
        points_retention_days,
        bars_retention_days,
    )
