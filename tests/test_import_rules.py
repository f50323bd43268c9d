"""The import rules CONTRIBUTING.md states, read from the source (ast), not from what happens to load.

- handlers/core and the deploy review logic import no AWS SDK (boto3, botocore), directly or
  through another module of ours: they decide from plain data and are tested without AWS.
- handlers/ imports nothing from market_cfn/ (it ships alone in the function zip).
- Only the emulation (local/, and the simulate, invoke and local commands) imports moto or jsonschema: the base
  install (`pip install market_cfn`) has neither, the [local] extra brings them.
- Layers: cli -> ops / deploy / local -> stack -> intrinsics, with base/ (errors, waits, console, AWS
  helpers) under all of them. base/ imports nothing of ours; deploy/review/ imports no deploy step
  (the steps call the review, never the reverse); stack/ imports nothing from cli/, ops/,
  deploy/ or local/; deploy/ nothing from ops/ or local/; intrinsics.py nothing of ours; only the
  dispatcher imports cli/ (no module imports its caller).
- No import cycles, between modules or between packages.

Every import counts, also one inside a function: a lazy import hides a dependency, it does not
remove it. A package's own __init__ (which Python runs first) is not counted as a dependency.
A known debt (a violation tolerated for a while) is listed in KNOWN_DEBTS with why, must still
exist (remove it once paid), and any other violation fails.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AWS_SDK = ("boto3", "botocore")
EMULATION_ONLY = ("moto", "jsonschema")
EMULATION = (
    "market_cfn.local",
    "market_cfn.simulate",
    "market_cfn.cli.simulate",
    "market_cfn.cli.invoke",
    "market_cfn.cli.local",
)

# The pure review logic: the market_cfn/deploy/review/ package, and the rollback-trigger plan.
REVIEW_PACKAGE = "market_cfn.deploy.review"
PURE_DEPLOY_MODULES = ("market_cfn.deploy.triggers",)

# Known debts. Each is (the rule, the offending edge or cycle), with why it is there; none today.
KNOWN_DEBTS: set[tuple[str, str]] = set()


def _module_files() -> dict[str, Path]:
    files = {}
    for path in sorted([*(ROOT / "market_cfn").rglob("*.py"), *(ROOT / "handlers").rglob("*.py")]):
        parts = path.relative_to(ROOT).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


MODULES = _module_files()


def _ours(name: str) -> str | None:
    """The module of ours that `import name` loads (the longest existing prefix), if any."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


@cache
def imports(module: str) -> frozenset[str]:
    """Every name `module` imports, absolute, including `from package import submodule`."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in MODULES)
    return frozenset(names)


@cache
def depends_on(module: str) -> frozenset[str]:
    """The modules of ours `module` imports."""
    return frozenset(t for name in imports(module) if (t := _ours(name)) and t != module)


def reaches(module: str) -> set[str]:
    seen: set[str] = set()
    todo = [module]
    while todo:
        for target in depends_on(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def imports_sdk(module: str, sdk: tuple[str, ...] = AWS_SDK) -> bool:
    return any(name.split(".")[0] in sdk for name in imports(module))


def package_of(module: str) -> str:
    """market_cfn.<room> for a subpackage's modules, the module itself for top-level ones."""
    parts = module.split(".")
    if parts[0] == "handlers":
        return "handlers.core" if parts[1:2] == ["core"] else "handlers"
    return ".".join(parts[:2]) if len(parts) > 2 or MODULES[module].name == "__init__.py" else module


def cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components with more than one member (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def review_logic_modules() -> list[str]:
    found = [m for m in MODULES if m == REVIEW_PACKAGE or m.startswith(f"{REVIEW_PACKAGE}.")]
    assert len(found) > 10, f"the review package {REVIEW_PACKAGE} was not found (moved?)"
    missing = [m for m in PURE_DEPLOY_MODULES if m not in MODULES]
    assert not missing, f"pure deploy modules not found (renamed?): {missing}"
    return sorted([*found, *PURE_DEPLOY_MODULES])


def _edge_violations(module: str, target: str) -> set[tuple[str, str]]:
    """The layer rules, for one import of one module of ours."""
    source, dest, edge = package_of(module), package_of(target), f"{module} -> {target}"
    found = set()
    if source == "market_cfn.stack" and dest in (
        "market_cfn.cli",
        "market_cfn.ops",
        "market_cfn.deploy",
        "market_cfn.local",
    ):
        found.add(("stack imports a caller", edge))
    if source == "market_cfn.deploy" and dest in ("market_cfn.ops", "market_cfn.local"):
        found.add(("deploy imports ops or local", edge))
    if module.startswith("market_cfn.base") and not target.startswith("market_cfn.base"):
        found.add(("base imports ours", edge))
    in_review = module.startswith(f"{REVIEW_PACKAGE}.") or module == REVIEW_PACKAGE
    if in_review and target.startswith("market_cfn.deploy.") and not target.startswith(f"{REVIEW_PACKAGE}."):
        found.add(("the review logic imports a deploy step", edge))
    if module == "market_cfn.intrinsics":
        found.add(("intrinsics imports ours", edge))
    if dest == "market_cfn.cli" and source != "market_cfn.cli" and module != "market_cfn.__main__":
        found.add(("only the dispatcher imports cli", edge))
    return found


def _module_violations(module: str) -> set[tuple[str, str]]:
    """The rules on what one module reaches, directly or through others of ours."""
    closure = {module, *reaches(module)}
    found = set()
    if module.startswith("handlers.core") and any(map(imports_sdk, closure)):
        found.add(("handlers.core reaches the AWS SDK", module))
    if module.startswith("handlers") and any(t.startswith("market_cfn") for t in closure):
        found.add(("handlers import market_cfn", module))
    in_emulation = any(module == e or module.startswith(f"{e}.") for e in EMULATION)
    if not in_emulation and any(imports_sdk(m, EMULATION_ONLY) for m in closure):
        found.add(("the base install imports the emulation", module))
    for target in depends_on(module):
        found |= _edge_violations(module, target)
    return found


def violations() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for module in MODULES:
        found |= _module_violations(module)
    for module in review_logic_modules():
        if any(map(imports_sdk, {module, *reaches(module)})):
            found.add(("review logic reaches the AWS SDK", module))
    module_graph = {m: set(depends_on(m)) for m in MODULES}
    for component in cycles(module_graph):
        found.add(("module cycle", " <-> ".join(sorted(component))))
    package_graph: dict[str, set[str]] = {}
    for module, targets in module_graph.items():
        package_graph.setdefault(package_of(module), set()).update(
            package_of(t) for t in targets if package_of(t) != package_of(module)
        )
    for component in cycles(package_graph):
        found.add(("package cycle", " <-> ".join(sorted(component))))
    return found


def test_no_new_violation_of_the_import_rules():
    new = violations() - KNOWN_DEBTS
    assert not new, "import rules broken:\n" + "\n".join(f"{rule}: {what}" for rule, what in sorted(new))


def test_every_known_debt_still_exists():
    paid = KNOWN_DEBTS - violations()
    assert not paid, "paid debts, remove them from KNOWN_DEBTS:\n" + "\n".join(map(str, sorted(paid)))


def test_the_rules_see_what_they_claim_to():
    """The checks would fail: the SDK, a reach, a layer edge and a cycle are found where they are."""
    assert imports_sdk("market_cfn.deploy.changeset")
    assert imports_sdk("market_cfn.local.motoside", EMULATION_ONLY)
    assert "market_cfn.deploy.changeset" in reaches("market_cfn.deploy.flow")
    assert "market_cfn.deploy.review.merge" in review_logic_modules()
    assert _edge_violations("market_cfn.deploy.review.merge", "market_cfn.deploy.changeset")
    assert _edge_violations("market_cfn.base.console", "market_cfn.deploy.flow")
    assert not _edge_violations("market_cfn.deploy.flow", "market_cfn.deploy.review.merge")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [{"a", "b", "c"}]
    assert "handlers.contract" in depends_on("market_cfn.stack.functions")
