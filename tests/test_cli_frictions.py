"""Small command-line frictions: --version, `render --out -`, policy_export's errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from market_cfn import __version__
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_json

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # this checkout, from any working directory
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120)


def test_version_is_the_package_version() -> None:
    proc = run("-m", "market_cfn", "--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"market_cfn {__version__}"
    render = run("-m", "market_cfn", "render", "--version")
    assert render.returncode == 0 and render.stdout.strip().endswith(__version__)


def test_render_out_dash_writes_the_template_to_stdout_and_no_file(tmp_path: Path) -> None:
    proc = run("-m", "market_cfn", "render", "--out", "-", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == render_json(StackConfig())
    assert not (tmp_path / "-").exists()
    assert list(tmp_path.iterdir()) == []


def test_render_out_empty_is_a_one_line_usage_error(tmp_path: Path) -> None:
    proc = run("-m", "market_cfn", "render", "--out", "", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("python -m market_cfn render: ")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read"),
        ("{not json", "is not a JSON template"),
        (b"\xff\xfe\x00", "is not a JSON template"),
        (json.dumps(["a list"]), "no Resources object"),
    ],
)
def test_policy_export_bad_input_is_one_line_exit_2(tmp_path: Path, content: str | bytes | None, message: str) -> None:
    source = tmp_path / "template.json"
    if isinstance(content, bytes):
        source.write_bytes(content)
    elif content is not None:
        source.write_text(content)
    proc = run("-m", "market_cfn.stack.policy_export", str(source), str(tmp_path / "out"))
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and message in proc.stderr and "Traceback" not in proc.stderr
