"""DataIngestion's duplicate-check cap on moto: an object past it keeps every point before it.

The cap (`rules.max_points`) is half the function's memory at 512 bytes a point
(AWS_LAMBDA_FUNCTION_MEMORY_SIZE, MB): 1 MB here, so 1,024 points.
"""

from __future__ import annotations

import gzip
import json

import pytest
from test_handlers_ingestion import post, queued_points

from handlers import data_ingestion
from handlers.core.rules import max_points

REASON = "more than 1024 points in one {} (split it or raise DataIngestionMemorySize); the rest was not read"


def test_the_cap_follows_the_functions_memory(monkeypatch):
    assert (max_points(1), max_points(1024), max_points(3008)) == (1024, 1_048_576, 3_080_192)
    for value, memory_mb in (("1024", 1024), ("3008", 3008), ("", 128), ("0", 128), ("-5", 128), ("1e3", 128)):
        # a value Lambda would never set: both caps fail closed to Lambda's smallest function
        monkeypatch.setenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", value)
        assert data_ingestion.max_points() == max_points(memory_mb)
        assert data_ingestion.max_gunzip_bytes() == memory_mb * 1024 * 1024
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
    assert data_ingestion.max_points() == max_points(128) == 131_072


def test_the_emulation_tells_each_function_its_memory_as_lambda_does(pipeline):
    # the template's MemorySize (parameter defaults: 1,024 MB for DataIngestion, 512 for DataAggregator)
    env = pipeline.runtime.environment
    assert env("DataIngestionFunction")["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "1024"
    assert env("DataAggregatorFunction")["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"


@pytest.mark.parametrize("compress", [False, True])
def test_an_object_past_the_cap_keeps_every_point_before_it(pipeline, monkeypatch, compress):
    # GIVEN a function of 1 MB (1,024 points) and an object of 1,500 points (plain or gzip)
    monkeypatch.setitem(pipeline.runtime.base_env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1")
    rows = b"price,timestamp\n" + b"".join(b"1.5,%d\n" % (1717421400 + i) for i in range(1500))
    key = "AAPL/big.csv.gz" if compress else "AAPL/big.csv"
    version = pipeline.put_object(key, gzip.compress(rows) if compress else rows)
    # WHEN it is ingested
    [result] = pipeline.deliver_s3_events()
    # THEN the first 1,024 points are queued and the rest is one rejection after line 1,025
    assert (result["records_in"], result["accepted"], result["rejected"]) == (1025, 1024, 1)
    _, points = queued_points(pipeline)
    assert [p.timestamp for p in points] == [(1717421400 + i) * 1000 for i in range(1024)]
    report = pipeline.s3.get_object(Bucket=pipeline.rejects_bucket, Key=f"rejects/{key}@{version}.jsonl")
    lines = [json.loads(x) for x in report["Body"].read().splitlines()]
    [line] = lines
    assert (line["source"], line["position"], line["reason"]) == (key, "after line 1025", REASON.format("object"))


def test_a_request_past_the_cap_is_refused_the_same_way(pipeline, monkeypatch):
    # POST /ingest bodies are at most 1 MiB, far fewer points than any real cap; the check is the same
    monkeypatch.setitem(pipeline.runtime.base_env, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1")
    body = json.dumps([{"symbol": "A", "price": 1, "timestamp": 1717421400 + i} for i in range(1100)])
    code, result = post(pipeline, body)
    assert (code, result["accepted"], result["rejected"]) == (202, 1024, 1)
    assert result["errors"] == [{"position": "after index 1023", "reason": REASON.format("request")}]
    _, points = queued_points(pipeline)
    assert len(points) == 1024


def test_the_memory_bench_runs_at_the_cap():
    # bench/seen_memory.py, tiny: the object one point past the cap keeps the cap's points
    from bench import seen_memory

    report = seen_memory.at_cap(1)
    assert (report["records_in"], report["accepted"], report["rejected"]) == (1025, 1024, 1)
    assert report["rejections"] == [["x", "after line 1025", REASON.format("object")]]
    assert report["max_rss_mib"] > 0 and report["object_mb"] > 0
    sizes = seen_memory.measure(200)["bytes_per_point"]
    assert len(sizes) == 8 and all(size > 0 for size in sizes.values())
