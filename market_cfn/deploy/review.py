"""The review of a change set: plain data built from DescribeChangeSet, with guard and IAM findings."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from market_cfn.deploy.common import MASK
from market_cfn.deploy.guard import guard_violation
from market_cfn.deploy.iam import iam_findings
from market_cfn.deploy.model import GuardViolation, PropertyChange, ResourceChangeView, Review, _context


def build_review(
    change_set: dict[str, Any], *, no_echo: Iterable[str] = (), allow_replacement: Iterable[str] = ()
) -> Review:
    no_echo = set(no_echo)
    allow = set(allow_replacement)
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
    parameters = [
        (
            p["ParameterKey"],
            MASK if p["ParameterKey"] in no_echo else p.get("ParameterValue", p.get("ResolvedValue", "")),
        )
        for p in change_set.get("Parameters") or []
    ]
    iam = [finding for view in views for finding in iam_findings(view)]
    violations: list[GuardViolation] = []
    allowed: list[GuardViolation] = []
    for view in views:
        violation = guard_violation(view)
        if violation:
            (allowed if view.logical_id in allow else violations).append(violation)
    return Review(change_set, views, parameters, iam, violations, allowed)
