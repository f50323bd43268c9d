"""`python -m market_cfn upload FILE...`: put market-data files into the stack's data bucket."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from market_cfn.cli.command import Context, command_parser, run

DESCRIPTION = """\
Upload files (CSV, JSON, JSON Lines, optionally gzip) into the stack's data bucket, where
each upload starts DataIngestion. The key is SYMBOL/FILENAME, the symbol being --symbol or
the file's parent folder when its name is a symbol as written (upper case) (tests/data/AAPL/2024-06-03.csv ->
AAPL/2024-06-03.csv); records without a symbol field take it from the key
(docs/input-contract.md). Without either, the key is the file name alone.
"""

EXIT_CODES = """\
exit codes:
  0  every file was uploaded
  1  an upload failed (an AWS error; the files before it are uploaded)
  2  bad arguments (a missing file, a bad --symbol, a key DataIngestion would misread,
     unknown stack, no region or credentials)
"""


def build_parser() -> argparse.ArgumentParser:
    parser = command_parser("upload", DESCRIPTION, exit_codes=EXIT_CODES)
    parser.add_argument("files", nargs="+", metavar="FILE", help="files to upload")
    parser.add_argument("--symbol", help="the symbol of every file (default: each file's parent folder)")
    parser.add_argument("--gzip", action="store_true", help="gzip each file on the way (key gets .gz)")
    return parser


def _body(ctx: Context) -> tuple[int, dict[str, Any]]:
    from market_cfn.base.console import progress
    from market_cfn.ops.resources import load_stack
    from market_cfn.ops.upload import plan, upload

    args = ctx.args
    uploads = plan(args.files, symbol=args.symbol, compress=args.gzip)
    stack = load_stack(ctx.client("cloudformation"), ctx.stack_name)
    bucket = stack.data_bucket()
    total = sum(u.size for u in uploads)
    with progress(total, desc="upload", unit="B", enabled=ctx.show_progress, out=ctx.stderr) as bar:
        results = upload(ctx.client("s3"), bucket, uploads, compress=args.gzip, on_bytes=bar.update)
    for r in results:
        if "error" in r:
            ctx.say(f"  {r['file']} -> {r['uri']}  NOT UPLOADED: {r['error']}")
        else:
            version = f" (version {r['version_id']})" if r["version_id"] else ""
            ctx.say(f"  {r['file']} -> {r['uri']}{version}  {r['bytes']:,} bytes")
    done = [r for r in results if "error" not in r]
    failed = len(results) - len(done)
    sent = sum(r["bytes"] for r in done)
    ctx.say(f"Uploaded {len(done)} files, {sent:,} bytes, to s3://{bucket}/" + (f"; {failed} failed" if failed else ""))
    document = {"bucket": bucket, "files": len(done), "failed": failed, "bytes": sent, "uploads": results}
    return (1 if failed else 0), document | {"result": "ok" if not failed else "incomplete"}


def main(
    argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None, stdin: TextIO | None = None
) -> int:
    return run(build_parser(), argv, _body, stdout=stdout, stderr=stderr, stdin=stdin)
