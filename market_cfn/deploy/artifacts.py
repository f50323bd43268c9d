"""Artifacts: content-addressed uploads of the function zip and of large templates."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from market_cfn.base.aws import error_code
from market_cfn.deploy.states import TEMPLATE_BODY_LIMIT

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# --- Artifacts ------------------------------------------------------------------------


def ensure_object(s3: S3Client, bucket: str, key: str, body: bytes, *, content_type: str) -> bool:
    """Upload `body` unless the object exists (the key names the content). True if uploaded."""
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return False
    except ClientError as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=content_type,
        ChecksumSHA256=_b64_sha256(body),
    )
    return True


def _b64_sha256(body: bytes) -> str:
    import base64

    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def template_location(s3: S3Client, bucket: str, region: str, body: str) -> tuple[str | None, str | None, bool]:
    """(TemplateBody, TemplateURL, uploaded): bodies over 51,200 bytes go to the bucket."""
    data = body.encode("utf-8")
    if len(data) <= TEMPLATE_BODY_LIMIT:
        return body, None, False
    key = f"templates/{hashlib.sha256(data).hexdigest()}.json"
    uploaded = ensure_object(s3, bucket, key, data, content_type="application/json")
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return None, f"https://{bucket}.s3.{region}.{suffix}/{key}", uploaded
