"""Streaming parsers for market-data objects: JSON, JSON Lines, CSV, each maybe gzipped.

`iter_raw_records(stream, key=..., content_type=...)` reads a binary stream (an S3
`StreamingBody`, a file) incrementally and yields one `RawRecord` per record: its
position (`line 7`, `index 3`, `points[3]`) and either the decoded value or the reason
it could not be decoded. It never holds more than one line / one JSON element (at most
`MAX_RECORD_BYTES`) plus a read buffer in memory.

- gzip is recognised by its magic bytes (1f 8b), whatever the key says.
- The format comes from the key's extension (after `.gz`): `.csv`, `.jsonl`/`.ndjson`,
  `.json`; else from the Content-Type; else from the first byte (`{`/`[` = JSON).
- Bytes that are not UTF-8 make the record they are in a rejection (the text is
  decoded with `surrogateescape`, so one bad byte costs one record, not the object).
- Blank lines are not records. A CSV file's first line is its header (names matched
  case-insensitively); a CSV row whose field count differs from the header's is
  rejected.
- A JSON document is a sequence of top-level values: an array's elements are records
  (streamed), `{"points": [...]}` is unwrapped, any other value is one record. A
  syntax error inside a JSON document cannot be resynchronised: it becomes one
  rejection and the rest of that document is not read. A corrupt gzip stream likewise
  ends the object with one rejection.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
import zlib
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO, NamedTuple

MAX_RECORD_BYTES = 64 * 1024  # one line / one JSON element; a point is < 200 bytes
READ_CHUNK_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"

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
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)
_WRAPPER_RE = re.compile(r'\{\s*"points"\s*:\s*\[')


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


_DECODER = json.JSONDecoder(parse_float=Decimal, parse_constant=_bad_json_constant)


def loads(text: str) -> Any:
    """Decode JSON with exact decimals (`parse_float=Decimal`)."""
    return _DECODER.decode(text)


_BAD_BYTE = re.compile("[\udc80-\udcff]")


def _has_bad_bytes(text: str) -> bool:
    return not text.isascii() and _BAD_BYTE.search(text) is not None


class _Prefixed(io.RawIOBase):
    """A raw stream that replays `prefix` and then reads the rest of `inner`."""

    def __init__(self, prefix: bytes, inner: Any) -> None:
        self._prefix = prefix
        self._inner = inner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._prefix:
            n = min(len(buffer), len(self._prefix))
            buffer[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._inner.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _peek(stream: Any, n: int) -> tuple[bytes, BinaryIO]:
    """Read up to n bytes and return them with a stream that still yields them."""
    head = b""
    while len(head) < n:
        chunk = stream.read(n - len(head))
        if not chunk:
            break
        head += chunk
    return head, io.BufferedReader(_Prefixed(head, stream), READ_CHUNK_BYTES)


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


def _iter_lines(stream: BinaryIO) -> Iterator[tuple[int, str | None]]:
    """Yield (line number, text) per physical line; text None for an overlong line."""
    number = 0
    while True:
        line = stream.readline(MAX_RECORD_BYTES + 1)
        if not line:
            return
        number += 1
        if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
            while True:  # skip the rest of the overlong line
                rest = stream.readline(READ_CHUNK_BYTES)
                if not rest or rest.endswith(b"\n"):
                    break
            yield number, None
            continue
        if number == 1 and line.startswith(b"\xef\xbb\xbf"):
            line = line[3:]
        yield number, line.decode("utf-8", "surrogateescape")


def _iter_jsonl(stream: BinaryIO) -> Iterator[RawRecord]:
    for number, text in _iter_lines(stream):
        position = f"line {number}"
        if text is None:
            yield RawRecord(position, error=f"line longer than {MAX_RECORD_BYTES} bytes")
            continue
        text = text.strip()
        if not text:
            continue
        if _has_bad_bytes(text):
            yield RawRecord(position, error="line is not valid UTF-8")
            continue
        try:
            yield RawRecord(position, loads(text))
        except (ValueError, RecursionError) as exc:
            yield RawRecord(position, error=f"invalid JSON: {_short(exc)}")


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _iter_csv(stream: BinaryIO) -> Iterator[RawRecord]:
    state = {"line": 0, "overlong": False}

    def lines() -> Iterator[str]:
        for number, text in _iter_lines(stream):
            state["line"] = number
            if text is None:
                state["overlong"] = True
                yield "\n"  # keep the reader in step; the row is rejected below
            else:
                yield text

    reader = csv.reader(lines())
    header: list[str] | None = None
    while True:
        start = state["line"] + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawRecord(f"line {start}", error=f"unparsable CSV: {_short(exc)}")
            continue
        position = f"line {start}"
        if state["overlong"]:
            state["overlong"] = False
            yield RawRecord(position, error=f"line longer than {MAX_RECORD_BYTES} bytes")
            continue
        if not row or all(not cell.strip() for cell in row):
            continue  # blank line
        if header is None:
            header = [cell.strip().lower() for cell in row]
            continue
        if any(_has_bad_bytes(cell) for cell in row):
            yield RawRecord(position, error="line is not valid UTF-8")
        elif len(row) != len(header):
            yield RawRecord(position, error=f"{len(row)} fields, the header has {len(header)}")
        else:
            yield RawRecord(position, dict(zip(header, row, strict=True)), text_fields=True)


class _JsonSyntaxError(Exception):
    pass


class _JsonReader:
    """Incremental reader of a JSON text, one value (or array element) at a time."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("surrogateescape")
        self.buf = ""
        self.pos = 0
        self.eof = False

    def fill(self) -> bool:
        """Read more text; False at the end of the stream."""
        if self.eof:
            return False
        chunk = self._stream.read(READ_CHUNK_BYTES)
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

    def ensure(self, n: int) -> None:
        while len(self.buf) - self.pos < n and self.fill():
            pass

    def value(self) -> tuple[Any, str]:
        """Decode the next value; return it with its raw text."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.buf, self.pos)
            except (ValueError, RecursionError) as exc:
                if len(self.buf) - self.pos <= MAX_RECORD_BYTES and self.fill():
                    continue
                raise _JsonSyntaxError(_short(exc)) from None
            if end == len(self.buf) and self.fill():
                continue  # a number may continue in the next chunk
            raw = self.buf[self.pos : end]
            self.pos = end
            return value, raw


def _json_record(position: str, value: Any, raw: str) -> RawRecord:
    if _has_bad_bytes(raw):
        return RawRecord(position, error="record is not valid UTF-8")
    return RawRecord(position, value)


def _iter_json(stream: BinaryIO) -> Iterator[RawRecord]:
    reader = _JsonReader(stream)
    document = 0
    position = "document"
    try:
        while True:
            first = reader.peek()
            if not first:
                return
            prefix = "" if document == 0 else f"document {document + 1} "
            document += 1
            array_name = None
            if first == "[":
                array_name, skip = "index ", 1
            elif first == "{":
                reader.ensure(64)
                match = _WRAPPER_RE.match(reader.buf, reader.pos)
                if match:
                    array_name, skip = "points[", match.end() - reader.pos
            if array_name is None:
                position = f"{prefix}value".strip() if document > 1 else "document"
                yield _json_record(position, *reader.value())
                continue
            reader.pos += skip
            index = 0
            while True:
                position = f"{prefix}{array_name}{index}" + ("]" if array_name == "points[" else "")
                char = reader.peek()
                if char == "]":
                    reader.pos += 1
                    break
                if index:
                    if char != ",":
                        raise _JsonSyntaxError("expected ',' or ']' between elements")
                    reader.pos += 1
                    reader.peek()
                yield _json_record(position, *reader.value())
                index += 1
            if array_name == "points[":
                if reader.peek() != "}":
                    raise _JsonSyntaxError('unexpected content after the "points" array')
                reader.pos += 1
    except _JsonSyntaxError as exc:
        yield RawRecord(position, error=f"invalid JSON: {exc}; the rest of the document was not read")


def iter_raw_records(stream: Any, *, key: str = "", content_type: str | None = None) -> Iterator[RawRecord]:
    """Yield every record of an object, in order, without loading it whole."""
    head, buffered = _peek(stream, 2)
    source: BinaryIO = buffered
    if head == GZIP_MAGIC:
        source = gzip.GzipFile(fileobj=buffered, mode="rb")  # type: ignore[assignment]
    last = "start of object"
    try:
        inner_head, source = _peek(source, 512)
        fmt = detect_format(key, content_type, inner_head)
        parser = {CSV: _iter_csv, JSON: _iter_json, JSONL: _iter_jsonl}[fmt]
        for record in parser(source):
            last = record.position
            yield record
    except _GZIP_ERRORS as exc:
        yield RawRecord(f"after {last}", error=f"corrupt gzip data: {_short(exc)}; the rest was not read")
