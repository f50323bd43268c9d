"""The `upload` core: put files into the data bucket under keys that carry their symbol.

The key layout is the input contract's (docs/input-contract.md): a record without a symbol
takes the one its object key implies. Which key implies which symbol is decided by the
handlers' own function (`handlers.core.points.symbol_from_key`), so this module builds a
key (`AAPL/2024-06-03.csv`) and then checks with that function that DataIngestion will
read the intended symbol from it; if it would not, the upload is refused before any byte
is sent. The symbol is `--symbol`, or else the file's immediate parent folder when its
name is a symbol as written (upper case: `AAPL`, `BRK.B`; not `data`); otherwise the key is the file name and every record must name its
symbol.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from market_cfn.base.errors import UsageError

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_s3 import S3Client

CONTENT_TYPES = {".csv": "text/csv", ".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson"}
CONTENT_TYPES[".json"] = "application/json"
PUT_OBJECT_LIMIT_BYTES = 5 * 1024**3  # PutObject's single-request maximum (S3 API reference)


@dataclass(frozen=True)
class Upload:
    path: str
    key: str
    symbol: str | None
    size: int


def _symbol_from_key(key: str) -> str | None:
    from handlers.core.points import symbol_from_key

    return symbol_from_key(key)


def _valid_symbol(text: str) -> str | None:
    from handlers.core.points import SYMBOL_RE

    symbol = text.strip().upper()
    return symbol if SYMBOL_RE.fullmatch(symbol) else None


def _folder_symbol(path: str) -> str | None:
    """The parent folder's name when it is a symbol as written (upper case: AAPL, BRK.B), else None.

    A folder such as `data` or `2024` is not taken for a symbol: a record without a symbol
    field would silently get a wrong one.
    """
    from handlers.core.points import SYMBOL_RE

    folder = os.path.basename(os.path.dirname(os.path.abspath(path)))
    return folder if SYMBOL_RE.fullmatch(folder) and any(c.isalpha() for c in folder) else None


def plan(paths: list[str], *, symbol: str | None = None, compress: bool = False) -> list[Upload]:
    """One Upload per file; UsageError for a missing file, a bad symbol or a key the contract would misread."""
    forced = None
    if symbol is not None:
        forced = _valid_symbol(symbol)
        if forced is None:
            raise UsageError(f"--symbol {symbol!r}: not a valid symbol (1-12 of A-Z 0-9 . -)")
    uploads: list[Upload] = []
    seen: dict[str, str] = {}
    for path in paths:
        if not os.path.isfile(path):
            raise UsageError(f"{path}: not a readable file")
        name = os.path.basename(path)
        if compress and not name.endswith(".gz"):
            name += ".gz"
        wanted = forced or _folder_symbol(path)
        candidates = [f"{wanted}/{name}", f"symbol={wanted}/{name}"] if wanted else [name]
        key = next((k for k in candidates if _symbol_from_key(k) == wanted), None)
        if key is None:
            raise UsageError(
                f"{path}: no key layout makes DataIngestion read the symbol {wanted} (tried {', '.join(candidates)})"
            )
        if os.path.getsize(path) > PUT_OBJECT_LIMIT_BYTES:
            raise UsageError(f"{path}: over PutObject's 5 GiB limit; split the file")
        if key in seen:
            raise UsageError(f"{path} and {seen[key]} would both be uploaded as {key}")
        seen[key] = path
        uploads.append(Upload(path, key, wanted, os.path.getsize(path)))
    return uploads


def _content_type(key: str) -> str:
    if key.endswith(".gz"):
        return "application/gzip"
    return CONTENT_TYPES.get(os.path.splitext(key)[1].lower(), "application/octet-stream")


def _body(path: str, compress: bool) -> IO[bytes]:
    source = open(path, "rb")
    if not compress or path.endswith(".gz"):
        return source
    spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=64 * 1024**2)
    with source, gzip.GzipFile(fileobj=spool, mode="wb", mtime=0) as packed:  # mtime 0: same bytes every time
        shutil.copyfileobj(source, packed, 1024**2)
    spool.seek(0)
    return spool


def upload(
    s3: S3Client,
    bucket: str,
    uploads: list[Upload],
    *,
    compress: bool = False,
    on_bytes: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """PutObject each file (S3 checks the SHA-256 checksum); one result per file, in order.

    A file whose upload fails does not stop the others: its result carries `error`
    (one line) instead of a version, and the caller counts it.
    """
    results = []
    for item in uploads:
        result: dict[str, Any] = {
            "file": item.path,
            "key": item.key,
            "symbol": item.symbol,
            "uri": f"s3://{bucket}/{item.key}",
        }
        body = _body(item.path, compress)
        try:
            body.seek(0, os.SEEK_END)
            result["bytes"] = body.tell()
            body.seek(0)
            answer = s3.put_object(
                Bucket=bucket, Key=item.key, Body=body, ContentType=_content_type(item.key), ChecksumAlgorithm="SHA256"
            )
            result["version_id"] = answer.get("VersionId")
        except ClientError as exc:
            error = exc.response.get("Error", {})
            result["error"] = f"{exc.operation_name} failed: {error.get('Code')}: {error.get('Message')}"
        except BotoCoreError as exc:
            result["error"] = " ".join(str(exc).split())[:300]
        finally:
            body.close()
        if on_bytes:
            on_bytes(item.size)
        results.append(result)
    return results
