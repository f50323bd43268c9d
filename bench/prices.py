"""AWS list prices the benchmark bills with (us-east-1, on demand, no free tier).

Every price names the page it was read from and the date it was checked. Free tiers
are left out on purpose: the benchmark reports the marginal cost of a point, which is
what a busy account pays once the monthly free allowances are used up.

Checked 2026-11-25 against the public pricing pages below (stored copies; the AWS
pages themselves are the authority). Where the prices our users quote (QUOTED below) name the same item, they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

CHECKED = "2026-11-25"


@dataclass(frozen=True)
class Price:
    """One list price: `usd` for `per` billed units of `unit`."""

    usd: float
    per: int
    unit: str
    source: str
    note: str = ""

    @property
    def usd_per_unit(self) -> float:
        return self.usd / self.per


# Keyed by (service, item). `per` keeps the numbers in the form the pricing page uses.
PRICES: dict[tuple[str, str], Price] = {
    # Lambda. The template's functions are arm64 (Graviton), so the Arm duration price
    # applies ($0.0000133334 per GB-s, first 7.5 billion GB-s a month), not the x86 one
    # ($0.0000166667) that is often quoted. Requests cost the same on both architectures.
    ("lambda", "requests"): Price(
        0.20, 1_000_000, "request", "https://aws.amazon.com/lambda/pricing/", "same for x86 and Arm"
    ),
    ("lambda", "gb_seconds_arm64"): Price(
        0.0000133334,
        1,
        "GB-second",
        "https://aws.amazon.com/lambda/pricing/",
        "Arm price, first 7.5 billion GB-s/month tier; x86 is $0.0000166667",
    ),
    ("lambda", "gb_seconds_x86_64"): Price(
        0.0000166667,
        1,
        "GB-second",
        "https://aws.amazon.com/lambda/pricing/",
        "x86 price, first 6 billion GB-s/month tier (not used: the functions are arm64)",
    ),
    # SQS standard queue: "each 64 KB chunk of a payload is billed as 1 request".
    ("sqs", "requests"): Price(
        0.40,
        1_000_000,
        "request (64 KB chunk)",
        "https://aws.amazon.com/sqs/pricing/",
        "standard queue, first 100 billion requests/month; each 64 KB chunk of a payload is billed as one request",
    ),
    # DynamoDB on demand. The November 2024 cut halved both (was $1.25 / $0.25).
    ("dynamodb", "wru"): Price(
        0.625,
        1_000_000,
        "write request unit (1 KB)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "standard table class; halved from $1.25 on 2024-11-01",
    ),
    ("dynamodb", "rru"): Price(
        0.125,
        1_000_000,
        "read request unit (4 KB strongly consistent, 2 x 4 KB eventual)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "standard table class; halved from $0.25 on 2024-11-01",
    ),
    # EventBridge custom events on a custom bus: "each 64 KB chunk of a payload is
    # billed as one event". Delivery to a same-account target is not billed.
    ("events", "custom_events"): Price(
        1.00,
        1_000_000,
        "event (64 KB chunk)",
        "https://aws.amazon.com/eventbridge/pricing/",
        "custom events; each 64 KB chunk of a payload is billed as one event",
    ),
    # The template keeps an Archive of every event on the bus (7 days).
    ("events", "archive_gb"): Price(
        0.10,
        1,
        "GB archived",
        "https://aws.amazon.com/eventbridge/pricing/",
        "archive processing; its storage is priced below (archive_stored_gb_month)",
    ),
    # SNS standard topic publishes (bench/bar_delivery.py compares bar delivery options):
    # "each 64 KB chunk of published data is billed as 1 request"; PublishBatch sends up
    # to 10 messages in one request ("reduce the costs ... by a factor of up to 10",
    # SNS developer guide, "Amazon SNS message batching"). Deliveries to SQS and Lambda
    # and attribute-based filter policies are not billed.
    ("sns", "requests"): Price(
        0.50,
        1_000_000,
        "publish request (64 KB chunk)",
        "https://aws.amazon.com/sns/pricing/",
        "standard topic; PublishBatch of up to 10 messages is one request per 64 KB",
    ),
    ("s3", "tier1_requests"): Price(
        0.005, 1_000, "PUT/COPY/POST/LIST request", "https://aws.amazon.com/s3/pricing/", "S3 Standard"
    ),
    ("s3", "tier2_requests"): Price(
        0.0004, 1_000, "GET/HEAD/SELECT request", "https://aws.amazon.com/s3/pricing/", "S3 Standard"
    ),
    ("logs", "ingested_gb"): Price(
        0.50,
        1,
        "GB ingested",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "Standard log class, collect (data ingestion); storage is stored_gb_month",
    ),
    ("xray", "traces_recorded"): Price(
        5.00,
        1_000_000,
        "trace recorded",
        "https://aws.amazon.com/xray/pricing/",
        "$0.000005 per trace recorded beyond the free tier",
    ),
    # --- Storage: what keeping the data costs each month -------------------------------
    # DynamoDB bills the table's size: attribute names and values plus 100 bytes of
    # per-item overhead ("All items in DynamoDB require 100 bytes of storage overhead for
    # indexing", developer guide, "DynamoDB item sizes and formats",
    # https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html).
    ("dynamodb", "storage_gb_month"): Price(
        0.25,
        1,
        "GB-month of table storage",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "Standard table class, beyond the first 25 GB (free tier left out)",
    ),
    # Point-in-time recovery is billed on the table's size, whatever the recovery period.
    ("dynamodb", "pitr_gb_month"): Price(
        0.20,
        1,
        "GB-month of continuous backup (table size)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "continuous backups (PITR), billed on the size of the table",
    ),
    # Export to S3 (full or incremental) is billed per GB of data processed; an
    # incremental export is billed at least 10 MB.
    ("dynamodb", "export_gb"): Price(
        0.10,
        1,
        "GB of data exported (incremental: changed data processed, min 10 MB)",
        "https://aws.amazon.com/dynamodb/pricing/on-demand/",
        "export to Amazon S3; the S3 PUTs and storage of the output are billed by S3",
    ),
    ("s3", "standard_gb_month"): Price(
        0.023,
        1,
        "GB-month in S3 Standard",
        "https://aws.amazon.com/s3/pricing/",
        "first 50 TB a month",
    ),
    # Logs are stored compressed; the ratio is not documented, so the benchmark bills the
    # ingested (uncompressed) bytes: an upper bound.
    ("logs", "stored_gb_month"): Price(
        0.03,
        1,
        "GB-month archived (stored)",
        "https://aws.amazon.com/cloudwatch/pricing/",
        "Standard log class, store (archival)",
    ),
    ("events", "archive_stored_gb_month"): Price(
        0.023,
        1,
        "GB-month archived",
        "https://aws.amazon.com/eventbridge/pricing/",
        "archive storage",
    ),
}

# The list prices users commonly quote for the pipeline's services, checked against PRICES
# (tests/test_bench_costing.py).
QUOTED = {
    ("lambda", "requests"): 0.20 / 1e6,
    ("lambda", "gb_seconds_x86_64"): 0.0000166667,
    ("sqs", "requests"): 0.40 / 1e6,
    ("dynamodb", "wru"): 0.625 / 1e6,
    ("dynamodb", "rru"): 0.125 / 1e6,
    ("events", "custom_events"): 1.00 / 1e6,
    ("s3", "tier1_requests"): 0.005 / 1e3,
    ("s3", "tier2_requests"): 0.0004 / 1e3,
    ("logs", "ingested_gb"): 0.50,
    ("xray", "traces_recorded"): 5.00 / 1e6,
}


def usd_per_unit(service: str, item: str) -> float:
    return PRICES[(service, item)].usd_per_unit
