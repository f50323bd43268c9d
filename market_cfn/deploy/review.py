"""The review of a change set: plain data built from ReviewInput, with guard and IAM findings."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from market_cfn.deploy.common import MASK
from market_cfn.deploy.guard import guard_violation
from market_cfn.deploy.iam import iam_findings
from market_cfn.deploy.model import (
    Finding,
    Overrides,
    PropertyChange,
    ResourceChangeView,
    Review,
    ReviewInput,
    _context,
)


def build_review(
    inputs: ReviewInput | dict[str, Any],
    overrides: Overrides | None = None,
    *,
    no_echo: Iterable[str] = (),
    allow_replacement: Iterable[str] = (),
) -> Review:
    """The review of one change set (and its nested ones). A bare change-set dict (with the keyword
    arguments) is the older call form: it is reviewed without templates or a plain description."""
    if not isinstance(inputs, ReviewInput):
        inputs = ReviewInput.from_change_set(inputs, no_echo=frozenset(no_echo))
    if overrides is None:
        overrides = Overrides(allow_replacement=frozenset(allow_replacement))
    review = _review(inputs, overrides)
    named = {f.override for f in review.findings}
    review.unmatched_overrides = [
        f"--allow-replacement {n}"
        for n in sorted(overrides.allow_replacement)
        if f"--allow-replacement {n}" not in named
    ]
    return review


def change_views(change_set: dict[str, Any], no_echo: frozenset[str]) -> list[ResourceChangeView]:
    views = []
    for change in change_set.get("Changes", []):
        rc = change.get("ResourceChange")
        if change.get("Type") != "Resource" or not rc:
            continue
        props: dict[tuple[str, str], PropertyChange] = {}
        for detail in rc.get("Details", []):
            target = detail.get("Target", {})
            attribute = target.get("Attribute", "")
            name = target.get("Path") or target.get("Name") or attribute
            if target.get("Path", "").startswith("/Properties/"):
                name = target["Path"][len("/Properties/") :]
            cause_entity = detail.get("CausingEntity", "")
            cause = " ".join(x for x in (detail.get("ChangeSource", ""), cause_entity) if x)
            masked = detail.get("ChangeSource") == "ParameterReference" and cause_entity in no_echo
            before = MASK if masked and "BeforeValue" in target else target.get("BeforeValue")
            after = MASK if masked and "AfterValue" in target else target.get("AfterValue")
            key = (attribute, name)
            old = props.get(key)
            recreation = target.get("RequiresRecreation", "")
            if old is not None:  # several details (change sources) for one property: merge
                rank = {"": 0, "Never": 1, "Conditionally": 2, "Always": 3}
                if rank.get(old.requires_recreation, 0) > rank.get(recreation, 0):
                    recreation = old.requires_recreation
                cause = old.cause if cause in old.cause else f"{old.cause}; {cause}"
                before = old.before if before is None else before
                after = old.after if after is None else after
            props[key] = PropertyChange(
                attribute, name, recreation, target.get("AttributeChangeType", ""), before, after, cause
            )
        views.append(
            ResourceChangeView(
                action=rc.get("Action", ""),
                logical_id=rc.get("LogicalResourceId", ""),
                resource_type=rc.get("ResourceType", ""),
                replacement=rc.get("Replacement", "") if rc.get("Action") == "Modify" else "",
                policy_action=rc.get("PolicyAction", ""),
                physical_id=rc.get("PhysicalResourceId", ""),
                properties=tuple(props.values()),
                before_context=_context(rc.get("BeforeContext")),
                after_context=_context(rc.get("AfterContext")),
            )
        )
    return views


def _parameters(inputs: ReviewInput) -> list[tuple[str, str | None, str | None]]:
    out = []
    for name in sorted(set(inputs.old_parameters) | set(inputs.new_parameters)):
        old, new = inputs.old_parameters.get(name), inputs.new_parameters.get(name)
        if name in inputs.no_echo:
            old, new = (None if old is None else MASK), (None if new is None else MASK)
        out.append((name, old, new))
    return out


def _review(inputs: ReviewInput, overrides: Overrides) -> Review:
    views = change_views(inputs.change_set, inputs.no_echo)
    iam = [finding for view in views for finding in iam_findings(view)]
    findings: list[Finding] = []
    for view in views:
        found = guard_violation(view)
        if found:
            allowed = view.logical_id in overrides.allow_replacement
            findings.append(dataclasses.replace(found, allowed=allowed))
    return Review(inputs.change_set, views, _parameters(inputs), iam, findings)
