"""Every shell command in README.md and docs/*.md is run by this test, by a named test, or by CI.

A fenced block tagged `sh` holds commands; transcripts and output use other tags (`console`, `text`,
none). The HTML comment on the line before a `sh` block says who runs it:

    <!-- docs: run -->                    this test runs the block with bash in a scratch copy of the
                                          checkout (the default when there is no comment)
    <!-- docs: run cwd=tests/data -->     the same, from that folder of the scratch copy
    <!-- docs: aws -->                    the same, against moto's server on 127.0.0.1, AWS_ENDPOINT_URL
                                          set, so every boto3 client the commands make goes there
    <!-- docs: server -->                 the block's first command starts a server on port 5055 in the
                                          background (`python -m market_cfn local --port 5055 ... &`,
                                          `moto_server -H 127.0.0.1 -p 5055 &`): this test starts it on a free
                                          port instead (every 5055 in the block becomes that port), waits
                                          until it is ready (`local` prints "schedule:"; any other server
                                          accepts connections), runs the other commands, then stops it
                                          with SIGTERM
    <!-- docs: ci -->                     .ci/run runs each command verbatim (checked here)
    <!-- docs: manual REASON -->          nobody runs it automatically, for the reason given (e.g. a
                                          benchmark that takes tens of minutes); the reason must be there
    <!-- docs: test tests/test_x.py::test_y [tests/test_z.py::test_w ...] -->   those tests run the
                                          commands: each command's words (program, subcommand and options)
                                          appear in the source of one of them (checked here)

`pip install ...` is never run here: the README's install commands are the ones .ci/run runs (checked).
A block that runs here must exit 0 and print no traceback; it gets two minutes.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*docs:\s*(?P<kind>run|aws|server|ci|test|manual)\b(?P<arg>[^>]*?)\s*-->")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    kind: str
    arg: str
    commands: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _commands(lines: list[str]) -> tuple[str, ...]:
    """Shell commands of a block: continuation lines joined, comments and blank lines dropped."""
    out: list[str] = []
    pending = ""
    for raw in lines:
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        out.append(stripped)
    return tuple(out)


def blocks() -> Iterator[Block]:
    for path in DOCS:
        text = path.read_text(encoding="utf-8").splitlines()
        i = 0
        while i < len(text):
            if text[i].strip() == "```sh":
                j = i + 1
                while j < len(text) and text[j].strip() != "```":
                    j += 1
                kind, arg = "run", ""
                before = i - 1
                while before >= 0 and not text[before].strip():
                    before -= 1
                match = MARKER.search(text[before]) if before >= 0 else None
                if match:
                    kind, arg = match.group("kind"), match.group("arg").strip()
                yield Block(path, i + 1, kind, arg, _commands(text[i + 1 : j]))
                i = j
            i += 1


ALL = list(blocks())


def _words(command: str) -> list[str]:
    """The subcommand (`python -m market_cfn NAME`) and the option names of a command; values dropped."""
    tokens = shlex.split(command.split(" #", 1)[0])
    words = [tokens[3]] if tokens[:3] == ["python", "-m", "market_cfn"] and len(tokens) > 3 else []
    words += [Path(t).name for t in tokens[:2] if t.endswith(".py")]  # a script: python bench/run.py
    return words + [t.split("=", 1)[0] for t in tokens if t.startswith("--")]


def _without_pip(command: str) -> str:
    parts = [p.strip() for p in command.split("&&")]
    return " && ".join(p for p in parts if not p.startswith("pip install"))


def test_there_are_commands_and_every_marker_is_known() -> None:
    assert ALL, "no sh blocks found: the README's Quickstart has two"
    for path in DOCS:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if "<!-- docs:" in line:
                assert MARKER.search(line), f"{path.name}:{number}: unknown docs marker {line.strip()!r}"


CI_INSTALL = re.compile(r"^python3 -m pip install (-q )?-c \.ci/constraints\.txt -e '\.\[test\]'$", re.M)


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "manual"], ids=lambda b: b.id)
def test_manual_blocks_say_why_and_are_few(block: Block) -> None:
    assert len(block.arg.split()) >= 3, f"{block.id}: a manual block must say why no test runs it"
    assert len([b for b in ALL if b.kind == "manual"]) <= 2, "more than two commands nobody runs"


def test_the_readme_install_commands_are_the_ones_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    readme = [c for b in ALL if b.path.name == "README.md" for c in b.commands]
    installs = [p.strip() for c in readme for p in c.split("&&") if p.strip().startswith("pip install")]
    assert installs == ["pip install -e .", "pip install -e '.[test]'"], installs
    assert CI_INSTALL.search(ci), ".ci/run must install the test extra (which includes the base install)"
    assert re.search(r"^pytest$", ci, re.M), ".ci/run must run the README's test command, pytest"


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "ci"], ids=lambda b: b.id)
def test_ci_blocks_are_run_by_ci(block: Block) -> None:
    """Each part of each command is a line of .ci/run; `pip install -e .[...]` is its install line."""
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    lines = {line.strip() for line in ci.splitlines()}
    for command in block.commands:
        for part in (p.strip() for p in command.split(" #", 1)[0].split("&&")):
            if part.startswith("pip install -e "):
                assert CI_INSTALL.search(ci), f"{block.id}: .ci/run does not install the project as {part!r} does"
            else:
                assert part in lines, f"{block.id}: .ci/run has no line {part!r}"


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "test"], ids=lambda b: b.id)
def test_test_blocks_are_run_by_the_named_test(block: Block) -> None:
    bodies = []
    for target in block.arg.split():
        file, _, name = target.partition("::")
        source = (ROOT / file).read_text(encoding="utf-8")
        functions = {n.name: n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef)}
        assert name in functions, f"{block.id}: {target} does not exist"
        bodies.append(ast.get_source_segment(source, functions[name]) or "")
    for command in block.commands:
        words = _words(command)
        assert any(all(w in body for w in words) for body in bodies), (
            f"{block.id}: no named test uses all of {words} ({command!r})"
        )


def _scratch(tmp_path: Path) -> Path:
    """A copy of the checkout's tracked files (the docs' commands may write into it)."""
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    dest = tmp_path / "checkout"
    for name in files.decode().split("\0"):
        if not name or not (ROOT / name).is_file():
            continue
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return dest


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(block: Block, service: subprocess.Popen[str], port: int, *, local: bool) -> None:
    """`local` is ready once it prints "schedule:" (its stack is deployed); another server once it listens."""
    assert service.stdout is not None
    if local:
        seen: list[str] = []
        for line in service.stdout:
            seen.append(line)
            if line.startswith("schedule:"):
                return
        pytest.fail(f"{block.id}: the service ended before it was ready:\n{''.join(seen)[-3000:]}")
    for _ in range(600):
        if service.poll() is not None:
            pytest.fail(f"{block.id}: the server exited {service.returncode}:\n{service.stdout.read()[-3000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    pytest.fail(f"{block.id}: nothing listens on port {port} after 60 s")


@pytest.mark.parametrize("block", [b for b in ALL if b.kind in ("run", "aws", "server")], ids=lambda b: b.id)
def test_run_blocks_succeed(block: Block, tmp_path: Path) -> None:
    if any(c.startswith("aws ") for c in block.commands) and shutil.which("aws") is None:
        pytest.skip("the AWS CLI is not installed here (it is no dependency; CI installs it in its own venv)")
    checkout = _scratch(tmp_path)
    cwd = checkout
    for option in block.arg.split():
        key, _, value = option.partition("=")
        assert key == "cwd", f"{block.id}: unknown option {option!r}"
        cwd = checkout / value
    env = {
        **os.environ,
        "PYTHONPATH": str(checkout),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
    }
    server = contextlib.ExitStack()
    if block.kind == "aws":
        from moto_local import moto_server

        env["AWS_ENDPOINT_URL"] = server.enter_context(moto_server())
    commands = [_without_pip(c) for c in block.commands if _without_pip(c)]
    service = None
    if block.kind == "server":
        port = _free_port()
        commands = [c.replace("5055", str(port)) for c in commands]
        first = commands.pop(0).split(" #", 1)[0].strip()
        assert first.endswith("&"), f"{block.id}: the first command must start the server in the background"
        service = subprocess.Popen(
            shlex.split(first[:-1]), cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        _wait_ready(block, service, port, local=first.startswith("python -m market_cfn local "))
    script = "set -euo pipefail\n" + "\n".join(commands)
    try:
        proc = subprocess.run(
            ["bash", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
    finally:
        server.close()
        if service is not None:
            service.send_signal(signal.SIGTERM)
            assert service.wait(timeout=60) == 0, f"{block.id}: the service did not stop cleanly on SIGTERM"
    assert proc.returncode == 0, f"{block.id} exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr, f"{block.id}:\n{proc.stderr[-2000:]}"
