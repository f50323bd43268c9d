"""The local service's pure parts: SigV4 verification, event-rule delivery, partial batch responses."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from market_cfn.local import bus, sigv4
from market_cfn.local.runtime import failed_item_ids
from market_cfn.local.stackview import StackView, WiringError, load_template

URL = "http://127.0.0.1:8123/dev/ingest"
CREDS = {"testing": "testing"}


def signed(body: bytes, *, region: str = "us-east-1", service: str = "execute-api", token: str | None = None):
    request = AWSRequest(method="POST", url=URL, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials("testing", "testing", token), service, region).add_auth(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    headers["host"] = "127.0.0.1:8123"
    return headers


def test_a_botocore_signature_verifies_with_and_without_a_session_token():
    for token in (None, "session-token"):
        caller = sigv4.verify("POST", URL, signed(b"{}", token=token), b"{}", credentials=CREDS, region="us-east-1")
        assert caller.access_key == "testing" and "host" in caller.signed_headers


@pytest.mark.parametrize(
    "change,message",
    [
        (lambda h: h.pop("authorization"), "Missing Authentication Token"),
        (lambda h: h.update(authorization="Basic dXNlcjpwYXNz"), "requires the AWS4-HMAC-SHA256 algorithm"),
        (lambda h: h.update(authorization="AWS4-HMAC-SHA256 Credential=testing/x"), "requires 'SignedHeaders'"),
        (lambda h: h.update({"content-type": "text/plain"}), "signature we calculated does not match"),
        (lambda h: h.update(host="127.0.0.1:9999"), "signature we calculated does not match"),
    ],
)
def test_a_changed_or_malformed_request_is_refused(change, message):
    headers = signed(b"{}")
    change(headers)
    with pytest.raises(sigv4.AuthError, match=message):
        sigv4.verify("POST", URL, headers, b"{}", credentials=CREDS, region="us-east-1")


def test_scope_and_clock_skew_are_checked():
    with pytest.raises(sigv4.AuthError, match="scoped to a valid region"):
        sigv4.verify("POST", URL, signed(b"{}", region="eu-west-1"), b"{}", credentials=CREDS, region="us-east-1")
    with pytest.raises(sigv4.AuthError, match="scoped to correct service"):
        sigv4.verify("POST", URL, signed(b"{}", service="s3"), b"{}", credentials=CREDS, region="us-east-1")
    later = datetime.now(UTC) + timedelta(minutes=6)
    with pytest.raises(sigv4.AuthError, match="Signature expired"):
        sigv4.verify("POST", URL, signed(b"{}"), b"{}", credentials=CREDS, region="us-east-1", now=later)


def test_a_body_hash_header_must_match_the_body():
    headers = signed(b"{}")
    headers["x-amz-content-sha256"] = "0" * 64
    with pytest.raises(sigv4.AuthError, match="does not match"):
        sigv4.verify("POST", URL, headers, b"{}", credentials=CREDS, region="us-east-1")


# --- EventBridge delivery ---------------------------------------------------------------


class FakeSqs:
    def __init__(self, fail: int = 0) -> None:
        self.sent: list[dict] = []
        self.fail = fail

    def send_message(self, **kwargs):
        if self.fail:
            self.fail -= 1
            raise RuntimeError("queue unavailable")
        self.sent.append(kwargs)
        return {"MessageId": str(len(self.sent))}


@pytest.fixture(scope="module")
def view() -> StackView:
    v = StackView(load_template("dev"))
    v.declare_names()
    v.declare_extras()
    return v


def points_stored(detail_type: str = "PointsStored") -> dict:
    return {
        "version": "0",
        "id": "e1",
        "detail-type": detail_type,
        "source": "market-data.processor",
        "time": 1717421400.0,
        "detail": {"v": 1, "windows": [["AAPL", 1717421400000]]},
    }


def test_a_matching_event_is_delivered_as_its_detail(view):
    sqs = FakeSqs()
    router = bus.BusRouter(view, sqs, on_error=pytest.fail)
    (name,) = router.rules
    router.deliver(name, points_stored())
    (message,) = sqs.sent
    assert message["QueueUrl"].endswith("/AggregationQueue-dev")
    assert json.loads(message["MessageBody"]) == {"v": 1, "windows": [["AAPL", 1717421400000]]}  # InputPath $.detail


def test_other_events_are_not_delivered(view):
    sqs = FakeSqs()
    router = bus.BusRouter(view, sqs, on_error=pytest.fail)
    (name,) = router.rules
    router.deliver(name, points_stored("AggregateComputed"))
    assert sqs.sent == []


def test_an_undeliverable_event_goes_to_the_targets_dead_letter_queue(view):
    sqs = FakeSqs(fail=bus.DELIVERY_ATTEMPTS)
    router = bus.BusRouter(view, sqs, on_error=pytest.fail)
    (name,) = router.rules
    router.deliver(name, points_stored())
    (message,) = sqs.sent
    assert message["QueueUrl"].endswith("/InvocationDLQ-dev")
    assert json.loads(message["MessageBody"])["detail-type"] == "PointsStored"  # the whole event
    assert json.loads(message["MessageBody"])["time"] == "2024-06-03T13:30:00Z"
    attrs = message["MessageAttributes"]
    assert attrs["RULE_ARN"]["StringValue"].endswith(":rule/PointsStoredToAggregation-dev")
    assert attrs["ERROR_MESSAGE"]["StringValue"] == "queue unavailable"


@pytest.mark.parametrize(
    "pattern,event,expected",
    [
        ({"source": ["a"]}, {"source": "a"}, True),
        ({"source": ["a"]}, {"source": "b"}, False),
        ({"source": ["a"], "detail-type": ["x"]}, {"source": "a"}, False),
        ({"detail": {"kind": ["k"]}}, {"detail": {"kind": "k"}}, True),
        ({"resources": ["r2"]}, {"resources": ["r1", "r2"]}, True),
    ],
)
def test_exact_value_patterns(pattern, event, expected):
    assert bus.matches(pattern, event) is expected


@pytest.mark.parametrize("pattern", [{"source": [{"prefix": "a"}]}, {"source": "a"}])
def test_patterns_beyond_exact_values_are_refused(pattern):
    with pytest.raises(WiringError):
        bus.check_pattern("Rule", pattern)


def test_input_paths_beyond_dotted_fields_are_refused():
    assert bus.select({"detail": {"a": 1}}, "$.detail.a") == 1
    with pytest.raises(WiringError):
        bus.select({}, "$.detail[0]")


# --- partial batch responses ------------------------------------------------------------


@pytest.mark.parametrize(
    "response,failed",
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"a", "b"}),  # empty id: the whole batch
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, {"a", "b"}),  # unknown id: the whole batch
        ({"batchItemFailures": [{"id": "a"}]}, {"a", "b"}),  # wrong key
        ("not a response", {"a", "b"}),
    ],
)
def test_partial_batch_responses_as_lambda_reads_them(response, failed):
    assert failed_item_ids(response, {"a", "b"}) == failed


# --- the template's wiring, as the service reads it ------------------------------------


def test_the_service_understands_every_integration_the_template_declares(view):
    """Fails closed (WiringError) when the template gains something the service would not emulate."""
    from market_cfn.local.apiserver import api_spec

    assert [(m.function, m.queue, m.partial_failures) for m in view.mappings()] == [
        ("DataProcessorFunction", "ProcessingQueue", True)
    ]
    assert [(n.bucket, n.function) for n in view.notifications()] == [("DataBucket", "DataIngestionFunction")]
    (schedule,) = view.schedules()
    assert schedule.function == "DataAggregatorFunction" and schedule.rate_seconds == 300
    assert api_spec(view).function == "DataIngestionFunction" and api_spec(view).iam_auth
    assert set(bus.BusRouter(view, FakeSqs(), on_error=pytest.fail).rules) == {"PointsStoredToAggregation-dev"}
    for function, _ in view.of_type("AWS::Lambda::Function"):
        assert view.timeout_ms(function) > 0 and view.memory_mb(function) >= 128
        assert view.async_config(function).retries >= 0
        assert set(view.function_env(function)) >= {"POWERTOOLS_SERVICE_NAME"}


def test_emulator_request_errors_are_one_line_once():
    import logging

    from market_cfn.local.motoside import OneLineRequestErrors

    errors = OneLineRequestErrors()

    def record_while_handling(exc: Exception) -> logging.LogRecord:
        try:
            raise exc
        except Exception:  # noqa: BLE001
            import traceback

            record = logging.LogRecord(
                "werkzeug", logging.ERROR, __file__, 1, "Error on request:\n%s", (traceback.format_exc(),), None
            )
            keep = errors.filter(record)
        return record if keep else None

    first = record_while_handling(
        NotImplementedError("The update_termination_protection action has not been implemented")
    )
    assert first is not None and first.getMessage().count("\n") == 0
    assert "does not implement this: The update_termination_protection action" in first.getMessage()
    assert (
        record_while_handling(NotImplementedError("The update_termination_protection action has not been implemented"))
        is None
    )
    other = record_while_handling(KeyError("Arn"))
    assert (
        other is not None and other.getMessage() == "local endpoint: a request failed in the emulator: KeyError: 'Arn'"
    )
    plain = logging.LogRecord("werkzeug", logging.ERROR, __file__, 1, "something else", (), None)
    assert errors.filter(plain) and plain.getMessage() == "something else"


def test_an_sqs_record_carries_message_attributes_as_lambda_does():
    # ReceiveMessage answers PascalCase with bytes; the event source mapping's record is camelCase with
    # base64 text and both list fields present (Lambda developer guide, "Using Lambda with Amazon SQS").
    from market_cfn.local.lambda_events import sqs_record

    message = {
        "MessageId": "m1",
        "ReceiptHandle": "r1",
        "Body": "{}",
        "MD5OfBody": "99914b932bd37a50b983c5e7c90ae93b",
        "MD5OfMessageAttributes": "582c92c5c5b6ac403040a4f3ab3115c9",
        "MessageAttributes": {
            "ErrorCode": {"StringValue": "500", "DataType": "Number"},
            "Raw": {"BinaryValue": b"1100", "DataType": "Binary"},
        },
    }
    record = sqs_record(message, "arn:aws:sqs:us-east-1:123456789012:q")
    assert record["messageAttributes"] == {
        "ErrorCode": {"stringValue": "500", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
        "Raw": {"binaryValue": "MTEwMA==", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert record["md5OfMessageAttributes"] == "582c92c5c5b6ac403040a4f3ab3115c9"
    assert sqs_record({"MessageId": "m", "ReceiptHandle": "r", "Body": ""}, "q")["messageAttributes"] == {}
