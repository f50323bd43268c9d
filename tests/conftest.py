"""Shared fixtures: realistic events, an emulated pipeline on moto, fault injection, moto's server.

Everything runs in-process (moto's mock_aws, or moto's server on 127.0.0.1): no request leaves the machine.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

EVENTS_DIR = Path(__file__).parent / "events"
DATA_DIR = Path(__file__).parent / "data"

# The Pipeline fixture sets fake credentials itself; handler imports need nothing.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "MarketAnalytics")


# The everyday run, `pytest -m "not slow"` (CONTRIBUTING.md), leaves these out; CI runs plain `pytest`,
# everything. Each starts servers or subprocesses, or runs a whole pipeline end to end: together about
# two thirds of the suite's time. A module name marks every test in it; `module::test` marks one test.
SLOW_TESTS = frozenset(
    {
        "test_bench_smoke.py",  # the benchmark on small workloads
        "test_docs_commands.py",  # every documented command, in a scratch copy of the checkout
        "test_deploy_e2e.py",  # bin/deploy against moto's server
        "test_deploy_bootstrap_flow.py",  # the bootstrap stack against moto's server
        "test_ops_e2e.py",  # the day-2 commands against moto's server
        "test_ops_local.py",  # the day-2 commands against the `local` service
        "test_local_cli.py",  # `local` as a subprocess
        "test_local_service.py",  # the `local` service, deployed through the deploy path
        "test_simulate.py",  # whole `simulate` runs, some as subprocesses
        "test_deploy_bootstrap.py::test_checkov_passes_with_the_one_documented_skip",  # checkov itself
    }
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        name = getattr(item, "originalname", item.name)
        if item.path.name in SLOW_TESTS or f"{item.path.name}::{name}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


def load_event(name: str) -> dict[str, Any]:
    """A realistic Lambda event from tests/events/<name>.json."""
    return json.loads((EVENTS_DIR / f"{name}.json").read_text())


def queue_bodies(pipe: Any, url: str, *, hide_seconds: int | None = None) -> list[str]:
    """Every message body in the queue at `url`. With `hide_seconds` the messages are only
    hidden for that long (left in the queue for later assertions); without, a moto
    receive hides them for the queue's visibility timeout."""
    extra = {} if hide_seconds is None else {"VisibilityTimeout": hide_seconds}
    bodies: list[str] = []
    while True:
        got = pipe.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, **extra).get("Messages", [])
        if not got:
            return bodies
        bodies += [m["Body"] for m in got]


@pytest.fixture
def event() -> Callable[[str], dict[str, Any]]:
    return load_event


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the handlers' backoff sleeps instead of sleeping."""
    from handlers import common

    recorded: list[float] = []
    monkeypatch.setattr(common, "sleep", recorded.append)
    return recorded


@pytest.fixture
def pipeline(sleeps: list[float]):
    """A fresh emulated stack (moto) with the real handlers wired as the template says."""
    from market_cfn.simulate import Pipeline

    with Pipeline() as pipe:
        yield pipe


class Faults:
    """Wraps methods of the handlers' shared clients to inject AWS failures."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch
        self.calls: dict[str, int] = {}

    def wrap(self, service: str, method: str, fake: Callable[..., Any]) -> None:
        """Replace client(service).<method> by fake(original, call_number, **kwargs)."""
        from handlers import common

        client = common.client(service)
        original = getattr(client, method)
        key = f"{service}.{method}"
        self.calls[key] = 0

        def wrapper(**kwargs: Any) -> Any:
            self.calls[key] += 1
            return fake(original, self.calls[key], **kwargs)

        self.monkeypatch.setattr(client, method, wrapper)


@pytest.fixture
def faults(pipeline, monkeypatch: pytest.MonkeyPatch) -> Faults:
    return Faults(monkeypatch)


@pytest.fixture(scope="module")
def endpoint() -> Any:
    """moto's server on 127.0.0.1 (tests/moto_local.py), one per test module, empty at its start;
    tests that need isolation from each other reset it (moto_local.reset_moto)."""
    from moto_local import moto_server

    with moto_server() as url:
        yield url


def client_error(code: str, operation: str, message: str = "injected fault") -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}}, operation
    )


# --- Stubber-based deploy tests (tests/stubs_cfn.py holds their helpers) ------------------


@pytest.fixture
def fake_time() -> Any:
    from stubs_cfn import FakeTime

    return FakeTime()


@pytest.fixture
def waits(fake_time: Any) -> Any:
    from stubs_cfn import make_waits

    return make_waits(fake_time)


@pytest.fixture
def cfn() -> Any:
    """A CloudFormation client behind botocore's Stubber; every queued response must be used."""
    from botocore.stub import Stubber
    from stubs_cfn import make_client

    client = make_client()
    with Stubber(client) as stubber:
        client.stubber = stubber
        yield client
        stubber.assert_no_pending_responses()
