"""Render the template deterministically: sorted keys, stable logical IDs, fixed layout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from market_cfn.stack.config import StackConfig
from market_cfn.stack.template import build_template

DEFAULT_OUT = Path("build") / "template.json"


def render_dict(cfg: StackConfig) -> dict[str, Any]:
    return build_template(cfg).to_dict()


def render_json(cfg: StackConfig) -> str:
    """The template as JSON text; the same configuration always gives the same bytes."""
    return json.dumps(render_dict(cfg), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_template(cfg: StackConfig, out: Path) -> Path:
    text = render_json(cfg)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(out)  # atomic: a failed render never leaves half a template behind
    return out
