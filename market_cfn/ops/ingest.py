"""The `ingest` core: read JSON / JSON Lines files into records and send them with IngestClient.

A file (or `-`, standard input) holds one JSON document - a point, an array of points, or
`{"points": [...]}`, the shapes POST /ingest accepts - or JSON Lines, one point a line.
Records are sent exactly as written (numbers keep their text). A JSON Lines line that is
not JSON is rejected here with its position, like the API would; everything else is
judged by the API. A file that is neither is a usage error, and then nothing is sent.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from market_cfn.base.errors import UsageError
from market_cfn.ops.ingest_client import IngestClient, IngestResult, RawRecord
from market_cfn.ops.values import dumps_exact, loads_exact


@dataclass
class Records:
    records: list[RawRecord] = field(default_factory=list)
    positions: list[str] = field(default_factory=list)  # "FILE line N" / "FILE index N" / "FILE"
    local_errors: list[dict[str, str]] = field(default_factory=list)  # lines that are not JSON


def _document(name: str, text: str, out: Records) -> None:
    value = loads_exact(text)
    if isinstance(value, dict) and set(value) == {"points"} and isinstance(value["points"], list):
        for i, element in enumerate(value["points"]):
            out.records.append(RawRecord(dumps_exact(element)))
            out.positions.append(f"{name} points[{i}]")
    elif isinstance(value, list):
        for i, element in enumerate(value):
            out.records.append(RawRecord(dumps_exact(element)))
            out.positions.append(f"{name} index {i}")
    else:
        out.records.append(RawRecord(dumps_exact(value)))
        out.positions.append(name)


def read_records(name: str, data: bytes, out: Records | None = None) -> Records:
    """Add one file's records to `out`; UsageError when the file is not JSON nor JSON Lines."""
    out = out if out is not None else Records()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UsageError(f"{name}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    stripped = text.strip()
    if not stripped:
        raise UsageError(f"{name}: empty")
    try:
        _document(name, stripped, out)
        return out
    except json.JSONDecodeError as exc:
        document_error = exc
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if stripped.startswith("[") or len(lines) < 2:
        raise UsageError(
            f"{name}: not JSON ({document_error.msg} at line {document_error.lineno} column {document_error.colno})"
        )
    parsed = 0
    for number, line in lines:
        try:
            value = loads_exact(line)
        except json.JSONDecodeError as exc:
            out.local_errors.append({"position": f"{name} line {number}", "reason": f"invalid JSON: {exc.msg}"})
            continue
        parsed += 1
        out.records.append(RawRecord(dumps_exact(value)))
        out.positions.append(f"{name} line {number}")
    if parsed == 0:
        raise UsageError(f"{name}: neither JSON nor JSON Lines (no line is JSON)")
    return out


def ingest_records(
    client: IngestClient, records: Records, *, on_request: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Send and account: records in = accepted + rejected + failed; errors name file positions."""
    result: IngestResult = client.ingest(records.records, on_request=on_request)
    errors = list(records.local_errors)
    for error in result.errors:
        index = error.get("index")
        where = records.positions[index] if isinstance(index, int) else f"request position {error.get('position')}"
        errors.append({"position": where, "reason": error["reason"]})
    rejected = result.rejected + len(records.local_errors)
    return {
        "records": result.records + len(records.local_errors),
        "accepted": result.accepted,
        "rejected": rejected,
        "failed": result.failed,
        "requests": result.requests,
        "retries": result.retries,
        "errors": errors,
        "errors_omitted": result.errors_omitted,
        "failures": result.failures,
    }
