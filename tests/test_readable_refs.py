"""No comment, docstring or page cites our issue tracker: a reader of the code cannot see it, so each
statement says its reason itself (a public upstream issue, "GitHub issue #7382", is a reference anyone
can open and is allowed)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLACES = ["market_cfn", "handlers", "bench", "bin", "tests", "docs", ".ci", ".github"]
TOP = ["README.md", "CONTRIBUTING.md", "CHANGELOG.md", "pyproject.toml"]
SUFFIXES = {".py", ".md", ".toml", ".yml", ".yaml", ".sh", ""}

# "issue 16", "issues 16 and 17", "the grid", "issue 16 item 2"; not "issue #7382" (upstream).
# Across a line break too ("(issue\n10)"), and through a comment's leading "#" on the next line.
TRACKER = re.compile(r"\bissues?(?:\s*#?\s+|\s+)\d+\b|\bthe\s+issue(?:'s)?\b|\bissue\s+text\b", re.IGNORECASE)


def _files() -> list[Path]:
    files = [ROOT / name for name in TOP]
    for place in PLACES:
        for path in sorted((ROOT / place).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                files.append(path)
    return files


def citations(text: str) -> list[int]:
    """Line numbers (1-based) where a citation of the tracker starts."""
    return sorted({text.count("\n", 0, m.start()) + 1 for m in TRACKER.finditer(text)})


def test_no_file_cites_the_tracker():
    this = Path(__file__).resolve()
    found = []
    for path in _files():
        if path == this:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{path.relative_to(ROOT)}:{n}" for n in citations(text)]
    assert not found, "cites the issue tracker (say the reason itself):\n" + "\n".join(found)


def test_the_pattern_catches_what_it_is_for():
    assert citations("# issue 16 item 2: v1, then v2") == [1]
    assert citations('"""The cold tier (issue 18 item 3): ..."""') == [1]
    assert citations("# The issue's projection grid") == [1]
    assert citations("fixed in issues 16 and 17") == [1]
    assert citations("see powertools GitHub issue #7382 (open)") == []
    assert citations("an issue with the queue") == []
    assert citations("one line\nreplacing a newer one (issue\n10). Without") == [2]
    assert citations("    # the conditional write (issue\n    # 10) keeps") == [1]
