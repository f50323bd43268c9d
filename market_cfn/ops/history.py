"""The `history` core: the cold tier, DynamoDB exports of the table into the history bucket.

Points and bars leave the table when their TTL expires (PointsRetentionDays, BarsRetentionDays);
the history bucket keeps them at S3 prices (docs/performance.md "History beyond the table").
The first run starts a full export (the table as it is now); every later run starts the
incremental exports that cover the time since the last export, one per at most 24 hours.
DynamoDB's export reads the point-in-time recovery log, not the table: it consumes no read
capacity, and a window stays exportable for the whole recovery period (35 days), so a run that
was missed for days catches up (developer guide, "DynamoDB data export to Amazon S3: how it
works"; an incremental export covers 15 minutes to 24 hours).

Layout: `history/full/AWSDynamoDB/<export id>/data/*.json.gz` (lines `{"Item": ...}`) and
`history/incremental/AWSDynamoDB/<export id>/data/*.json.gz` (NEW_IMAGE view: lines
`{"Metadata": ..., "Keys": ..., "NewImage": ...}`, no NewImage for a deletion), DynamoDB JSON,
gzipped ("DynamoDB table export output format"). Pure planning (`plan`) + the AWS edge (`run`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from market_cfn.base.errors import OpsError, Refused

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import ExportDescriptionTypeDef

PREFIX = "history/"
FULL_PREFIX, INCREMENTAL_PREFIX = PREFIX + "full/", PREFIX + "incremental/"
MAX_WINDOW = timedelta(hours=24)  # an incremental export covers at most 24 hours ...
MIN_WINDOW = timedelta(minutes=15)  # ... and at least 15 minutes
MAX_EXPORTS_PER_RUN = 40  # more than the 35 one-day windows of the longest recovery period
KEPT = frozenset({"COMPLETED", "IN_PROGRESS"})  # a FAILED export covers nothing: its window is redone


@dataclass(frozen=True)
class Export:
    """One export to start: FULL at `to`, or INCREMENTAL over [start, to)."""

    kind: str  # "FULL_EXPORT" | "INCREMENTAL_EXPORT"
    to: datetime
    start: datetime | None = None

    @property
    def client_token(self) -> str:
        # Idempotent for 8 hours: a rerun that plans the same window starts nothing new.
        begin = int(self.start.timestamp()) if self.start else 0
        return f"history-{begin}-{int(self.to.timestamp())}"

    def request(self, table_arn: str, bucket: str) -> dict[str, Any]:
        params: dict[str, Any] = {
            "TableArn": table_arn,
            "S3Bucket": bucket,
            "ExportFormat": "DYNAMODB_JSON",
            "ExportType": self.kind,
            "ClientToken": self.client_token,
        }
        if self.kind == "FULL_EXPORT":
            params.update(S3Prefix=FULL_PREFIX, ExportTime=self.to)
        else:
            params.update(
                S3Prefix=INCREMENTAL_PREFIX,
                IncrementalExportSpecification={
                    "ExportFromTime": self.start,
                    "ExportToTime": self.to,
                    "ExportViewType": "NEW_IMAGE",
                },
            )
        return params


def covered_until(exports: Sequence[Mapping[str, Any]], bucket: str) -> datetime | None:
    """The end of the history the bucket has (or is getting): the latest ExportTime of a full
    export, or ExportToTime of an incremental one, of the completed or running exports into it."""
    ends = []
    for e in exports:
        if e.get("S3Bucket") != bucket or not str(e.get("S3Prefix", "")).startswith(PREFIX):
            continue
        if e.get("ExportStatus") not in KEPT:
            continue
        if e.get("ExportType", "FULL_EXPORT") == "FULL_EXPORT":
            ends.append(e["ExportTime"])
        else:
            ends.append(e["IncrementalExportSpecification"]["ExportToTime"])
    return max(ends, default=None)


def plan(until: datetime | None, *, earliest: datetime, latest: datetime, full: bool = False) -> list[Export]:
    """The exports that bring the history from `until` up to `latest` (the latest restorable time).

    No history yet (or --full): one full export at `latest`. A history that ends before the
    earliest restorable time has a gap no export can fill: refused, with the way out."""
    if full or until is None:
        return [Export("FULL_EXPORT", latest)]
    if until < earliest:
        raise Refused(
            f"the history ends at {until.isoformat()}, before the earliest restorable time {earliest.isoformat()}: "
            "the changes in between can no longer be exported; start again with --full"
        )
    out: list[Export] = []
    start = until
    while latest - start >= MIN_WINDOW and len(out) < MAX_EXPORTS_PER_RUN:
        to = min(start + MAX_WINDOW, latest)
        out.append(Export("INCREMENTAL_EXPORT", to, start))
        start = to
    return out


def describe_exports(ddb: DynamoDBClient, table_arn: str) -> list[ExportDescriptionTypeDef]:
    """Every export of the table (ListExports, every page), described."""
    out: list[ExportDescriptionTypeDef] = []
    token = None
    while True:
        page = ddb.list_exports(TableArn=table_arn, NextToken=token) if token else ddb.list_exports(TableArn=table_arn)
        for summary in page.get("ExportSummaries", []):
            out.append(ddb.describe_export(ExportArn=summary["ExportArn"])["ExportDescription"])
        token = page.get("NextToken")
        if not token:
            return out


def run(
    ddb: DynamoDBClient, table_name: str, bucket: str, *, full: bool = False, dry_run: bool = False
) -> dict[str, Any]:
    """Plan and start the exports; returns what was (or, dry run, would be) started."""
    table_arn = ddb.describe_table(TableName=table_name)["Table"]["TableArn"]
    backups = ddb.describe_continuous_backups(TableName=table_name)["ContinuousBackupsDescription"]
    pitr = backups.get("PointInTimeRecoveryDescription", {})
    if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
        raise OpsError(f"table {table_name}: point-in-time recovery is not enabled; exports need it")
    until = covered_until(describe_exports(ddb, table_arn), bucket)
    exports = plan(
        until, earliest=pitr["EarliestRestorableDateTime"], latest=pitr["LatestRestorableDateTime"], full=full
    )
    started = []
    for export in exports:
        row: dict[str, Any] = {
            "type": export.kind,
            "from": export.start.isoformat() if export.start else None,
            "to": export.to.isoformat(),
        }
        if not dry_run:
            answer = ddb.export_table_to_point_in_time(**export.request(table_arn, bucket))
            row["export_arn"] = answer["ExportDescription"]["ExportArn"]
        started.append(row)
    return {
        "table_arn": table_arn,
        "bucket": bucket,
        "history_until": until.isoformat() if until else None,
        "exports": started,
    }
