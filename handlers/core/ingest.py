"""From raw records to accepted points and rejections, with the per-source invariant.

`validate_records` turns a stream of `RawRecord`s into a stream of `Point`s and
`Rejection`s, one output per input record, so for every object and every request:
records in = accepted + rejected.

Duplicates: within one object or request, a record whose (symbol, timestamp) was
already accepted is rejected, naming the earlier position ("duplicate of line 3" when
price and volume are identical, "conflicts with line 3" when they differ); the first
one wins. Across objects and requests, the same (symbol, timestamp) overwrites the
stored point (the DynamoDB key), which is what makes re-delivery idempotent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from .parsing import RawRecord
from .points import Point, Rejected, validate


class Rejection(NamedTuple):
    source: str  # the S3 object key, or "api" for POST /ingest
    position: str  # "line 7", "index 3", "points[3]", ...
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {"source": self.source, "position": self.position, "reason": self.reason}


class Tally:
    """Counts of one object or request."""

    __slots__ = ("records_in", "accepted", "rejected")

    def __init__(self) -> None:
        self.records_in = 0
        self.accepted = 0
        self.rejected = 0


def validate_records(
    raw_records: Iterable[RawRecord],
    *,
    source: str,
    now_ms: int,
    tally: Tally,
    default_symbol: str | None = None,
    default_timestamp_ms: int | None = None,
) -> Iterator[Point | Rejection]:
    seen: dict[tuple[str, int], tuple[object, int | None, str]] = {}
    for raw in raw_records:
        tally.records_in += 1
        if raw.error is not None:
            tally.rejected += 1
            yield Rejection(source, raw.position, raw.error)
            continue
        try:
            point = validate(
                raw.value,
                now_ms=now_ms,
                default_symbol=default_symbol,
                default_timestamp_ms=default_timestamp_ms,
                text_fields=raw.text_fields,
            )
        except Rejected as exc:
            tally.rejected += 1
            yield Rejection(source, raw.position, str(exc))
            continue
        key = (point.symbol, point.timestamp)
        earlier = seen.get(key)
        if earlier is not None:
            tally.rejected += 1
            if earlier[0] == point.price and earlier[1] == point.volume:
                reason = f"duplicate of {earlier[2]} (same symbol and timestamp)"
            else:
                reason = (
                    f"conflicts with {earlier[2]} (same symbol and timestamp, "
                    "different price or volume; the first one is kept)"
                )
            yield Rejection(source, raw.position, reason)
            continue
        seen[key] = (point.price, point.volume, raw.position)
        tally.accepted += 1
        yield point
