"""DataIngestion end to end on moto: S3 objects and POST /ingest -> ProcessingQueue."""

from __future__ import annotations

import gzip
import importlib
import json
import subprocess
import sys
from decimal import Decimal

import pytest
from conftest import client_error, queue_bodies

from handlers.core.wire import decode_message
from market_cfn.simulate import api_event


def queued_points(pipe):
    """Every point in the ProcessingQueue (messages are left in place)."""
    bodies = queue_bodies(pipe, pipe.queue_urls["ProcessingQueue"], hide_seconds=30)
    return bodies, sorted(p for b in bodies for p in decode_message(b))


def test_handler_modules_import_without_env_or_credentials():
    code = (
        "import os\n"
        "for k in list(os.environ):\n"
        "    if k.startswith(('AWS_', 'POWERTOOLS_', 'PROCESSING_', 'REJECTS_', 'TABLE_', 'EVENT_', 'AGGREGATION_')):\n"
        "        del os.environ[k]\n"
        "import handlers.data_ingestion, handlers.data_processor, handlers.data_aggregator\n"
        "assert all(callable(m.handler) for m in (handlers.data_ingestion, handlers.data_processor, handlers.data_aggregator))\n"
    )
    subprocess.run(
        [sys.executable, "-c", code],
        check=True,
        env={"PATH": "/usr/bin:/bin"},
        cwd=str(__import__("pathlib").Path(__file__).parents[1]),
    )


def test_every_template_handler_imports_and_is_callable(pipeline):
    for logical in ("DataIngestionFunction", "DataProcessorFunction", "DataAggregatorFunction"):
        module_path, _, attr = pipeline.resources[logical]["Properties"]["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module_path), attr))


def test_s3_object_is_validated_and_forwarded_with_rejections_preserved(pipeline):
    # GIVEN a CSV with a header, 3 good rows and 2 bad ones, under a symbol prefix
    body = (
        b"timestamp,price,volume\n"
        b"2024-06-03T13:30:00Z,192.90,1200\n"
        b"2024-06-03T13:31:00Z,abc,1\n"
        b"1717421520,193.10,\n"
        b"2024-06-03T13:33:00Z,193.15,-5\n"
        b"1717421640000,193.00,10\n"
    )
    version = pipeline.put_object("AAPL/2024-06-03.csv", body)
    # WHEN S3 notifies DataIngestion
    [result] = pipeline.deliver_s3_events()
    # THEN the counts hold, the good points are queued, the bad ones are in a report
    assert (result["records_in"], result["accepted"], result["rejected"]) == (5, 3, 2)
    _, points = queued_points(pipeline)
    assert [(p.symbol, p.timestamp, p.price, p.volume) for p in points] == [
        ("AAPL", 1717421400000, Decimal("192.90"), 1200),
        ("AAPL", 1717421520000, Decimal("193.10"), None),
        ("AAPL", 1717421640000, Decimal("193.00"), 10),
    ]
    report_key = f"rejects/AAPL/2024-06-03.csv@{version}.jsonl"
    report = pipeline.s3.get_object(Bucket=pipeline.rejects_bucket, Key=report_key)["Body"].read()
    lines = [json.loads(x) for x in report.splitlines()]
    assert [(r["source"], r["position"]) for r in lines] == [
        ("AAPL/2024-06-03.csv", "line 3"),
        ("AAPL/2024-06-03.csv", "line 5"),
    ]
    assert "price is not a number" in lines[0]["reason"]
    # the RejectsBucket has no notification: writing the report triggered nothing
    assert pipeline.pending_s3_events == []


def test_a_generic_folder_is_not_a_symbol_and_says_so(pipeline):
    # raw/x.csv used to store its symbol-less rows as symbol RAW
    version = pipeline.put_object("raw/x.csv", b"symbol,price,timestamp\nMSFT,1,1717421400\n,2,1717421401\n")
    [result] = pipeline.deliver_s3_events()
    assert (result["records_in"], result["accepted"], result["rejected"]) == (2, 1, 1)
    assert "key_symbol" not in result and result["key_symbol_refused"] == "folder 'raw/' is a generic name"
    _, points = queued_points(pipeline)
    assert [p.symbol for p in points] == ["MSFT"]
    report = pipeline.s3.get_object(Bucket=pipeline.rejects_bucket, Key=f"rejects/raw/x.csv@{version}.jsonl")
    [line] = [json.loads(x) for x in report["Body"].read().splitlines()]
    assert line["position"] == "line 3"
    assert line["reason"].startswith("missing symbol (the key names none: folder 'raw/' is a generic name")


def test_rejections_are_counted_in_emf_and_logged_as_warning(pipeline, capsys):
    import io
    import logging

    logs = io.StringIO()
    pipeline.log_stream = logs  # stdout (EMF) is no longer discarded
    module = pipeline.handler_module("DataIngestionFunction")
    for handler in module.logger._logger.handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = logs  # the pipeline restores the original on exit
    pipeline.put_object("AAPL/x.jsonl", b'{"price":1,"timestamp":1717421400}\n{"price":-1,"timestamp":1717421401}\n')
    pipeline.deliver_s3_events()
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert emf[-1]["RejectedRecords"] in (1, [1])
    assert emf[-1]["AcceptedRecords"] in (1, [1])
    assert emf[-1]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "MarketAnalytics"
    entries = [json.loads(line) for line in logs.getvalue().splitlines()]
    warnings = [e for e in entries if e["level"] == "WARNING"]
    assert warnings and warnings[0]["rejected"] == 1 and warnings[0]["report"].startswith("s3://")
    # the template's error metric filter matches "ERROR" / "Exception": none here
    assert "ERROR" not in logs.getvalue() and "Exception" not in logs.getvalue()


def test_gzip_jsonl_with_url_encoded_key_and_all_formats(pipeline):
    rows = b"".join(
        json.dumps({"symbol": "msft", "price": 415 + i / 4, "timestamp": 1717421400 + i}).encode() + b"\n"
        for i in range(4)
    )
    pipeline.put_object("incoming/day one+two.jsonl.gz", gzip.compress(rows))
    pipeline.put_object(
        "NVDA/a.json", json.dumps({"points": [{"price": 1150.25, "timestamp": "2024-06-03T13:30:05Z"}]}).encode()
    )
    results = pipeline.deliver_s3_events()
    assert [(r["source"], r["accepted"], r["rejected"]) for r in results] == [
        ("incoming/day one+two.jsonl.gz", 4, 0),
        ("NVDA/a.json", 1, 0),
    ]
    _, points = queued_points(pipeline)
    assert {p.symbol for p in points} == {"MSFT", "NVDA"} and len(points) == 5


def test_many_points_are_packed_into_few_messages(pipeline):
    rows = "".join(f"{1717421400 + i},{100 + (i % 500) / 100},{i}\n" for i in range(60_000))
    pipeline.put_object("AAPL/big.csv", ("timestamp,price,volume\n" + rows).encode())
    [result] = pipeline.deliver_s3_events()
    bodies, points = queued_points(pipeline)
    assert result["accepted"] == len(points) == 60_000
    assert len(bodies) == result["messages"] <= 3  # ~25 bytes a point, 1 MiB a message
    sends = [c for c in pipeline.calls if c.actor == "DataIngestionFunction" and c.operation == "SendMessageBatch"]
    assert len(sends) == len(bodies)


def test_unversioned_event_reads_the_latest_object(pipeline, event):
    evt = event("s3_put_unversioned")
    record = evt["Records"][0]
    record["s3"]["bucket"]["name"] = pipeline.bucket
    pipeline.s3.put_object(
        Bucket=pipeline.bucket, Key="MSFT/2024-06-03.jsonl", Body=b'{"price":415.1,"timestamp":1717421400}\n'
    )
    result = pipeline.invoke("DataIngestionFunction", evt)
    assert result["objects"][0]["accepted"] == 1
    gets = [c.iam_action for c in pipeline.calls if c.actor == "DataIngestionFunction" and c.operation == "GetObject"]
    assert gets == ["s3:GetObject"]


def test_sample_s3_event_with_encoded_key(pipeline, event):
    evt = event("s3_put")
    record = evt["Records"][0]
    record["s3"]["bucket"]["name"] = pipeline.bucket
    put = pipeline.s3.put_object(
        Bucket=pipeline.bucket, Key="AAPL/2024-06-03 session.csv", Body=b"timestamp,price\n1717421400,1\n"
    )
    record["s3"]["object"]["versionId"] = put["VersionId"]
    assert pipeline.invoke("DataIngestionFunction", evt)["objects"][0]["accepted"] == 1


def test_redelivered_s3_event_overwrites_its_report(pipeline):
    pipeline.put_object("AAPL/x.csv", b"timestamp,price\n1717421400,1\n1717421401,-1\n")
    event = json.loads(json.dumps(pipeline.pending_s3_events[0]))
    pipeline.deliver_s3_events()
    pipeline.invoke("DataIngestionFunction", event)
    keys = [o["Key"] for o in pipeline.s3.list_objects_v2(Bucket=pipeline.rejects_bucket).get("Contents", [])]
    assert len(keys) == 1
    assert len(pipeline.rejections()) == 1


def test_sqs_failed_entries_are_retried_until_accepted(pipeline, faults, sleeps):
    def flaky(original, n, **kwargs):
        if n <= 2:  # the first two calls: every entry fails on the server side
            return {
                "Successful": [],
                "Failed": [
                    {"Id": e["Id"], "SenderFault": False, "Code": "InternalError", "Message": "try again"}
                    for e in kwargs["Entries"]
                ],
            }
        return original(**kwargs)

    faults.wrap("sqs", "send_message_batch", flaky)
    pipeline.put_object("AAPL/x.csv", b"timestamp,price\n1717421400,1\n")
    [result] = pipeline.deliver_s3_events()
    assert faults.calls["sqs.send_message_batch"] == 3 and len(sleeps) == 2
    _, points = queued_points(pipeline)
    assert result["accepted"] == len(points) == 1


def test_sqs_failures_that_persist_fail_the_invocation_into_the_dlq(pipeline, faults):
    def always_failing(original, n, **kwargs):
        return {
            "Successful": [],
            "Failed": [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in kwargs["Entries"]],
        }

    faults.wrap("sqs", "send_message_batch", always_failing)
    pipeline.put_object("AAPL/x.csv", b"timestamp,price\n1717421400,1\n")
    assert pipeline.deliver_s3_events() == []
    # 1 invocation + 2 async retries, each failing loudly; the event is kept in the DLQ
    assert len(pipeline.invocation_errors) == 3
    assert all("DeliveryError" in e for e in pipeline.invocation_errors)
    msgs = pipeline.sqs.receive_message(QueueUrl=pipeline.queue_urls["InvocationDLQ"]).get("Messages", [])
    record = json.loads(msgs[0]["Body"])  # Lambda's invocation record, the event as requestPayload
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "AAPL/x.csv"


def test_missing_object_fails_loudly(pipeline):
    pipeline.put_object("AAPL/gone.csv", b"timestamp,price\n1717421400,1\n")
    pipeline.s3.delete_object(
        Bucket=pipeline.bucket,
        Key="AAPL/gone.csv",
        VersionId=pipeline.pending_s3_events[0]["Records"][0]["s3"]["object"]["versionId"],
    )
    pipeline.deliver_s3_events()
    assert pipeline.dead_letters() == 1


# --- POST /ingest -----------------------------------------------------------------------
def post(pipe, body, **kw):
    response = pipe.post_ingest(body, **kw)
    return response["statusCode"], json.loads(response["body"])


def test_api_sample_event_accepts_and_fills_receipt_time(pipeline, event):
    response = pipeline.invoke("DataIngestionFunction", event("api_post_ingest"))
    assert response["statusCode"] == 202
    assert json.loads(response["body"]) == {"accepted": 2, "rejected": 0, "errors": []}
    _, points = queued_points(pipeline)
    msft = [p for p in points if p.symbol == "MSFT"][0]
    assert msft.timestamp == 1717421460000  # requestContext.requestTimeEpoch


@pytest.mark.parametrize(
    "body,status,accepted,rejected",
    [
        ('{"symbol":"AAPL","price":192.5,"timestamp":1717421400}', 202, 1, 0),  # one point
        ('[{"symbol":"AAPL","price":192.5},{"symbol":"AAPL","price":-1}]', 202, 1, 1),  # array
        ('{"points":[{"symbol":"?","price":1}]}', 400, 0, 1),  # wrapper, nothing valid
        ("not json", 400, 0, 1),
        ("[]", 400, 0, 0),
        ('"just a string"', 400, 0, 1),
    ],
)
def test_api_status_codes_and_accounting(pipeline, body, status, accepted, rejected):
    code, result = post(pipeline, body)
    assert (code, result["accepted"], result["rejected"]) == (status, accepted, rejected)
    assert len(result["errors"]) == rejected
    _, points = queued_points(pipeline)
    assert len(points) == accepted


def test_api_errors_carry_positions(pipeline):
    code, result = post(pipeline, '{"points":[{"symbol":"AAPL","price":1},{"symbol":"AAPL","price":"x"}]}')
    assert code == 202 and result["errors"] == [
        {"position": "points[1]", "reason": "price must be a number, got string"}
    ]


def test_api_body_over_the_limit_gets_413(pipeline):
    from handlers.data_ingestion import MAX_API_BODY_BYTES

    body = json.dumps(
        [{"symbol": "AAPL", "price": 1, "timestamp": 1717421400 + i} for i in range(MAX_API_BODY_BYTES // 40)]
    )
    assert len(body) > MAX_API_BODY_BYTES
    code, result = post(pipeline, body)
    assert code == 413 and "1048576" in result["message"]


def test_api_gzip_body_is_limited_after_decompression(pipeline):
    # 1.5 MiB of points compress to a few KB; the limit is on what they decode to
    from handlers.data_ingestion import MAX_API_BODY_BYTES

    points = [{"symbol": "AAPL", "price": 1, "timestamp": 1717421400 + i} for i in range(MAX_API_BODY_BYTES // 40)]
    bomb = gzip.compress(json.dumps(points).encode())
    assert len(bomb) < MAX_API_BODY_BYTES // 10
    code, result = post(pipeline, bomb, base64_encoded=True)
    assert code == 413 and "1048576 bytes once decompressed" in result["message"]
    _, queued = queued_points(pipeline)
    assert queued == []  # measured before anything was queued
    # a gzip body that decodes to less than the limit is read as usual
    small = gzip.compress(json.dumps(points[:1000]).encode())
    code, result = post(pipeline, small, base64_encoded=True)
    assert (code, result["accepted"], result["rejected"]) == (202, 1000, 0)


def test_a_gzip_object_is_capped_at_the_functions_memory(pipeline, monkeypatch):
    # AWS_LAMBDA_FUNCTION_MEMORY_SIZE=1 (MB): the object may decompress to 1 MiB (and hold
    # 1,024 points: 1,000 distinct ones here, the other records are duplicates of them)
    monkeypatch.setitem(pipeline.runtime.base_env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1")
    rows = b"".join(b'{"symbol":"A","price":1,"timestamp":%d}\n' % (1717421400 + i % 1000) for i in range(40_000))
    assert len(rows) > 1024 * 1024
    pipeline.put_object("feed/big.jsonl.gz", gzip.compress(rows))
    [result] = pipeline.deliver_s3_events()
    kept = rows[: 1024 * 1024].count(b"\n")
    assert result["records_in"] == result["accepted"] + result["rejected"] == kept + 1
    assert (result["accepted"], result["rejected"]) == (1000, kept - 1000 + 1)
    _, points = queued_points(pipeline)
    assert len(points) == 1000


def test_api_base64_and_bad_encoding_are_not_500(pipeline):
    code, result = post(pipeline, b'{"symbol":"AAPL","price":1}', base64_encoded=True)
    assert code == 202
    code, result = post(pipeline, b'{"symbol":"caf\xe9","price":1}', base64_encoded=True)
    assert code == 400 and "UTF-8" in result["errors"][0]["reason"]


def test_api_error_list_is_capped(pipeline):
    from handlers.data_ingestion import MAX_API_ERRORS

    code, result = post(pipeline, json.dumps([1] * (MAX_API_ERRORS + 5)))
    assert code == 400 and len(result["errors"]) == MAX_API_ERRORS and result["errors_omitted"] == 5
    assert result["rejected"] == MAX_API_ERRORS + 5


def test_api_queue_outage_is_503_not_a_crash(pipeline, faults):
    faults.wrap(
        "sqs",
        "send_message_batch",
        lambda original, n, **kw: (_ for _ in ()).throw(client_error("ServiceUnavailable", "SendMessageBatch")),
    )
    code, result = post(pipeline, '{"symbol":"AAPL","price":1}')
    assert code == 503 and "retry" in result["message"]


def test_api_other_methods_are_405(pipeline):
    response = pipeline.invoke("DataIngestionFunction", api_event("{}", method="GET"))
    assert response["statusCode"] == 405


def test_unknown_event_shape_raises(pipeline):
    with pytest.raises(ValueError):
        pipeline.invoke("DataIngestionFunction", {"hello": "world"})


# --- the input contract: versions, bounded reports, symbols, one parser ------------------
def stored_prices(pipe):
    pipe.drain_processing_queue()
    return sorted((i["symbol"], int(i["timestamp"]), i["price"]) for i in pipe.table_items() if "#" not in i["symbol"])


def test_an_older_version_delivered_last_does_not_overwrite_the_newer(pipeline):
    # GIVEN a key overwritten: version 1 then version 2, with the same point
    pipeline.put_object("AAPL/day.csv", b"timestamp,price\n1717421400,1\n")
    pipeline.put_object("AAPL/day.csv", b"timestamp,price\n1717421400,2\n")
    old, new = pipeline.pending_s3_events
    # WHEN their events arrive out of order (the newest first)
    pipeline.pending_s3_events[:] = [new, old]
    results = pipeline.deliver_s3_events()
    # THEN the older version is skipped and the newest version's point is stored
    assert [r["accepted"] for r in results] == [1, 0]
    assert results[1]["skipped"].startswith("superseded by version")
    assert stored_prices(pipeline) == [("AAPL", 1717421400000, Decimal(2))]


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_after_a_delete_marker_the_newest_version_wins_in_every_event_order(pipeline, order):
    # v1, then its correction v2, then the key is deleted; both events
    # arrive after the delete marker, in either order
    pipeline.put_object("AAPL/day.csv", b"timestamp,price\n1717421400,1\n")
    newest = pipeline.put_object("AAPL/day.csv", b"timestamp,price\n1717421400,2\n")
    pipeline.s3.delete_object(Bucket=pipeline.bucket, Key="AAPL/day.csv")
    events = list(pipeline.pending_s3_events)
    pipeline.pending_s3_events[:] = [events[i] for i in order]
    results = pipeline.deliver_s3_events()
    by_version = {r["version_id"]: r for r in results}
    assert by_version[newest]["accepted"] == 1
    [older] = [r for v, r in by_version.items() if v != newest]
    assert older["accepted"] == 0 and older["skipped"] == f"superseded by version {newest}"
    # the delete marker removed nothing: the newest version's point is the one stored
    assert stored_prices(pipeline) == [("AAPL", 1717421400000, Decimal(2))]


def test_newest_data_version_reads_every_page(pipeline, monkeypatch):
    from handlers import common
    from handlers.data_ingestion import newest_data_version

    s3 = common.client("s3")
    pipeline.s3.put_object(Bucket=pipeline.bucket, Key="k.csv", Body=b"x")
    newest = pipeline.s3.put_object(Bucket=pipeline.bucket, Key="k.csv", Body=b"y")["VersionId"]
    for _ in range(3):
        pipeline.s3.delete_object(Bucket=pipeline.bucket, Key="k.csv")
    pipeline.s3.put_object(Bucket=pipeline.bucket, Key="k.csv.bak", Body=b"z")
    original = s3.list_object_versions
    pages = []

    def one_at_a_time(**kw):
        pages.append(kw)
        return original(**kw, MaxKeys=1)

    monkeypatch.setattr(s3, "list_object_versions", one_at_a_time)
    assert newest_data_version(pipeline.bucket, "k.csv") == newest
    assert len(pages) >= 2  # the delete markers came first, on pages of their own
    assert newest_data_version(pipeline.bucket, "missing.csv") is None


def test_a_version_replaced_while_it_is_ingested_requeues_the_newest_last(pipeline, faults):
    # GIVEN version 1 is being read when version 2 is stored and fully ingested
    pipeline.put_object("AAPL/day.csv", b"timestamp,price\n1717421400,1\n")
    [old] = pipeline.pending_s3_events
    pipeline.pending_s3_events.clear()

    def racing(original, n, **kwargs):
        response = original(**kwargs)
        if n == 1:
            pipeline.put_object("AAPL/day.csv", b"timestamp,price\n1717421400,2\n")
            new = pipeline.pending_s3_events.pop()
            pipeline.invoke("DataIngestionFunction", new)
        return response

    faults.wrap("s3", "get_object", racing)
    # WHEN version 1's invocation finishes after version 2's
    [result] = pipeline.invoke("DataIngestionFunction", old)["objects"]
    # THEN it noticed, and queued version 2 again after its own points
    assert result["reingested_newer"]["accepted"] == 1
    assert stored_prices(pipeline) == [("AAPL", 1717421400000, Decimal(2))]


def test_millions_of_rejections_stream_in_parts_in_bounded_memory(pipeline, monkeypatch):
    from handlers import data_ingestion

    monkeypatch.setattr(data_ingestion.ReportWriter, "PART_BYTES", 5 * 1024 * 1024)  # S3's minimum part
    sizes = []
    upload_part = data_ingestion.ReportWriter._upload_part

    def measured(self):
        sizes.append(len(self._buffer))
        upload_part(self)

    monkeypatch.setattr(data_ingestion.ReportWriter, "_upload_part", measured)
    bad = b"timestamp,price\n" + b"".join(b"%d,-1\n" % (1717421400 + i) for i in range(150_000))
    pipeline.put_object("AAPL/bad.csv", bad)
    [result] = pipeline.deliver_s3_events()
    assert result["rejected"] == 150_000
    ops = [c.operation for c in pipeline.calls if c.actor == "DataIngestionFunction" and c.service == "s3"]
    assert ops.count("UploadPart") == len(sizes) >= 2 and "CompleteMultipartUpload" in ops
    assert max(sizes) < 5 * 1024 * 1024 + 1024  # one part (plus one line) in memory
    report = pipeline.rejections()
    assert len(report) == 150_000 and report[-1]["position"] == "line 150001"
    assert report[0]["key_symbol"] == "AAPL" and report[0]["key_symbol_from"] == "parent folder 'AAPL/'"


def test_api_one_unreadable_point_is_one_rejection_not_a_400(pipeline):
    points = [json.dumps({"symbol": "A", "price": 1, "timestamp": 1717421400 + i}) for i in range(99)]
    points.insert(7, '{"symbol":"A","price":1,"timestamp":1717421400,"x":' + "7" * 5000 + "}")
    status, body = post(pipeline, "[" + ",".join(points) + "]")
    assert status == 202 and (body["accepted"], body["rejected"]) == (99, 1)
    assert body["errors"][0]["position"] == "index 7"


def test_simulate_from_the_repository_root_keeps_each_files_symbol():
    from pathlib import Path

    root = Path(__file__).parents[1]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "market_cfn",
            "simulate",
            "tests/data/AAPL/2024-06-03.csv",
            "tests/data/MSFT/2024-06-03.jsonl",
        ],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=180,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root)},
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {a["symbol"] for a in doc["aggregates"]} == {"AAPL", "MSFT"}
    assert doc["key_symbols"] == [
        {"source": "tests/data/AAPL/2024-06-03.csv", "symbol": "AAPL", "from": "parent folder 'AAPL/'"},
        {"source": "tests/data/MSFT/2024-06-03.jsonl", "symbol": "MSFT", "from": "parent folder 'MSFT/'"},
    ]


@pytest.mark.parametrize(
    "body",
    [
        b'{"source":"feed","points":[{"symbol":"A","price":1,"timestamp":"2024-06-03t13:30:00z"},{"symbol":"A","price":0}]}',
        b'[{"symbol":"A","price":1,"timestamp":"2016-12-31T23:59:60Z"},\r{"symbol":"ibm","price":1e16,"timestamp":1}]',
    ],
)
def test_the_same_body_gives_the_same_result_from_s3_and_the_api(pipeline, body):
    pipeline.put_object("feed/x.json", body)
    [s3_result] = pipeline.deliver_s3_events()
    status, api = post(pipeline, body.decode())
    assert (s3_result["accepted"], s3_result["rejected"]) == (api["accepted"], api["rejected"])
    assert [(r["position"], r["reason"]) for r in pipeline.rejections()] == [
        (e["position"], e["reason"]) for e in api["errors"]
    ]
