"""Every source of a resource's values, read on its own, and their findings united: the more dangerous
reading wins, and where whole sources disagree the review says so.

The sources of one changed resource:
- the template diff: the deployed and the new template (the processed ones when a template has a
  Transform), each resolved with its own parameter values (diff.py);
- the change set's property values: `ResourceChange.BeforeContext` / `AfterContext`, "an encoded JSON
  string that contains the context of the resource before/after the change is executed" (botocore
  cloudformation 2010-05-15 service model, shape ResourceChange; returned only by DescribeChangeSet with
  `IncludePropertyValues=True`, merged over every `NextToken` page by changeset.describe_change_set_all);
- the change set's `Details[].Target` BeforeValue/AfterValue (ResourceTargetDefinition), which carry
  only the changed keys.

The first two describe the whole resource ("whole" readings): when one of them shows a danger the other
does not, the sources disagree. The details are partial: they add dangers, they never disagree. Pure.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

from market_cfn.deploy.review.diff import KNOWN_AFTER_APPLY, ResourceDiff, parse_json_value
from market_cfn.deploy.review.model import Finding, ResourceChangeView

TEMPLATE = "template diff"
VALUES = "change set's property values"
DETAILS = "change set's details"
_ATTRIBUTES = ("DeletionPolicy", "UpdateReplacePolicy")


@dataclass(frozen=True)
class Reading:
    source: str  # TEMPLATE | VALUES | DETAILS
    before: dict[str, Any]  # a resource: {"Properties": {...}, "DeletionPolicy": ...}; {} when added
    after: dict[str, Any]  # {} when removed
    whole: bool  # True: the whole resource on both sides; False: only the changed keys


def readings(
    view: ResourceChangeView | None, diff: ResourceDiff | None, *, template_knows: bool, top_level_details: bool
) -> list[Reading]:
    """The readings of one resource. `template_knows`: the templates were read and hold this resource, so
    a resource missing from the template diff is one the templates show unchanged. `top_level_details`:
    rebuild the details' values from top-level properties only (policy documents), else by their paths."""
    out: list[Reading] = []
    if diff is not None:
        out.append(Reading(TEMPLATE, dict(diff.old), dict(diff.new), True))
    elif template_knows:
        out.append(Reading(TEMPLATE, {}, {}, True))  # unchanged in the templates
    if view is None:
        return out
    before, after = _context(view.before_context), _context(view.after_context)
    sides = {
        "Add": (None, after),
        "Import": (None, after),
        "Remove": (before, None),
        "Modify": (before, after),
    }.get(view.action)
    if sides is not None:
        b, a = sides
        needed = [side for side in (b, a) if side is not None or view.action == "Modify"]
        if needed and all(side is not None for side in needed):
            b, a = b or {}, a or {}
            if template_knows:
                # {{changeSet:KNOWN_AFTER_APPLY}}: a value that depends on another change; the template
                # diff says whether its expression changed, so it is not read as a change here
                a = _settle(b, a)
            out.append(Reading(VALUES, b, a, True))
    if view.action == "Modify":
        b2, a2 = details_resource(view, "before", top_level_details), details_resource(view, "after", top_level_details)
        if b2 or a2:
            out.append(Reading(DETAILS, b2, a2, False))
    return out


def _context(context: dict[str, Any] | None) -> dict[str, Any] | None:
    """A context as a resource: its Properties and the data-keeping attributes it carries."""
    if context is None:
        return None
    props = (
        context["Properties"] if "Properties" in context else {k: v for k, v in context.items() if k not in _ATTRIBUTES}
    )
    resource: dict[str, Any] = {"Properties": props if isinstance(props, dict) else {}}
    for attribute in _ATTRIBUTES:
        if attribute in context:
            resource[attribute] = context[attribute]
    return resource


def _settle(before: Any, after: Any) -> Any:
    if after == KNOWN_AFTER_APPLY and before is not None:
        return before
    if isinstance(before, dict) and isinstance(after, dict):
        return {k: _settle(before.get(k), v) for k, v in after.items()}
    if isinstance(before, list) and isinstance(after, list):
        return [_settle(before[i] if i < len(before) else None, v) for i, v in enumerate(after)]
    return after


def details_resource(view: ResourceChangeView, side: str, top_level: bool = False) -> dict[str, Any]:
    """A partial resource (only the changed keys) rebuilt from the change set's details."""
    resource: dict[str, Any] = {}
    for p in view.properties:
        value = p.before if side == "before" else p.after
        if value is None:
            continue
        if p.attribute in _ATTRIBUTES:
            resource[p.attribute] = value
        elif p.attribute == "Properties":
            keys = [k for k in p.name.split("/") if k]
            if not keys or (top_level and len(keys) > 1):
                continue
            node = resource.setdefault("Properties", {})
            for key in keys[:-1]:
                node = node.setdefault(key, {})
                if not isinstance(node, dict):
                    break
            else:
                node[keys[-1]] = parse_json_value(value)
    return resource


def unite(
    logical_id: str,
    found: list[tuple[Reading, list[Finding]]],
    key: Callable[[Finding], Hashable],
    describe: Callable[[Finding], str],
) -> tuple[list[Finding], list[str]]:
    """Every finding of every reading, once per key (the first reading's wording). A finding that one
    whole reading shows and another does not gets a cause saying the sources disagree, and a note."""
    whole = [reading.source for reading, _ in found if reading.whole]
    united: dict[Hashable, Finding] = {}
    seen_by: dict[Hashable, list[str]] = {}
    for reading, findings in found:
        for f in findings:
            k = key(f)
            seen_by.setdefault(k, [])
            if reading.source not in seen_by[k]:
                seen_by[k].append(reading.source)
            if k in united:
                old = united[k]
                united[k] = dataclasses.replace(
                    old, causes=old.causes + tuple(c for c in f.causes if c not in old.causes)
                )
            else:
                united[k] = f
    notes = []
    out = []
    for k, f in united.items():
        missing = [s for s in whole if s not in seen_by[k]]
        if missing:
            shown = ", ".join(seen_by[k])
            cause = (
                f"the sources disagree: the {shown} shows this, the {' and the '.join(missing)} does not; "
                "the more dangerous reading is used"
            )
            f = dataclasses.replace(f, causes=(*f.causes, cause))
            notes.append(f"{logical_id}: the sources disagree about {describe(f)}: {cause.split(': ', 1)[1]}")
        out.append(f)
    return out, notes
