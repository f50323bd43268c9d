"""`python -m market_cfn local` as a user runs it: a subprocess on port 0, used over HTTP with boto3,
stopped with SIGTERM; and the command's one-line errors with their exit codes."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import boto3
import pytest

from market_cfn.cli import local as local_cli
from market_cfn.local import readback
from market_cfn.local.service import wait_for

REPO = Path(__file__).parents[1]
WAIT = 90.0  # a deadline, not an expected duration


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["PYTHONPATH"] = str(REPO)
    return env


class Lines:
    """The subprocess's stdout lines, read by a thread so that waiting has a deadline."""

    def __init__(self, stream) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, prefix: str, timeout: float = WAIT) -> str:
        while True:
            try:
                line = self._queue.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"no line starting with {prefix!r} within {timeout:g} s: {self.seen}") from None
            if line is None:
                raise AssertionError(f"output ended before {prefix!r}: {self.seen}")
            self.seen.append(line)
            if line.startswith(prefix):
                return line


def test_service_runs_until_sigterm_and_exits_0(tmp_path):
    # stderr to a file: an unread pipe fills up and blocks the service's threads on a write
    errors = (tmp_path / "stderr.txt").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "market_cfn", "local", "--port", "0", "--tick", "1", "--retry-delay", "0"],
        cwd=REPO,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
    )
    try:
        lines = Lines(proc.stdout)
        endpoint = lines.until("endpoint ").split(" ", 1)[1]
        assert endpoint.startswith("http://127.0.0.1:")
        lines.until("schedule: ")
        outputs = dict(line.split() for line in lines.seen if line.startswith("  "))
        assert outputs["apiGatewayUrl"].startswith("http://127.0.0.1:")

        # WHEN a user uploads with plain boto3 against the endpoint
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1")
        s3 = session.client("s3", endpoint_url=endpoint)
        ddb = session.client("dynamodb", endpoint_url=endpoint)
        s3.put_object(Bucket=outputs["s3BucketName"], Key="CLI/2024-06-03.csv", Body=b"timestamp,price\n1717421400,3\n")
        # THEN the point reaches the table
        wait_for(
            lambda: [i for i in readback.table_items(ddb, outputs["dynamodbTableName"]) if i["symbol"] == "CLI"],
            timeout=WAIT,
            what="the uploaded point",
        )
        # WHEN the stack is deleted THEN the service says so and dispatches nothing more
        session.client("cloudformation", endpoint_url=endpoint).delete_stack(StackName="market-data-dev")
        lines.until("stack market-data-dev was deleted")
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=WAIT)
        errors.seek(0)
        stderr = errors.read()
        errors.close()
    assert code == 0, stderr
    assert "stopping ..." in lines.seen or lines.until("stopping")
    # What the emulator lacks (moto implements no UpdateTerminationProtection) is one line, once:
    # no third-party traceback on the service's output.
    assert "Traceback" not in stderr, stderr
    assert stderr.count("does not implement this: The update_termination_protection action") == 1, stderr


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--tick", "0"], "--tick must be a positive number of seconds"),
        (["--port", "70000"], "--port must be between 0 and 65535"),
        (["--env", "Bad_Env"], "environment name 'Bad_Env' is invalid"),
        (["--redelivery-delay", "-1"], "--redelivery-delay must be between 0 and 43200"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(capsys, argv, message):
    code = local_cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert message in err and len(err.strip().splitlines()) <= 2  # argparse adds its usage line


def test_taken_port_exits_1_with_one_line(capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        code = local_cli.main(["--port", str(busy.getsockname()[1])])
    out, err = capsys.readouterr()
    assert code == 1
    assert err.startswith("python -m market_cfn local: ") and "in use" in err and len(err.strip().splitlines()) == 1
