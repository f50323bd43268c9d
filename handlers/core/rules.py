"""The rules both parsers share - rejection reasons, the CSV header check, the duplicate check.

The reference path (`parsing.py` -> `ingest.validate_records`) and the fast path
(`fast.py`) import these, so that one input gives the same rejections, in the same
words, on both (tests/test_fast_path.py keeps them equal). The line splitter both use
is `lines.py`; the field rules are `points.py`.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

from .lines import MAX_RECORD_BYTES

if TYPE_CHECKING:
    from .points import Point

MAX_DEPTH = 64  # nesting levels of one record ({"a": [1]} is 2)
TOO_LARGE = f"record larger than {MAX_RECORD_BYTES} bytes"
TOO_DEEP = f"record nested deeper than {MAX_DEPTH} levels"
LINE_TOO_LONG = f"line longer than {MAX_RECORD_BYTES} bytes"
LINE_NOT_UTF8 = "line is not valid UTF-8"
RECORD_NOT_UTF8 = "record is not valid UTF-8"
_BAD_BYTE = re.compile("[\udc80-\udcff]")


def has_bad_bytes(text: str) -> bool:
    """Undecodable bytes (lone surrogates from `surrogateescape`) in a text."""
    return not text.isascii() and _BAD_BYTE.search(text) is not None


def short(exc: BaseException) -> str:
    """One line, at most 120 characters, of an exception's message.

    JSONDecodeError.msg leaves out "line 1 column 9 (char 8)": that depends on where a
    read chunk began, and the same input must give the same reason on every path.
    """
    text = getattr(exc, "msg", None) or str(exc)
    text = text.splitlines()[0] if text else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def invalid_json(exc: BaseException) -> str:
    return f"invalid JSON: {short(exc)}"


def unparsable_csv(exc: BaseException) -> str:
    return f"unparsable CSV: {short(exc)}"


def rest_not_read(exc: BaseException) -> str:
    """A damaged or capped gzip tail: one rejection for all of it."""
    return f"{exc}; the rest was not read"


# The duplicate check's memory: each accepted point of an object stays in `Accepter.seen`
# until the object ends: measured (bench/seen_memory.py, tracemalloc), about 370 bytes on
# the fast path, 450 on the reference path and for JSON, at most ~470 with a 12-character
# symbol per point, 38-digit prices and 32-digit volumes. Half the function's memory at
# POINT_BUDGET_BYTES a point is the most one object or request may hold; the other half
# is left for the runtime, the read buffers, the SQS batches and the rejection report.
POINT_BUDGET_BYTES = 512


def max_points(memory_mb: int) -> int:
    """The points one object or request may hold in the duplicate check, at `memory_mb` MB."""
    return memory_mb * 1024 * 1024 // 2 // POINT_BUDGET_BYTES


class TooManyPoints(Exception):
    """A point needs a slot in the duplicate check and none is left: the rest is one rejection."""


def too_many_points(cap: int, unit: str) -> str:
    """The reason of the rejection that ends a source at the duplicate check's cap."""
    return f"more than {cap} points in one {unit} (split it or raise DataIngestionMemorySize); the rest was not read"


def field_count(fields: int, header: int) -> str:
    return f"{fields} fields, the header has {header}"


def csv_header(row: list[str], position: str, fold: Any) -> tuple[list[str], str | None, str | None]:
    """(column names, why the header is refused, what every later line says), from a header row.

    Names are folded (`points.fold_name`); a name given twice makes every row
    ambiguous, so no row can be read.
    """
    names = [fold(cell) for cell in row]
    twice = sorted({n for n in names if n and names.count(n) > 1})
    if not twice:
        return names, None, None
    return (
        names,
        f"CSV header names column {twice[0]!r} twice; no row can be read",
        f"not read: the CSV header ({position}) names column {twice[0]!r} twice",
    )


def csv_header_too_long(position: str) -> tuple[str, str]:
    """(the header line's reason, what every later line says) for an overlong header."""
    return (
        f"CSV header longer than {MAX_RECORD_BYTES} bytes; no row can be read",
        f"not read: the CSV header ({position}) is longer than {MAX_RECORD_BYTES} bytes",
    )


CSV, JSON, JSONL = "csv", "json", "jsonl"
_EXTENSIONS = {".csv": CSV, ".json": JSON, ".jsonl": JSONL, ".ndjson": JSONL}
_CONTENT_TYPES = {
    "text/csv": CSV,
    "application/csv": CSV,
    "application/json": JSON,
    "text/json": JSON,
    "application/x-ndjson": JSONL,
    "application/ndjson": JSONL,
    "application/jsonl": JSONL,
    "application/x-jsonlines": JSONL,
    "application/jsonlines": JSONL,
}


def detect_format(key: str, content_type: str | None, head: bytes) -> str:
    """Pick CSV / JSON / JSONL from the key's extension, the content type, or the data."""
    name = key.lower()
    for suffix in (".gz", ".gzip"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
    for ext, fmt in _EXTENSIONS.items():
        if name.endswith(ext):
            return fmt
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    if mime in _CONTENT_TYPES:
        return _CONTENT_TYPES[mime]
    first = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    return JSON if first in (b"{", b"[") else CSV


def utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogateescape"))


_NESTING = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', re.DOTALL)


def nesting_depth(text: str) -> int:
    """Deepest bracket nesting of a JSON text (strings skipped)."""
    depth = deepest = 0
    for match in _NESTING.finditer(text):
        char = match.group()
        if char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def record_problem(text: str, max_depth: int = MAX_DEPTH) -> str | None:
    """Why a decoded JSON record's text is refused (size, nesting, bytes), or None."""
    if len(text) > MAX_RECORD_BYTES or utf8_size(text) > MAX_RECORD_BYTES:
        return TOO_LARGE
    if text.count("[") + text.count("{") > max_depth and nesting_depth(text) > max_depth:
        return TOO_DEEP
    if has_bad_bytes(text):
        return RECORD_NOT_UTF8
    return None


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


class Accepter:
    """The duplicate check and the tally of one object or request, for both paths.

    Within one source, a record whose (symbol, timestamp) was already accepted is
    rejected naming the earlier position: "duplicate of line 3" when price and volume
    are identical, "conflicts with line 3" when they differ; the first one wins.

    `max_points` caps what `seen` holds (None: no cap). Only accepted points are
    stored, so only they take a slot: a duplicate or an invalid record never does.
    A new point that finds no slot left raises `TooManyPoints`; the caller ends the
    source there with `capped` (one rejection for that record and everything after it).
    """

    def __init__(self, source: str, tally: Tally, max_points: int | None = None, unit: str = "object") -> None:
        self.source = source
        self.tally = tally
        self.max_points = max_points
        self.unit = unit
        self.seen: dict[tuple[str, int], tuple[Decimal, int | None, Any]] = {}

    def point(self, point: Point, where: Any) -> Point | Rejection:
        """`where`: a line number (int) or a position text."""
        key = (point.symbol, point.timestamp)
        earlier = self.seen.get(key)
        if earlier is None:
            if self.max_points is not None and len(self.seen) >= self.max_points:
                raise TooManyPoints
            self.seen[key] = (point.price, point.volume, where)
            self.tally.accepted += 1
            return point
        self.tally.rejected += 1
        first = f"line {earlier[2]}" if type(earlier[2]) is int else earlier[2]
        if earlier[0] == point.price and earlier[1] == point.volume:
            reason = f"duplicate of {first} (same symbol and timestamp)"
        else:
            reason = (
                f"conflicts with {first} (same symbol and timestamp, different price or volume; the first one is kept)"
            )
        return Rejection(self.source, f"line {where}" if type(where) is int else where, reason)

    def reject(self, position: str, reason: str) -> Rejection:
        self.tally.rejected += 1
        return Rejection(self.source, position, reason)

    def capped(self, before: Any) -> Rejection:
        """The record that found no slot and the rest of the source: one rejection `after <before>`.

        `before` is the position of the record before it (a line number, a position
        text, or "start of object"). The record was counted in `records_in` when it was
        read, so this one rejection keeps records in = accepted + rejected, as the
        rejection of a damaged or capped gzip tail does (the tail counts as one record).
        """
        where = f"line {before}" if type(before) is int else before
        return self.reject(f"after {where}", too_many_points(self.max_points or 0, self.unit))
