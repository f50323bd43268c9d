"""The `slow` marker: the everyday run leaves out exactly the tests conftest.py names, CI runs them all."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import SLOW_TESTS

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def _collected(*args: str) -> set[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return {line.split("[", 1)[0] for line in proc.stdout.splitlines() if line.startswith("tests/")}


def test_every_slow_entry_names_a_test_that_exists():
    for entry in SLOW_TESTS:
        file, _, name = entry.partition("::")
        path = TESTS / file
        assert path.is_file(), f"{entry}: no such test module"
        if name:
            tree = ast.parse(path.read_text(encoding="utf-8"))
            functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
            assert name in functions, f"{entry}: no such test"


def test_the_everyday_run_leaves_out_the_slow_modules():
    """`pytest -m "not slow"` collects every other module, and none of the slow ones."""
    fast = _collected("-m", "not slow")
    files = {test.split("::", 1)[0].removeprefix("tests/") for test in fast}
    slow_modules = {entry for entry in SLOW_TESTS if "::" not in entry}
    assert not files & slow_modules
    every_module = {p.name for p in TESTS.glob("test_*.py")}
    assert files == every_module - slow_modules
    for entry in SLOW_TESTS - slow_modules:
        assert f"tests/{entry}" not in fast
