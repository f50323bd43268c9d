"""The Lambda code zip: the `handlers` package plus its bundled runtime dependencies.

The zip is reproducible: entries are sorted, every entry has the same timestamp
(1980-01-01, the earliest a zip can hold) and the same permissions, and entries are
stored uncompressed: deflate output depends on the zlib build, so a compressed zip made
on a laptop and one made in CI could differ and turn a no-op deploy into a code update.
Stored, two packages of the same tree have the same bytes and the same sha256 on any
machine (about 3.8 MB today, far below Lambda's 250 MB unzipped limit). The S3
object is named by that digest (`market-data/<sha256>.zip`), which is what lets a
redeploy of unchanged code skip the upload and leave the stack untouched.

What gets bundled is decided by what `handlers/` imports, read from its source (AST) at
packaging time:

* aws_lambda_powertools and typing_extensions, which Powertools requires and the Lambda
  runtime does not ship. Every bundled distribution is pinned with `==` in pyproject.toml and
  the installed one must match its pin, or packaging stops. jmespath, Powertools' other requirement, is
  not bundled: the runtime ships boto3/botocore, and botocore requires jmespath.
* aws_xray_sdk and wrapt when a handler imports the Powertools Tracer.

Only imports that can run count: those in the body of an `if TYPE_CHECKING:` block never do
(typing.TYPE_CHECKING is False at run time: Python docs, "typing.TYPE_CHECKING"), which is
how the handlers import the test-only mypy_boto3 stubs their clients are typed with. Every
other import counts, wherever it is; a guard the scan does not recognize counts as running.

Files come from the installed distributions' RECORDs (importlib.metadata `files()`),
never from a directory walk of site-packages. Compiled extension modules (*.so, *.pyd)
are left out: they were built for this machine's Python and CPU, not for the Lambda runtime's
Python on arm64. wrapt is the only bundled package that has one, and it falls back to its pure
Python implementation when `wrapt._wrappers` cannot be imported (wrapt/__wrapt__.py).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import io
import re
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HANDLERS_DIR = PROJECT_ROOT / "handlers"
KEY_PREFIX = "market-data/"
POWERTOOLS_DIST = "aws-lambda-powertools"

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644  # regular file, rw-r--r--

# Modules the Lambda Python runtime provides besides the standard library: the AWS
# SDK and its requirements (boto3 -> botocore -> jmespath, python-dateutil -> six,
# urllib3; boto3 -> s3transfer).
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six", "urllib3", "awslambdaric"}
)

# Bundled distributions: (distribution name, import names it must provide).
POWERTOOLS_BUNDLE = (("aws-lambda-powertools", "aws_lambda_powertools"), ("typing_extensions", "typing_extensions"))
TRACER_BUNDLE = (("aws-xray-sdk", "aws_xray_sdk"), ("wrapt", "wrapt"))

# Per-install files in a .dist-info directory that differ between machines.
_INSTALL_SPECIFIC = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})
_EXCLUDED_SUFFIXES = (".pyc", ".pyo", ".so", ".pyd", ".dylib", ".c", ".h")


class PackagingError(RuntimeError):
    """The code zip cannot be built as asked (missing or mismatched dependency, bad tree)."""


@dataclass(frozen=True)
class Package:
    data: bytes
    sha256: str
    entries: tuple[str, ...]
    bundled: tuple[str, ...]  # "name==version" of each bundled distribution

    @property
    def key(self) -> str:
        return f"{KEY_PREFIX}{self.sha256}.zip"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def bundle_pins(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> dict[str, str]:
    """Every `name==version` pin of pyproject.toml's [project] dependencies, by normalized name.

    Every distribution the zip bundles must be pinned exactly there, so the function zip
    (and its sha256, which names it in S3) changes only in a commit.
    """
    requirements: list[str] = []
    if pyproject.is_file():
        project = tomllib.loads(pyproject.read_text(encoding="utf-8")).get("project", {})
        requirements = list(project.get("dependencies", []))
    else:  # installed without the source tree: read the installed metadata instead
        try:
            requirements = [r for r in importlib.metadata.requires("market_cfn") or [] if "extra ==" not in r]
        except importlib.metadata.PackageNotFoundError:
            pass
    pins = {}
    for line in requirements:
        match = re.match(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*==\s*([0-9][^\s;,]*)", line)
        if match:
            pins[_normalize(match.group(1))] = match.group(3)
    return pins


def powertools_pin(pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> str:
    """The version of aws-lambda-powertools that pyproject.toml pins with `==`."""
    pin = bundle_pins(pyproject).get(_normalize(POWERTOOLS_DIST))
    if pin is None:
        raise PackagingError(f"no '{POWERTOOLS_DIST}==<version>' pin found in {pyproject}")
    return pin


def _bound_only_by_import(tree: ast.Module, name: str, module: str, imported: str | None) -> bool:
    """Whether `name` is bound in the module, and only ever by `import module` (imported None) or
    `from module import imported` (no other assignment, definition, import or star import binds it)."""
    found = False
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*":
                    return False  # could bind anything
                if (alias.asname or alias.name.split(".")[0]) != name:
                    continue
                if imported is None:
                    ok = isinstance(node, ast.Import) and alias.name == module and alias.asname is None
                else:
                    ok = isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == module
                    ok = ok and alias.name == imported
                if not ok:
                    return False
                found = True
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and node.id == name:
            return False
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return False
        elif isinstance(node, (ast.Global, ast.Nonlocal)) and name in node.names:
            return False
        elif isinstance(node, ast.ExceptHandler) and node.name == name:
            return False
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name == name:
            return False
        elif isinstance(node, ast.MatchMapping) and node.rest == name:
            return False
    return found


def _runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The module's import statements that can run: all of them but those in the body of an
    `if TYPE_CHECKING:` or `if typing.TYPE_CHECKING:` block (typing.TYPE_CHECKING is False at run
    time; only type checkers take that branch), and only when the module binds the name solely
    from typing. The `else:` (or `elif`) of such a block runs, so its imports count. Any other test,
    even one that is False at run time (`if not TYPE_CHECKING`, `if TYPE_CHECKING and x`, `if False`),
    is not classified: both branches count, so a needed module is never left out of the zip."""
    plain = _bound_only_by_import(tree, "TYPE_CHECKING", "typing", "TYPE_CHECKING")
    dotted = _bound_only_by_import(tree, "typing", "typing", None)

    def type_checking_only(test: ast.expr) -> bool:
        if isinstance(test, ast.Name):
            return plain and test.id == "TYPE_CHECKING"
        if isinstance(test, ast.Attribute) and isinstance(test.value, ast.Name):
            return dotted and test.value.id == "typing" and test.attr == "TYPE_CHECKING"
        return False

    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If) and type_checking_only(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def handler_imports(handlers_dir: Path) -> tuple[set[str], bool]:
    """Top-level modules the handler sources import at run time, and whether the Tracer is used.

    Imports under `if TYPE_CHECKING:` are left out (`_runtime_imports`): the mypy_boto3 stubs
    the handlers are typed with are test-only dependencies and never imported on Lambda."""
    modules: set[str] = set()
    uses_tracer = False
    for path in sorted(handlers_dir.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except SyntaxError as exc:
            raise PackagingError(f"{path}: cannot parse: {exc.msg} (line {exc.lineno})") from exc
        for node in _runtime_imports(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    modules.add(alias.name.split(".")[0])
                    uses_tracer |= alias.name.startswith("aws_lambda_powertools.tracing")
            elif node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
                if node.module.startswith("aws_lambda_powertools"):
                    uses_tracer |= node.module.startswith("aws_lambda_powertools.tracing") or any(
                        alias.name == "Tracer" for alias in node.names
                    )
    return modules, uses_tracer


def bundle_plan(handlers_dir: Path) -> list[tuple[str, str]]:
    """The (distribution, import name) pairs to bundle for these handlers."""
    modules, uses_tracer = handler_imports(handlers_dir)
    plan: list[tuple[str, str]] = []
    if "aws_lambda_powertools" in modules:
        plan.extend(POWERTOOLS_BUNDLE)
        if uses_tracer:
            plan.extend(TRACER_BUNDLE)
    bundled = {name for _, name in plan}
    unknown = sorted(
        m
        for m in modules
        if m not in sys.stdlib_module_names
        and m not in RUNTIME_PROVIDED
        and m not in bundled
        and m != handlers_dir.name
    )
    if unknown:
        raise PackagingError(
            f"{handlers_dir.name}/ imports {', '.join(unknown)}, which the Lambda Python runtime "
            "does not provide and the package step does not bundle"
        )
    return plan


def _handler_entries(handlers_dir: Path) -> dict[str, bytes]:
    if not (handlers_dir / "__init__.py").is_file():
        raise PackagingError(f"{handlers_dir} is not a Python package (no __init__.py)")
    entries = {}
    for path in handlers_dir.rglob("*"):
        rel = path.relative_to(handlers_dir.parent)
        if path.is_dir() or "__pycache__" in rel.parts or path.name.endswith(_EXCLUDED_SUFFIXES):
            continue
        entries[rel.as_posix()] = path.read_bytes()
    return entries


def _distribution_entries(dist_name: str, import_name: str) -> tuple[dict[str, bytes], str]:
    try:
        dist = importlib.metadata.distribution(dist_name)
    except importlib.metadata.PackageNotFoundError as exc:
        raise PackagingError(f"{dist_name} is not installed; it is needed in the function zip") from exc
    entries: dict[str, bytes] = {}
    for file in dist.files or ():
        parts = file.parts
        if not parts or parts[0] == ".." or "__pycache__" in parts or file.name.endswith(_EXCLUDED_SUFFIXES):
            continue
        top = parts[0]
        if top.endswith(".dist-info"):
            if file.name in _INSTALL_SPECIFIC:
                continue
        elif top not in (import_name, f"{import_name}.py"):
            continue
        entries[file.as_posix()] = Path(file.locate()).read_bytes()
    if not any(k.startswith((f"{import_name}/", f"{import_name}.py")) for k in entries):
        raise PackagingError(f"the installed {dist_name} has no files for module {import_name!r}")
    return entries, f"{re.sub(r'[-_.]+', '-', dist.metadata['Name']).lower()}=={dist.version}"


def zip_bytes(entries: dict[str, bytes]) -> bytes:
    """A zip of `entries` whose bytes depend only on the names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # Unix, so external_attr carries the mode below
            info.external_attr = FILE_MODE << 16
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def build_package(handlers_dir: Path = HANDLERS_DIR, *, pyproject: Path = PROJECT_ROOT / "pyproject.toml") -> Package:
    """Zip the handlers and their bundled dependencies (see the module docstring)."""
    handlers_dir = Path(handlers_dir)
    entries = _handler_entries(handlers_dir)
    bundled = []
    plan = bundle_plan(handlers_dir)
    if plan:
        pins = bundle_pins(pyproject)
        for dist_name, _ in plan:
            pin = pins.get(_normalize(dist_name))
            if pin is None:
                raise PackagingError(
                    f"{dist_name} is bundled into the function zip but pyproject.toml does not pin it with '=='; "
                    "pin it so the zip changes only in a commit"
                )
            try:
                installed = importlib.metadata.version(dist_name)
            except importlib.metadata.PackageNotFoundError as exc:
                raise PackagingError(f"{dist_name} is not installed; it is needed in the function zip") from exc
            if installed != pin:
                raise PackagingError(
                    f"{dist_name} {installed} is installed but pyproject.toml pins {pin}; "
                    f"install the pinned version (pip install '{dist_name}=={pin}') before deploying"
                )
    for dist_name, import_name in plan:
        dist_entries, label = _distribution_entries(dist_name, import_name)
        clash = entries.keys() & dist_entries.keys()
        if clash:
            raise PackagingError(f"{dist_name} would overwrite {sorted(clash)[0]} in the zip")
        entries.update(dist_entries)
        bundled.append(label)
    data = zip_bytes(entries)
    return Package(
        data=data, sha256=hashlib.sha256(data).hexdigest(), entries=tuple(sorted(entries)), bundled=tuple(bundled)
    )
