"""Streaming parsers for market-data objects and API bodies: JSON, JSON Lines, CSV, each maybe gzipped.

`iter_raw_records(stream, key=..., content_type=...)` reads a binary stream (an S3
`StreamingBody`, a file, an API body) incrementally and yields one `RawRecord` per
record: its position (`line 7`, `index 3`, `points[3]`) and either the decoded value or
the reason it could not be decoded. It never holds more than one record (at most
`MAX_RECORD_BYTES`) plus a read buffer in memory. POST /ingest bodies go through the
same parser (`iter_api_records`), so one input gives one result on both paths.

- gzip is recognised by its magic bytes (1f 8b), whatever the key says; concatenated
  members and zero padding are read. Damaged gzip data (truncated, corrupt, a wrong
  checksum) keeps every record that ended before the damage; the unfinished record and
  everything after it are one rejection.
- The format comes from the key's extension (after `.gz`): `.csv`, `.jsonl`/`.ndjson`,
  `.json`; else from the Content-Type; else from the first byte (`{`/`[` = JSON).
- Lines end with LF, CRLF or a lone CR. A line's content is at most
  `MAX_RECORD_BYTES`; a longer one is one rejection.
- Bytes that are not UTF-8 make the record they are in a rejection (the text is
  decoded with `surrogateescape`, so one bad byte costs one record, not the object).
- Blank lines are not records. A CSV file's first non-blank line is its header (names
  matched case-insensitively); a row whose field count differs from the header's is
  rejected. A header that is too long or names a column twice cannot be read: it and
  every later line are rejections, so each line is still accounted for.
- A JSON document is a sequence of top-level values: an array's elements are records
  (streamed); an object with a `"points"` array is a wrapper whose elements are the
  records (its other keys are ignored); any other value is one record. An element that
  is too large, nested deeper than `MAX_DEPTH`, or unreadable (a syntax error inside
  it, a 5,000-digit number) is rejected alone and the array continues. Only a syntax
  error that leaves the element's end unknown (an unbalanced bracket, an unterminated
  string) ends the document with one rejection.
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from .lines import MAX_RECORD_BYTES, iter_lines
from .numeric import json_number
from .points import NamedTwice, fold_name, json_object
from .rules import (
    CSV,
    JSON,
    JSONL,
    LINE_NOT_UTF8,
    LINE_TOO_LONG,
    MAX_DEPTH,
    RECORD_NOT_UTF8,
    TOO_DEEP,
    TOO_LARGE,
    csv_header,
    csv_header_too_long,
    detect_format,
    field_count,
    has_bad_bytes,
    invalid_json,
    nesting_depth,
    record_problem,
    rest_not_read,
    short,
    unparsable_csv,
    utf8_size,
)
from .sources import READ_CHUNK_BYTES, BytesReader, GzipDamage, open_source

__all__ = [
    "MAX_DEPTH",
    "MAX_RECORD_BYTES",
    "TOO_DEEP",
    "TOO_LARGE",
    "GzipDamage",
    "RawRecord",
    "detect_format",
    "iter_api_records",
    "iter_raw_records",
    "loads",
]


class RawRecord(NamedTuple):
    """One record as read from a source, before validation."""

    position: str
    value: Any = None  # the decoded record (usually a dict) when error is None
    error: str | None = None  # why the record could not be decoded
    text_fields: bool = False  # True for CSV rows: every value is text


def _bad_json_constant(name: str) -> float:
    # json accepts NaN/Infinity by default; keep them as floats so that validation
    # rejects them with a precise reason ("price must be finite").
    return float(name.replace("Infinity", "inf"))


_DECODER = json.JSONDecoder(parse_float=json_number, parse_constant=_bad_json_constant, object_pairs_hook=json_object)
# The fast path's decoder: no pairs hook (it costs ~0.5 us a record); fast.py proves a
# flat record has no repeated key by counting its colons instead.
FAST_DECODER = json.JSONDecoder(parse_float=json_number, parse_constant=_bad_json_constant)


def loads(text: str) -> Any:
    """Decode JSON with exact decimals (`numeric.json_number`: a Decimal, or `HugeNumber`)."""
    return _DECODER.decode(text)


def _iter_jsonl(source: Any) -> Iterator[RawRecord]:
    for number, text in iter_lines(source):
        position = f"line {number}"
        if text is None:
            yield RawRecord(position, error=LINE_TOO_LONG)
            continue
        text = text.strip()
        if not text:
            continue
        if has_bad_bytes(text):
            yield RawRecord(position, error=LINE_NOT_UTF8)
            continue
        if text.count("[") + text.count("{") > MAX_DEPTH and nesting_depth(text) > MAX_DEPTH:
            yield RawRecord(position, error=TOO_DEEP)
            continue
        try:
            yield RawRecord(position, loads(text))
        except RecursionError:
            yield RawRecord(position, error=TOO_DEEP)
        except ValueError as exc:
            yield RawRecord(position, error=invalid_json(exc))


def _iter_csv(source: Any) -> Iterator[RawRecord]:
    state = {"line": 0, "overlong": False}

    def lines() -> Iterator[str]:
        for number, text in iter_lines(source):
            state["line"] = number
            if text is None:
                state["overlong"] = True
                yield "\n"  # keep the reader in step; the row is rejected below
            else:
                yield text

    reader = csv.reader(lines())
    header: list[str] | None = None
    unreadable: str | None = None  # why the header cannot be used: every later row says so
    while True:
        start = state["line"] + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawRecord(f"line {start}", error=unparsable_csv(exc))
            continue
        position = f"line {start}"
        overlong, state["overlong"] = state["overlong"], False
        if unreadable is not None:
            if overlong or row and any(cell.strip() for cell in row):
                yield RawRecord(position, error=unreadable)
            continue
        if overlong:
            if header is None:
                first, unreadable = csv_header_too_long(position)
                yield RawRecord(position, error=first)
            else:
                yield RawRecord(position, error=LINE_TOO_LONG)
            continue
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if header is None:
            names, refused, unreadable = csv_header(row, position, fold_name)
            if refused is not None:
                yield RawRecord(position, error=refused)
                continue
            header = names
            continue
        if any(has_bad_bytes(cell) for cell in row):
            yield RawRecord(position, error=LINE_NOT_UTF8)
        elif len(row) != len(header):
            yield RawRecord(position, error=field_count(len(row), len(header)))
        else:
            yield RawRecord(position, dict(zip(header, row, strict=True)), text_fields=True)


# --- JSON -----------------------------------------------------------------------------
class _JsonSyntaxError(Exception):
    """A syntax error after which the document cannot be resynchronised."""


_SCALAR_END = re.compile(r"[\s,\]}\[{:\"]")
_STRUCTURE = re.compile(r'["\[\]{}]')
_STRING_STOP = re.compile(r'["\\]')
_CLOSED = '}]"'  # a value ending in one of these is complete even at the end of the buffer
# What a number cut by the end of the buffer leaves undecoded: "12." and "1e-" decode as
# 12 and 1, the rest may be in the next chunk (JSON's number grammar, RFC 8259 section 6).
_NUMBER_CUT = re.compile(r"[.eE][+\-]?\Z")


class _JsonReader:
    """Incremental reader of a JSON text, one value (or array element) at a time."""

    def __init__(self, source: Any) -> None:
        self._source = source
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("surrogateescape")
        self.buf = ""
        self.pos = 0
        self.eof = False
        self.at = "document"  # position of the record being read, for a syntax error

    def fill(self) -> bool:
        """Read more text; False at the end of the stream."""
        if self.eof:
            return False
        chunk = self._source.read(READ_CHUNK_BYTES)
        if not chunk:
            self.eof = True
            self.buf = self.buf[self.pos :] + self._decoder.decode(b"", final=True)
            self.pos = 0
            return False
        self.buf = self.buf[self.pos :] + self._decoder.decode(chunk)
        self.pos = 0
        return True

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end), not consumed."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in " \t\r\n":
                self.pos += 1
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self.fill():
                return ""

    def _cut(self, end: int) -> bool:
        """The value decoded up to `end` may be a number that the buffer's end cut short."""
        if self.eof or self.buf[end - 1] in _CLOSED:
            return False
        return end == len(self.buf) or _NUMBER_CUT.match(self.buf, end) is not None

    def decode(self) -> tuple[Any, str]:
        """Decode the next value, which must be well-formed; return it with its text."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except (ValueError, RecursionError) as exc:
                if len(self.buf) - self.pos <= MAX_RECORD_BYTES and self.fill():
                    continue
                raise _JsonSyntaxError(short(exc)) from None
            if self._cut(end) and self.fill():
                continue  # a number may continue in the next chunk
            raw = self.buf[self.pos : end]
            self.pos = end
            return value, raw

    def element(self, position: str, max_depth: int = MAX_DEPTH) -> tuple[RawRecord, int]:
        """The next value as a record (or its rejection), and its size in bytes.

        A value that cannot be decoded is skipped to its end (`skip`) and rejected
        alone; `_JsonSyntaxError` only when its end cannot be found.
        """
        self.at = position
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except RecursionError:
                return self._skip_rejected(position, TOO_DEEP)
            except ValueError as exc:
                if len(self.buf) - self.pos <= MAX_RECORD_BYTES and self.fill():
                    continue
                reason = invalid_json(exc)
                if not isinstance(exc, json.JSONDecodeError):
                    reason = f"unreadable value: {short(exc)}"
                return self._skip_rejected(position, reason)
            if self._cut(end) and self.fill():
                continue  # a number may continue in the next chunk
            raw = self.buf[self.pos : end]
            self.pos = end
            problem = record_problem(raw, max_depth)
            size = utf8_size(raw)
            if problem is not None:
                return RawRecord(position, error=problem), size
            return RawRecord(position, value), size

    def _skip_rejected(self, position: str, reason: str) -> tuple[RawRecord, int]:
        size, depth = self.skip()
        if depth > MAX_DEPTH:
            reason = TOO_DEEP
        elif size > MAX_RECORD_BYTES:
            reason = TOO_LARGE
        return RawRecord(position, error=reason), size

    def skip(self) -> tuple[int, int]:
        """Consume one value without decoding it; return its size (characters) and depth.

        Tracks strings and brackets only, in bounded memory, so an element of any size
        or depth can be passed. Raises `_JsonSyntaxError` when its end cannot be found.
        """
        first = self.peek()
        if first and first not in '[{"':  # a scalar: up to the next delimiter
            size = 0
            while True:
                match = _SCALAR_END.search(self.buf, self.pos)
                if match is not None:
                    size += match.start() - self.pos
                    self.pos = match.start()
                    if not size:
                        raise _JsonSyntaxError(f"unexpected {match.group()!r}")
                    return size, 0
                size += len(self.buf) - self.pos
                self.pos = len(self.buf)
                if not self.fill():
                    return size, 0
        stack: list[str] = []
        deepest = 0
        in_string = False
        size = 0
        while True:
            pattern = _STRING_STOP if in_string else _STRUCTURE
            match = pattern.search(self.buf, self.pos)
            if match is None or (in_string and match.group() == "\\" and match.end() >= len(self.buf)):
                stop = len(self.buf) if match is None else match.start()
                size += stop - self.pos
                self.pos = stop
                if not self.fill():
                    raise _JsonSyntaxError("the document ends inside a value")
                continue
            char = match.group()
            size += match.end() - self.pos
            self.pos = match.end()
            if in_string:
                if char == "\\":
                    self.pos += 1
                    size += 1
                    continue
                in_string = False
            elif char == '"':
                in_string = True
                continue
            elif char in "[{":
                stack.append("]" if char == "[" else "}")
                deepest = max(deepest, len(stack))
                continue
            elif not stack or stack.pop() != char:
                raise _JsonSyntaxError(f"unbalanced {char!r}")
            if not stack:
                return size, deepest


def _iter_json(source: Any, single: str = "document") -> Iterator[RawRecord]:
    reader = _JsonReader(source)
    reader.at = single
    document = 0
    try:
        while True:
            first = reader.peek()
            if not first:
                return
            document += 1
            prefix = "" if document == 1 else f"document {document} "
            position = reader.at = single if document == 1 else f"document {document} value"
            if first == "[":
                reader.pos += 1
                yield from _array(reader, _namer(f"{prefix}index "), [0])
            elif first == "{":
                yield from _object(reader, position, prefix)
            else:
                value, raw = reader.decode()
                problem = record_problem(raw)
                yield RawRecord(position, error=problem) if problem else RawRecord(position, value)
    except _JsonSyntaxError as exc:
        yield RawRecord(reader.at, error=f"invalid JSON: {exc}; the rest of the document was not read")


def _namer(head: str, tail: str = "") -> Callable[[int], str]:
    return lambda index: f"{head}{index}{tail}"


def _array(reader: _JsonReader, name: Callable[[int], str], counter: list[int]) -> Iterator[RawRecord]:
    """The elements of an array whose '[' was consumed, up to its ']'."""
    first = True
    while True:
        reader.at = name(counter[0])
        char = reader.peek()
        if char == "]":
            reader.pos += 1
            return
        if not first:
            if char != ",":
                raise _JsonSyntaxError("expected ',' or ']' between elements")
            reader.pos += 1
            reader.peek()
        first = False
        yield reader.element(name(counter[0]))[0]
        counter[0] += 1


def _object(reader: _JsonReader, position: str, prefix: str) -> Iterator[RawRecord]:
    """A top-level object: a `{"points": [...]}` wrapper (its elements) or one record."""
    reader.pos += 1
    pairs: dict[Any, Any] = {}
    twice = ""
    size = 2
    problem: str | None = None
    wrapper = False
    counter = [0]
    first = True
    while True:
        char = reader.peek()
        if char == "}":
            reader.pos += 1
            break
        if not first:
            if char != ",":
                raise _JsonSyntaxError("expected ',' or '}' in an object")
            reader.pos += 1
            char = reader.peek()
        first = False
        if char != '"':
            raise _JsonSyntaxError("expected a string key in an object")
        key, raw_key = reader.decode()
        if reader.peek() != ":":
            raise _JsonSyntaxError("expected ':' after an object key")
        reader.pos += 1
        if key == "points" and reader.peek() == "[":
            wrapper = True
            reader.pos += 1
            yield from _array(reader, _namer(f"{prefix}points[", "]"), counter)
            continue
        record, value_size = reader.element(position, MAX_DEPTH - 1)
        size += utf8_size(raw_key) + value_size + 2
        if problem is None:
            problem = record.error or (RECORD_NOT_UTF8 if has_bad_bytes(raw_key) else None)
        if size > MAX_RECORD_BYTES:
            problem = problem if problem == TOO_DEEP else TOO_LARGE
            pairs = {}
        elif problem is None:
            twice = twice or (key if key in pairs else "")
            pairs[key] = record.value
    if not wrapper:
        if problem is None and twice:
            pairs = NamedTwice(pairs)
            pairs.twice = twice
        yield RawRecord(position, error=problem) if problem else RawRecord(position, pairs)


# --- entry points ---------------------------------------------------------------------
def iter_raw_records(
    stream: Any, *, key: str = "", content_type: str | None = None, max_gunzip_bytes: int | None = None
) -> Iterator[RawRecord]:
    """Yield every record of an object, in order, without loading it whole.

    `max_gunzip_bytes` caps what a gzip object may decompress to (the records before
    the cap are kept; the rest is one rejection).
    """
    last = "start of object"
    try:
        source = open_source(stream, max_gunzip_bytes)
        fmt = detect_format(key, content_type, source.peek(512))
        parser = {CSV: _iter_csv, JSON: _iter_json, JSONL: _iter_jsonl}[fmt]
        for record in parser(source):
            last = record.position
            yield record
    except GzipDamage as exc:
        yield RawRecord(f"after {last}", error=rest_not_read(exc))


def iter_api_records(body: bytes, max_gunzip_bytes: int | None = None) -> Iterator[RawRecord]:
    """The records of a POST /ingest body: JSON (one point, an array, a wrapper), as for S3."""
    last = "start of body"
    try:
        source = open_source(BytesReader(body), max_gunzip_bytes)
        for record in _iter_json(source, single="body"):
            last = record.position
            yield record
    except GzipDamage as exc:
        yield RawRecord(f"after {last}", error=rest_not_read(exc))
