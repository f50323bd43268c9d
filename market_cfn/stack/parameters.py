"""Deploy-time values: the template's Parameters and Conditions, and physical naming."""

from __future__ import annotations

from dataclasses import dataclass

from troposphere import Equals, Not, Parameter, Ref, Sub, Template

from market_cfn.stack.config import ENVIRONMENT_SUFFIX_PATTERN, ENVIRONMENT_TAG_PATTERN, StackConfig

HAS_ALARM_ACTION = "HasAlarmAction"


@dataclass(frozen=True)
class Params:
    env_suffix: Parameter
    environment_tag: Parameter
    code_bucket: Parameter
    code_key: Parameter
    alarm_action_arn: Parameter

    def name(self, base: str) -> Sub:
        """`<base>-<EnvironmentSuffix>`, the physical name of a resource in this environment."""
        return Sub(f"{base}-${{Env}}", Env=self.env_suffix.ref())

    def global_name(self, base: str) -> Sub:
        """A name that must be unique per partition (S3 buckets): add account and region."""
        return Sub(f"{base}-${{Env}}-${{AWS::AccountId}}-${{AWS::Region}}", Env=self.env_suffix.ref())


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
            Description="Optional ARN (e.g. an SNS topic) that every alarm notifies; empty for none.",
        )
    )
    t.add_condition(HAS_ALARM_ACTION, Not(Equals(Ref(alarm_action_arn), "")))
    return Params(env_suffix, environment_tag, code_bucket, code_key, alarm_action_arn)
