"""Billed-unit arithmetic: how AWS turns requests into the units it charges for.

Pure functions, no boto3. Each rule cites the page it comes from; the prices live in
`bench/prices.py`. Sizes are in bytes, 1 KB = 1,024 bytes (the unit AWS uses for the
SQS and EventBridge 64 KB chunks and the DynamoDB 1 KB / 4 KB units).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

from bench.prices import PRICES

KB = 1024
SQS_CHUNK_BYTES = 64 * KB  # "each 64 KB chunk of a payload is billed as 1 request"
EVENTBRIDGE_CHUNK_BYTES = 64 * KB  # "each 64 KB chunk of a payload is billed as one event"
DDB_WRITE_UNIT_BYTES = 1 * KB  # one WRU writes an item up to 1 KB
DDB_READ_UNIT_BYTES = 4 * KB  # one RRU reads up to 4 KB strongly consistent
GB = 1024**3


# --- SQS ------------------------------------------------------------------------------


def sqs_billed_requests(payload_bytes: int) -> int:
    """Requests billed for one SQS API action carrying `payload_bytes` of payload.

    https://aws.amazon.com/sqs/pricing/: "each 64 KB chunk of a payload is billed as
    1 request (for example, an API action with a 256 KB payload is billed as 4
    requests)". An action with no payload (DeleteMessageBatch, an empty receive) is
    still one request.
    """
    if payload_bytes < 0:
        raise ValueError(f"payload size must be >= 0, got {payload_bytes}")
    return max(1, math.ceil(payload_bytes / SQS_CHUNK_BYTES))


def sqs_message_payload_bytes(body: str, attributes: dict | None = None) -> int:
    """Payload size of one message: body plus message attributes (names, types, values).

    SQS counts message attributes toward the message size
    (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-message-metadata.html).
    """
    size = len(body.encode("utf-8"))
    for name, value in (attributes or {}).items():
        size += len(name.encode("utf-8")) + len(value.get("DataType", "").encode("utf-8"))
        if "StringValue" in value:
            size += len(value["StringValue"].encode("utf-8"))
        if "BinaryValue" in value:
            size += len(value["BinaryValue"])
    return size


# --- EventBridge ----------------------------------------------------------------------


def eventbridge_entry_bytes(entry: dict) -> int:
    """Size of one PutEvents entry as EventBridge computes it.

    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-putevent-size.html:
    Time (if given) is 14 bytes; Source, DetailType, Detail and each Resources entry
    count their UTF-8 bytes.
    """
    size = 14 if entry.get("Time") is not None else 0
    size += len(entry.get("Source", "").encode("utf-8"))
    size += len(entry.get("DetailType", "").encode("utf-8"))
    if entry.get("Detail") is not None:
        size += len(entry["Detail"].encode("utf-8"))
    for resource in entry.get("Resources") or ():
        size += len(resource.encode("utf-8"))
    return size


def eventbridge_billed_events(entry_bytes: int) -> int:
    """Events billed for one published event of `entry_bytes` (64 KB chunks, min 1).

    https://aws.amazon.com/eventbridge/pricing/: "each 64 KB chunk of a payload is
    billed as one event (for example, an event with a 256 KB payload is billed as 4
    events)". Billing is per event, not per PutEvents call.
    """
    if entry_bytes < 0:
        raise ValueError(f"entry size must be >= 0, got {entry_bytes}")
    return max(1, math.ceil(entry_bytes / EVENTBRIDGE_CHUNK_BYTES))


# --- DynamoDB -------------------------------------------------------------------------


def _number_bytes(text: str) -> int:
    """Bytes DynamoDB stores for a number: 1 byte per two significant digits, + 1.

    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html
    ("leading and trailing zeroes are trimmed").
    """
    digits = Decimal(text).normalize()
    if digits.is_zero():
        significant = 1
    else:
        significant = len(digits.as_tuple().digits)
    return math.ceil(significant / 2) + 1


def _value_bytes(value: dict) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return _number_bytes(inner)
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(s.encode("utf-8")) for s in inner)
    if kind == "NS":
        return sum(_number_bytes(n) for n in inner)
    if kind == "BS":
        return sum(len(b) for b in inner)
    if kind == "L":
        return 3 + sum(_value_bytes(v) + 1 for v in inner)
    if kind == "M":
        return 3 + sum(len(k.encode("utf-8")) + _value_bytes(v) + 1 for k, v in inner.items())
    raise ValueError(f"unknown DynamoDB attribute type {kind!r}")


def dynamodb_item_bytes(item: dict) -> int:
    """Size of an item in DynamoDB's wire format ({"name": {"S": "..."}, ...}).

    Sum of attribute-name UTF-8 bytes and value sizes, per the rules in
    https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html.
    """
    return sum(len(name.encode("utf-8")) + _value_bytes(value) for name, value in item.items())


def dynamodb_write_units(item_bytes: int) -> int:
    """WRUs for one standard (non-transactional) write of an item: 1 per 1 KB, min 1.

    https://aws.amazon.com/dynamodb/pricing/on-demand/: "A standard write request unit
    can write an item up to 1 KB. For items larger than 1 KB, additional write request
    units are required." BatchWriteItem bills each put or delete as its own write.
    """
    if item_bytes < 0:
        raise ValueError(f"item size must be >= 0, got {item_bytes}")
    return max(1, math.ceil(item_bytes / DDB_WRITE_UNIT_BYTES))


def dynamodb_read_units(total_bytes: int, *, consistent: bool) -> float:
    """RRUs for one read operation returning `total_bytes` (GetItem, or one Query page).

    A Query treats all items it reads as one read: their sizes are summed and rounded
    up to the next 4 KB; an eventually consistent read costs half
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/read-write-operations.html).
    A Query that reads nothing still costs the minimum (one 4 KB unit).
    """
    if total_bytes < 0:
        raise ValueError(f"read size must be >= 0, got {total_bytes}")
    units = max(1, math.ceil(total_bytes / DDB_READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


# --- Lambda ---------------------------------------------------------------------------


def lambda_billed_ms(duration_ms: float) -> int:
    """Lambda bills duration rounded up to the nearest 1 ms (https://aws.amazon.com/lambda/pricing/)."""
    if duration_ms < 0:
        raise ValueError(f"duration must be >= 0, got {duration_ms}")
    return max(1, math.ceil(duration_ms - 1e-9))


def lambda_gb_seconds(duration_ms: float, memory_mb: int) -> float:
    """GB-seconds for one invocation: billed ms x configured memory (MB / 1024)."""
    return lambda_billed_ms(duration_ms) / 1000 * (memory_mb / 1024)


# --- S3 -------------------------------------------------------------------------------

S3_TIER1 = frozenset(
    {
        "PutObject",
        "CopyObject",
        "PostObject",
        "ListObjects",
        "ListObjectsV2",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
    }
)
S3_TIER2 = frozenset({"GetObject", "HeadObject", "SelectObjectContent", "GetObjectTagging"})


S3_FREE = frozenset({"DeleteObject", "DeleteObjects", "AbortMultipartUpload"})


def s3_tier(operation: str) -> str:
    """'tier1' (PUT, COPY, POST, LIST), 'free' (DELETE) or 'tier2' (GET and the rest).

    https://aws.amazon.com/s3/pricing/ lists PUT/COPY/POST/LIST at one price, GET,
    SELECT "and all other requests" at the other, and DELETE and CANCEL as free.
    """
    if operation in S3_TIER1:
        return "tier1"
    if operation in S3_FREE:
        return "free"
    return "tier2"


# --- CloudWatch Logs ------------------------------------------------------------------

LOG_EVENT_OVERHEAD_BYTES = 26
# "The maximum batch size is 1,048,576 bytes. This size is calculated as the sum of all
# event messages in UTF-8, plus 26 bytes for each log event." (PutLogEvents API
# reference). We bill ingestion on the same measure, which is the conservative reading.


def log_ingested_bytes(lines: list[str] | tuple[str, ...]) -> int:
    return sum(len(line.encode("utf-8")) + LOG_EVENT_OVERHEAD_BYTES for line in lines)


# --- The bill -------------------------------------------------------------------------


@dataclass
class Usage:
    """Billed units of one pipeline run, by service. Add to it, then price it."""

    requests: Counter = field(default_factory=Counter)  # (service, operation) -> API calls
    sqs_billed_requests: int = 0
    events_billed: int = 0
    events_archived_bytes: int = 0
    ddb_wru: int = 0
    ddb_rru: float = 0.0
    s3_tier1: int = 0
    s3_tier2: int = 0
    lambda_invocations: Counter = field(default_factory=Counter)  # function -> count
    lambda_gb_seconds: Counter = field(default_factory=Counter)  # function -> GB-s
    log_bytes: Counter = field(default_factory=Counter)  # function -> bytes ingested
    xray_traces: int = 0

    def copy(self) -> Usage:
        import copy

        return copy.deepcopy(self)

    def combine(self, other: Usage, factor: float = 1.0) -> Usage:
        """self + factor x other (factor scales a sampled part up to the whole)."""
        out = self.copy()
        for name in ("requests", "lambda_invocations", "lambda_gb_seconds", "log_bytes"):
            target = getattr(out, name)
            for key, value in getattr(other, name).items():
                target[key] += value * factor
        for name in (
            "sqs_billed_requests",
            "events_billed",
            "events_archived_bytes",
            "ddb_wru",
            "ddb_rru",
            "s3_tier1",
            "s3_tier2",
            "xray_traces",
        ):
            setattr(out, name, getattr(out, name) + getattr(other, name) * factor)
        return out

    def minus(self, other: Usage) -> Usage:
        return self.combine(other, -1.0)

    def service_rows(self) -> list[dict]:
        """One row per service: requests made, billed units, and US$."""
        p = PRICES
        req = Counter()
        for (service, _op), n in self.requests.items():
            req[service] += n
        invocations = sum(self.lambda_invocations.values())
        gbs = sum(self.lambda_gb_seconds.values())
        log_bytes = sum(self.log_bytes.values())
        rows = [
            (
                "Lambda requests",
                invocations,
                invocations,
                "invocations",
                invocations * p[("lambda", "requests")].usd_per_unit,
            ),
            ("Lambda duration", invocations, gbs, "GB-s", gbs * p[("lambda", "gb_seconds_arm64")].usd_per_unit),
            (
                "SQS",
                req["sqs"],
                self.sqs_billed_requests,
                "64 KB requests",
                self.sqs_billed_requests * p[("sqs", "requests")].usd_per_unit,
            ),
            (
                "DynamoDB writes",
                req["dynamodb"],
                self.ddb_wru,
                "WRU",
                self.ddb_wru * p[("dynamodb", "wru")].usd_per_unit,
            ),
            (
                "DynamoDB reads",
                req["dynamodb"],
                self.ddb_rru,
                "RRU",
                self.ddb_rru * p[("dynamodb", "rru")].usd_per_unit,
            ),
            (
                "EventBridge events",
                req["events"],
                self.events_billed,
                "64 KB events",
                self.events_billed * p[("events", "custom_events")].usd_per_unit,
            ),
            (
                "EventBridge archive",
                req["events"],
                self.events_archived_bytes / GB,
                "GB",
                self.events_archived_bytes / GB * p[("events", "archive_gb")].usd_per_unit,
            ),
            (
                "S3 PUT/LIST",
                req["s3"],
                self.s3_tier1,
                "requests",
                self.s3_tier1 * p[("s3", "tier1_requests")].usd_per_unit,
            ),
            (
                "S3 GET/other",
                req["s3"],
                self.s3_tier2,
                "requests",
                self.s3_tier2 * p[("s3", "tier2_requests")].usd_per_unit,
            ),
            (
                "CloudWatch Logs",
                None,
                log_bytes / GB,
                "GB ingested",
                log_bytes / GB * p[("logs", "ingested_gb")].usd_per_unit,
            ),
            ("X-Ray", None, self.xray_traces, "traces", self.xray_traces * p[("xray", "traces_recorded")].usd_per_unit),
        ]
        return [
            {"service": name, "requests": r, "billed": billed, "unit": unit, "usd": usd}
            for name, r, billed, unit, usd in rows
        ]

    def total_usd(self) -> float:
        return sum(row["usd"] for row in self.service_rows())


def floor_usd(points: int, aggregates_written: int) -> float:
    """The data model's floor: one WRU per point item and per aggregate item written."""
    return (points + aggregates_written) * PRICES[("dynamodb", "wru")].usd_per_unit


def per_million(usd: float, points: int) -> float:
    if points <= 0:
        raise ValueError("points must be > 0")
    return usd / points * 1_000_000
