"""Verify a Signature Version 4 request as API Gateway's IAM authorization does, for the local
POST /ingest: parse the Authorization header, look the access key up, recompute the signature
with botocore's SigV4Auth over exactly the headers the client signed, compare in constant time.

References: "Signature Version 4 for API requests" and "Create a signed AWS API request"
(docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv.html, create-signed-request.html);
API Gateway's 403 messages are the ones it returns for IAM-authorized methods. There is no IAM
locally: any access key in `credentials` is allowed to invoke (docs/local.md).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_CLOCK_SKEW = timedelta(minutes=5)  # API Gateway: "Signature expired ... (... - 5 min.)"
MISSING_TOKEN = "Missing Authentication Token"
INVALID_TOKEN = "The security token included in the request is invalid."
SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. "
    "Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
_PARAM = re.compile(r"\s*([A-Za-z]+)=([^,\s]*)\s*")


class AuthError(Exception):
    """The request is not authorized; the message is API Gateway's 403 body message."""


@dataclass(frozen=True)
class Caller:
    access_key: str
    signed_headers: tuple[str, ...]


class _ExactHeaders(SigV4Auth):
    """SigV4Auth that signs exactly the client's SignedHeaders (botocore would drop some, e.g.
    user-agent, which another SDK may have signed)."""

    def __init__(self, credentials: Credentials, service: str, region: str, signed: tuple[str, ...]) -> None:
        super().__init__(credentials, service, region)
        self._signed = signed

    def headers_to_sign(self, request: AWSRequest) -> HTTPHeaders:
        found = HTTPHeaders()
        for name in self._signed:
            value = request.headers.get(name)
            if value is None:
                raise AuthError(SIGNATURE_MISMATCH)
            found[name] = value
        return found


def parse_authorization(value: str) -> dict[str, str]:
    """The Credential, SignedHeaders and Signature parameters of an AWS4-HMAC-SHA256 header."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        raise AuthError(f"Authorization header requires the {ALGORITHM} algorithm")
    params: dict[str, str] = {}
    for part in rest.split(","):
        match = _PARAM.fullmatch(part)
        if not match:
            raise AuthError(f"Authorization header has a malformed parameter: {part.strip()!r}")
        params[match.group(1)] = match.group(2)
    missing = [p for p in ("Credential", "SignedHeaders", "Signature") if not params.get(p)]
    if missing:
        raise AuthError(" ".join(f"Authorization header requires '{p}' parameter." for p in missing))
    return params


def verify(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    credentials: Mapping[str, str],
    region: str,
    service: str = "execute-api",
    now: datetime | None = None,
) -> Caller:
    """Check a request's SigV4 signature; return the caller or raise AuthError.

    `headers` maps lower-case names to values (repeated headers joined with ","), `url` is
    the URL the client sent the request to (scheme, host:port, path and raw query).
    """
    authorization = headers.get("authorization")
    if not authorization:
        raise AuthError(MISSING_TOKEN)
    params = parse_authorization(authorization)
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise AuthError("Credential should be scoped to a valid region, service and 'aws4_request'.")
    access_key, date, scope_region, scope_service, _ = scope
    secret = credentials.get(access_key)
    if secret is None:
        raise AuthError(INVALID_TOKEN)
    if scope_region != region:
        raise AuthError(f"Credential should be scoped to a valid region, not '{scope_region}'.")
    if scope_service != service:
        raise AuthError(f"Credential should be scoped to correct service: '{service}'.")
    signed = tuple(params["SignedHeaders"].split(";"))
    if "host" not in signed:
        raise AuthError("'Host' must be a signed header.")
    amz_date = headers.get("x-amz-date", "")
    try:
        stamp = datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise AuthError(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
        ) from None
    if "x-amz-date" not in signed or not amz_date.startswith(date):
        raise AuthError(SIGNATURE_MISMATCH)
    moment = now or datetime.now(UTC)
    if abs(moment - stamp) > MAX_CLOCK_SKEW:
        raise AuthError(
            f"Signature expired: {amz_date} is now earlier than "
            f"{(moment - MAX_CLOCK_SKEW).strftime('%Y%m%dT%H%M%SZ')} "
            f"({moment.strftime('%Y%m%dT%H%M%SZ')} - 5 min.)"
        )
    claimed_hash = headers.get("x-amz-content-sha256")
    if claimed_hash is not None and claimed_hash != hashlib.sha256(body).hexdigest():
        raise AuthError(SIGNATURE_MISMATCH)  # the signature covers a different body
    request = AWSRequest(method=method, url=url, data=body, headers={k: v for k, v in headers.items() if k in signed})
    request.context["timestamp"] = amz_date
    token = headers.get("x-amz-security-token")
    auth = _ExactHeaders(Credentials(access_key, secret, token), service, region, signed)
    canonical = auth.canonical_request(request)
    expected = auth.signature(auth.string_to_sign(request, canonical), request)
    if not hmac.compare_digest(expected, params["Signature"]):
        raise AuthError(SIGNATURE_MISMATCH)
    return Caller(access_key, signed)
