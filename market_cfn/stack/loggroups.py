"""CloudWatch log groups: created by the stack (not by Lambda on first write), 7-day retention."""

from __future__ import annotations

from troposphere import Sub, Template, logs

from market_cfn.stack.config import LOG_RETENTION_DAYS
from market_cfn.stack.protection import protect
from market_cfn.stack.suppressions import suppress


def add_log_group(t: Template, logical_id: str, *, name: Sub) -> logs.LogGroup:
    group = logs.LogGroup(logical_id, LogGroupName=name, RetentionInDays=LOG_RETENTION_DAYS)
    suppress(
        group,
        checkov={
            "CKV_AWS_158": "Encrypted by CloudWatch Logs with its service key; the logs hold market "
            "prices and request metadata, no secrets that need a customer managed key.",
            "CKV_AWS_338": "7-day retention by design: raw data is kept in S3 (30 days) and DynamoDB "
            "(with point-in-time recovery); logs serve operations.",
        },
    )
    # Logs are operational data: deleted with the stack even in production.
    return t.add_resource(protect(group, retain=False))
