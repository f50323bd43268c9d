"""`python -m market_cfn simulate`: the whole flow on moto, one JSON document out."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from market_cfn.cli import simulate as simulate_cli
from market_cfn.simulate import Pipeline

DATA = Path(__file__).parent / "data"
SAMPLES = ["AAPL/2024-06-03.csv", "MSFT/2024-06-03.jsonl", "trades.json"]
REPO = Path(__file__).parents[1]


def run_cli(monkeypatch, capsys, *argv):
    monkeypatch.chdir(DATA)
    code = simulate_cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_prints_one_document_of_the_documented_shape(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, *SAMPLES)
    assert code == 0, err
    doc = json.loads(out)  # exactly one JSON document on stdout, nothing else
    assert list(doc) == [
        "points_in",
        "accepted",
        "rejected",
        "stored",
        "rejections",
        "aggregates",
        "dead_letters",
        "key_symbols",
    ]
    assert doc["points_in"] == doc["accepted"] + doc["rejected"] == 19
    assert (doc["accepted"], doc["stored"], doc["dead_letters"]) == (12, 12, 0)
    assert len(doc["rejections"]) == doc["rejected"]
    assert all({"source", "position", "reason"} <= set(r) for r in doc["rejections"])
    assert {
        "source": "AAPL/2024-06-03.csv",
        "position": "line 9",
        "reason": "duplicate of line 3 (same symbol and timestamp)",
        "key_symbol": "AAPL",
        "key_symbol_from": "parent folder 'AAPL/'",
    } in doc["rejections"]
    assert doc["key_symbols"] == [
        {"source": "AAPL/2024-06-03.csv", "symbol": "AAPL", "from": "parent folder 'AAPL/'"},
        {"source": "MSFT/2024-06-03.jsonl", "symbol": "MSFT", "from": "parent folder 'MSFT/'"},
    ]
    keys = [(a["symbol"], a["window_start"]) for a in doc["aggregates"]]
    assert keys == sorted(keys)
    aapl = doc["aggregates"][0]
    assert aapl == {
        "symbol": "AAPL",
        "window_start": 1717421400000,
        "open": 192.9,
        "high": 193.1,
        "low": 192.75,
        "close": 193.05,
        "count": 4,
        "volume": 4000,
        "vwap": 192.9025,
    }
    # the key's parent folder supplied the symbol of the CSV rows
    assert {a["symbol"] for a in doc["aggregates"]} == {"AAPL", "MSFT", "NVDA", "BRK.B"}


def test_stored_is_read_back_from_the_table_not_counted():
    with Pipeline() as pipe:
        pipe.put_object("AAPL/a.csv", b"timestamp,price\n1717421400,1\n")
        pipe.put_object("AAPL/b.csv", b"timestamp,price\n1717421400,2\n")  # same key: overwrites
        doc = pipe.run({})
    assert (doc["accepted"], doc["stored"]) == (2, 1)


@pytest.mark.parametrize(
    "argv,message",
    [
        ([], "required"),
        (["missing.csv"], "missing.csv: not a readable file"),
        (["--env", "Bad_Env", "trades.json"], "environment name 'Bad_Env' is invalid"),
        (["../conftest.py"], "outside the current directory"),
        (["--bogus", "trades.json"], "unrecognized arguments"),
    ],
)
def test_unreadable_arguments_exit_2_with_one_line(monkeypatch, capsys, argv, message):
    code, out, err = run_cli(monkeypatch, capsys, *argv)
    assert code == 2 and out == ""
    assert message in err


def test_dispatcher_runs_simulate_as_a_module():
    result = subprocess.run(
        [sys.executable, "-m", "market_cfn", "simulate", "trades.json"],
        cwd=DATA,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["points_in"], doc["accepted"], doc["rejected"]) == (5, 3, 2)


def test_pipeline_counts_requests_per_actor():
    seen = []
    with Pipeline(on_request=seen.append) as pipe:
        pipe.run({"AAPL/a.csv": b"timestamp,price,volume\n1717421400,1,1\n"})
    actors = {c.actor for c in seen}
    assert actors == {"emulator", "DataIngestionFunction", "DataProcessorFunction", "DataAggregatorFunction"}
    assert seen == pipe.calls
    ingest_ops = sorted(c.operation for c in seen if c.actor == "DataIngestionFunction")
    assert ingest_ops == ["GetObject", "HeadObject", "SendMessageBatch"]  # HeadObject: still the newest?
    counts = pipe.request_counts()
    assert counts[("DataProcessorFunction", "dynamodb", "BatchWriteItem")] == 1
    assert not any(actor == "emulator" for actor, _, _ in counts)
    assert sum(counts.values()) == sum(1 for c in seen if c.actor != "emulator")
