"""The fast path of S3 ingestion: CSV and JSON Lines records to points, same output as the reference path.

`ingest_records(stream, ...)` yields exactly what the reference path
`validate_records(iter_raw_records(stream, ...), ...)` yields - the same `Point`s and
`Rejection`s (positions and reasons), in the same order, with the same `Tally` - only
faster (tests/test_fast_path.py proves the equality on clean and dirty
input, bench/parser_speed.py measures the speed). `ingest_batches` yields the same items
in lists, which DataIngestion hands to `MessagePacker.add_all`: no generator step and
no method call per point.

How: lines are split a whole read chunk at a time; a record in the common shape is
validated inline with a few anchored regular expressions and integer comparisons, each of which accepts only values that the full
rules (`points.validate`) accept unchanged. Anything else - a non-ASCII line, an ISO
timestamp, a price with more digits, an unknown column, any error - is handed to the
reference code for that record (`points.validate`, the parsers' own checks), so every
rejection reason comes from the reference code. JSON documents (arrays, wrappers) go
through the reference path whole.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from decimal import Decimal
from itertools import chain
from typing import Any

from .ingest import validate_records
from .lines import Lines
from .parsing import FAST_DECODER, _iter_json, loads
from .points import MAX_FUTURE_MS, MIN_TIMESTAMP_MS, SECONDS_MS_THRESHOLD, Point, Rejected, fold_name, validate
from .rules import (
    CSV,
    JSON,
    LINE_NOT_UTF8,
    LINE_TOO_LONG,
    MAX_DEPTH,
    TOO_DEEP,
    Accepter,
    Rejection,
    Tally,
    TooManyPoints,
    csv_header,
    csv_header_too_long,
    detect_format,
    field_count,
    has_bad_bytes,
    invalid_json,
    nesting_depth,
    rest_not_read,
    unparsable_csv,
)
from .sources import GzipDamage, open_source

_SYMBOL = re.compile(r"[A-Za-z0-9.\-]{1,12}")  # ASCII, no blanks: upper() is the whole normalisation
_PRICE = re.compile(r"[0-9]{1,15}(?:\.[0-9]{1,17})?")  # < 1E+15, <= 17 decimals; zero is checked apart
# _VOLUME_BOUND[price.adjusted()]: any volume below it keeps price x volume < 1E+15
# (price < 10**(adjusted + 1)); a larger one is checked exactly by the reference rules.
_VOLUME_BOUND = {adjusted: 10 ** (14 - adjusted) for adjusted in range(-17, 15)}


def ingest_records(
    stream: Any,
    *,
    key: str,
    content_type: str | None,
    source: str,
    now_ms: int,
    tally: Tally,
    default_symbol: str | None = None,
    default_timestamp_ms: int | None = None,
    max_gunzip_bytes: int | None = None,
    max_points: int | None = None,
) -> Iterator[Point | Rejection]:
    """The points and rejections of one object, one by one, as the reference path gives them."""
    for batch in ingest_batches(
        stream,
        key=key,
        content_type=content_type,
        source=source,
        now_ms=now_ms,
        tally=tally,
        default_symbol=default_symbol,
        default_timestamp_ms=default_timestamp_ms,
        max_gunzip_bytes=max_gunzip_bytes,
        max_points=max_points,
    ):
        yield from batch


def ingest_batches(
    stream: Any,
    *,
    key: str,
    content_type: str | None,
    source: str,
    now_ms: int,
    tally: Tally,
    default_symbol: str | None = None,
    default_timestamp_ms: int | None = None,
    max_gunzip_bytes: int | None = None,
    max_points: int | None = None,
) -> Iterator[list[Point | Rejection]]:
    """`ingest_records` in lists of up to about `_BATCH` items (no generator step per point).

    `max_points` caps the duplicate check (`rules.Accepter`): the record that finds no
    slot left and the rest of the object are one rejection, as on the reference path.
    """
    accepter = Accepter(source, tally, max_points)
    latest = now_ms + MAX_FUTURE_MS
    last: list[str] = ["start of object"]
    out: list[Point | Rejection] = []
    try:
        data = open_source(stream, max_gunzip_bytes)
        fmt = detect_format(key, content_type, data.peek(512))
        if fmt != JSON:
            parse = _csv if fmt == CSV else _jsonl
            yield from parse(data, accepter, now_ms, latest, default_symbol, default_timestamp_ms)
            return
        for item in validate_records(
            _positions(_iter_json(data), last),
            source=source,
            now_ms=now_ms,
            tally=tally,
            default_symbol=default_symbol,
            default_timestamp_ms=default_timestamp_ms,
            max_points=max_points,
        ):
            out.append(item)
            if len(out) >= _BATCH:
                yield out
                out = []
    except GzipDamage as exc:
        tally.records_in += 1
        out.append(accepter.reject(f"after {last[0]}", rest_not_read(exc)))
    if out:
        yield out


def _positions(records: Iterator[Any], last: list[str]) -> Iterator[Any]:
    for record in records:
        last[0] = record.position
        yield record


def _slow(
    accepter: Accepter,
    record: Any,
    number: int,
    now_ms: int,
    default_symbol: str | None,
    default_ts: int | None,
    text: bool,
) -> Point | Rejection:
    """One record through the reference validation."""
    try:
        point = validate(
            record, now_ms=now_ms, default_symbol=default_symbol, default_timestamp_ms=default_ts, text_fields=text
        )
    except Rejected as exc:
        return accepter.reject(f"line {number}", str(exc))
    return accepter.point(point, number)


_BATCH = 1024  # items per list that ingest_batches yields
_CACHE_ENTRIES = 4_096  # per object: distinct symbols remembered by the fast path
_NO_CAP = 1 << 62  # more points than any object can hold


def _fast_symbol(text: str, default: str | None, cache: dict[str, str]) -> str:
    """The symbol a cell or field gives on the fast path ("" = let the reference rules decide)."""
    if text:
        symbol = text.upper() if _SYMBOL.fullmatch(text) else ""
    else:
        symbol = default or ""
    if len(cache) < _CACHE_ENTRIES:
        cache[text] = symbol
    return symbol


def _jsonl(
    data: Any,
    accepter: Accepter,
    now_ms: int,
    latest: int,
    default_symbol: str | None,
    default_ts: int | None,
) -> Iterator[list[Point | Rejection]]:
    tally = accepter.tally
    seen = accepter.seen
    size = seen.__len__
    cap = _NO_CAP if accepter.max_points is None else accepter.max_points
    lines = Lines(data)
    special = lines.special
    symbols: dict[str, str] = {}
    scan = FAST_DECODER.scan_once  # type: ignore[attr-defined]  # what decode() runs, minus its Python wrapper
    new = tuple.__new__
    batch_size, seconds, earliest = _BATCH, SECONDS_MS_THRESHOLD, MIN_TIMESTAMP_MS
    bound = _VOLUME_BOUND
    number = records = accepted = 0
    at: str | int = "start of object"
    before = at  # the record before this one (where a capped object's rest begins)
    out: list[Point | Rejection] = []
    append = out.append
    try:
        for text in chain.from_iterable(lines.batches()):
            if len(out) >= batch_size:
                yield out
                out = []
                append = out.append
            number += 1
            before = at
            kind = special.pop(number, None) if special else None
            if kind == "overlong":
                records += 1
                at = number
                append(accepter.reject(f"line {number}", LINE_TOO_LONG))
                continue
            text = text.strip()
            if not text:
                continue
            records += 1
            at = number
            if kind == "odd" and has_bad_bytes(text):
                append(accepter.reject(f"line {number}", LINE_NOT_UTF8))
                continue
            try:
                record, end = scan(text, 0)
            except (StopIteration, ValueError, RecursionError):
                end = -1
            if end == len(text) and type(record) is dict:
                # The common shape (a flat object: depth 1), checked inline.
                symbol = record.get("symbol")
                price = record.get("price")
                stamp = record.get("timestamp")
                volume = record.get("volume")
                if (
                    len(record) != 4 - (symbol is None) - (price is None) - (stamp is None) - (volume is None)
                    or text.count(":") != len(record)  # each key has a colon: more means a key repeats
                ):
                    symbol = 0  # another key, a null, a repeated key: the reference rules decide
                if type(symbol) is str:
                    symbol = symbols.get(symbol) or _fast_symbol(symbol, default_symbol, symbols) or None
                elif symbol is None and default_symbol is not None:
                    symbol = default_symbol
                else:
                    symbol = None
                if type(price) is Decimal:
                    if not price or price.is_signed() or price.adjusted() >= 15:  # not in (0, 1E+15)
                        price = None
                    else:
                        shown = str(price)  # at most 17 decimals, no exponent
                        dot = shown.find(".")
                        if "E" in shown or (dot >= 0 and len(shown) - dot > 18):
                            price = None
                elif type(price) is int and 0 < price < 10**15:
                    price = Decimal(price)
                else:
                    price = None
                if type(stamp) is int:
                    ms = stamp * 1000 if -seconds < stamp < seconds else stamp
                    if not earliest <= ms <= latest:
                        symbol = None
                elif stamp is None and default_ts is not None:
                    ms = default_ts
                else:
                    symbol = None
                if volume is not None and not (type(volume) is int and volume >= 0):
                    symbol = None
                if symbol is not None and price is not None and not (volume and volume >= bound[price.adjusted()]):
                    key = (symbol, ms)
                    if key not in seen:
                        if size() >= cap:
                            raise TooManyPoints
                        seen[key] = (price, volume, number)
                        accepted += 1
                        append(new(Point, (symbol, ms, price, volume)))
                        continue
                    append(accepter.point(Point(symbol, ms, price, volume), number))
                    continue
            # Everything else: the reference order of checks (nesting, decoding, validation).
            if (
                len(text) > MAX_DEPTH
                and text.count("[") + text.count("{") > MAX_DEPTH
                and nesting_depth(text) > MAX_DEPTH
            ):
                append(accepter.reject(f"line {number}", TOO_DEEP))
                continue
            try:
                record = loads(text)
            except RecursionError:
                append(accepter.reject(f"line {number}", TOO_DEEP))
                continue
            except ValueError as exc:
                append(accepter.reject(f"line {number}", invalid_json(exc)))
                continue
            append(_slow(accepter, record, number, now_ms, default_symbol, default_ts, False))
    except TooManyPoints:  # every record before this one is in `out`
        append(accepter.capped(before))
    except GzipDamage as exc:  # every record before the damage is in `out`
        records += 1
        append(accepter.reject(f"after line {at}" if type(at) is int else f"after {at}", rest_not_read(exc)))
    finally:
        tally.records_in += records
        tally.accepted += accepted
    if out:
        yield out


def _csv(
    data: Any,
    accepter: Accepter,
    now_ms: int,
    latest: int,
    default_symbol: str | None,
    default_ts: int | None,
) -> Iterator[list[Point | Rejection]]:
    tally = accepter.tally
    seen = accepter.seen
    lines = Lines(data)
    special = lines.special
    reader = csv.reader(chain.from_iterable(lines.batches()))
    header: list[str] | None = None
    width = -1  # fields of a header the fast path can read (it names price and timestamp)
    unreadable: str | None = None
    i_symbol = i_price = i_stamp = i_volume = -1
    symbols: dict[str, str] = {}
    price_match = _PRICE.fullmatch
    setdefault = seen.setdefault
    size = seen.__len__
    cap = _NO_CAP if accepter.max_points is None else accepter.max_points
    bound = _VOLUME_BOUND
    new = tuple.__new__
    batch_size, seconds = _BATCH, SECONDS_MS_THRESHOLD
    records = accepted = 0
    at: str | int = "start of object"
    before = at  # the record before this one (where a capped object's rest begins)
    out: list[Point | Rejection] = []
    append = out.append
    try:
        end = 0  # the last line of the previous record
        while True:
            try:
                for row in reader:  # a for loop: cheaper than next() per row
                    if len(out) >= batch_size:
                        yield out
                        out = []
                        append = out.append
                    start = end + 1
                    end = reader.line_num
                    before = at
                    overlong = False
                    if special:  # an overlong or non-ASCII line was read: this record goes the reference way
                        for number in [n for n in special if n <= end]:
                            if special.pop(number) == "overlong":
                                overlong = True
                    elif len(row) == width:  # width is -1 until a header names price and timestamp
                        symbol_text = row[i_symbol] if i_symbol >= 0 else ""
                        symbol = symbols.get(symbol_text)
                        if symbol is None:
                            symbol = _fast_symbol(symbol_text, default_symbol, symbols)
                        price_text = row[i_price]
                        stamp_text = row[i_stamp]
                        volume_text = row[i_volume] if i_volume >= 0 else ""
                        if (
                            symbol
                            and price_match(price_text)
                            and stamp_text.isdigit()  # ASCII here: 0-9 only
                            and len(stamp_text) < 18
                            and (not volume_text or (volume_text.isdigit() and len(volume_text) < 18))
                        ):
                            price = Decimal(price_text)
                            most = bound[price.adjusted()] if price else -1
                            stamp = int(stamp_text)
                            ms = stamp * 1000 if stamp < seconds else stamp
                            volume = int(volume_text) if volume_text else None
                            if ms <= latest and most >= 0 and not (volume and volume >= most):
                                records += 1
                                at = start
                                first = (price, volume, start)
                                if setdefault((symbol, ms), first) is first:
                                    if size() > cap:  # no slot was left for it
                                        del seen[symbol, ms]
                                        raise TooManyPoints
                                    accepted += 1
                                    append(new(Point, (symbol, ms, price, volume)))
                                    continue
                                append(accepter.point(Point(symbol, ms, price, volume), start))
                                continue
                    # The reference rules, record by record (tests/test_fast_path.py keeps them equal).
                    if unreadable is not None:
                        if overlong or row and any(cell.strip() for cell in row):
                            records += 1
                            at = start
                            append(accepter.reject(f"line {start}", unreadable))
                        continue
                    if overlong:
                        records += 1
                        at = start
                        if header is None:
                            too_long, unreadable = csv_header_too_long(f"line {start}")
                            append(accepter.reject(f"line {start}", too_long))
                        else:
                            append(accepter.reject(f"line {start}", LINE_TOO_LONG))
                        continue
                    if not row or all(not cell.strip() for cell in row):
                        continue
                    if header is None:
                        names, refused, unreadable = csv_header(row, f"line {start}", fold_name)
                        if refused is not None:
                            records += 1
                            at = start
                            append(accepter.reject(f"line {start}", refused))
                            continue
                        header = names
                        if "price" in names and "timestamp" in names:
                            width = len(names)
                            i_symbol, i_price, i_stamp, i_volume = (
                                names.index("symbol") if "symbol" in names else -1,
                                names.index("price"),
                                names.index("timestamp"),
                                names.index("volume") if "volume" in names else -1,
                            )
                        continue
                    records += 1
                    at = start
                    if any(has_bad_bytes(cell) for cell in row):
                        append(accepter.reject(f"line {start}", LINE_NOT_UTF8))
                    elif len(row) != len(header):
                        append(accepter.reject(f"line {start}", field_count(len(row), len(header))))
                    else:
                        append(
                            _slow(
                                accepter,
                                dict(zip(header, row, strict=True)),
                                start,
                                now_ms,
                                default_symbol,
                                default_ts,
                                True,
                            )
                        )
                break  # the end of the object
            except csv.Error as exc:  # the reader goes on with the next line
                start = end + 1
                end = reader.line_num
                records += 1
                at = start
                append(accepter.reject(f"line {start}", unparsable_csv(exc)))
    except TooManyPoints:  # every record before this one is in `out`
        append(accepter.capped(before))
    except GzipDamage as exc:  # every record before the damage is in `out`
        records += 1
        append(accepter.reject(f"after line {at}" if type(at) is int else f"after {at}", rest_not_read(exc)))
    finally:
        tally.records_in += records
        tally.accepted += accepted
    if out:
        yield out
