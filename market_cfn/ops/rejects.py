"""The `rejects` core: the rejection reports DataIngestion writes to the rejects bucket.

Layout (docs/input-contract.md "Where rejections go"): one report per source object
version, `rejects/<source key>@<version id>.jsonl`, JSON Lines of {"source", "position",
"reason"}. Listing reads every page of ListObjectsV2; a download refuses a key that would
land outside the target directory.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC
from typing import TYPE_CHECKING, Any

from market_cfn.base.errors import OpsError

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_s3 import S3Client

PREFIX = "rejects/"
SUFFIX = ".jsonl"


def parse_key(key: str) -> tuple[str, str]:
    """`rejects/AAPL/x.csv@v1.jsonl` -> ("AAPL/x.csv", "v1"); keys of another shape -> (key, "")."""
    if not (key.startswith(PREFIX) and key.endswith(SUFFIX)) or "@" not in key:
        return key, ""
    source, version = key[len(PREFIX) : -len(SUFFIX)].rsplit("@", 1)
    return source, version


def list_reports(s3: S3Client, bucket: str, *, source: str | None = None) -> list[dict[str, Any]]:
    prefix = PREFIX + (f"{source}@" if source else "")
    reports = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            origin, version = parse_key(obj["Key"])
            if source and origin != source:
                continue
            reports.append(
                {
                    "key": obj["Key"],
                    "source": origin,
                    "version_id": version,
                    "bytes": obj.get("Size", 0),
                    "time": obj["LastModified"].astimezone(UTC).isoformat(),
                }
            )
    reports.sort(key=lambda r: (r["time"], r["key"]))
    return reports


def read_report(s3: S3Client, bucket: str, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
    rows = []
    for number, line in enumerate(body.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except ValueError:
            rows.append({"position": f"report line {number}", "reason": f"unreadable report line: {line[:80]!r}"})
    return rows


def safe_path(directory: str, key: str) -> str:
    root = os.path.realpath(directory)
    target = os.path.realpath(os.path.join(root, *key.split("/")))
    if os.path.commonpath([root, target]) != root or target == root:
        raise OpsError(f"refusing to download {key!r}: it would be written outside {directory}")
    return target


def download(
    s3: S3Client,
    bucket: str,
    reports: list[dict[str, Any]],
    directory: str,
    *,
    on_file: Callable[[int], None] | None = None,
) -> list[str]:
    written = []
    for report in reports:
        path = safe_path(directory, report["key"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, report["key"], path)
        written.append(path)
        if on_file:
            on_file(1)
    return written
