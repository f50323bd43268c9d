"""The line splitter of both parsers (reference `parsing.py`, fast path `fast.py`): one copy.

Lines end with LF, CRLF or a lone CR (`bytes.splitlines` splits on exactly these; for
an ASCII chunk without the other breaks `str.splitlines` agrees and is faster). A
UTF-8 byte order mark at the start is dropped. A line whose content is longer than
`MAX_RECORD_BYTES` is dropped while it is read (memory holds at most one such line)
and reported as overlong. Non-ASCII lines are decoded with `surrogateescape`, so a bad
byte costs its record, not the object.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .sources import READ_CHUNK_BYTES

MAX_RECORD_BYTES = 64 * 1024  # one line / one JSON element; a point is < 200 bytes
_ODD_BREAKS = (b"\x0b", b"\x0c", b"\x1c", b"\x1d", b"\x1e")  # str.splitlines breaks there, bytes.splitlines not


class Lines:
    """Physical lines (LF, CRLF, CR) with their endings, a read chunk at a time.

    `batches()` yields lists of line texts ("\n" in place of an overlong line), so that a
    consumer can iterate them at C speed (`chain.from_iterable`); lines are numbered from
    1 in that order, and `special` maps the number of each overlong line to "overlong"
    and of each non-ASCII line to "odd" (a record that touches one goes the reference way).
    """

    def __init__(self, source: Any) -> None:
        self.source = source
        self.special: dict[int, str] = {}

    def batches(self) -> Iterator[list[str]]:
        special = self.special
        count = 0
        pending = b""
        dropping = False  # the unfinished line is already overlong (its bytes were dropped)
        first = True
        limit = MAX_RECORD_BYTES + 1
        while True:
            chunk = self.source.read(READ_CHUNK_BYTES)
            if not chunk:
                break
            if first:
                first = False
                if chunk.startswith(b"\xef\xbb\xbf"):
                    chunk = chunk[3:]
            data = pending + chunk if pending else chunk
            if (
                not dropping
                and data.isascii()
                and not any(odd in data for odd in _ODD_BREAKS)  # `in`: memchr speed, unlike a regex
            ):
                # The common case: one decode and one split for the whole chunk.
                texts = data.decode("ascii").splitlines(True)
                tail = texts.pop() if texts and not texts[-1].endswith("\n") else ""
                if max(map(len, texts), default=0) <= limit:
                    pending = tail.encode("ascii")
                    count += len(texts)
                    yield texts
                    if len(pending) > limit:
                        dropping = True
                        pending = pending[-1:] if pending.endswith(b"\r") else b""
                    continue
            lines = data.splitlines(True)
            pending = lines.pop() if lines and not lines[-1].endswith(b"\n") else b""
            batch = []
            for line in lines:
                count += 1
                if dropping or len(line) - (2 if line.endswith(b"\r\n") else 1) > MAX_RECORD_BYTES:
                    dropping = False
                    special[count] = "overlong"
                    batch.append("\n")
                    continue
                if not line.isascii():
                    special[count] = "odd"
                batch.append(line.decode("utf-8", "surrogateescape"))
            yield batch
            if len(pending) > limit:
                dropping = True
                pending = pending[-1:] if pending.endswith(b"\r") else b""
        if pending or dropping:
            count += 1
            content = len(pending) - (1 if pending.endswith(b"\r") else 0)
            if dropping or content > MAX_RECORD_BYTES:
                special[count] = "overlong"
                yield ["\n"]
            else:
                if not pending.isascii():
                    special[count] = "odd"
                yield [pending.decode("utf-8", "surrogateescape")]


def iter_lines(source: Any) -> Iterator[tuple[int, str | None]]:
    """(line number, text with its line ending) per physical line; None for an overlong one."""
    lines = Lines(source)
    special = lines.special
    number = 0
    for batch in lines.batches():
        for text in batch:
            number += 1
            if special and special.pop(number, None) == "overlong":
                yield number, None
            else:
                yield number, text
