"""The cold tier: `python -m market_cfn history` starts the DynamoDB exports that keep
points and bars in the history bucket after their TTL - a full export first, then incremental exports
of at most 24 hours from where the history ends, refused when a gap can no longer be exported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber

from market_cfn.base.errors import OpsError, Refused
from market_cfn.ops import history

T0 = datetime(2026, 12, 1, tzinfo=UTC)
BUCKET = "market-data-history-dev-123456789012-us-east-1"
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/market-data-dev"
H = timedelta(hours=1)


def incremental(start, to, status="COMPLETED", bucket=BUCKET, prefix=history.INCREMENTAL_PREFIX):
    return {
        "ExportType": "INCREMENTAL_EXPORT",
        "ExportStatus": status,
        "S3Bucket": bucket,
        "S3Prefix": prefix,
        "IncrementalExportSpecification": {"ExportFromTime": start, "ExportToTime": to},
    }


def full(at, status="COMPLETED"):
    return {
        "ExportType": "FULL_EXPORT",
        "ExportStatus": status,
        "S3Bucket": BUCKET,
        "S3Prefix": history.FULL_PREFIX,
        "ExportTime": at,
    }


def test_the_history_ends_at_the_last_completed_or_running_export_into_the_bucket():
    exports = [
        full(T0),
        incremental(T0, T0 + 24 * H),
        incremental(T0 + 24 * H, T0 + 30 * H, status="IN_PROGRESS"),
        incremental(T0 + 30 * H, T0 + 50 * H, status="FAILED"),  # covers nothing
        incremental(T0, T0 + 90 * H, bucket="someone-else"),  # another bucket's history
        incremental(T0, T0 + 90 * H, prefix="exports/"),  # another prefix
    ]
    assert history.covered_until(exports, BUCKET) == T0 + 30 * H
    assert history.covered_until([], BUCKET) is None


def test_no_history_starts_with_a_full_export_at_the_latest_restorable_time():
    (only,) = history.plan(None, earliest=T0 - 35 * 24 * H, latest=T0)
    assert (only.kind, only.to, only.start) == ("FULL_EXPORT", T0, None)
    assert history.plan(T0 - H, earliest=T0 - 24 * H, latest=T0, full=True)[0].kind == "FULL_EXPORT"


def test_a_missed_week_is_caught_up_in_24_hour_windows():
    exports = history.plan(T0, earliest=T0 - 24 * H, latest=T0 + 7 * 24 * H + 5 * H)
    assert [(e.start, e.to) for e in exports] == [(T0 + i * 24 * H, T0 + (i + 1) * 24 * H) for i in range(7)] + [
        (T0 + 7 * 24 * H, T0 + 7 * 24 * H + 5 * H)
    ]
    assert all(e.kind == "INCREMENTAL_EXPORT" for e in exports)


def test_less_than_15_minutes_waits_for_the_next_run():
    assert history.plan(T0, earliest=T0 - H, latest=T0 + timedelta(minutes=14)) == []
    assert len(history.plan(T0, earliest=T0 - H, latest=T0 + timedelta(minutes=15))) == 1


def test_a_history_ending_before_the_recovery_window_is_refused():
    with pytest.raises(Refused, match="--full"):
        history.plan(T0 - 36 * 24 * H, earliest=T0 - 35 * 24 * H, latest=T0)


def test_the_request_is_an_incremental_new_image_export_with_an_idempotent_token():
    export = history.Export("INCREMENTAL_EXPORT", T0 + H, T0)
    request = export.request(TABLE_ARN, BUCKET)
    assert request["IncrementalExportSpecification"] == {
        "ExportFromTime": T0,
        "ExportToTime": T0 + H,
        "ExportViewType": "NEW_IMAGE",
    }
    assert request["S3Prefix"] == history.INCREMENTAL_PREFIX and request["ExportFormat"] == "DYNAMODB_JSON"
    assert request["ClientToken"] == history.Export("INCREMENTAL_EXPORT", T0 + H, T0).client_token
    assert request["ClientToken"] != history.Export("INCREMENTAL_EXPORT", T0 + 2 * H, T0).client_token


def _client():
    return boto3.client(
        "dynamodb",
        region_name="us-east-1",
        aws_access_key_id="x",
        aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:9",
    )


def _pitr(stub, status="ENABLED", earliest=T0 - 35 * 24 * H, latest=T0 + 30 * H):
    stub.add_response("describe_table", {"Table": {"TableArn": TABLE_ARN}}, {"TableName": "market-data-dev"})
    stub.add_response(
        "describe_continuous_backups",
        {
            "ContinuousBackupsDescription": {
                "ContinuousBackupsStatus": "ENABLED",
                "PointInTimeRecoveryDescription": {
                    "PointInTimeRecoveryStatus": status,
                    "EarliestRestorableDateTime": earliest,
                    "LatestRestorableDateTime": latest,
                },
            }
        },
        {"TableName": "market-data-dev"},
    )


def test_run_reads_every_page_of_exports_and_starts_the_missing_windows():
    ddb = _client()
    with Stubber(ddb) as stub:
        _pitr(stub)
        arn = f"{TABLE_ARN}/export/01"
        stub.add_response(
            "list_exports",
            {"ExportSummaries": [{"ExportArn": arn}], "NextToken": "p2"},
            {"TableArn": TABLE_ARN},
        )
        stub.add_response("describe_export", {"ExportDescription": full(T0)}, {"ExportArn": arn})
        stub.add_response("list_exports", {"ExportSummaries": []}, {"TableArn": TABLE_ARN, "NextToken": "p2"})
        for start, to in ((T0, T0 + 24 * H), (T0 + 24 * H, T0 + 30 * H)):
            stub.add_response(
                "export_table_to_point_in_time",
                {"ExportDescription": {"ExportArn": f"{TABLE_ARN}/export/{int(to.timestamp())}"}},
                {
                    "TableArn": TABLE_ARN,
                    "S3Bucket": BUCKET,
                    "S3Prefix": history.INCREMENTAL_PREFIX,
                    "ExportFormat": "DYNAMODB_JSON",
                    "ExportType": "INCREMENTAL_EXPORT",
                    "ClientToken": ANY,
                    "IncrementalExportSpecification": {
                        "ExportFromTime": start,
                        "ExportToTime": to,
                        "ExportViewType": "NEW_IMAGE",
                    },
                },
            )
        result = history.run(ddb, "market-data-dev", BUCKET)
        stub.assert_no_pending_responses()
    assert result["history_until"] == T0.isoformat()
    assert [r["to"] for r in result["exports"]] == [(T0 + 24 * H).isoformat(), (T0 + 30 * H).isoformat()]


def test_run_refuses_a_table_without_point_in_time_recovery():
    ddb = _client()
    with Stubber(ddb) as stub:
        _pitr(stub, status="DISABLED")
        with pytest.raises(OpsError, match="point-in-time recovery"):
            history.run(ddb, "market-data-dev", BUCKET)


def test_dry_run_starts_nothing():
    ddb = _client()
    with Stubber(ddb) as stub:
        _pitr(stub)
        stub.add_response("list_exports", {"ExportSummaries": []}, {"TableArn": TABLE_ARN})
        result = history.run(ddb, "market-data-dev", BUCKET, dry_run=True)
        stub.assert_no_pending_responses()
    assert [(r["type"], r["to"]) for r in result["exports"]] == [("FULL_EXPORT", (T0 + 30 * H).isoformat())]
