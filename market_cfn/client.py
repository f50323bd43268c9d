"""The public import path of the `POST /ingest` client: `from market_cfn.client import IngestClient`.

The code is in market_cfn/ops/ingest_client.py, beside the day-2 cores it builds on; this module
only re-exports it, so existing imports keep working and ops no longer imports back up.
"""

from market_cfn.ops.ingest_client import (
    FATAL_STATUSES,
    MAX_BODY_BYTES,
    RETRY_STATUSES,
    IngestClient,
    IngestResult,
    RawRecord,
    Response,
    chunks,
    region_of,
)

__all__ = [
    "FATAL_STATUSES",
    "MAX_BODY_BYTES",
    "RETRY_STATUSES",
    "IngestClient",
    "IngestResult",
    "RawRecord",
    "Response",
    "chunks",
    "region_of",
]
