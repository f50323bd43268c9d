"""Docs and comments state only the template values the template has.

Each claim below is a phrase the docs (README.md, CONTRIBUTING.md, docs/*.md) and the source
(docstrings and comments under handlers/ and market_cfn/) use to state a value - receives before a
dead-letter queue, retention days, memory, runtime, architecture, timeouts, versions - and where the
true value lives: the rendered templates (both profiles, and the bootstrap stack), the package metadata
or the pinned constraints. Every such statement must name a true value, and every claim must match at
least one statement (a phrase that no longer matches anything checks nothing). A doc may keep an older
tool version only as a record, written "recorded with <tool> <version>".
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from handlers.core.rules import max_points
from market_cfn.deploy import packaging
from market_cfn.deploy.bootstrap import build_bootstrap_template
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_dict

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [
    ROOT / "README.md",
    ROOT / "CONTRIBUTING.md",
    *sorted((ROOT / "docs").glob("*.md")),
    *sorted((ROOT / "handlers").rglob("*.py")),
    *sorted((ROOT / "market_cfn").rglob("*.py")),
]
FUNCTIONS = ("DataIngestion", "DataProcessor", "DataAggregator")


class Truth:
    """The values the code has, read once."""

    def __init__(self) -> None:
        self.templates = [render_dict(StackConfig()), render_dict(StackConfig(profile="regulated"))]
        self.bootstrap = build_bootstrap_template().to_dict()

    def resources(self, kind: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            (name, r.get("Properties", {}))
            for t in self.templates
            for name, r in t["Resources"].items()
            if r["Type"] == kind
        ]

    def values(self, kind: str, prop: str) -> set[Any]:
        found = [p[prop] for _, p in self.resources(kind) if prop in p]
        return {v for value in found for v in (value if isinstance(value, list) else [value])}

    def memory_default(self, function: str) -> int:
        (default,) = {int(t["Parameters"][f"{function}MemorySize"]["Default"]) for t in self.templates}
        return default

    def python_floor(self) -> str:
        spec = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
        match = re.fullmatch(r">=\s*(3\.\d+)", spec.strip())
        assert match, f"unexpected python requirement {spec!r}"
        return match.group(1)

    def pins(self) -> dict[str, str]:
        pins: dict[str, str] = {}
        for name in ("constraints.txt", "checkov-constraints.txt", "awscli-constraints.txt"):
            for line in (ROOT / ".ci" / name).read_text(encoding="utf-8").splitlines():
                dist, sep, version = line.partition("==")
                if sep and not dist.startswith("#"):
                    pins.setdefault(dist.strip().lower(), version.strip())
        pins["powertools"] = packaging.powertools_pin()
        return pins


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth()


def _number(text: str) -> int:
    return int(text.replace(",", ""))


def _groups(match: re.Match[str]) -> list[str]:
    return [g for g in match.groups() if g is not None]


@dataclass(frozen=True)
class Claim:
    name: str
    pattern: str
    # (truth, the match's groups) -> the error, or None when the statement is true
    check: Callable[[Truth, list[str]], str | None]


def _one_of(values: Callable[[Truth], set[Any]], convert: Callable[[str], Any] = _number) -> Any:
    def check(truth: Truth, groups: list[str]) -> str | None:
        allowed = values(truth)
        wrong = [g for g in groups if convert(g) not in allowed]
        return f"{wrong} not in the code's {sorted(allowed, key=str)}" if wrong else None

    return check


def _queue_days(truth: Truth, groups: list[str]) -> str | None:
    queue, days = groups
    periods = {p.get("MessageRetentionPeriod") for name, p in truth.resources("AWS::SQS::Queue") if name == queue}
    return None if periods == {_number(days) * 86400} else f"{queue} keeps messages {periods} s"


def _memory_triple(truth: Truth, groups: list[str]) -> str | None:
    defaults = [truth.memory_default(f) for f in FUNCTIONS]
    return None if [_number(g) for g in groups] == defaults else f"the defaults are {defaults}"


def _memory_of(truth: Truth, groups: list[str]) -> str | None:
    function, mb = groups
    default = truth.memory_default(function)
    return None if _number(mb) == default else f"{function} defaults to {default} MB"


def _point_cap(truth: Truth, groups: list[str]) -> str | None:
    """`N points at [the default] M MB`: the duplicate check's cap at M MB (and M is DataIngestion's default)."""
    points, mb = _number(groups[0]), _number(groups[-1])
    if points != max_points(mb):
        return f"the cap at {mb} MB is {max_points(mb)} points"
    default = truth.memory_default("DataIngestion")
    return f"DataIngestion defaults to {default} MB" if len(groups) == 3 and mb != default else None


def _runtime(truth: Truth, groups: list[str]) -> str | None:
    runtimes = truth.values("AWS::Lambda::Function", "Runtime")
    (stated,) = groups
    stated = stated if stated.startswith("python") else f"python{stated}"
    return None if runtimes == {stated} else f"the functions run {sorted(runtimes)}"


def _bootstrap_lifecycle(truth: Truth, groups: list[str]) -> str | None:
    (rule,) = truth.bootstrap["Resources"]["ArtifactsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    actual = [rule.get("ExpirationInDays"), rule["NoncurrentVersionExpiration"]["NoncurrentDays"]]
    current, noncurrent = groups
    stated = [None if current.startswith("never") else _number(current.split()[-2]), _number(noncurrent)]
    return None if stated == actual else f"the bootstrap bucket's rule says {actual}"


def _version(truth: Truth, groups: list[str]) -> str | None:
    tool, stated = groups
    pinned = truth.pins().get(tool.lower())
    if pinned is None:
        return f"{tool} is not pinned anywhere"
    same = pinned.split(".")[: len(stated.split("."))] == stated.split(".")
    return None if same else f"{tool} is pinned at {pinned}"


def _python_floor(truth: Truth, groups: list[str]) -> str | None:
    floor = truth.python_floor()
    return None if groups == [floor] else f"the package requires Python >= {floor}"


CLAIMS = [
    Claim(
        "receives before a dead-letter queue",
        r"after (\d+) receives|up to (\d+) receives|failed (\d+) receives|maxReceiveCount\W{1,3}(\d+)|DLQ after (\d+)\b",
        _one_of(
            lambda t: {
                p["RedrivePolicy"]["maxReceiveCount"] for _, p in t.resources("AWS::SQS::Queue") if "RedrivePolicy" in p
            }
        ),
    ),
    Claim(
        "log retention days",
        r"log groups?\b[^.;]{0,50}?\b(\d+) days|log group each \(\d+ days; regulated (\d+)\)",
        _one_of(lambda t: t.values("AWS::Logs::LogGroup", "RetentionInDays")),
    ),
    Claim(
        "archive retention days",
        r"archive[sd]?\b[^.]{0,50}?\b(\d+) (?:days|d)\b|for (\d+) days, replayable",
        _one_of(lambda t: t.values("AWS::Events::Archive", "RetentionDays")),
    ),
    Claim("a queue's retention days", r"\b(\w+(?:Queue|DLQ)) \((\d+) days\)", _queue_days),
    Claim(
        "a memory default",
        r"(\d[\d,]*) MB by default",
        _one_of(lambda t: {t.memory_default(f) for f in FUNCTIONS}),
    ),
    Claim("the three memory defaults", r"defaults? [^.]{0,40}?(\d[\d,]*) / (\d[\d,]*) / (\d[\d,]*) MB", _memory_triple),
    Claim(
        "a function's memory in a table",
        r"\| (Data(?:Ingestion|Processor|Aggregator))(?:-dev)? \| (\d[\d,]*)(?: MB)? \|",
        _memory_of,
    ),
    Claim("the point cap", r"(\d[\d,]*) points at (the default )?(\d[\d,]*) MB", _point_cap),
    Claim("the runtime", r"`(python3\.\d+)`|\b(python3\.\d+) runtime|python ?(3\.\d+) on (?:arm64|x86_64)", _runtime),
    Claim(
        "the architecture",
        r"(?<!than )\b(arm64|x86_64|aarch64)\b(?! GB)",
        _one_of(lambda t: t.values("AWS::Lambda::Function", "Architectures"), str),
    ),
    Claim(
        "the function timeout",
        r"(\d[\d,]*) s timeout|function's timeout \((\d+) s\)|a timeout \((\d+) s\)|, (\d+) s, X-Ray",
        _one_of(lambda t: t.values("AWS::Lambda::Function", "Timeout")),
    ),
    Claim(
        "a queue's visibility timeout",
        r"[Vv]isibility timeout (\d[\d,]*) s|VisibilityTimeout[^.]{0,20}?\b(\d[\d,]*) s|message returns after (\d+) s",
        _one_of(lambda t: t.values("AWS::SQS::Queue", "VisibilityTimeout")),
    ),
    Claim(
        "the bootstrap bucket's lifecycle",
        r"current artifacts (never expire|expire after \d+ days)[^;]*?noncurrent versions after (\d+) days",
        _bootstrap_lifecycle,
    ),
    Claim(
        "a tool's version",
        r"(?<!recorded with )\b(Powertools|cfn-lint|checkov|moto|troposphere|awacs|boto3|awscli|ruff|mypy|pytest)"
        r"(?: for AWS Lambda \(Python\))? \**(\d+(?:\.\d+)*)\**(?![\d.]| s\b)",
        _version,
    ),
    Claim("the oldest Python", r"Python (3\.\d+)\+|Python (3\.\d+) or newer", _python_floor),
]


def _statements(claim: Claim) -> list[tuple[str, list[str]]]:
    found = []
    for path in SOURCES:
        text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))  # a statement may wrap lines
        for match in re.finditer(claim.pattern, text, re.IGNORECASE):
            where = f"{path.relative_to(ROOT)}: ...{text[max(0, match.start() - 30) : match.end() + 10]}..."
            found.append((where, _groups(match)))
    return found


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.name)
def test_every_stated_value_is_the_codes(claim: Claim, truth: Truth) -> None:
    statements = _statements(claim)
    assert statements, f"{claim.name}: the pattern matches nothing any more"
    wrong = [f"{where} ({error})" for where, groups in statements if (error := claim.check(truth, groups))]
    assert not wrong, "\n".join(wrong)


def test_a_wrong_value_is_caught(truth: Truth) -> None:
    """The claims catch the stale statements they were written for."""
    samples = {
        "receives before a dead-letter queue": "After 3 receives the redrive policy moves it to ProcessingDLQ.",
        "a memory default": "3,008 MB by default (a parameter each)",
        "the point cap": "1,048,576 points at the default 3,008 MB",
        "the runtime": "boto3 and botocore come with the python3.12 runtime.",
        "a tool's version": "Powertools for AWS Lambda (Python) **3.0.0**, pinned",
    }
    for claim in CLAIMS:
        if claim.name in samples:
            (match,) = re.finditer(claim.pattern, samples[claim.name], re.IGNORECASE)
            assert claim.check(truth, _groups(match)), claim.name
    (record,) = [c for c in CLAIMS if c.name == "a tool's version"]
    assert not re.search(record.pattern, "a transcript recorded with moto 5.0.1", re.IGNORECASE)


REFERRERS = [
    *SOURCES,
    *sorted((ROOT / "bench").glob("*.py")),
    *sorted((ROOT / ".github").rglob("*.yml")),
    ROOT / "pyproject.toml",
    ROOT / ".ci" / "run",
]
SECTION = re.compile(r'(README(?:\.md)?|CONTRIBUTING\.md|docs/[\w-]+\.md),? "([^"]{2,80})"')
NAMED = re.compile(r"^(?:#+ +(.+)|(?:- )?\*\*(.+?)\*\*)", re.MULTILINE)
# Named before it is written: bench/ownership.py's cold tier, whose docs section lands with that work.
PENDING_SECTIONS = {("docs/performance.md", "History beyond the table")}
TEST_FILE = re.compile(r"\btests/[\w/]+\.py\b")


def test_every_named_section_and_test_file_exists() -> None:
    """`docs/x.md "Section"` names a heading or a bold paragraph lead of that file (its start is enough),
    `tests/test_x.py` a file."""
    missing = []
    for path in REFERRERS:
        text = re.sub(r"\s+", " ", path.read_text(encoding="utf-8"))
        for match in SECTION.finditer(text):
            doc, section = match.groups()
            target = ROOT / (doc if doc.endswith(".md") else f"{doc}.md")
            names = [m.group(1) or m.group(2) for m in NAMED.finditer(target.read_text(encoding="utf-8"))]
            if (doc, section) in PENDING_SECTIONS:
                continue
            if not any(name.replace("`", "").startswith(section.replace("`", "")) for name in names):
                missing.append(f"{path.relative_to(ROOT)}: {doc} has no section {section!r}")
        missing += [
            f"{path.relative_to(ROOT)}: no {m.group(0)}"
            for m in TEST_FILE.finditer(text)
            if not (ROOT / m.group(0)).is_file()
        ]
    assert not missing, "\n".join(missing)
