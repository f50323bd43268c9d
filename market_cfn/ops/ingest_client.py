"""`IngestClient`: the SigV4-signed client of the pipeline's `POST /ingest`.

It lives with the day-2 cores it builds on (ops/); `market_cfn.client` is its public import path
and stays one:

    from market_cfn.client import IngestClient
    client = IngestClient("https://abc123.execute-api.us-east-1.amazonaws.com/dev/ingest")
    result = client.ingest([{"symbol": "AAPL", "timestamp": "2024-06-03T13:30:00Z", "price": 192.9}])
    print(result.accepted, result.rejected, result.errors)

- Requests are signed with botocore's own SigV4 (`botocore.auth.SigV4Auth` over an
  `AWSRequest`) for the service `execute-api`: the API's methods use IAM authorization
  (API Gateway developer guide, "Control access to a REST API with IAM permissions").
- Records are sent as JSON arrays of at most 1 MiB (1,048,576 bytes, the API's body limit,
  docs/input-contract.md), split on record boundaries. A record that alone exceeds the
  limit is not sent; it is reported as a rejection with a one-line reason, and nothing
  else is affected. Numbers are sent exactly as given (Decimal, or the text they were read as).
- 429 (throttled) and 503 (queue unavailable: "retry the request", input contract) are
  retried with capped exponential backoff and full jitter (a bounded number of attempts;
  a Retry-After header is honoured up to the cap). Other answers are not retried.
- Counting: records in = accepted + rejected + failed (the records of a request that
  got no usable answer). Positions in `errors` are indexes into the records given.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError

from market_cfn.ops.values import RawNumber, dumps_exact

if TYPE_CHECKING:
    from boto3.session import Session
    from botocore.httpsession import URLLib3Session

MAX_BODY_BYTES = 1_048_576  # the API's body limit (413 above it)
RETRY_STATUSES = frozenset({429, 503})
# Answers after which further requests cannot succeed either: stop and count the rest as failed.
FATAL_STATUSES = frozenset({401, 403, 404})
_HOST_REGION = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?$")
_INDEX = re.compile(r"^index (\d+)$")


class RawRecord(RawNumber):
    """A record given as its JSON text, sent byte for byte (the CLI reads files this way)."""


@dataclass
class IngestResult:
    records: int = 0
    accepted: int = 0
    rejected: int = 0
    failed: int = 0  # records whose request got no usable answer (see `failures`)
    requests: int = 0  # HTTP requests sent, retries included
    retries: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"index": N, "reason": ...}
    errors_omitted: int = 0
    failures: list[str] = field(default_factory=list)  # one line per failed request

    @property
    def ok(self) -> bool:
        return self.rejected == 0 and self.failed == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed,
            "requests": self.requests,
            "retries": self.retries,
            "errors": self.errors,
            "errors_omitted": self.errors_omitted,
            "failures": self.failures,
        }


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: dict[str, str]


def region_of(url: str) -> str | None:
    """The region in an execute-api host name (`abc.execute-api.eu-west-1.amazonaws.com`)."""
    match = _HOST_REGION.search(urlsplit(url).hostname or "")
    return match.group(1) if match else None


def chunks(encoded: list[bytes], limit: int = MAX_BODY_BYTES) -> Iterator[tuple[list[int], bytes]]:
    """Greedy JSON-array bodies of at most `limit` bytes: (indexes of the records in it, body).

    A record too large to fit in a body by itself is skipped (the caller reports it).
    """
    indexes: list[int] = []
    parts: list[bytes] = []
    size = 2  # "[" and "]"
    for i, record in enumerate(encoded):
        if len(record) + 2 > limit:
            continue
        extra = len(record) + (1 if parts else 0)
        if parts and size + extra > limit:
            yield indexes, b"[" + b",".join(parts) + b"]"
            indexes, parts, size = [], [], 2
            extra = len(record)
        indexes.append(i)
        parts.append(record)
        size += extra
    if parts:
        yield indexes, b"[" + b",".join(parts) + b"]"


class IngestClient:
    """Signed POST /ingest with splitting, bounded retries and exact accounting."""

    def __init__(
        self,
        url: str,
        *,
        session: Session | None = None,
        region: str | None = None,
        max_attempts: int = 6,
        base_delay_seconds: float = 0.25,
        max_delay_seconds: float = 20.0,
        timeout_seconds: float = 60.0,
        max_body_bytes: int = MAX_BODY_BYTES,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        send: Callable[[str, bytes, dict[str, str]], Response] | None = None,
    ) -> None:
        import boto3

        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError(f"not an http(s) URL: {url!r}")
        if max_attempts < 1 or base_delay_seconds < 0 or max_delay_seconds < base_delay_seconds:
            raise ValueError("max_attempts >= 1 and 0 <= base_delay_seconds <= max_delay_seconds")
        self.url = url
        self.session = session or boto3.Session()
        self.region = region or region_of(url) or self.session.region_name
        if not self.region:
            raise ValueError("no region to sign for: pass region=, or use an execute-api URL that names one")
        self.max_attempts = max_attempts
        self.base_delay_seconds = base_delay_seconds
        self.max_delay_seconds = max_delay_seconds
        self.max_body_bytes = max_body_bytes
        self.timeout_seconds = timeout_seconds
        self._sleep = sleep
        self._jitter = jitter
        self._send = send or self._urllib3_send
        self._http: URLLib3Session | None = None

    # --- one request -------------------------------------------------------------------
    def _signed_headers(self, body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        credentials = self.session.get_credentials()
        if credentials is None:
            raise ValueError("no AWS credentials to sign the request with")
        request = AWSRequest(method="POST", url=self.url, data=body, headers={"Content-Type": "application/json"})
        SigV4Auth(credentials.get_frozen_credentials(), "execute-api", self.region).add_auth(request)
        return dict(request.headers.items())

    def _urllib3_send(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        from botocore.awsrequest import AWSRequest
        from botocore.httpsession import URLLib3Session

        if self._http is None:
            self._http = URLLib3Session(timeout=int(self.timeout_seconds))
        prepared = AWSRequest(method="POST", url=url, data=body, headers=headers).prepare()
        answer = self._http.send(prepared)
        return Response(answer.status_code, answer.content, {k.lower(): v for k, v in answer.headers.items()})

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * (2**attempt))
        delay = self._jitter() * ceiling  # full jitter
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, min(float(retry_after), self.max_delay_seconds))
        return delay

    def post(self, body: bytes, result: IngestResult | None = None) -> Response:
        """POST one body, retrying 429/503 (signed afresh each time: the signature carries the time)."""
        result = result if result is not None else IngestResult()
        attempt = 0
        while True:
            result.requests += 1
            response = self._send(self.url, body, self._signed_headers(body))
            attempt += 1
            if response.status not in RETRY_STATUSES or attempt >= self.max_attempts:
                return response
            result.retries += 1
            self._sleep(self._delay(attempt - 1, response.headers.get("retry-after")))

    # --- many records -----------------------------------------------------------------
    def ingest(self, records: Iterable[Any], *, on_request: Callable[[int], None] | None = None) -> IngestResult:
        """Send records (mappings, or RawRecord JSON texts); count every one of them."""
        encoded = [(str(r) if isinstance(r, RawRecord) else dumps_exact(r)).encode("utf-8") for r in records]
        result = IngestResult(records=len(encoded))
        for i, record in enumerate(encoded):
            if len(record) + 2 > self.max_body_bytes:
                result.rejected += 1
                result.errors.append(
                    {
                        "index": i,
                        "reason": f"record is {len(record):,} bytes, over the {self.max_body_bytes:,}-byte body limit",
                    }
                )
        stopped: str | None = None
        for indexes, body in chunks(encoded, self.max_body_bytes):
            if stopped:
                result.failed += len(indexes)
                continue
            try:
                response = self.post(body, result)
            except (BotoCoreError, OSError) as exc:  # refused, timed out: the records are not known to be in
                result.failed += len(indexes)
                result.failures.append(f"records {indexes[0]}-{indexes[-1]}: {type(exc).__name__}: {exc}")
                continue
            finally:
                if on_request:
                    on_request(len(indexes))
            problem = self._account(response, indexes, result)
            if problem:
                result.failed += len(indexes)
                result.failures.append(f"records {indexes[0]}-{indexes[-1]}: {problem}")
                if response.status in FATAL_STATUSES:
                    stopped = problem
        result.errors.sort(key=lambda e: (e["index"] is None, e["index"] or 0))
        return result

    @staticmethod
    def _account(response: Response, indexes: list[int], result: IngestResult) -> str | None:
        """Add one answer's counts; the reason the answer is unusable, or None."""
        text = response.body.decode("utf-8", "replace")
        try:
            document = json.loads(text) if text.strip() else None
        except ValueError:
            document = None
        if response.status in (200, 202, 400) and isinstance(document, dict) and "accepted" in document:
            accepted, rejected = document.get("accepted"), document.get("rejected")
            if not (isinstance(accepted, int) and isinstance(rejected, int)) or accepted + rejected != len(indexes):
                return f"HTTP {response.status}: answer counts {accepted}+{rejected} for {len(indexes)} records sent"
            result.accepted += accepted
            result.rejected += rejected
            for error in document.get("errors") or []:
                position = str(error.get("position", ""))
                match = _INDEX.match(position)
                index = indexes[int(match.group(1))] if match and int(match.group(1)) < len(indexes) else None
                result.errors.append({"index": index, "position": position, "reason": error.get("reason", "")})
            result.errors_omitted += int(document.get("errors_omitted") or 0)
            return None
        detail = document.get("message") if isinstance(document, dict) else text.strip()[:200]
        return f"HTTP {response.status}" + (f": {detail}" if detail else "")
