"""Wire formats between the functions, and the packing rules that keep them in limits.

ProcessingQueue message body, version 1 (DataIngestion -> DataProcessor)::

    {"v":1,"p":{"AAPL":[[1717236000000,189.5,1200],[1717236060000,189.61]]}}

Points are grouped by symbol; each point is `[timestamp_ms, price]` or
`[timestamp_ms, price, volume]`, with the price written exactly as validated (a
JSON number, decoded back to `Decimal`). A body is at most `MAX_MESSAGE_BYTES`;
a `SendMessageBatch` carries at most 10 entries totalling at most
`MAX_BATCH_BYTES` (both 1 MiB: SQS message and batch limits, SQS Developer Guide
"Amazon SQS batch actions"; moto 5.2 enforces the same 1,048,576 bytes). A reader
refuses any other version, so a format change must bump `v`.

PointsStored event detail, version 1 (DataProcessor -> rule -> AggregationQueue ->
DataAggregator)::

    {"v":1,"points":1200,"windows":[["AAPL",1717235700000],["MSFT",1717235700000]]}

`windows` lists the (symbol, window start ms) pairs a batch of points touched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from .parsing import loads
from .points import SYMBOL_RE, Point

WIRE_VERSION = 1
MAX_MESSAGE_BYTES = 1_048_576  # SQS maximum message size (1 MiB)
MAX_BATCH_BYTES = 1_048_576  # SQS SendMessageBatch: sum of all bodies (1 MiB)
MAX_BATCH_ENTRIES = 10  # SQS SendMessageBatch / DeleteMessageBatch, PutEvents entries
# PutEvents: an entry and the whole request are each at most 256 KB (botocore
# events/service-2.json, PutEvents). Keep a margin for the envelope fields.
MAX_EVENTS_REQUEST_BYTES = 240_000
_HEAD = '{"v":1,"p":{'
_TAIL = "}}"


class WireFormatError(ValueError):
    """A message body or event detail that this code cannot read."""


def encode_point(point: Point) -> str:
    _, timestamp, price, volume = point
    # !s: str() of a Decimal is the same text as format() and much cheaper
    if volume is None:
        return f"[{timestamp},{price!s}]"
    return f"[{timestamp},{price!s},{volume}]"


class MessagePacker:
    """Packs points into message bodies, and bodies into SendMessageBatch batches.

    `add()` returns the batches that became full (each a list of body strings, ready
    for one SendMessageBatch); `flush()` returns the rest. Memory is bounded by one
    batch. Every body is at most `max_message_bytes` (UTF-8; the text is ASCII).
    """

    def __init__(
        self,
        *,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        max_batch_bytes: int = MAX_BATCH_BYTES,
        max_entries: int = MAX_BATCH_ENTRIES,
    ) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_batch_bytes = max_batch_bytes
        self.max_entries = max_entries
        self._groups: dict[str, list[str]] = {}
        self._size = len(_HEAD) + len(_TAIL)
        self._batch: list[str] = []
        self._batch_bytes = 0
        self.points = 0
        self.messages = 0

    def add(self, point: Point) -> list[list[str]]:
        symbol, timestamp, price, volume = point
        text = f"[{timestamp},{price!s}]" if volume is None else f"[{timestamp},{price!s},{volume}]"
        groups = self._groups
        group = groups.get(symbol)
        if group is None:
            extra = len(symbol) + 5 + len(text) + (1 if groups else 0)
        else:
            extra = len(text) + 1
        if groups and self._size + extra > self.max_message_bytes:
            return self._finish_message() + self.add(point)
        if group is None:
            groups[symbol] = [text]
        else:
            group.append(text)
        self._size += extra
        self.points += 1
        return []

    def add_all(self, items: Iterable[Any], send: Callable[[list[str]], object]) -> list[Any]:
        """`add()` every `Point` of `items`, pass each full batch to `send`; return the other items.

        The same bodies as `add()` one point at a time, in one loop with local state (the
        ingestion fast path).
        """
        others: list[Any] = []
        groups = self._groups
        size = self._size
        limit = self.max_message_bytes
        points = 0
        try:
            for item in items:
                if type(item) is not Point:
                    others.append(item)
                    continue
                symbol, timestamp, price, volume = item
                text = f"[{timestamp},{price!s}]" if volume is None else f"[{timestamp},{price!s},{volume}]"
                group = groups.get(symbol)
                if group is None:
                    extra = len(symbol) + 5 + len(text) + (1 if groups else 0)
                else:
                    extra = len(text) + 1
                if groups and size + extra > limit:
                    self._size = size
                    for batch in self._finish_message():
                        send(batch)
                    groups, size, group = self._groups, self._size, None
                    extra = len(symbol) + 5 + len(text)
                if group is None:
                    groups[symbol] = [text]
                else:
                    group.append(text)
                size += extra
                points += 1
        finally:
            self._size = size
            self.points += points
        return others

    def _finish_message(self) -> list[list[str]]:
        body = _HEAD + ",".join(f'"{symbol}":[{",".join(points)}]' for symbol, points in self._groups.items()) + _TAIL
        assert len(body) == self._size, (len(body), self._size)
        self._groups = {}
        self._size = len(_HEAD) + len(_TAIL)
        self.messages += 1
        ready: list[list[str]] = []
        if self._batch and (
            self._batch_bytes + len(body) > self.max_batch_bytes or len(self._batch) >= self.max_entries
        ):
            ready.append(self._batch)
            self._batch, self._batch_bytes = [], 0
        self._batch.append(body)
        self._batch_bytes += len(body)
        return ready

    def flush(self) -> list[list[str]]:
        ready = self._finish_message() if self._groups else []
        if self._batch:
            ready.append(self._batch)
            self._batch, self._batch_bytes = [], 0
        return ready


def decode_message(body: str) -> list[Point]:
    """Read a v1 ProcessingQueue body; raise WireFormatError if it is not one."""
    try:
        doc = loads(body)
    except (ValueError, RecursionError) as exc:
        raise WireFormatError(f"message body is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("v") != WIRE_VERSION:
        version = doc.get("v") if isinstance(doc, dict) else None
        raise WireFormatError(f"unsupported message version {version!r}")
    groups = doc.get("p")
    if not isinstance(groups, dict):
        raise WireFormatError("message body has no point groups")
    points: dict[tuple[str, int], Point] = {}
    for symbol, rows in groups.items():
        if not isinstance(rows, list):
            raise WireFormatError(f"points of {symbol!r} are not a list")
        for row in rows:
            if (
                not isinstance(row, list)
                or len(row) not in (2, 3)
                or not all(isinstance(x, (int, Decimal)) and not isinstance(x, bool) for x in row)
            ):
                raise WireFormatError(f"malformed point {row!r} of {symbol!r}")
            volume = int(row[2]) if len(row) == 3 else None
            point = Point(symbol, int(row[0]), Decimal(row[1]), volume)
            # Ingestion validated these; a hand-made or corrupted message is refused.
            if not SYMBOL_RE.fullmatch(symbol) or not point.price > 0 or (volume is not None and volume < 0):
                raise WireFormatError(f"invalid point {row!r} of {symbol!r}")
            points[(symbol, point.timestamp)] = point  # a repeated key: the last wins
    return list(points.values())


def window_start(timestamp_ms: int, window_ms: int) -> int:
    """Start of the UTC window [start, start + window_ms) that holds timestamp_ms."""
    return timestamp_ms - timestamp_ms % window_ms  # floor, also for pre-1970 times


def windows_of(points: Iterable[Point], window_ms: int) -> list[tuple[str, int]]:
    return sorted({(p.symbol, window_start(p.timestamp, window_ms)) for p in points})


def encode_windows_details(
    windows: list[tuple[str, int]], points: int, *, max_detail_bytes: int = 200_000
) -> list[str]:
    """PointsStored details for `windows`, split so that each stays under the limit."""
    details: list[str] = []
    chunk: list[list[Any]] = []
    size = 0
    for symbol, start in windows:
        item = [symbol, start]
        item_size = len(symbol) + len(str(start)) + 6
        if chunk and size + item_size > max_detail_bytes:
            details.append(json.dumps({"v": WIRE_VERSION, "points": points, "windows": chunk}, separators=(",", ":")))
            chunk, size = [], 0
        chunk.append(item)
        size += item_size
    if chunk or not details:
        details.append(json.dumps({"v": WIRE_VERSION, "points": points, "windows": chunk}, separators=(",", ":")))
    return details


def decode_windows(body: str) -> list[tuple[str, int]]:
    """(symbol, window start) pairs from an AggregationQueue body.

    The rule's target uses InputPath $.detail, so the body is the detail itself;
    an emulator (moto) may deliver the whole event instead: then use its "detail".
    """
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise WireFormatError(f"message body is not JSON: {exc}") from None
    if isinstance(doc, dict) and isinstance(doc.get("detail"), dict):
        doc = doc["detail"]
    if not isinstance(doc, dict) or doc.get("v") != WIRE_VERSION:
        raise WireFormatError("unsupported PointsStored detail")
    pairs = doc.get("windows")
    if not isinstance(pairs, list):
        raise WireFormatError("PointsStored detail has no windows")
    result = []
    for pair in pairs:
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or not isinstance(pair[1], int)
            or isinstance(pair[1], bool)
        ):
            raise WireFormatError(f"malformed window {pair!r}")
        result.append((pair[0], pair[1]))
    return result


Entry = TypeVar("Entry", bound=Mapping[str, Any])  # a PutEvents entry, as typed by the caller


def event_entries_in_calls(entries: list[Entry]) -> Iterator[list[Entry]]:
    """Group PutEvents entries: at most 10 per call and the call under the size limit."""
    call: list[Entry] = []
    size = 0
    for entry in entries:
        entry_size = sum(len(str(v).encode()) for v in entry.values()) + 100
        if call and (len(call) >= MAX_BATCH_ENTRIES or size + entry_size > MAX_EVENTS_REQUEST_BYTES):
            yield call
            call, size = [], 0
        call.append(entry)
        size += entry_size
    if call:
        yield call
