"""What the local service does to moto's server and its in-process backends, in one place: start
the server on 127.0.0.1, point clients at it, and the three changes to moto's state that make the
deployed stack behave as on AWS (each checked: a moto without the expected internals refuses the
start with a one-line reason instead of running a half-wired stack). docs/local.md has the why.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
import warnings
from typing import TYPE_CHECKING, Any

from market_cfn.local.lambda_events import ACCOUNT_ID, REGION
from market_cfn.local.stackview import WiringError

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from boto3.session import Session


def quiet() -> None:
    """No request log lines on the service's output; and moto's notes on the template resource
    types its CloudFormation does not create (alarms, policies, EventInvokeConfig, the API's
    model, validator and stage) are listed in docs/local.md instead of on every start."""
    werkzeug = logging.getLogger("werkzeug")
    werkzeug.setLevel(logging.ERROR)
    if not any(isinstance(f, OneLineRequestErrors) for f in werkzeug.filters):
        werkzeug.addFilter(OneLineRequestErrors())
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", message="Tried to parse AWS::", category=UserWarning)


class OneLineRequestErrors(logging.Filter):
    """moto's server answers a request it cannot serve with a 500, and werkzeug logs the
    exception's whole traceback (through moto, flask and werkzeug) on the service's stderr.
    The caller already gets the error; the service's output gets one line instead, once per
    distinct line: what the emulator lacks (an operation moto does not implement) or the
    exception's type and message."""

    def __init__(self) -> None:
        super().__init__()
        self.said: set[str] = set()
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # werkzeug formats the traceback into the message ("Error on request:\n...") from
        # inside its except block, so the exception is the one being handled right now.
        exc = record.exc_info[1] if record.exc_info else sys.exc_info()[1]
        if exc is None or not str(record.msg).startswith("Error on request"):
            return True
        if isinstance(exc, NotImplementedError):
            line = f"local endpoint: the emulator (moto) does not implement this: {exc}; the request got a 500"
        else:
            line = f"local endpoint: a request failed in the emulator: {type(exc).__name__}: {exc}"
        line = " ".join(line.split())[:300]
        with self._lock:
            if line in self.said:
                return False
            self.said.add(line)
        record.msg, record.args, record.exc_info, record.exc_text = line, (), None, None
        return True


def moto_server(port: int) -> Any:
    """moto's ThreadedMotoServer on 127.0.0.1, except that the socket is bound in the calling
    thread: its own start() binds in the server thread and waits forever when the port is
    taken; here that is an OSError ("Address already in use") for the caller. stop() also
    closes the listening socket, so the port is free once the service has stopped."""
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    class Server(ThreadedMotoServer):
        def start(self) -> None:
            # Bound here (werkzeug prints and sys.exit()s on a taken port; an OSError is wanted).
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind((self._ip_address, self._port))
                listener.listen(128)
                app = DomainDispatcherApplication(create_backend_app)
                self._server = make_server(
                    self._ip_address, self._port, app, True, request_handler=MotoRequestHandler, fd=listener.fileno()
                )
            finally:
                listener.close()  # the server holds its own duplicate of the socket
            self._thread = threading.Thread(target=self._server.serve_forever, name="local-moto", daemon=True)
            self._thread.start()

        def stop(self) -> None:
            super().stop()
            if self._server is not None:
                self._server.server_close()

    return Server(ip_address="127.0.0.1", port=port, verbose=False)


class EndpointSession:
    """A boto3 Session whose clients all go to the local endpoint (handlers.common.use_session)."""

    def __init__(self, session: Session, endpoint: str) -> None:
        self.session = session
        self.endpoint = endpoint

    def client(self, service: str, **kwargs: Any) -> Any:
        from botocore.config import Config

        config = Config(s3={"addressing_style": "path"})
        kwargs["config"] = kwargs["config"].merge(config) if kwargs.get("config") else config
        session: Any = self.session  # any service by name: the stubs type Session.client per literal name
        return session.client(service, endpoint_url=self.endpoint, **kwargs)


def detach_event_source_mappings(queue_names: list[str]) -> None:
    """moto's SQS backend invokes a mapped function itself on every SendMessage (through
    Docker, failing here, and counting a receive each time). The service polls instead, so
    moto's link from the queue to the mapping is removed; the mapping itself stays
    (ListEventSourceMappings shows it)."""
    try:
        from moto.sqs.models import sqs_backends

        queues = sqs_backends[ACCOUNT_ID][REGION].queues
        for name in queue_names:
            queues[name].lambda_event_source_mappings.clear()
    except (ImportError, KeyError, AttributeError) as exc:
        raise WiringError(f"cannot detach moto's own event source mapping ({type(exc).__name__}: {exc})") from exc


def record_stack_outputs(stack_name: str, outputs: dict[str, str], descriptions: dict[str, str]) -> None:
    """Make DescribeStacks report `outputs` for the stack (moto reports none for a stack created
    by a change set)."""
    try:
        from moto.cloudformation.models import cloudformation_backends
        from moto.cloudformation.parsing import Output

        backend = cloudformation_backends[ACCOUNT_ID][REGION]
        (stack,) = [s for s in backend.stacks.values() if s.name == stack_name]
        output_map = stack.output_map
        output_map._output_json_map = {
            k: {"Value": v, "Description": descriptions.get(k, "")} for k, v in outputs.items()
        }
        for key, value in outputs.items():
            output_map._parsed_outputs[key] = Output(key, value, descriptions.get(key, ""))
    except (ImportError, KeyError, AttributeError, ValueError) as exc:
        raise WiringError(f"cannot record the stack outputs in moto ({type(exc).__name__}: {exc})") from exc


def route_lambda_invokes(
    function_names: dict[str, str],
    invoke: Any,
    submit: Any,
) -> None:
    """Lambda's Invoke API for the stack's functions (`aws lambda invoke`, a redrive of invocation
    records): moto would run the code in Docker; here `Event` invocations go to `submit(logical,
    event)` (the service's asynchronous queue: retries, on-failure destination), `RequestResponse`
    ones run at once through `invoke(logical, event)`, and `DryRun` only checks the function
    exists. An error is reported as Lambda does: X-Amz-Function-Error Unhandled and the error
    payload. `function_names` maps physical names to logical IDs."""
    import json

    from market_cfn.local.lambda_events import error_payload

    try:
        from moto.awslambda.utils import get_backend

        backend = get_backend(ACCOUNT_ID, REGION)
        functions = {name: backend.get_function(name, None) for name in function_names}
    except Exception as exc:  # any moto difference: refuse to start
        raise WiringError(f"cannot route Lambda Invoke in this moto version ({type(exc).__name__}: {exc})") from exc

    for name, fn in functions.items():
        logical = function_names[name]

        def routed(body: Any, request_headers: Any, response_headers: Any, logical: str = logical) -> bytes:
            kind = request_headers.get("x-amz-invocation-type", "RequestResponse")
            event = json.loads(body) if body else {}
            if kind == "DryRun":
                return b""
            if kind == "Event":
                submit(logical, event)
                return b""
            try:
                result = invoke(logical, event)
            except Exception as exc:  # noqa: BLE001  # the function's error is the caller's answer
                response_headers["x-amz-function-error"] = "Unhandled"
                return json.dumps(error_payload(exc)).encode()
            return json.dumps(result).encode()

        setattr(fn, "invoke", routed)  # noqa: B010  # an instance attribute shadows moto's method
