"""IngestClient over real HTTP on 127.0.0.1: SigV4 that verifies, 1 MiB splitting, 429/503 retries.

The server below checks each request's signature the way API Gateway does (recomputing
it with botocore from the request it received) and answers like POST /ingest
(docs/input-contract.md), or with scripted statuses for the retry cases.
"""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from market_cfn.client import MAX_BODY_BYTES, IngestClient, chunks, region_of
from market_cfn.ops.ingest import Records, ingest_records, read_records

KEY, SECRET, REGION = "AKIDTEST", "secret-test", "us-east-1"


def signature_ok(method: str, url: str, headers: dict[str, str], body: bytes) -> bool:
    """Recompute SigV4 for execute-api from what arrived, as the service does."""
    auth_header = headers.get("Authorization", "")
    if not auth_header.startswith("AWS4-HMAC-SHA256 Credential=" + KEY + "/"):
        return False
    signed = auth_header.split("SignedHeaders=", 1)[1].split(",", 1)[0].split(";")
    request = AWSRequest(
        method=method, url=url, data=body, headers={k: v for k, v in headers.items() if k.lower() in signed}
    )
    request.context["timestamp"] = headers["X-Amz-Date"]
    signer = SigV4Auth(Credentials(KEY, SECRET), "execute-api", REGION)
    canonical = signer.canonical_request(request)
    expected = signer.signature(signer.string_to_sign(request, canonical), request)
    return auth_header.endswith("Signature=" + expected)


class Api:
    """What the fake POST /ingest saw, and what it answers next."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.script: list[int] = []  # statuses to answer before answering normally
        self.bad_signatures = 0


def answer(records: list[Any]) -> tuple[int, dict[str, Any]]:
    """POST /ingest's accounting: a record with a positive numeric price is accepted."""
    errors = []
    for i, record in enumerate(records):
        price = record.get("price") if isinstance(record, dict) else None
        if not isinstance(price, (int, Decimal)) or price <= 0:
            errors.append({"position": f"index {i}", "reason": "price must be > 0"})
    accepted = len(records) - len(errors)
    return (202 if accepted else 400), {"accepted": accepted, "rejected": len(errors), "errors": errors}


@pytest.fixture
def api() -> Iterator[tuple[str, Api]]:
    state = Api()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            host = self.headers["Host"]
            url = f"http://{host}{self.path}"
            if not signature_ok("POST", url, dict(self.headers.items()), body):
                state.bad_signatures += 1
                return self._send(403, {"message": "The request signature we calculated does not match"})
            if state.script:
                status = state.script.pop(0)
                return self._send(status, {"message": "Too Many Requests" if status == 429 else "retry"})
            if len(body) > MAX_BODY_BYTES:
                return self._send(413, {"message": "Request Too Long"})
            state.bodies.append(body)
            self._send(*answer(json.loads(body, parse_float=Decimal)))

        def _send(self, status: int, document: dict[str, Any]) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/dev/ingest", state
    server.shutdown()
    server.server_close()


def client(url: str, **kwargs: Any) -> IngestClient:
    session = boto3.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET, region_name=REGION)
    return IngestClient(url, session=session, **kwargs)


def test_signed_records_are_accepted_and_numbers_travel_exactly(api):
    url, state = api
    # GIVEN points with prices that a float would change
    records = [{"symbol": "AAPL", "timestamp": 1717421400, "price": Decimal("192.90")}, {"symbol": "AAPL", "price": 0}]
    # WHEN they are ingested
    result = client(url).ingest(records)
    # THEN the signature verified, the body carried 192.90 as written, and every record is counted
    assert state.bad_signatures == 0
    assert b'"price":192.90' in state.bodies[0]
    assert (result.records, result.accepted, result.rejected, result.failed) == (2, 1, 1, 0)
    assert result.errors == [{"index": 1, "position": "index 1", "reason": "price must be > 0"}]


def test_bodies_are_split_at_one_mebibyte_on_record_boundaries(api):
    url, state = api
    # GIVEN 3.5 MiB of valid points, each about 40 KiB
    pad = "x" * 40_000
    records = [{"symbol": "MSFT", "timestamp": 1717421400 + i, "price": 1, "note": pad} for i in range(90)]
    # WHEN ingested
    result = client(url).ingest(records)
    # THEN several bodies, none over the limit, together exactly the records in order
    assert len(state.bodies) >= 4
    assert all(len(body) <= MAX_BODY_BYTES for body in state.bodies)
    received = [r["timestamp"] for body in state.bodies for r in json.loads(body)]
    assert received == [1717421400 + i for i in range(90)]
    assert (result.accepted, result.rejected, result.failed) == (90, 0, 0)


def test_a_record_over_the_limit_alone_is_rejected_and_nothing_else_is_lost(api):
    url, state = api
    huge = {"symbol": "AAPL", "timestamp": 1, "price": 1, "note": "y" * MAX_BODY_BYTES}
    records = [
        {"symbol": "AAPL", "timestamp": 1717421400, "price": 1},
        huge,
        {"symbol": "AAPL", "timestamp": 1717421460, "price": 2},
    ]
    result = client(url).ingest(records)
    assert (result.records, result.accepted, result.rejected, result.failed) == (3, 2, 1, 0)
    assert result.errors[0]["index"] == 1 and "over the 1,048,576-byte body limit" in result.errors[0]["reason"]
    assert [len(json.loads(b)) for b in state.bodies] == [2]


def test_429_and_503_are_retried_with_capped_exponential_backoff_and_jitter(api):
    url, state = api
    state.script = [429, 503, 503]
    slept: list[float] = []
    result = client(url, sleep=slept.append, jitter=lambda: 1.0, base_delay_seconds=0.5, max_delay_seconds=1.5).ingest(
        [{"symbol": "AAPL", "timestamp": 1717421400, "price": 1}]
    )
    assert result.accepted == 1 and result.retries == 3 and result.requests == 4
    assert slept == [0.5, 1.0, 1.5]  # 0.5 x 2^n, capped at 1.5 (jitter 1.0 = the ceiling)


def test_retries_are_bounded_and_the_records_are_counted_as_failed(api):
    url, state = api
    state.script = [503] * 10
    result = client(url, sleep=lambda s: None, max_attempts=3).ingest([{"symbol": "AAPL", "price": 1}] * 2)
    assert (result.accepted, result.rejected, result.failed, result.requests) == (0, 0, 2, 3)
    assert result.failures == ["records 0-1: HTTP 503: retry"]


def test_a_bad_signature_stops_the_run_and_counts_every_record_not_sent(api):
    url, state = api
    bad = IngestClient(
        url, session=boto3.Session(aws_access_key_id=KEY, aws_secret_access_key="wrong", region_name=REGION)
    )
    bad.max_body_bytes = 200  # several bodies
    result = bad.ingest([{"symbol": "AAPL", "timestamp": i, "price": 1, "n": "z" * 50} for i in range(6)])
    assert state.bad_signatures == 1  # the first 403 stops it: no more requests
    assert (result.accepted, result.failed) == (0, 6)


def test_chunks_and_region_helpers():
    assert [i for i, _ in chunks([b"1" * 4, b"2" * 4, b"3" * 4], limit=12)] == [[0, 1], [2]]
    assert region_of("https://abc.execute-api.eu-west-1.amazonaws.com/prod/ingest") == "eu-west-1"
    assert region_of("http://127.0.0.1:4566/restapis/x/dev/_user_request_/ingest") is None


def test_files_are_read_as_json_documents_or_json_lines_keeping_number_text():
    records = Records()
    read_records("a.json", b'{"points": [{"symbol": "AAPL", "price": 192.90}, {"symbol": "X", "price": NaN}]}', records)
    read_records("b.jsonl", b'{"symbol": "MSFT", "price": 1e2}\nnot json\n\n{"symbol": "MSFT", "price": 3}\n', records)
    assert [str(r) for r in records.records] == [
        '{"symbol":"AAPL","price":192.90}',
        '{"symbol":"X","price":NaN}',
        '{"symbol":"MSFT","price":1E+2}',
        '{"symbol":"MSFT","price":3}',
    ]
    assert records.positions == ["a.json points[0]", "a.json points[1]", "b.jsonl line 1", "b.jsonl line 4"]
    assert records.local_errors == [{"position": "b.jsonl line 2", "reason": "invalid JSON: Expecting value"}]


@pytest.mark.parametrize("data", [b"", b"[1, 2", b"\xff\xfe", b"not json\nat all\n"])
def test_a_file_that_is_neither_json_nor_json_lines_is_a_usage_error(data):
    from market_cfn.base.errors import UsageError

    with pytest.raises(UsageError):
        read_records("bad.json", data)


def test_ingest_accounting_names_file_positions(api):
    url, _ = api
    records = read_records("t.jsonl", b'{"symbol":"A","price":1}\n{"symbol":"A","price":-1}\n{oops\n')
    summary = ingest_records(client(url), records)
    assert (summary["records"], summary["accepted"], summary["rejected"], summary["failed"]) == (3, 1, 2, 0)
    assert [e["position"] for e in summary["errors"]] == ["t.jsonl line 3", "t.jsonl line 2"]


def test_ingest_command_with_url_prints_counts_and_exits_1_on_rejections(api, tmp_path, monkeypatch):
    from market_cfn.cli import ingest

    url, state = api
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('[{"symbol": "AAPL", "timestamp": 1717421400, "price": 192.9}]')
    bad.write_text('{"symbol": "AAPL", "price": -1}')
    out, err = io.StringIO(), io.StringIO()
    assert ingest.main([str(good), "--url", url, "--region", REGION], stdout=out, stderr=err) == 0
    assert out.getvalue().startswith("1 records: 1 accepted, 0 rejected, 0 failed")
    out = io.StringIO()
    assert ingest.main([str(good), str(bad), "--url", url, "--region", REGION, "--json"], stdout=out, stderr=err) == 1
    document = json.loads(out.getvalue())
    assert (document["accepted"], document["rejected"]) == (1, 1)
    assert document["errors"] == [{"position": f"{bad}", "reason": "price must be > 0"}]
    stdin = io.TextIOWrapper(io.BytesIO(b'{"symbol": "AAPL", "timestamp": 1717421401, "price": 1}'))
    assert ingest.main(["-", "--url", url, "--region", REGION], stdout=io.StringIO(), stderr=err, stdin=stdin) == 0
    assert len(state.bodies) == 3
