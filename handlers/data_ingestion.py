"""DataIngestion: S3 ObjectCreated events and POST /ingest -> ProcessingQueue.

S3: each object is streamed (GetObject, with the event's VersionId when there is
one), every record validated, the valid points packed into SendMessageBatch calls as
they come, and the rejected records written as one JSON Lines report per source
object version to the RejectsBucket (key `rejects/<source key>@<version>.jsonl`, so a
re-delivered event overwrites its report instead of adding one). Any AWS failure
raises: S3 invokes asynchronously, retries twice, then the event lands in the
InvocationDLQ.

API (REST proxy event, POST /ingest): the body is one point, a JSON array of points,
or {"points": [...]}, at most MAX_API_BODY_BYTES. 202 when at least one point was
accepted, 400 when none was, 413 when the body is too large; the response lists the
rejections (at most MAX_API_ERRORS). A point without a timestamp gets the request's
receipt time (requestContext.requestTimeEpoch).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import tempfile
import time
from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from handlers import common
from handlers.contract import ENV_PROCESSING_QUEUE_URL, ENV_REJECTS_BUCKET
from handlers.core.ingest import Rejection, Tally, validate_records
from handlers.core.parsing import RawRecord, iter_raw_records, loads
from handlers.core.points import Point, symbol_from_key
from handlers.core.wire import MessagePacker

MAX_API_BODY_BYTES = 1_048_576  # POST /ingest bodies above 1 MiB get 413
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

    def close(self) -> None:
        for batch in self.packer.flush():
            self.calls += common.send_message_batch(self.queue_url, batch)


def report_key(source_key: str, version_id: str | None) -> str:
    """Deterministic RejectsBucket key of the report for one source object version."""
    key = f"rejects/{source_key}@{version_id or 'null'}.jsonl"
    if len(key.encode()) <= 1024:  # S3 key limit
        return key
    digest = hashlib.sha256(f"{source_key}@{version_id}".encode()).hexdigest()
    return f"rejects/sha256/{digest}.jsonl"


def ingest_object(bucket: str, key: str, version_id: str | None) -> dict[str, Any]:
    """Ingest one S3 object version; return its counts."""
    queue_url = common.env(ENV_PROCESSING_QUEUE_URL)
    rejects_bucket = common.env(ENV_REJECTS_BUCKET)
    params: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version_id:
        params["VersionId"] = version_id  # needs s3:GetObjectVersion
    response = common.client("s3").get_object(**params)
    tally = Tally()
    forwarder = _Forwarder(queue_url)
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as report:
        records = iter_raw_records(response["Body"], key=key, content_type=response.get("ContentType"))
        for item in validate_records(
            records, source=key, now_ms=_now_ms(), tally=tally, default_symbol=symbol_from_key(key)
        ):
            if isinstance(item, Rejection):
                report.write(json.dumps(item.as_dict(), separators=(",", ":")).encode() + b"\n")
            else:
                forwarder.add(item)
        forwarder.close()
        result = {
            "source": key,
            "version_id": version_id,
            "records_in": tally.records_in,
            "accepted": tally.accepted,
            "rejected": tally.rejected,
            "messages": forwarder.packer.messages,
        }
        if tally.rejected:
            report.seek(0)
            target = report_key(key, version_id)
            common.client("s3").put_object(
                Bucket=rejects_bucket, Key=target, Body=report, ContentType="application/x-ndjson"
            )
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


def api_records(doc: Any) -> list[RawRecord]:
    """The records of a POST /ingest body: one point, an array, or {"points": [...]}."""
    if isinstance(doc, list):
        return [RawRecord(f"index {i}", value) for i, value in enumerate(doc)]
    if isinstance(doc, dict) and isinstance(doc.get("points"), list):
        return [RawRecord(f"points[{i}]", value) for i, value in enumerate(doc["points"])]
    return [RawRecord("body", doc)]


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
    receipt_ms = (event.get("requestContext") or {}).get("requestTimeEpoch") or _now_ms()
    try:
        doc = loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        records = [RawRecord("body", error="body is not valid UTF-8")]
    except (ValueError, RecursionError) as exc:
        records = [RawRecord("body", error=f"invalid JSON: {str(exc).splitlines()[0][:120]}")]
    else:
        records = api_records(doc)
    tally = Tally()
    errors: list[dict[str, str]] = []
    forwarder = _Forwarder(common.env(ENV_PROCESSING_QUEUE_URL))
    try:
        for item in validate_records(
            records, source=API_SOURCE, now_ms=_now_ms(), tally=tally, default_timestamp_ms=int(receipt_ms)
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
