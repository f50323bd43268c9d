"""The Lambda code zip is reproducible and bundles exactly what the handlers need."""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from io import BytesIO
from pathlib import Path

import pytest

from market_cfn.deploy import packaging
from market_cfn.deploy.packaging import PackagingError, build_package

PYPROJECT = packaging.PROJECT_ROOT / "pyproject.toml"


def make_handlers(root: Path, *, imports: str = "", name: str = "handlers") -> Path:
    pkg = root / name
    (pkg / "core").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""handlers"""\n')
    (pkg / "core" / "__init__.py").write_text("")
    (pkg / "core" / "points.py").write_text("import json\nimport decimal\n\ndef parse(x):\n    return json.loads(x)\n")
    (pkg / "ingest.py").write_text(
        f"import boto3\n{imports}\nfrom handlers.core import points\n\ndef handler(e, c):\n    return 1\n"
    )
    cache = pkg / "__pycache__"
    cache.mkdir()
    (cache / "ingest.cpython-311.pyc").write_bytes(b"\x00compiled")
    (pkg / "stale.pyc").write_bytes(b"\x00compiled")
    return pkg


def entries(data: bytes) -> list[zipfile.ZipInfo]:
    return zipfile.ZipFile(BytesIO(data)).infolist()


def test_two_packages_of_the_same_tree_have_the_same_sha256(tmp_path):
    first = make_handlers(tmp_path / "a", imports="from aws_lambda_powertools import Logger")
    second = tmp_path / "b" / "handlers"
    shutil.copytree(first, second)
    for i, path in enumerate(sorted(second.rglob("*"))):  # different mtimes and creation order
        os.utime(path, (1_700_000_000 + i * 977, 1_700_000_000 + i * 977))
    a, b = build_package(first, pyproject=PYPROJECT), build_package(second, pyproject=PYPROJECT)
    assert a.sha256 == b.sha256 == hashlib.sha256(a.data).hexdigest()
    assert a.data == b.data
    assert a.key == f"market-data/{a.sha256}.zip"


def test_a_changed_source_changes_the_digest(tmp_path):
    pkg = make_handlers(tmp_path)
    before = build_package(pkg, pyproject=PYPROJECT).sha256
    (pkg / "core" / "points.py").write_text("import json\n# changed\n")
    assert build_package(pkg, pyproject=PYPROJECT).sha256 != before


def test_entries_are_sorted_with_fixed_timestamps_and_permissions_and_no_bytecode(tmp_path):
    pkg = build_package(
        make_handlers(tmp_path, imports="from aws_lambda_powertools import Logger"), pyproject=PYPROJECT
    )
    infos = entries(pkg.data)
    names = [i.filename for i in infos]
    assert names == sorted(names)
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert not [n for n in names if n.endswith((".pyc", ".so")) or "__pycache__" in n]
    assert {"handlers/__init__.py", "handlers/ingest.py", "handlers/core/points.py"} <= set(names)


def test_powertools_is_bundled_with_typing_extensions_but_not_jmespath(tmp_path):
    pkg = build_package(
        make_handlers(tmp_path, imports="from aws_lambda_powertools import Logger, Metrics"), pyproject=PYPROJECT
    )
    names = set(pkg.entries)
    assert "aws_lambda_powertools/__init__.py" in names
    assert "aws_lambda_powertools/logging/logger.py" in names
    assert "typing_extensions.py" in names
    assert not any(n.startswith(("jmespath/", "boto3/", "botocore/", "aws_xray_sdk/", "wrapt/")) for n in names)
    assert pkg.bundled == (
        "aws-lambda-powertools==3.37.0",
        f"typing-extensions=={packaging.importlib.metadata.version('typing_extensions')}",
    )
    # install-specific metadata would make the zip differ between machines
    assert not any(n.endswith(("/RECORD", "/INSTALLER", "/direct_url.json")) for n in names)


def test_the_tracer_brings_the_xray_sdk_and_pure_python_wrapt(tmp_path):
    pkg = build_package(
        make_handlers(tmp_path, imports="from aws_lambda_powertools import Logger, Tracer"), pyproject=PYPROJECT
    )
    names = set(pkg.entries)
    assert "aws_xray_sdk/core/recorder.py" in names
    assert "wrapt/wrappers.py" in names  # the pure Python fallback wrapt uses without its C extension
    assert not any(n.startswith("wrapt/_wrappers") and not n.endswith(".py") for n in names)
    assert [b.split("==")[0] for b in pkg.bundled] == [
        "aws-lambda-powertools",
        "typing-extensions",
        "aws-xray-sdk",
        "wrapt",
    ]


def test_handlers_without_powertools_bundle_nothing(tmp_path):
    pkg = build_package(make_handlers(tmp_path), pyproject=PYPROJECT)
    assert pkg.bundled == ()
    assert all(n.startswith("handlers/") for n in pkg.entries)


def test_a_powertools_version_other_than_the_pin_is_refused(tmp_path):
    cfg = tmp_path / "pyproject.toml"
    cfg.write_text('[project]\ndependencies = ["boto3>=1.35", "aws-lambda-powertools[tracer]==3.0.0"]\n')
    with pytest.raises(PackagingError, match="3.37.0 is installed but pyproject.toml pins 3.0.0"):
        build_package(make_handlers(tmp_path, imports="import aws_lambda_powertools"), pyproject=cfg)


def test_the_pin_is_read_from_pyproject():
    assert packaging.powertools_pin(PYPROJECT) == "3.37.0"


def test_without_the_source_tree_the_installed_metadata_gives_the_pins_but_not_the_extras(tmp_path):
    pins = packaging.bundle_pins(tmp_path / "no-pyproject.toml")
    assert pins[packaging._normalize(packaging.POWERTOOLS_DIST)] == "3.37.0"
    assert "pytest" not in pins  # pinned in the test extra only


def test_an_import_the_runtime_does_not_provide_is_refused(tmp_path):
    with pytest.raises(PackagingError, match="imports requests"):
        build_package(make_handlers(tmp_path, imports="import requests"), pyproject=PYPROJECT)


def test_the_project_handlers_package(tmp_path):
    """The real handlers/ tree packages, and does so reproducibly."""
    a, b = build_package(), build_package()
    assert a.sha256 == b.sha256
    assert "handlers/contract.py" in a.entries


def test_every_bundled_distribution_is_pinned_exactly_in_pyproject():
    pins = packaging.bundle_pins(PYPROJECT)
    for dist, _ in packaging.POWERTOOLS_BUNDLE + packaging.TRACER_BUNDLE:
        assert dist.lower().replace("_", "-") in pins, dist


def test_an_unpinned_bundled_distribution_is_refused(tmp_path):
    cfg = tmp_path / "pyproject.toml"
    text = PYPROJECT.read_text(encoding="utf-8")
    cfg.write_text("\n".join(line for line in text.splitlines() if not line.strip().startswith('"typing_extensions')))
    with pytest.raises(PackagingError, match="typing_extensions is bundled .* does not pin it"):
        build_package(make_handlers(tmp_path, imports="import aws_lambda_powertools"), pyproject=cfg)


def test_a_bundled_version_other_than_the_pin_is_refused(tmp_path):
    cfg = tmp_path / "pyproject.toml"
    text = PYPROJECT.read_text(encoding="utf-8")
    cfg.write_text(text.replace("typing_extensions==", "typing_extensions==0.0.1+not", 1))
    with pytest.raises(PackagingError, match="typing_extensions .* is installed but pyproject.toml pins 0.0.1"):
        build_package(make_handlers(tmp_path, imports="import aws_lambda_powertools"), pyproject=cfg)


def test_an_import_only_type_checkers_see_is_not_bundled_or_refused(tmp_path):
    """The handlers type their clients with the test-only mypy_boto3 stubs under `if TYPE_CHECKING:`."""
    guarded = (
        "from typing import TYPE_CHECKING\n"
        "import typing\n"
        "if TYPE_CHECKING:\n"
        "    from mypy_boto3_sqs import SQSClient\n"
        "    import aws_lambda_powertools\n"
        "if typing.TYPE_CHECKING:\n"
        "    import mypy_boto3_s3\n"
        "def f():\n"
        "    if TYPE_CHECKING:\n"
        "        from requests import Session\n"
    )
    pkg = build_package(make_handlers(tmp_path, imports=guarded), pyproject=PYPROJECT)
    assert pkg.bundled == ()  # Powertools imported only for the type checker: not bundled either
    assert "handlers/ingest.py" in pkg.entries


def test_the_same_import_at_run_time_is_still_refused(tmp_path):
    with pytest.raises(PackagingError, match="imports mypy_boto3_sqs"):
        build_package(make_handlers(tmp_path, imports="from mypy_boto3_sqs import SQSClient"), pyproject=PYPROJECT)


@pytest.mark.parametrize(
    "imports",
    [
        # the else (and elif) of a TYPE_CHECKING block runs
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\nelse:\n    import requests",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    pass\nelif True:\n    import requests",
        # guards the scan does not classify count as running (fail closed)
        "from typing import TYPE_CHECKING\nif not TYPE_CHECKING:\n    import requests",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING and True:\n    import requests",
        "if False:\n    import requests",
        # a TYPE_CHECKING that is not typing's may be true at run time
        "TYPE_CHECKING = True\nif TYPE_CHECKING:\n    import requests",
        "from typing import TYPE_CHECKING\nTYPE_CHECKING = True\nif TYPE_CHECKING:\n    import requests",
        "from settings import TYPE_CHECKING\nif TYPE_CHECKING:\n    import requests",
        "from typing import *\nif TYPE_CHECKING:\n    import requests",
        "import settings as typing\nif typing.TYPE_CHECKING:\n    import requests",
        "if typing.TYPE_CHECKING:\n    import requests",  # typing never imported: a NameError, not a skip
    ],
)
def test_an_import_that_may_run_is_still_seen(tmp_path, imports):
    with pytest.raises(PackagingError, match="imports requests"):
        build_package(make_handlers(tmp_path, imports=imports), pyproject=PYPROJECT)


def test_the_tracer_imported_at_run_time_beside_a_type_checking_block_is_bundled(tmp_path):
    imports = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from mypy_boto3_sqs import SQSClient\n"
        "else:\n"
        "    from aws_lambda_powertools import Tracer\n"
    )
    pkg = build_package(make_handlers(tmp_path, imports=imports), pyproject=PYPROJECT)
    assert [b.split("==")[0] for b in pkg.bundled] == [
        "aws-lambda-powertools",
        "typing-extensions",
        "aws-xray-sdk",
        "wrapt",
    ]


def test_the_handlers_import_without_the_type_stubs():
    """The zip carries no mypy_boto3 stubs (test-only), so no handler may need them when it runs:
    an annotation evaluated at import time (a module without `from __future__ import annotations`)
    would fail there. Imported in a fresh interpreter with every mypy_boto3 module unavailable."""
    import subprocess
    import sys

    code = (
        "import importlib.abc, sys\n"
        "class NoStubs(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0].startswith('mypy_boto3'):\n"
        "            raise ImportError(f'{name} is not in the Lambda zip')\n"
        "sys.meta_path.insert(0, NoStubs())\n"
        "import pathlib, importlib\n"
        "for path in sorted(pathlib.Path('handlers').rglob('*.py')):\n"
        "    importlib.import_module('.'.join(path.with_suffix('').parts).removesuffix('.__init__'))\n"
        "print('ok')\n"
    )
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(root)}
    done = subprocess.run([sys.executable, "-c", code], cwd=root, env=env, capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == "ok\n", done.stderr
