"""The day-2 commands end to end over real HTTP: moto's server on 127.0.0.1, the stack deployed
through bin/deploy (as tests/test_deploy_e2e.py does), every resource found from the stack.

The pipeline's functions do not run on a bare moto server (the `local` service runs them);
here the data the handlers would write is put directly where the template says, and the
commands are checked against what the endpoint then holds, read with plain boto3.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def deploy(endpoint: str, env: str) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | CREDENTIALS | {"NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bin" / "deploy"), "--endpoint-url", endpoint, "--env", env, "--yes"]
        + ["--poll-interval", "0.05"],
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def stack(endpoint):
    deploy(endpoint, "ops")
    return "market-data-ops"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch):
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)


def aws(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def physical(endpoint: str, stack: str, logical_id: str) -> str:
    resources = aws(endpoint, "cloudformation").list_stack_resources(StackName=stack)["StackResourceSummaries"]
    return next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == logical_id)


def cli(command: str, *args: str, endpoint: str, stdin: str = "") -> tuple[int, str, str]:
    import importlib

    module = importlib.import_module(f"market_cfn.cli.{command}")
    out, err = io.StringIO(), io.StringIO()
    code = module.main([*args, "--endpoint-url", endpoint], stdout=out, stderr=err, stdin=io.StringIO(stdin))
    return code, out.getvalue(), err.getvalue()


def test_upload_puts_files_under_their_symbol_and_gzips_on_request(endpoint, stack, tmp_path):
    # GIVEN the sample files (AAPL/ and MSFT/ folders name the symbol; tests/data does not)
    files = [str(DATA / "AAPL" / "2024-06-03.csv"), str(DATA / "MSFT" / "2024-06-03.jsonl"), str(DATA / "trades.json")]
    # WHEN they are uploaded
    code, out, err = cli("upload", *files, "--env", "ops", "--json", endpoint=endpoint)
    # THEN the keys carry the symbol DataIngestion will read, and the bytes are the files'
    assert code == 0, err
    document = json.loads(out)
    assert [u["key"] for u in document["uploads"]] == ["AAPL/2024-06-03.csv", "MSFT/2024-06-03.jsonl", "trades.json"]
    bucket = physical(endpoint, stack, "DataBucket")
    s3 = aws(endpoint, "s3")
    assert s3.get_object(Bucket=bucket, Key="AAPL/2024-06-03.csv")["Body"].read() == Path(files[0]).read_bytes()
    # AND --gzip stores the gzip of the file under KEY.gz, --symbol overriding the folder
    code, out, err = cli("upload", files[2], "--symbol", "nvda", "--gzip", "--env", "ops", endpoint=endpoint)
    assert code == 0, err
    stored = s3.get_object(Bucket=bucket, Key="NVDA/trades.json.gz")["Body"].read()
    assert gzip.decompress(stored) == Path(files[2]).read_bytes()
    assert "Uploaded 1 files" in out


def put_bar(endpoint: str, stack: str, symbol: str, start_ms: int, **values: str) -> None:
    item = {"symbol": {"S": f"{symbol}#5m"}, "timestamp": {"N": str(start_ms)}}
    item |= {k: {"N": v} for k, v in values.items()}
    aws(endpoint, "dynamodb").put_item(TableName=physical(endpoint, stack, "MarketDataTable"), Item=item)


def test_bars_and_points_query_one_partition_over_every_page(endpoint, stack):
    table = physical(endpoint, stack, "MarketDataTable")
    ddb = aws(endpoint, "dynamodb")
    # GIVEN 1,500 points (several Query pages at moto's 1 MB page size) and three bars
    start = 1717421400000
    big = "9" * 30
    items = [
        {
            "symbol": {"S": "PAGE"},
            "timestamp": {"N": str(start + i)},
            "price": {"N": f"{big}.{i}"},
            "pad": {"S": "p" * 700},
        }
        for i in range(1500)
    ]
    for n in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={table: [{"PutRequest": {"Item": item}} for item in items[n : n + 25]]})
    put_bar(
        endpoint,
        stack,
        "AAPL",
        start,
        open="192.90",
        high="193.1",
        low="192.75",
        close="193.05",
        volume="4000",
        vwap="192.9025",
        count="4",
    )
    put_bar(
        endpoint,
        stack,
        "AAPL",
        start + 300000,
        open="193.2",
        high="193.2",
        low="193.2",
        close="193.2",
        volume="0",
        count="1",
    )
    put_bar(endpoint, stack, "AAPL", start + 600000, open="1", high="1", low="1", close="1", volume="0", count="1")
    # WHEN bars are read for [13:30, 13:40)
    code, out, err = cli(
        "bars",
        "aapl",
        "--from",
        "2024-06-03T13:30:00Z",
        "--to",
        "2024-06-03T13:40:00Z",
        "--env",
        "ops",
        "--format",
        "csv",
        endpoint=endpoint,
    )
    # THEN two bars (the 13:40 window starts at --to: excluded), exact, vwap empty when absent
    assert code == 0, err
    assert out.splitlines() == [
        "time,open,high,low,close,volume,vwap,count",
        "2024-06-03T13:30:00Z,192.90,193.1,192.75,193.05,4000,192.9025,4",
        "2024-06-03T13:35:00Z,193.2,193.2,193.2,193.2,0,,1",
    ]
    # AND points read every page, numbers exact
    code, out, err = cli(
        "points", "PAGE", "--from", str(start), "--to", str(start + 1500), "--env", "ops", "--json", endpoint=endpoint
    )
    assert code == 0, err
    points = json.loads(out, parse_float=str)["points"]
    assert len(points) == 1500 and points[-1]["price"] == f"{big}.1499"


def test_status_reports_queues_dead_letters_aggregates_rejections_and_unknown_ages(endpoint, stack):
    sqs = aws(endpoint, "sqs")
    dlq = physical(endpoint, stack, "AggregationDLQ")
    sqs.send_message(QueueUrl=dlq, MessageBody='{"windows": [["AAPL", 1717421400000]]}')
    rejects = physical(endpoint, stack, "RejectsBucket")
    aws(endpoint, "s3").put_object(Bucket=rejects, Key="rejects/MSFT/x.jsonl@v1.jsonl", Body=b"{}\n")
    put_bar(endpoint, stack, "MSFT", 1717421700000, open="1", high="1", low="1", close="1", volume="0", count="1")
    code, out, err = cli("status", "--env", "ops", "--symbol", "MSFT", "--json", endpoint=endpoint)
    assert code == 0, err
    report = json.loads(out)
    queues = {q["queue"]: q for q in report["queues"]}
    assert queues["AggregationDLQ"]["dead_letter"] and queues["AggregationDLQ"]["visible"] == 1
    # moto publishes no SQS metrics: the age is unknown, and said so - never 0
    assert queues["ProcessingQueue"]["oldest_age"]["seconds"] is None
    assert queues["ProcessingQueue"]["oldest_age"]["note"].startswith("unknown")
    assert report["newest_aggregates"] == [{"symbol": "MSFT", "window_start": "2024-06-03T13:35:00Z"}]
    assert report["rejections"]["reports"] >= 1
    assert report["stack"]["status"] == "CREATE_COMPLETE"
    # AND the text form says the same
    code, out, _ = cli("status", "--env", "ops", endpoint=endpoint)
    assert "AggregationDLQ-ops  1" in out and "unknown (no CloudWatch datapoint" in out
    sqs.purge_queue(QueueUrl=dlq)


def test_logs_reads_the_function_log_group_and_filters_by_level(endpoint, stack):
    group = physical(endpoint, stack, "DataIngestionLogGroup")
    logs = aws(endpoint, "logs")
    logs.create_log_stream(logGroupName=group, logStreamName="2026/11/26/[$LATEST]abc")
    now = int(time.time() * 1000)
    lines = [
        "START RequestId: 1 Version: $LATEST",
        json.dumps({"level": "INFO", "message": "ingested object"}),
        json.dumps({"level": "WARNING", "message": "rejected records"}),
        json.dumps({"level": "ERROR", "message": "boom"}),
    ]
    logs.put_log_events(
        logGroupName=group,
        logStreamName="2026/11/26/[$LATEST]abc",
        logEvents=[{"timestamp": now - 1000 + i, "message": m} for i, m in enumerate(lines)],
    )
    code, out, err = cli("logs", "dataingestion", "--env", "ops", "--since", "5m", endpoint=endpoint)
    assert code == 0, err
    assert len(out.splitlines()) == 4 and "START RequestId" in out
    code, out, err = cli("logs", "DataIngestion", "--env", "ops", "--level", "warning", "--json", endpoint=endpoint)
    assert [json.loads(line)["message"] for line in out.splitlines()] == lines[2:]


def test_rejects_lists_shows_and_downloads_reports(endpoint, stack, tmp_path):
    bucket = physical(endpoint, stack, "RejectsBucket")
    report = b'{"source": "AAPL/d.csv", "position": "line 7", "reason": "price must be > 0"}\n'
    aws(endpoint, "s3").put_object(Bucket=bucket, Key="rejects/AAPL/d.csv@3HL4kqtJ.jsonl", Body=report)
    code, out, err = cli(
        "rejects", "--env", "ops", "--source", "AAPL/d.csv", "--download", str(tmp_path), endpoint=endpoint
    )
    assert code == 0, err
    assert "1 rejection reports for AAPL/d.csv" in out and "line 7  price must be > 0" in out
    assert (tmp_path / "rejects" / "AAPL" / "d.csv@3HL4kqtJ.jsonl").read_bytes() == report


def test_redrive_moves_dead_letters_back_without_loss_after_asking(endpoint, stack):
    # AggregationDLQ -> AggregationQueue: on a bare moto server a message sent to the
    # ProcessingQueue would make moto run DataProcessor's event source mapping in Docker.
    sqs = aws(endpoint, "sqs")
    dlq, source = physical(endpoint, stack, "AggregationDLQ"), physical(endpoint, stack, "AggregationQueue")
    bodies = {json.dumps({"v": 1, "windows": [["AAPL", 1717421400000 + i * 300000]]}) for i in range(23)}
    for body in bodies:
        sqs.send_message(
            QueueUrl=dlq, MessageBody=body, MessageAttributes={"origin": {"DataType": "String", "StringValue": "test"}}
        )
    # WHEN asked without --yes and without a terminal: refused, nothing moved
    code, out, err = cli("redrive", "aggregation", "--env", "ops", endpoint=endpoint)
    assert code == 3 and "pass --yes" in err and len(err.strip().splitlines()) == 1
    assert (
        int(sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"])
        == 23
    )
    # WHEN confirmed
    code, out, err = cli("redrive", "aggregation", "--env", "ops", "--yes", "--json", endpoint=endpoint)
    assert code == 0, err
    document = json.loads(out)
    # THEN moto (no StartMessageMoveTask) took the receive -> send -> delete path, all 23 moved
    assert (document["moved"], document["failed"], document["method"]) == (
        23,
        0,
        "ReceiveMessage/SendMessage/DeleteMessage",
    )
    moved: list[dict[str, Any]] = []
    while got := sqs.receive_message(QueueUrl=source, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages"
    ):
        moved += got
    assert {m["Body"] for m in moved} == bodies
    assert all(m["MessageAttributes"]["origin"]["StringValue"] == "test" for m in moved)
    assert sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0).get("Messages") is None
    for m in moved:
        sqs.delete_message(QueueUrl=source, ReceiptHandle=m["ReceiptHandle"])


def test_destroy_refuses_data_without_delete_data_then_empties_every_version_and_deletes(endpoint):
    deploy(endpoint, "gone")
    name = "market-data-gone"
    bucket = physical(endpoint, name, "DataBucket")
    s3 = aws(endpoint, "s3")
    s3.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Enabled"}
    )  # moto ignores the template's
    for i in range(3):
        s3.put_object(Bucket=bucket, Key="AAPL/a.csv", Body=f"v{i}".encode())
    s3.delete_object(Bucket=bucket, Key="AAPL/a.csv")  # a delete marker on top of 3 versions
    cfn = aws(endpoint, "cloudformation")
    # (moto has no UpdateTerminationProtection: lifting it is tested with Stubber)
    # WHEN destroyed without --delete-data: refused (exit 3), nothing deleted
    code, out, err = cli("destroy", "--env", "gone", "--yes", endpoint=endpoint)
    assert code == 3 and "pass --delete-data" in err
    assert "DataBucket" in out and "4 object versions and delete markers" in out
    # WHEN declined at the prompt (no terminal, no --yes): exit 3, still nothing deleted
    code, _, err = cli("destroy", "--env", "gone", "--delete-data", endpoint=endpoint)
    assert code == 3 and len(s3.list_object_versions(Bucket=bucket).get("Versions", [])) == 3
    # WHEN destroyed with --delete-data --yes
    code, out, err = cli(
        "destroy", "--env", "gone", "--delete-data", "--yes", "--poll-interval", "0.05", endpoint=endpoint
    )
    # THEN every version and marker was deleted, and the stack and its buckets are gone
    assert code == 0, out + err
    assert "4 versions and delete markers deleted" in out
    assert not [
        s
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackName"] == name and s["StackStatus"] != "DELETE_COMPLETE"
    ]
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert bucket not in names and not any("gone" in n for n in names)
    # AND a second destroy is a usage error: no such stack
    code, _, err = cli("destroy", "--env", "gone", "--yes", endpoint=endpoint)
    assert code == 2 and "does not exist" in err
