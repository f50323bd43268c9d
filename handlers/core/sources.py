"""Byte sources for the parsers: peekable streams, gzip that surfaces damage only after the good bytes.

`open_source(stream)` wraps anything with `read(n)` (an S3 `StreamingBody`, a file,
`BytesReader`) and decompresses it when it starts with the gzip magic bytes (1f 8b),
whatever the key says: concatenated members and zero padding are read, and damage
(truncation, a corrupt block, a wrong CRC-32 or length) raises `GzipDamage` only after
every byte that decompressed before it has been returned.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

READ_CHUNK_BYTES = 64 * 1024
GZIP_MAGIC = b"\x1f\x8b"


class GzipDamage(Exception):
    """The gzip data is damaged here; every byte before it has been returned."""


class GzipTooLarge(GzipDamage):
    """The gzip data decompresses to more than its cap; every byte up to the cap was returned."""


class Source:
    """`read(n)` returns 1..n bytes, b"" at the end; bytes can be peeked and replayed."""

    def __init__(self, read: Callable[[int], bytes]) -> None:
        self._read = read
        self._head = b""

    def read(self, n: int) -> bytes:
        if self._head:
            data, self._head = self._head[:n], self._head[n:]
            return data
        return self._read(n)

    def peek(self, n: int) -> bytes:
        while len(self._head) < n:
            more = self._read(n - len(self._head))
            if not more:
                break
            self._head += more
        return self._head[:n]


class Gunzip:
    """Decompresses gzip members from a `Source`; damage surfaces only after the good bytes.

    zlib reports damage (a bad block, a wrong CRC-32 or length, the end of the input
    inside a member) without the output of the call that met it, so that call's input
    is fed again one byte at a time to a copy of the decompressor taken before it: every
    byte that decompresses before the damage is returned, then `GzipDamage` is raised.
    """

    _MAX_OUT = 4 * READ_CHUNK_BYTES  # output per step: bounds memory on a zip bomb

    def __init__(self, source: Source, max_bytes: int | None = None) -> None:
        self._source = source
        self._left = max_bytes  # decompressed bytes still allowed (None: no cap)
        self._max_bytes = max_bytes
        self._z: Any = None  # the current member's decompressor; None between members
        self._in = b""
        self._out = b""
        self._error: GzipDamage | None = None
        self._done = False

    def read(self, n: int) -> bytes:
        while not self._out:
            if self._error is not None:
                raise self._error
            if self._done:
                return b""
            self._step()
        data, self._out = self._out[:n], self._out[n:]
        return data

    def _capped(self) -> None:
        """Cut `_out` at the cap; what lies beyond it is one `GzipTooLarge`."""
        if self._left is None or self._error is not None:
            return
        if len(self._out) > self._left:
            self._out = self._out[: self._left]
            self._error = GzipTooLarge(f"gzip data decompresses to more than {self._max_bytes} bytes")
        self._left -= len(self._out)

    def _step(self) -> None:
        self._decompress()
        self._capped()

    def _decompress(self) -> None:
        if not self._in:
            self._in = self._source.read(READ_CHUNK_BYTES)
            if not self._in:
                if self._z is not None:
                    self._error = GzipDamage("corrupt gzip data: it ends inside a gzip member (truncated)")
                self._done = self._z is None
                return
        if self._z is None:  # between members: zero padding, another member, or garbage
            self._in = self._in.lstrip(b"\0")
            if not self._in:
                return
            if len(self._in) < 2:
                self._in += self._source.read(1)
            if self._in[:2] != GZIP_MAGIC:
                self._error = GzipDamage("corrupt gzip data: what follows the end of the gzip stream is not gzip")
                return
            self._z = zlib.decompressobj(wbits=31)
        before = self._z.copy()
        data = self._in
        try:
            self._out = self._z.decompress(data, self._MAX_OUT)
        except zlib.error as exc:
            self._out = _salvage(before, data)
            self._error = GzipDamage(f"corrupt gzip data: {exc}")
            return
        if self._z.eof:
            self._in, self._z = self._z.unused_data, None
        else:
            self._in = self._z.unconsumed_tail


def _salvage(z: Any, data: bytes) -> bytes:
    """What `z` outputs from `data` before it meets the damage."""
    out = []
    for i in range(len(data)):
        try:
            out.append(z.decompress(data[i : i + 1]))
        except zlib.error:
            break
        if z.eof:
            break
    return b"".join(out)


def open_source(stream: Any, max_gunzip_bytes: int | None = None) -> Source:
    """A `Source` over a binary stream, decompressed when it starts with the gzip magic bytes.

    `max_gunzip_bytes` caps the decompressed size: beyond it, `GzipTooLarge` (a
    `GzipDamage`: the records before it are kept, the rest is one rejection).
    """
    source = Source(stream.read)
    if source.peek(2) == GZIP_MAGIC:
        return Source(Gunzip(source, max_gunzip_bytes).read)
    return source


def decoded_size(data: bytes, limit: int) -> int:
    """The size of `data` once decompressed (gzip), counted up to `limit` + 1 at most.

    Streaming, in bounded memory (`Gunzip` outputs at most 256 KiB a step): a body
    that expands without bound is measured only up to just past the limit. Damage
    ends the count (the parser reports it).
    """
    source = open_source(BytesReader(data), limit + 1)
    size = 0
    try:
        while size <= limit:
            chunk = source.read(READ_CHUNK_BYTES)
            if not chunk:
                break
            size += len(chunk)
    except GzipTooLarge:
        return limit + 1
    except GzipDamage:
        pass
    return size


class BytesReader:
    """A bytes object as a stream with `read(n)`."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def read(self, n: int) -> bytes:
        data = bytes(self._data[self._pos : self._pos + n])
        self._pos += len(data)
        return data
