"""The `bars` and `points` core: Query one symbol's partition over a time range, every page.

The table's layout is handlers/contract.py's: points at (SYMBOL, epoch ms), 5-minute
aggregates at (SYMBOL#5m, window start epoch ms). One Query per call (never a Scan), so the
cost follows the rows read. The range is [from, to): points stamped at `from` are in, at
`to` are out; a bar is in when its window starts in the range.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from handlers.contract import AGGREGATE_KEY_SUFFIX
from market_cfn.base.errors import UsageError
from market_cfn.ops.values import iso_ms

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_dynamodb import DynamoDBClient

BAR_FIELDS = ("time", "open", "high", "low", "close", "volume", "vwap", "count")
POINT_FIELDS = ("time", "price", "volume")


def _value(attribute: Mapping[str, Any]) -> Any:
    if "N" in attribute:
        return Decimal(attribute["N"])
    if "S" in attribute:
        return attribute["S"]
    if "NULL" in attribute:
        return None
    return next(iter(attribute.values()), None)


def query_range(
    ddb: DynamoDBClient, table: str, partition: str, start_ms: int, end_ms: int
) -> Iterator[dict[str, Any]]:
    """Items with symbol = partition and start_ms <= timestamp < end_ms, oldest first, every page."""
    if end_ms <= start_ms:
        raise UsageError("--to must be after --from")
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": "#s = :s AND #t BETWEEN :a AND :b",
        "ExpressionAttributeNames": {"#s": "symbol", "#t": "timestamp"},
        "ExpressionAttributeValues": {":s": {"S": partition}, ":a": {"N": str(start_ms)}, ":b": {"N": str(end_ms - 1)}},
    }
    while True:
        page = ddb.query(**kwargs)
        for item in page.get("Items", []):
            yield {name: _value(attribute) for name, attribute in item.items()}
        if not page.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def normalize_symbol(symbol: str) -> str:
    from handlers.core.points import SYMBOL_RE

    text = symbol.strip().upper()
    if not SYMBOL_RE.fullmatch(text):
        raise UsageError(f"bad symbol {symbol!r} (1-12 of A-Z 0-9 . -)")
    return text


def bars(ddb: DynamoDBClient, table: str, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    rows = []
    for item in query_range(ddb, table, normalize_symbol(symbol) + AGGREGATE_KEY_SUFFIX, start_ms, end_ms):
        rows.append({"time": iso_ms(int(item["timestamp"]))} | {f: item.get(f) for f in BAR_FIELDS[1:]})
    return rows


def points(ddb: DynamoDBClient, table: str, symbol: str, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
    rows = []
    for item in query_range(ddb, table, normalize_symbol(symbol), start_ms, end_ms):
        rows.append({"time": iso_ms(int(item["timestamp"])), "price": item.get("price"), "volume": item.get("volume")})
    return rows


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def render(rows: list[dict[str, Any]], fields: tuple[str, ...], fmt: str) -> str:
    """table (aligned, numbers right-aligned), csv (header + rows), or json (numbers exact)."""
    if fmt == "json":
        from market_cfn.ops.values import dumps_exact

        return "[\n" + ",\n".join("  " + dumps_exact(row) for row in rows) + ("\n]" if rows else "]")
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(fields)
        for row in rows:
            writer.writerow([_text(row.get(f)) for f in fields])
        return buffer.getvalue().rstrip("\n")
    cells: list[list[str]] = [list(fields)] + [[_text(row.get(f)) for f in fields] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(fields))]
    lines = []
    for n, cell_row in enumerate(cells):
        parts = [c.ljust(widths[i]) if i == 0 or n == 0 else c.rjust(widths[i]) for i, c in enumerate(cell_row)]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)
