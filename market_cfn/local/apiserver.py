"""The local POST /ingest: API Gateway's REST API front door for the stack's IngestApi, served on
127.0.0.1, in the order API Gateway applies its checks:

1. the resource and method: anything but `POST /<stage>/ingest` is 403 "Missing
   Authentication Token" (what API Gateway answers for an undefined route);
2. the payload limit of REST APIs, 10 MB: larger bodies are 413 without being read (a chunked
   body, whose size is not announced, is 411 here);
3. IAM authorization (AuthorizationType AWS_IAM): a SigV4 signature for execute-api,
   verified by market_cfn.local.sigv4; failures are 403 with API Gateway's messages;
4. the request validator: when ValidateRequestBody is on and the Content-Type has a model in
   RequestModels (or a `$default` model), the body must be JSON valid against the model's
   JSON schema (draft 4), else 400 "Invalid request body". No matching model: no validation
   (docs.aws.amazon.com/apigateway/latest/developerguide/api-gateway-method-request-validation.html);
5. the AWS_PROXY integration: DataIngestion is invoked synchronously with the proxy event; its
   {statusCode, headers, body} is the response; an error or a malformed response is 502
   "Internal server error".

The handler's own limit (1 MiB -> 413) is the handler's answer, as on AWS. Each request also
writes one access-log line in the stage's AccessLogSetting format to its log group.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from market_cfn.local.lambda_events import ACCOUNT_ID, REGION, api_event
from market_cfn.local.sigv4 import INVALID_TOKEN, MISSING_TOKEN, AuthError, verify

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024  # API Gateway REST API payload size quota: 10 MB
_CONTEXT_VAR = re.compile(r"\$context\.([A-Za-z.]+)")


@dataclass(frozen=True)
class ApiSpec:
    """What the template says about POST /ingest."""

    stage: str
    path: str  # "/ingest"
    method: str  # "POST"
    function: str  # logical ID of the proxy integration's function
    iam_auth: bool
    validate_body: bool
    models: dict[str, dict[str, Any]]  # content type -> JSON schema
    access_log_group: str | None
    access_log_format: str | None


def api_spec(view: Any) -> ApiSpec:
    """Read the REST API's method, validator, models and stage from the template (StackView)."""
    from market_cfn.local.stackview import WiringError, logical_of

    (method_id, method), *more = list(view.of_type("AWS::ApiGateway::Method"))
    if more:
        raise WiringError("the local API serves one method; the template has more")
    integration = method["Integration"]
    if integration.get("Type") != "AWS_PROXY":
        raise WiringError(f"{method_id}: only AWS_PROXY integrations are emulated")
    uri = json.dumps(integration["Uri"])
    functions = [f for f, _ in view.of_type("AWS::Lambda::Function") if f'"{f}"' in uri]
    if len(functions) != 1:
        raise WiringError(f"{method_id}: cannot tell which function the integration invokes")
    resource = view.props(logical_of(method["ResourceId"]))
    validate = False
    if "RequestValidatorId" in method:
        validate = bool(view.props(logical_of(method["RequestValidatorId"])).get("ValidateRequestBody", False))
    models = {}
    for content_type, model in method.get("RequestModels", {}).items():
        models[content_type.lower()] = json.loads(view.props(logical_of(model))["Schema"])
    (_, stage), *_ = list(view.of_type("AWS::ApiGateway::Stage"))
    log = stage.get("AccessLogSetting") or {}
    group = None
    if log.get("DestinationArn"):
        group = view.resolve(view.props(logical_of(log["DestinationArn"]))["LogGroupName"])
    return ApiSpec(
        stage=str(view.resolve(stage["StageName"])),
        path="/" + str(resource["PathPart"]),
        method=str(method["HttpMethod"]),
        function=functions[0],
        iam_auth=method.get("AuthorizationType") == "AWS_IAM",
        validate_body=validate,
        models=models,
        access_log_group=group,
        access_log_format=log.get("Format"),
    )


class ApiServer:
    """A ThreadingHTTPServer in a thread; `invoke(logical, event)` runs the integration."""

    def __init__(
        self,
        spec: ApiSpec,
        invoke: Callable[[str, dict[str, Any]], Any],
        *,
        credentials: dict[str, str],
        port: int = 0,
        access_log: Callable[[str, str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.invoke = invoke
        self.credentials = credentials
        self.access_log = access_log
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), _handler_class(self))
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="local-api", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{self.spec.stage}{self.spec.path}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join()

    # --- one request ------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: dict[str, str], read_body: Callable[[int], bytes]) -> Any:
        """(status, headers, body bytes) for one request; headers have lower-case names."""
        parts = urlsplit(target)
        if "chunked" in headers.get("transfer-encoding", "").lower():
            # the body's size must be known before it is read (the payload quota); not decoded here
            return _json(411, {"message": "Length Required"}, "LengthRequiredException")
        length = content_length(headers)
        if length is None:
            return _json(400, {"message": "Invalid Content-Length"}, "BadRequestException")
        if length > MAX_PAYLOAD_BYTES:
            return _json(413, {"message": "Request Too Long"}, "RequestTooLongException")
        body = read_body(length) if length else b""
        if method != self.spec.method or parts.path != f"/{self.spec.stage}{self.spec.path}":
            return _json(403, {"message": MISSING_TOKEN}, "MissingAuthenticationTokenException")
        identity: dict[str, Any] = {"sourceIp": headers.get("x-forwarded-for", "127.0.0.1")}
        if self.spec.iam_auth:
            url = f"http://{headers.get('host', '')}{target}"
            try:
                caller = verify(method, url, headers, body, credentials=self.credentials, region=REGION)
            except AuthError as exc:
                kind = {
                    MISSING_TOKEN: "MissingAuthenticationTokenException",
                    INVALID_TOKEN: "UnrecognizedClientException",
                }
                return _json(403, {"message": str(exc)}, kind.get(str(exc), "InvalidSignatureException"))
            identity.update(
                accessKey=caller.access_key,
                caller=caller.access_key,
                user=caller.access_key,
                accountId=ACCOUNT_ID,
                userArn=f"arn:aws:iam::{ACCOUNT_ID}:user/{caller.access_key}",
            )
        if self.spec.validate_body and not self._valid(headers.get("content-type", ""), body):
            return _json(400, {"message": "Invalid request body"}, "BadRequestException")
        event = api_event(
            body.decode("utf-8", "replace") if body else None,
            stage=self.spec.stage,
            headers={_title(k): v for k, v in headers.items()},
            query={k: v for k, v in parse_qs(parts.query, keep_blank_values=True).items()} or None,
            identity=identity,
        )
        try:
            response = self.invoke(self.spec.function, event)
            status = int(response["statusCode"])
            out_headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
            raw = response.get("body") or ""
            data = base64.b64decode(raw) if response.get("isBase64Encoded") else str(raw).encode("utf-8")
        except Exception:  # noqa: BLE001  # API Gateway: a failed or malformed integration is 502
            return _json(502, {"message": "Internal server error"}, "InternalServerErrorException")
        return status, out_headers, data

    def _valid(self, content_type: str, body: bytes) -> bool:
        media = content_type.split(";", 1)[0].strip().lower()
        schema = self.spec.models.get(media) or self.spec.models.get("$default")
        if schema is None:
            return True  # no model for this content type: API Gateway does not validate
        import jsonschema

        try:
            doc = json.loads(body)
        except ValueError:
            return False
        return bool(jsonschema.Draft4Validator(schema).is_valid(doc))

    def log_access(self, method: str, status: int, length: int, request_id: str, caller: str) -> None:
        if self.access_log is None or not self.spec.access_log_format or not self.spec.access_log_group:
            return
        values = {
            "httpMethod": method,
            "status": str(status),
            "responseLength": str(length),
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "resourcePath": self.spec.path,
            "identity.sourceIp": "127.0.0.1",
            "identity.caller": caller,
            "identity.userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/{caller}" if caller else "-",
        }
        line = _CONTEXT_VAR.sub(lambda m: values.get(m.group(1), "-"), self.spec.access_log_format)
        self.access_log(self.spec.access_log_group, line)


def _json(status: int, doc: dict[str, Any], error_type: str) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": error_type}, json.dumps(doc).encode()


def content_length(headers: dict[str, str]) -> int | None:
    try:
        length = int(headers.get("content-length", "0") or "0")
    except ValueError:
        return None
    return length if length >= 0 else None


def _title(name: str) -> str:
    return "-".join(p.capitalize() for p in name.split("-"))


def _handler_class(server: ApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "market_cfn-local-api"

        def _serve(self) -> None:
            headers: dict[str, str] = {}
            for name, value in self.headers.items():
                key = name.lower()
                headers[key] = f"{headers[key]},{value}" if key in headers else value
            request_id = str(uuid.uuid4())
            status, out_headers, data = server.handle(self.command, self.path, headers, self.rfile.read)
            length = content_length(headers)
            if length is None or length > MAX_PAYLOAD_BYTES or "chunked" in headers.get("transfer-encoding", ""):
                self.close_connection = True  # the body was not read: the connection cannot be reused
            self.send_response(status)
            for name, value in out_headers.items():
                self.send_header(name, value)
            self.send_header("x-amzn-RequestId", request_id)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            caller = ""
            auth = headers.get("authorization", "")
            if "Credential=" in auth:
                caller = auth.split("Credential=", 1)[1].split("/", 1)[0]
            server.log_access(self.command, status, len(data), request_id, caller)

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

        def log_message(self, format: str, *args: Any) -> None:  # quiet: access logs go to CloudWatch
            pass

    return Handler
