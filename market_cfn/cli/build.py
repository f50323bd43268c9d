"""`python -m market_cfn build [--out-dir DIR] [--env NAME] [--render-profile P] [--retain-data]`:
the two artifacts bin/deploy ships, written for inspection, byte for byte what it would upload.

DIR/template.json is the rendered template (as `render`), DIR/function.zip the Lambda package
(the handlers and their pinned, bundled dependencies; deterministic: the same code gives the same
bytes, so the same sha256 and the same content-addressed key, market-data/<sha256>.zip). Nothing
is uploaded and no AWS account is read.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from market_cfn.cli.command import OneLineParser, add_template_options, stack_config
from market_cfn.stack.config import ConfigError

PROG = "python -m market_cfn build"
EXIT_CODES = """\
exit codes:
  0  both artifacts were written
  2  bad arguments, or packaging refused (a bundled dependency not pinned or not installed)
"""


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0], epilog=EXIT_CODES)
    p.add_argument("--out-dir", default="build", metavar="DIR", help="where to write them (default: build)")
    add_template_options(p)
    p.add_argument("--json", action="store_true", help="print what was written as one JSON document")
    return p


def main(argv: list[str]) -> int:
    from market_cfn.deploy.packaging import PackagingError, build_package
    from market_cfn.stack.render import write_template

    args = _parser().parse_args(argv)
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        print(f"{PROG}: --out-dir {out_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        cfg = stack_config(args)
        package = build_package()
    except ConfigError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except PackagingError as exc:
        print(f"{PROG}: packaging: {exc}", file=sys.stderr)
        return 2
    try:
        template = write_template(cfg, out_dir / "template.json")
        zip_path = out_dir / "function.zip"
        tmp = zip_path.with_name(zip_path.name + ".tmp")
        tmp.write_bytes(package.data)
        tmp.replace(zip_path)
    except OSError as exc:
        print(f"{PROG}: cannot write into {out_dir}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    document = {
        "template": str(template),
        "function_zip": str(zip_path),
        "zip_bytes": len(package.data),
        "zip_sha256": package.sha256,
        "s3_key": package.key,
        "zip_files": len(package.entries),
        "bundled": list(package.bundled),
    }
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(f"wrote {template}")
        print(
            f"wrote {zip_path}: {len(package.data):,} bytes, {len(package.entries)} files, sha256 {package.sha256} "
            f"(bin/deploy's key {package.key}); bundles {', '.join(package.bundled) or 'nothing'}"
        )
    return 0
