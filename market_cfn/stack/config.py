"""Build-time configuration of the template (deploy-time values are template Parameters)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# EnvironmentSuffix ends up in every physical name. The tightest constraint is the data
# bucket, "market-data-rejects-<suffix>-<12-digit account>-<region>", which must stay
# within S3's 63 characters for the longest region names (14 characters, e.g.
# ap-southeast-3): 20 + 10 + 1 + 12 + 1 + 14 = 58. S3 also wants lower case, and
# CloudFormation's AllowedPattern enforces the same rule at deploy time.
ENVIRONMENT_SUFFIX_PATTERN = r"^[a-z][a-z0-9]{0,9}$"
ENVIRONMENT_TAG_PATTERN = r"^[A-Za-z0-9 _.:/=+@-]{1,256}$"

# "default": the original design's choices (SSE-S3 and AWS owned keys, fully destroyable).
# "regulated": a customer managed KMS key for every data store, queue, log group and the
# bus; S3 server access logs kept a year; Retain and deletion protection on the data; API
# execution logs at ERROR (docs/design.md, "The regulated profile").
PROFILES = ("default", "regulated")


class ConfigError(ValueError):
    """A configuration value CloudFormation (or the service behind it) would reject."""


@dataclass(frozen=True)
class StackConfig:
    """What the template is built from.

    env_suffix: default of the EnvironmentSuffix parameter (deploys may override it).
    environment_tag: default of the EnvironmentTag parameter (the `Environment` tag).
    retain_data: keep the data bucket, the rejects bucket and the table when they are
        deleted or replaced (DeletionPolicy/UpdateReplacePolicy Retain) - for production.
    profile: "default" or "regulated" (PROFILES); regulated implies retain_data.
    """

    env_suffix: str = "dev"
    environment_tag: str = "Production"
    retain_data: bool = False
    profile: str = "default"

    @property
    def regulated(self) -> bool:
        return self.profile == "regulated"

    @property
    def retains_data(self) -> bool:
        """Retain the data stores: asked for, or implied by the regulated profile."""
        return self.retain_data or self.regulated

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ConfigError(f"profile {self.profile!r} is unknown: choose one of {', '.join(PROFILES)}")
        if not re.match(ENVIRONMENT_SUFFIX_PATTERN, self.env_suffix):
            raise ConfigError(
                f"environment name {self.env_suffix!r} is invalid: use 1-10 lower-case letters "
                "and digits, starting with a letter (it becomes part of S3 bucket names)"
            )
        if not re.match(ENVIRONMENT_TAG_PATTERN, self.environment_tag):
            raise ConfigError(
                f"environment tag {self.environment_tag!r} is invalid: use 1-256 letters, digits, "
                "spaces and _ . : / = + @ -"
            )


# Function sizing. The original design's "3 GB" is 3,008 MB: the most every account
# accepts (new accounts refuse more: "'MemorySize' value failed to satisfy constraint:
# Member must have value less than or equal to 3008"). Each function's memory is a
# template parameter (DataIngestionMemorySize, ...) with this default.
FUNCTION_MEMORY_MB = 3008
# The defaults are right-sized from the benchmark's measurement (docs/performance.md,
# "Memory"): CPU is allocated in proportion to memory up to one vCPU at 1,769 MB, so
# below it CPU-bound work costs the same GB-seconds at any size while waiting costs less
# at a smaller one. DataAggregator mostly waits on DynamoDB (512 MB keeps a 5,000-symbol
# run within about a minute); DataIngestion parses (1,024 MB: ~0.6 vCPU, for
# POST /ingest's latency) and DataProcessor writes with 8 threads (1,024 MB: headroom
# for 10 full messages a batch). All stay at or below FUNCTION_MEMORY_MB.
FUNCTION_DEFAULT_MEMORY_MB = {"DataIngestion": 1024, "DataProcessor": 1024, "DataAggregator": 512}
FUNCTION_TIMEOUT_SECONDS = 300
LOG_RETENTION_DAYS = 7
# Regulated profile: every log group, the API access logs and the S3 server access logs
# are kept at least a year (400 days is a value CloudWatch Logs' RetentionInDays accepts).
REGULATED_LOG_RETENTION_DAYS = 400
