"""CloudWatch log groups: created by the stack (not by Lambda on first write), with their retention."""

from __future__ import annotations

from troposphere import Sub, Template, logs

from market_cfn.stack.config import LOG_RETENTION_DAYS, REGULATED_LOG_RETENTION_DAYS, StackConfig
from market_cfn.stack.encryption import Encryption
from market_cfn.stack.protection import protect
from market_cfn.stack.suppressions import suppress


def add_log_group(t: Template, cfg: StackConfig, enc: Encryption, logical_id: str, *, name: Sub) -> logs.LogGroup:
    """7 days under CloudWatch Logs' own key by default; regulated: a year or more under the
    stack's key."""
    if cfg.regulated:
        group = logs.LogGroup(
            logical_id, LogGroupName=name, RetentionInDays=REGULATED_LOG_RETENTION_DAYS, KmsKeyId=enc.data_key_arn
        )
    else:
        group = logs.LogGroup(logical_id, LogGroupName=name, RetentionInDays=LOG_RETENTION_DAYS)
        suppress(
            group,
            checkov={
                "CKV_AWS_158": "Encrypted by CloudWatch Logs with its service key; the logs hold market "
                "prices and request metadata, no secrets (the regulated profile uses the stack's key).",
                "CKV_AWS_338": "7-day retention by design: raw data is kept in S3 (30 days) and DynamoDB "
                "(with point-in-time recovery); logs serve operations (regulated profile: 400 days).",
            },
        )
    # Logs are operational data: deleted with the stack, except in the regulated profile.
    return t.add_resource(protect(group, retain=cfg.regulated))
