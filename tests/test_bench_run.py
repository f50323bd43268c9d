"""bench/run.py's own bookkeeping: which code a report says it measured."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import _git_commit  # noqa: E402


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def test_the_report_names_the_commit_and_only_code_changes_mark_it(tmp_path):
    # GIVEN a checkout with one committed code file
    _git(tmp_path, "init", "-q")
    (tmp_path / "handlers").mkdir()
    (tmp_path / "handlers" / "a.py").write_text("x = 1\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    head = _git(tmp_path, "rev-parse", "--short", "HEAD").strip()
    # WHEN the documented `python bench/run.py > report.txt` has created report.txt
    (tmp_path / "report.txt").write_text("")
    # THEN the run is the commit itself
    assert _git_commit(tmp_path) == head
    # an untracked module where code lives changes what runs
    (tmp_path / "handlers" / "new.py").write_text("")
    assert _git_commit(tmp_path) == head + "+changes"
    (tmp_path / "handlers" / "new.py").unlink()
    # and so does any edit to a tracked file
    (tmp_path / "handlers" / "a.py").write_text("x = 2\n")
    assert _git_commit(tmp_path) == head + "+changes"


def test_outside_a_checkout_it_says_unknown(tmp_path):
    assert _git_commit(tmp_path / "nowhere") == "unknown"
