"""DataIngestion: S3 ObjectCreated events and POST /ingest -> ProcessingQueue.

S3: each object version is ingested only while it is the key's newest data version
(`open_version`: an older version whose event arrives late is skipped, so the newest
version's points win, also after a delete marker). It is streamed, every record validated, the valid points
packed into SendMessageBatch calls as they come, and the rejected records streamed
(`ReportWriter`, bounded memory, no /tmp) as one JSON Lines report per source object
version to the RejectsBucket (key `rejects/<source key>@<version>.jsonl`, so a
re-delivered event overwrites its report instead of adding one). A record without a
symbol takes the one its key names (`key_symbol`: a `symbol=XYZ/` segment or the
parent folder, unless that is a generic name such as `raw/`: then such a record is
rejected saying so); the result, the log line and every report line say so. Any AWS
failure raises: S3 invokes asynchronously, retries twice, then the event lands in the
InvocationDLQ.

API (REST proxy event, POST /ingest): the body is one point, a JSON array of points,
or {"points": [...]}, at most MAX_API_BODY_BYTES once decoded (base64, gzip), read by the same parser as an S3
`.json` object (one bad point is one rejection, never the body's). 202 when at least
one point was accepted, 400 when none was, 413 when the body is too large; the
response lists the rejections (at most MAX_API_ERRORS). A point without a timestamp
gets the request's receipt time (requestContext.requestTimeEpoch).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from handlers import common
from handlers.contract import ENV_PROCESSING_QUEUE_URL, ENV_REJECTS_BUCKET
from handlers.core.fast import ingest_batches
from handlers.core.ingest import Rejection, Tally, validate_records
from handlers.core.parsing import iter_api_records
from handlers.core.points import Point, generic_folder, key_symbol
from handlers.core.rules import max_points as points_cap
from handlers.core.sources import decoded_size
from handlers.core.wire import MessagePacker

if TYPE_CHECKING:  # test-only stubs, never imported on Lambda
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef, GetObjectOutputTypeDef, ListObjectVersionsRequestTypeDef

# POST /ingest bodies above 1 MiB get 413: the size after base64 *and* gzip decoding.
# API Gateway's own REST payload quota (10 MB, not adjustable: API Gateway Developer
# Guide, "Quotas for configuring and running a REST API in API Gateway") bounds only
# what is sent, so one small gzip body could otherwise expand without bound.
MAX_API_BODY_BYTES = 1_048_576
# A gzip S3 object may decompress to at most the function's memory size
# (AWS_LAMBDA_FUNCTION_MEMORY_SIZE, MB; Lambda Developer Guide, "Defined runtime
# environment variables"); the records before the cap are kept, the rest is one rejection.
# Lambda always sets the variable (and so does the emulation, from the template); a value
# that is missing or not a positive integer is a run we know nothing about, so both caps
# below fail closed to the smallest function Lambda runs (128 MB, Lambda developer guide,
# "Lambda quotas": memory 128 MB to 10,240 MB), never to a size the run may not have.
DEFAULT_MEMORY_MB = 128


def function_memory_mb() -> int:
    """The function's memory in MB (AWS_LAMBDA_FUNCTION_MEMORY_SIZE), else DEFAULT_MEMORY_MB."""
    text = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "")
    return int(text) if text.isdigit() and int(text) > 0 else DEFAULT_MEMORY_MB


def max_gunzip_bytes() -> int:
    """The decompressed-size cap of a gzip S3 object: the function's memory, in bytes."""
    return function_memory_mb() * 1024 * 1024


def max_points() -> int:
    """The points one object or request may hold in the duplicate check (`rules.max_points`).

    Half the function's memory at `rules.POINT_BUDGET_BYTES` a point: 1,048,576 points at
    the default 1,024 MB, 3,080,192 points at 3,008 MB. The record that finds no slot
    left and the rest of the object are one rejection; every point before it is delivered.
    """
    return points_cap(function_memory_mb())


MAX_API_ERRORS = 1000  # rejections listed in one API response (the rest are counted)
API_SOURCE = "api"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "DataIngestion"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "MarketAnalytics"))


def _now_ms() -> int:
    return int(time.time() * 1000)


class _Forwarder:
    """Packs accepted points and sends each full batch to the ProcessingQueue."""

    def __init__(self, queue_url: str) -> None:
        self.queue_url = queue_url
        self.packer = MessagePacker()
        self.calls = 0

    def add(self, point: Point) -> None:
        for batch in self.packer.add(point):
            self.calls += common.send_message_batch(self.queue_url, batch)

    def send(self, batch: list[str]) -> None:
        self.calls += common.send_message_batch(self.queue_url, batch)

    def close(self) -> None:
        for batch in self.packer.flush():
            self.send(batch)


def report_key(source_key: str, version_id: str | None) -> str:
    """Deterministic RejectsBucket key of the report for one source object version."""
    key = f"rejects/{source_key}@{version_id or 'null'}.jsonl"
    if len(key.encode()) <= 1024:  # S3 key limit
        return key
    digest = hashlib.sha256(f"{source_key}@{version_id}".encode()).hexdigest()
    return f"rejects/sha256/{digest}.jsonl"


class ReportWriter:
    """Streams a rejection report to S3 in bounded memory, never touching /tmp.

    Lines are buffered up to `part_bytes`; the first full buffer starts a multipart
    upload and every full buffer becomes one part, so memory holds one part whatever
    the number of rejections (S3 multipart: parts of 5 MiB to 5 GiB except the last,
    at most 10,000 parts - S3 User Guide, "Amazon S3 multipart upload limits"). A
    report that never fills a part is one PutObject. All of it is authorized by
    s3:PutObject. An upload left incomplete by a failed invocation is removed by the
    bucket's AbortIncompleteMultipartUpload lifecycle rule; the retried invocation
    writes the whole report again under the same key.
    """

    PART_BYTES = 8 * 1024 * 1024
    MAX_PARTS = 10_000

    def __init__(self, bucket: str, key: str, *, part_bytes: int | None = None) -> None:
        self.bucket = bucket
        self.key = key
        self.part_bytes = part_bytes or self.PART_BYTES
        self.lines = 0
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[CompletedPartTypeDef] = []

    def write(self, line: dict[str, Any]) -> None:
        self._buffer += json.dumps(line, separators=(",", ":")).encode() + b"\n"
        self.lines += 1
        if len(self._buffer) >= self.part_bytes:
            self._upload_part()

    def _upload_part(self) -> None:
        s3 = common.client("s3")
        if self._upload_id is None:
            self._upload_id = s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType="application/x-ndjson"
            )["UploadId"]
        number = len(self._parts) + 1
        if number > self.MAX_PARTS:
            raise RuntimeError(f"rejection report {self.key} would need more than {self.MAX_PARTS} parts")
        etag = s3.upload_part(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, PartNumber=number, Body=bytes(self._buffer)
        )["ETag"]
        self._parts.append({"PartNumber": number, "ETag": etag})
        self._buffer = bytearray()

    def close(self) -> None:
        s3 = common.client("s3")
        if self._upload_id is None:
            s3.put_object(
                Bucket=self.bucket, Key=self.key, Body=bytes(self._buffer), ContentType="application/x-ndjson"
            )
            return
        if self._buffer:
            self._upload_part()
        s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def open_version(bucket: str, key: str, version_id: str | None) -> tuple[GetObjectOutputTypeDef | None, str | None]:
    """GetObject of the version an event names, if it is the key's newest data version.

    Returns (response, None), or (None, the newer version id) when a newer version has
    replaced it. S3 notifications are not guaranteed to arrive in order (S3 User Guide,
    "Event message structure": the `sequencer` exists to order them), so a version is
    only ingested while it is the newest: GetObject without a VersionId returns the
    current version and its `VersionId` (S3 API Reference, GetObject), one request.
    When the current version is a delete marker (404, or 403 without s3:ListBucket),
    the newest *data* version is looked up (`newest_data_version`, ListObjectVersions):
    a delete marker removes nothing already stored and is not itself data, so the
    newest version before it wins, whatever order the events of the older ones
    arrive in after the delete.
    """
    s3 = common.client("s3")
    if not version_id:
        return s3.get_object(Bucket=bucket, Key=key), None  # unversioned: the current object
    try:
        response = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) not in ("NoSuchKey", "404", "AccessDenied", "403"):
            raise
    else:
        current = response.get("VersionId")
        if current == version_id:
            return response, None
        response["Body"].close()
        return None, current
    newest = newest_data_version(bucket, key)
    if newest is not None and newest != version_id:
        return None, newest
    # the newest (or, when none is listed, a version that is gone: NoSuchVersion fails loudly)
    return s3.get_object(Bucket=bucket, Key=key, VersionId=version_id), None  # needs s3:GetObjectVersion


def newest_data_version(bucket: str, key: str) -> str | None:
    """The version id of the key's most recent version that is not a delete marker.

    ListObjectVersions (authorized by s3:ListBucketVersions) lists a key's versions in
    the order they were stored, most recent first (S3 API Reference, ListObjectVersions,
    "Versions" and its second example), with delete markers in `DeleteMarkers`; keys
    are listed in order, and `key` sorts before every other key it is a prefix of, so
    the first `Versions` entry named `key` is the newest. Every page is read until one
    is found or the listing passes the key.
    """
    s3 = common.client("s3")
    params: ListObjectVersionsRequestTypeDef = {"Bucket": bucket, "Prefix": key}
    while True:
        page = s3.list_object_versions(**params)
        for version in page.get("Versions") or []:
            if version.get("Key") == key:
                return str(version["VersionId"])
        if not page.get("IsTruncated") or page.get("NextKeyMarker") != key:
            return None
        params["KeyMarker"] = page["NextKeyMarker"]
        params["VersionIdMarker"] = page.get("NextVersionIdMarker", "")


def current_version(bucket: str, key: str) -> str | None:
    """The key's current version id (HeadObject), or None when it has none."""
    try:
        return common.client("s3").head_object(Bucket=bucket, Key=key).get("VersionId")
    except ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404", "AccessDenied", "403"):
            return None
        raise


def ingest_object(bucket: str, key: str, version_id: str | None, *, _again: int = 2) -> dict[str, Any]:
    """Ingest one S3 object version if it is the key's newest; return its counts."""
    response, newer = open_version(bucket, key, version_id)
    if response is None:
        result: dict[str, Any] = {"source": key, "version_id": version_id}
        result.update(skipped=f"superseded by version {newer}", records_in=0, accepted=0, rejected=0, messages=0)
        logger.info("skipped an object version that is no longer current", extra=result)
        metrics.add_metric(name="SupersededVersions", unit=MetricUnit.Count, value=1)
        return result
    result = _ingest_body(bucket, key, version_id, response)
    if version_id and _again:
        # A newer version stored while this one was being read may have been ingested
        # before these points were queued: ingest the newest again so it is queued last.
        newest = current_version(bucket, key)
        if newest is not None and newest != version_id:
            result["reingested_newer"] = ingest_object(bucket, key, newest, _again=_again - 1)
    return result


def _ingest_body(bucket: str, key: str, version_id: str | None, response: GetObjectOutputTypeDef) -> dict[str, Any]:
    queue_url = common.env(ENV_PROCESSING_QUEUE_URL)
    rejects_bucket = common.env(ENV_REJECTS_BUCKET)
    tally = Tally()
    forwarder = _Forwarder(queue_url)
    named = key_symbol(key)
    origin: dict[str, str] = {"key_symbol": named.symbol, "key_symbol_from": named.origin} if named else {}
    generic = generic_folder(key)
    missing = "missing symbol"
    if generic is not None:
        # A generic folder (`raw/`) is never a symbol: say so in every such rejection.
        missing = (
            f"missing symbol (the key names none: folder '{generic}/' is a generic name, not a symbol; "
            "use a symbol=XYZ/ folder or give each record a symbol)"
        )
        origin = {"key_symbol_refused": f"folder '{generic}/' is a generic name"}
    target = report_key(key, version_id)
    report = ReportWriter(rejects_bucket, target)
    # The fast path gives exactly what validate_records(iter_raw_records(...)) gives; the
    # packer queues the points as they come and hands back the rejections.
    for batch in ingest_batches(
        response["Body"],
        key=key,
        content_type=response.get("ContentType"),
        source=key,
        now_ms=_now_ms(),
        tally=tally,
        default_symbol=named.symbol if named else None,
        max_gunzip_bytes=max_gunzip_bytes(),
        max_points=max_points(),
    ):
        for rejection in forwarder.packer.add_all(batch, forwarder.send):
            line = rejection.as_dict()
            if generic is not None and line["reason"] == "missing symbol":
                line["reason"] = missing
            report.write({**line, **origin})
    forwarder.close()
    result: dict[str, Any] = {
        "source": key,
        "version_id": version_id,
        "records_in": tally.records_in,
        "accepted": tally.accepted,
        "rejected": tally.rejected,
        "messages": forwarder.packer.messages,
        **origin,
    }
    if tally.rejected:
        report.close()
        result["report"] = f"s3://{rejects_bucket}/{target}"
        # WARNING, not ERROR: rejected input is expected; the ErrorCount filter matches ERROR.
        logger.warning("rejected records", extra=result)
    else:
        logger.info("ingested object", extra=result)
    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=tally.records_in)
    metrics.add_metric(name="AcceptedRecords", unit=MetricUnit.Count, value=tally.accepted)
    metrics.add_metric(name="RejectedRecords", unit=MetricUnit.Count, value=tally.rejected)
    return result


def _api_response(status: int, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body, separators=(",", ":")),
    }


def ingest_api(event: dict[str, Any]) -> dict[str, Any]:
    """Handle one API Gateway (REST, proxy) request."""
    if (event.get("httpMethod") or "POST").upper() != "POST":
        return _api_response(405, {"message": "use POST"})
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return _api_response(
                400,
                {"accepted": 0, "rejected": 1, "errors": [{"position": "body", "reason": "body is not valid base64"}]},
            )
    else:
        raw = body.encode("utf-8", "surrogatepass")
    if len(raw) > MAX_API_BODY_BYTES:
        return _api_response(413, {"message": f"body larger than {MAX_API_BODY_BYTES} bytes; split it"})
    # Measured before any point is queued, so that a 413 never follows a partial send.
    if decoded_size(raw, MAX_API_BODY_BYTES) > MAX_API_BODY_BYTES:
        return _api_response(
            413, {"message": f"body larger than {MAX_API_BODY_BYTES} bytes once decompressed (gzip); split it"}
        )
    receipt_ms = (event.get("requestContext") or {}).get("requestTimeEpoch") or _now_ms()
    records = iter_api_records(raw, MAX_API_BODY_BYTES)  # the same parser as an S3 .json object
    tally = Tally()
    errors: list[dict[str, str]] = []
    forwarder = _Forwarder(common.env(ENV_PROCESSING_QUEUE_URL))
    try:
        # At most 1 MiB of body: far fewer points than the cap, which still applies (the same check).
        for item in validate_records(
            records,
            source=API_SOURCE,
            now_ms=_now_ms(),
            tally=tally,
            default_timestamp_ms=int(receipt_ms),
            max_points=max_points(),
            unit="request",
        ):
            if isinstance(item, Rejection):
                if len(errors) < MAX_API_ERRORS:
                    errors.append({"position": item.position, "reason": item.reason})
            else:
                forwarder.add(item)
        forwarder.close()
    except (common.DeliveryError, BotoCoreError, ClientError):
        logger.exception("could not queue the accepted points")
        return _api_response(503, {"message": "the points could not be queued; retry the request"})
    metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=tally.records_in)
    metrics.add_metric(name="AcceptedRecords", unit=MetricUnit.Count, value=tally.accepted)
    metrics.add_metric(name="RejectedRecords", unit=MetricUnit.Count, value=tally.rejected)
    result: dict[str, Any] = {"accepted": tally.accepted, "rejected": tally.rejected, "errors": errors}
    if tally.rejected > len(errors):
        result["errors_omitted"] = tally.rejected - len(errors)
    if tally.rejected:
        logger.warning(
            "rejected records", extra={"source": API_SOURCE, "accepted": tally.accepted, "rejected": tally.rejected}
        )
    return _api_response(202 if tally.accepted else 400, result)


def s3_objects(event: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(bucket, key, version id) of each ObjectCreated record of an S3 event."""
    found = []
    for record in event.get("Records") or []:
        if not str(record.get("eventName", "")).startswith("ObjectCreated"):
            continue
        s3 = record["s3"]
        key = unquote_plus(s3["object"]["key"])  # event keys are URL-encoded
        if key.endswith("/") and not s3["object"].get("size"):
            continue  # a "folder" placeholder
        found.append((s3["bucket"]["name"], key, s3["object"].get("versionId")))
    return found


@metrics.log_metrics
@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    if "httpMethod" in event or "requestContext" in event:
        return ingest_api(event)
    if "Records" in event:
        results = [ingest_object(bucket, key, version) for bucket, key, version in s3_objects(event)]
        if not results:
            metrics.add_metric(name="RecordsIn", unit=MetricUnit.Count, value=0)
        return {"objects": results}
    raise ValueError(f"unsupported event with keys {sorted(event)[:10]}")
