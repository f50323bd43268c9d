"""From raw records to accepted points and rejections, with the per-source invariant.

`validate_records` turns a stream of `RawRecord`s into a stream of `Point`s and
`Rejection`s, one output per input record, so for every object and every request:
records in = accepted + rejected.

Duplicates: within one object or request, a record whose (symbol, timestamp) was
already accepted is rejected, naming the earlier position (`rules.Accepter`, the one
duplicate check of both paths: "duplicate of line 3" when price and volume are
identical, "conflicts with line 3" when they differ); the first one wins. Across
objects and requests, the same (symbol, timestamp) overwrites the stored point (the
DynamoDB key), which is what makes re-delivery idempotent.

The duplicate check holds every accepted point of the source, so `max_points` caps
it (`rules.max_points`, from the function's memory): the record that finds no slot
left and everything after it are one rejection `after <the record before>`, and
the source is not read further (`Accepter.capped`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .parsing import RawRecord
from .points import Point, Rejected, validate
from .rules import Accepter, Rejection, Tally, TooManyPoints

__all__ = ["Rejection", "Tally", "validate_records"]


def validate_records(
    raw_records: Iterable[RawRecord],
    *,
    source: str,
    now_ms: int,
    tally: Tally,
    default_symbol: str | None = None,
    default_timestamp_ms: int | None = None,
    max_points: int | None = None,
    unit: str = "object",
) -> Iterator[Point | Rejection]:
    accepter = Accepter(source, tally, max_points, unit)
    before = "start of body" if unit == "request" else "start of object"  # as a gzip tail's rejection
    for raw in raw_records:
        tally.records_in += 1
        if raw.error is not None:
            before = raw.position
            yield accepter.reject(raw.position, raw.error)
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
            before = raw.position
            yield accepter.reject(raw.position, str(exc))
            continue
        try:
            item = accepter.point(point, raw.position)
        except TooManyPoints:
            yield accepter.capped(before)
            return  # the rest of the source is not read
        before = raw.position
        yield item
