"""`pip install market_cfn` renders, deploys and operates without the emulation; `simulate`,
`invoke` and `local` need the [local] extra (moto) and say so in one line when it is missing."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
EMULATION = ("moto", "jsonschema")


def _without_emulation(*argv: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """`python -m market_cfn ARGV` in a process where moto and jsonschema cannot be imported."""
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in EMULATION)
    code = f"import sys; {blocked}; from market_cfn.__main__ import main; sys.exit(main({list(argv)!r}))"
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)


def _names(requirements: list[str]) -> set[str]:
    return {
        r.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip().lower() for r in requirements
    }


def test_the_base_install_has_no_emulation_and_the_extras_bring_it():
    extras = PROJECT["optional-dependencies"]
    assert not _names(PROJECT["dependencies"]) & set(EMULATION)
    assert set(EMULATION) <= _names(extras["local"])
    assert "market_cfn[local]" in extras["test"]  # the README's test command installs the emulation


def test_render_runs_without_the_emulation(tmp_path):
    out = tmp_path / "template.json"
    proc = _without_emulation("render", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text(encoding="utf-8") == (ROOT / "build" / "template.json").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("argv", "cwd"),
    [
        (("simulate", "AAPL/2024-06-03.csv"), ROOT / "tests" / "data"),
        (("invoke", "DataProcessor", "--event", "tests/events/sqs_processing_batch.json"), ROOT),
        (("local", "--port", "0"), ROOT),
    ],
    ids=["simulate", "invoke", "local"],
)
def test_the_emulation_commands_name_the_missing_extra_in_one_line(argv, cwd):
    proc = _without_emulation(*argv, cwd=cwd)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    (line,) = proc.stderr.splitlines()
    assert line.startswith(f"python -m market_cfn {argv[0]}: the emulation is not installed")
    assert line.endswith("pip install 'market_cfn[local]'")
