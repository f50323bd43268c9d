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


class ConfigError(ValueError):
    """A configuration value CloudFormation (or the service behind it) would reject."""


@dataclass(frozen=True)
class StackConfig:
    """What the template is built from.

    env_suffix: default of the EnvironmentSuffix parameter (deploys may override it).
    environment_tag: default of the EnvironmentTag parameter (the `Environment` tag).
    retain_data: keep the data bucket, the rejects bucket and the table when they are
        deleted or replaced (DeletionPolicy/UpdateReplacePolicy Retain) - for production.
    """

    env_suffix: str = "dev"
    environment_tag: str = "Production"
    retain_data: bool = False

    def __post_init__(self) -> None:
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


# Function sizing shared by every Lambda function (issue 2: 3 GB, 5 minutes).
FUNCTION_MEMORY_MB = 3072
FUNCTION_TIMEOUT_SECONDS = 300
LOG_RETENTION_DAYS = 7
