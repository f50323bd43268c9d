"""`python -m market_cfn local` end to end over real HTTP on 127.0.0.1: the service runs in this
process (LocalService, port 0), the test talks to it only through boto3 and HTTP, as a user does.

Waiting is deterministic: `wait_for` polls a condition until a deadline (a failure says what
never happened); nothing asserts on time.
"""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from market_cfn.local import readback
from market_cfn.local.service import LocalService, wait_for

DATA = Path(__file__).parent / "data"
WAIT = 60.0  # seconds: a deadline for conditions, not an expected duration


@pytest.fixture(scope="module")
def svc():
    # Short schedule, retries and redelivery without Lambda's minutes-long waits.
    with LocalService(tick_seconds=1, retry_delay_seconds=0, redelivery_delay_seconds=0) as service:
        yield service


def points_of(svc: LocalService, symbol: str) -> list[dict]:
    items = readback.table_items(svc.client("dynamodb"), svc.outputs["dynamodbTableName"])
    return [i for i in items if i["symbol"] == symbol]


def aggregates_of(svc: LocalService, symbol: str) -> list[dict]:
    items = readback.table_items(svc.client("dynamodb"), svc.outputs["dynamodbTableName"])
    return [a for a in readback.aggregates_of(items) if a["symbol"] == symbol]


def post(url: str, body: bytes, *, headers: dict[str, str]) -> tuple[int, dict]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def signed_headers(url: str, body: bytes, *, key: str = "testing", secret: str = "testing") -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(key, secret), "execute-api", "us-east-1").add_auth(request)
    return dict(request.headers.items())


def signed_post(url: str, body: bytes, **creds: str) -> tuple[int, dict]:
    return post(url, body, headers=signed_headers(url, body, **creds))


# --- the stack and its outputs ---------------------------------------------------------


def test_outputs_name_the_local_api_and_describe_stacks_agrees(svc):
    assert svc.endpoint.startswith("http://127.0.0.1:")
    assert svc.outputs["apiGatewayUrl"] == svc.api_url
    assert svc.api_url.startswith("http://127.0.0.1:") and svc.api_url.endswith("/dev/ingest")
    stack = svc.client("cloudformation").describe_stacks(StackName="market-data-dev")["Stacks"][0]
    reported = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    assert reported == svc.outputs
    assert set(reported) >= {"s3BucketName", "dynamodbTableName", "processingDlqUrl", "eventBusName"}


# --- S3 -> DataIngestion -> ProcessingQueue -> DataProcessor -> bus -> aggregation --------


def test_uploaded_object_reaches_the_table_and_the_bars(svc):
    body = (DATA / "AAPL" / "2024-06-03.csv").read_bytes()
    svc.client("s3").put_object(Bucket=svc.outputs["s3BucketName"], Key="AAPL/2024-06-03.csv", Body=body)
    points = wait_for(lambda: len(points_of(svc, "AAPL")) >= 5 and points_of(svc, "AAPL"), timeout=WAIT, what="points")
    assert {int(p["timestamp"]) for p in points} >= {1717421400000}
    bars = wait_for(
        lambda: len(aggregates_of(svc, "AAPL")) == 2 and aggregates_of(svc, "AAPL"), timeout=WAIT, what="2 AAPL bars"
    )
    assert [b["window_start"] for b in bars] == [1717421400000, 1717421700000]
    assert (bars[0]["open"], bars[0]["close"], bars[0]["count"]) == (192.9, 193.05, 4)


def test_function_logs_reach_their_log_groups(svc):
    body = b"timestamp,price\n1717421400,7\n"
    svc.client("s3").put_object(Bucket=svc.outputs["s3BucketName"], Key="LOGS/2024-06-03.csv", Body=body)
    wait_for(lambda: points_of(svc, "LOGS"), timeout=WAIT, what="the LOGS point")
    logs = svc.client("logs")

    def messages(group: str) -> list[str]:
        return [e["message"] for e in logs.filter_log_events(logGroupName=group).get("events", [])]

    lines = wait_for(lambda: messages("/aws/lambda/DataIngestion-dev"), timeout=WAIT, what="ingestion logs")
    assert any(m.startswith("START RequestId: ") for m in lines)
    assert any(m.startswith("REPORT RequestId: ") and "Duration: " in m for m in lines)
    assert any('"message":"ingested object"' in m for m in lines)  # the handler's Powertools line
    assert wait_for(lambda: messages("/aws/lambda/DataAggregator-dev"), timeout=WAIT, what="aggregator logs")


# --- POST /ingest --------------------------------------------------------------------


def test_signed_ingest_reaches_the_table(svc):
    body = json.dumps([{"symbol": "SGND", "timestamp": 1717421400, "price": 10.5, "volume": 3}]).encode()
    status, doc = signed_post(svc.api_url, body)
    assert (status, doc["accepted"], doc["rejected"]) == (202, 1, 0)
    point = wait_for(lambda: points_of(svc, "SGND"), timeout=WAIT, what="the signed point")[0]
    assert float(point["price"]) == 10.5


@pytest.mark.parametrize(
    "headers,message",
    [
        ({"Content-Type": "application/json"}, "Missing Authentication Token"),
        ("wrong-secret", "The request signature we calculated does not match"),
        ("unknown-key", "The security token included in the request is invalid."),
        ("tampered", "The request signature we calculated does not match"),
    ],
)
def test_unsigned_or_badly_signed_requests_are_403(svc, headers, message):
    body = b'{"symbol": "NOPE", "timestamp": 1717421400, "price": 1}'
    if headers == "wrong-secret":
        headers = signed_headers(svc.api_url, body, secret="not-the-secret")
    elif headers == "unknown-key":
        headers = signed_headers(svc.api_url, body, key="AKIDUNKNOWN")
    elif headers == "tampered":
        headers = signed_headers(svc.api_url, body)
        body = body.replace(b"1}", b"2}")  # same length, different bytes
    status, doc = post(svc.api_url, body, headers=headers)
    assert status == 403 and doc["message"].startswith(message)


def test_undefined_route_is_403_missing_token(svc):
    url = svc.api_url.replace("/ingest", "/other")
    assert signed_post(url, b"{}") == (403, {"message": "Missing Authentication Token"})


def test_body_over_the_handlers_limit_is_413(svc):
    body = json.dumps([{"symbol": "BIG", "price": 1, "note": "x" * 1_048_576}]).encode()
    status, doc = signed_post(svc.api_url, body)
    assert status == 413 and "larger than 1048576 bytes" in doc["message"]


def test_body_over_the_api_payload_quota_is_413_unread(svc):
    parts = urlsplit(svc.api_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:  # announce 11 MB, send nothing: API Gateway's 10 MB quota answers before the body
        conn.putrequest("POST", parts.path)
        conn.putheader("Content-Length", str(11 * 1024 * 1024))
        conn.putheader("Content-Type", "application/json")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413 and json.loads(response.read()) == {"message": "Request Too Long"}
    finally:
        conn.close()


def test_a_chunked_body_of_unannounced_size_is_411(svc):
    parts = urlsplit(svc.api_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", parts.path, body=iter([b'{"symbol": "CHNK", "price": 1}']), encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 411 and json.loads(response.read()) == {"message": "Length Required"}
    finally:
        conn.close()


@pytest.mark.parametrize("body", [b'"a string"', b"[]", b"{not json"])
def test_request_validator_refuses_bodies_outside_the_model(svc, body):
    assert signed_post(svc.api_url, body) == (400, {"message": "Invalid request body"})


# --- failures: redrive and on-failure destination ---------------------------------------


def test_poison_message_ends_in_the_dlq_after_max_receive_count(svc):
    sqs = svc.client("sqs")
    sqs.send_message(QueueUrl=svc.outputs["processingQueueUrl"], MessageBody="not a points message")

    def dead() -> list[dict]:
        return sqs.receive_message(
            QueueUrl=svc.outputs["processingDlqUrl"], AttributeNames=["All"], WaitTimeSeconds=1
        ).get("Messages", [])

    (message,) = wait_for(dead, timeout=WAIT, what="the poison message in ProcessingDLQ")
    assert message["Body"] == "not a points message"
    assert int(message["Attributes"]["ApproximateReceiveCount"]) >= 3  # maxReceiveCount of ProcessingQueue


def test_failing_ingestion_is_retried_then_recorded_in_the_invocation_dlq(svc, monkeypatch):
    import handlers.data_ingestion as ingestion

    calls = []

    def broken(bucket, key, version_id):
        calls.append(key)
        raise RuntimeError("injected failure")

    monkeypatch.setattr(ingestion, "ingest_object", broken)
    svc.client("s3").put_object(Bucket=svc.outputs["s3BucketName"], Key="FAIL/x.csv", Body=b"timestamp,price\n1,1\n")
    sqs = svc.client("sqs")

    def records() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=svc.outputs["invocationDlqUrl"], WaitTimeSeconds=1).get("Messages")
        return [json.loads(m["Body"]) for m in messages or []]

    (record,) = wait_for(records, timeout=WAIT, what="the invocation record")
    assert calls == ["FAIL/x.csv"] * 3  # the first attempt and Lambda's 2 retries
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["requestContext"]["functionArn"].endswith(":function:DataIngestion-dev:$LATEST")
    assert record["requestPayload"]["Records"][0]["s3"]["object"]["key"] == "FAIL/x.csv"
    assert record["responsePayload"]["errorType"] == "RuntimeError"


# --- Lambda's Invoke API ---------------------------------------------------------------


def test_lambda_invoke_runs_the_real_handler(svc):
    from market_cfn.local.lambda_events import api_event

    lam = svc.client("lambda")
    body = json.dumps({"symbol": "INVK", "timestamp": 1717421400, "price": 2.5})
    response = lam.invoke(FunctionName="DataIngestion-dev", InvocationType="Event", Payload=json.dumps(api_event(body)))
    assert response["StatusCode"] == 202
    wait_for(lambda: points_of(svc, "INVK"), timeout=WAIT, what="the point of the Event invocation")

    failed = lam.invoke(FunctionName="DataIngestion-dev", Payload=json.dumps({"unexpected": 1}))
    assert failed["StatusCode"] == 200 and failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"
