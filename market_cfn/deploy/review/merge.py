"""The review of a change set: plain data built from ReviewInput (the change set with and without property
values, the nested change sets, both templates, drift), merged with the template diff, with the guard's,
the IAM diff's and the network diff's findings, and the user's overrides applied."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from market_cfn.deploy.review.diff import (
    ResourceDiff,
    StackIdentity,
    has_transform,
    leaf_changes,
    parse_json_value,
    show,
    template_diff,
)
from market_cfn.deploy.review.guard import STATEFUL_TYPES, change_set_findings, is_stateful, template_findings
from market_cfn.deploy.review.harmless import GATED_TYPES, change_findings
from market_cfn.deploy.review.iam import security_review
from market_cfn.deploy.review.model import (
    MASK,
    Finding,
    Overrides,
    PropertyChange,
    ResourceChangeView,
    Review,
    ReviewInput,
    _context,
    _properties_of,
)
from market_cfn.deploy.review.schema import DEFAULT_REGION
from market_cfn.deploy.review.sources import readings, unite
from market_cfn.deploy.review.unprotect import RETENTION_CARRIERS, unprotections

# DescribeChangeSet StatusReason when the IncludePropertyValues description left changes out
# ("[WARN] --include-property-values option can return incomplete ChangeSet data", aws/aws-cdk-cli#1780).
INCOMPLETE_MARKER = "incomplete"
NESTED_STACK = "AWS::CloudFormation::Stack"

# Which override allows which kind of finding.
_OPTION = {
    "removal": "--allow-replacement",
    "replacement": "--allow-replacement",
    "incomplete": "--allow-replacement",
    "unprotect": "--allow-unprotect",
    "drift": "--allow-drift",
}


def build_review(
    inputs: ReviewInput | dict[str, Any],
    overrides: Overrides | None = None,
    *,
    no_echo: Iterable[str] = (),
    allow_replacement: Iterable[str] = (),
) -> Review:
    """The review of one change set and its nested ones. A bare change-set dict (with the keyword
    arguments) is the older call form: it is reviewed without templates or a plain description."""
    if not isinstance(inputs, ReviewInput):
        inputs = ReviewInput.from_change_set(inputs, no_echo=frozenset(no_echo))
    if overrides is None:
        overrides = Overrides(allow_replacement=frozenset(allow_replacement))
    review = _review(inputs, overrides, "")
    review.unmatched_overrides = _unmatched(review.findings, overrides)
    return review


def change_views(change_set: dict[str, Any], no_echo: frozenset[str]) -> list[ResourceChangeView]:
    """DescribeChangeSet Changes[].ResourceChange as views; details of one property merged."""
    views = []
    for change in change_set.get("Changes") or []:
        rc = change.get("ResourceChange")
        if change.get("Type") != "Resource" or not rc:
            continue
        props: dict[tuple[str, str], PropertyChange] = {}
        for detail in rc.get("Details") or []:
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


def _reconcile(inputs: ReviewInput, views: list[ResourceChangeView]) -> tuple[list[ResourceChangeView], list[str]]:
    """Add the changes only the plain description names (reviewed without values); say what differs."""
    notes: list[str] = []
    if inputs.plain_change_set is None:
        return views, notes
    by_id = {v.logical_id: v for v in views}
    for plain in change_views(inputs.plain_change_set, inputs.no_echo):
        full = by_id.get(plain.logical_id)
        if full is None:
            views.append(dataclasses.replace(plain, values_known=False))
            notes.append(f"{plain.logical_id}: only the description without property values names this change")
        elif (full.action, full.replacement) != (plain.action, plain.replacement):
            # the two descriptions disagree: keep the values, but the guard may not trust them
            by_id[plain.logical_id] = dataclasses.replace(full, values_known=False)
            views[views.index(full)] = by_id[plain.logical_id]
            notes.append(
                f"{plain.logical_id}: the descriptions disagree ({full.action}/{full.replacement or '-'} with values, "
                f"{plain.action}/{plain.replacement or '-'} without)"
            )
    return views, notes


def _leaves(view: ResourceChangeView, diff: ResourceDiff | None) -> tuple[tuple[str, str, str], ...]:
    if diff is not None and diff.action == "Modify":
        leaves = list(diff.leaves)
    elif view.before_context is not None and view.after_context is not None:
        leaves = leaf_changes(_properties_of(view.before_context), _properties_of(view.after_context), "Properties")
    else:
        leaves = []
        for p in view.properties:
            if p.before is None and p.after is None:
                continue
            path = p.name.replace("/", ".") if p.attribute == "Properties" else p.attribute
            before, after = parse_json_value(p.before), parse_json_value(p.after)
            leaves += leaf_changes(before, after, path)
    return tuple((leaf.path, show(leaf.before), show(leaf.after)) for leaf in leaves)


def _unprotect_findings(
    view: ResourceChangeView | None, diff: ResourceDiff | None, template_knows: bool
) -> tuple[list[Finding], list[str]]:
    """Unprotections from every reading of the resource (sources.py), united by property: the more
    dangerous reading wins, and a disagreement between whole readings is said."""
    rtype = (view.resource_type if view else "") or (diff.resource_type if diff else "")
    lid = view.logical_id if view else diff.logical_id if diff else ""
    modified = diff if diff is not None and diff.action == "Modify" else None
    knows = template_knows and (diff is None or modified is not None)
    in_place = view if view is not None and view.action == "Modify" else None
    label: dict[str, str] = {}
    per_reading = []
    for reading in readings(in_place, modified, template_knows=knows, top_level_details=False):
        found = []
        for u in unprotections(rtype, reading.before, reading.after):
            label[u.what] = u.label
            found.append(Finding("unprotect", lid, rtype, u.what, (u.why,), "", False, True))
        per_reading.append((reading, found))
    return unite(lid, per_reading, lambda f: label[f.what], lambda f: label[f.what])


@dataclasses.dataclass
class _Scope:
    """One stack's review in progress: what every pass of `_review` reads, and the findings and
    notes the passes add, in the order they add them."""

    inputs: ReviewInput
    overrides: Overrides
    prefix: str
    stack: StackIdentity
    region: str
    views: list[ResourceChangeView]
    diffs: dict[str, ResourceDiff]
    deployed_template: dict[str, Any] | None
    new_template: dict[str, Any]
    old_resources: dict[str, Any]
    new_resources: dict[str, Any]
    template_ids: frozenset[str]
    notes: list[str]
    findings: list[Finding] = dataclasses.field(default_factory=list)
    nested: dict[str, Review] = dataclasses.field(default_factory=dict)

    @property
    def by_id(self) -> dict[str, ResourceChangeView]:
        return {v.logical_id: v for v in self.views}

    @property
    def reason(self) -> str:
        return str(self.inputs.change_set.get("StatusReason") or "")

    @property
    def warned(self) -> bool:
        return INCOMPLETE_MARKER in self.reason.lower()

    def stateful(self, lid: str, rtype: str) -> bool:
        extra = self.overrides.extra_stateful_types
        return (
            rtype in (STATEFUL_TYPES | extra)
            or is_stateful(self.old_resources.get(lid), extra)
            or is_stateful(self.new_resources.get(lid), extra)
        )


def _scope(inputs: ReviewInput, overrides: Overrides, prefix: str) -> _Scope:
    stack = StackIdentity.from_change_set(inputs.change_set)
    views, notes = _reconcile(inputs, change_views(inputs.change_set, inputs.no_echo))
    diffs: dict[str, ResourceDiff] = {}
    deployed_template, new_template = reviewed_templates(inputs, notes)
    if new_template:
        diffs = template_diff(
            deployed_template,
            new_template,
            inputs.old_parameters,
            inputs.new_parameters,
            stack,
            inputs.no_echo,
        )
    old_resources = (deployed_template or {}).get("Resources") or {}
    new_resources = new_template.get("Resources") or {}
    return _Scope(
        inputs=inputs,
        overrides=overrides,
        prefix=prefix,
        stack=stack,
        region=stack.region or DEFAULT_REGION,
        views=[dataclasses.replace(v, leaves=_leaves(v, diffs.get(v.logical_id))) for v in views],
        diffs=diffs,
        deployed_template=deployed_template,
        new_template=new_template,
        old_resources=old_resources,
        new_resources=new_resources,
        template_ids=frozenset(old_resources) | frozenset(new_resources) if new_template else frozenset(),
        notes=notes,
    )


def _review(inputs: ReviewInput, overrides: Overrides, prefix: str) -> Review:
    scope = _scope(inputs, overrides, prefix)
    _change_set_pass(scope)
    for lid, diff in scope.diffs.items():
        if scope.stateful(lid, diff.resource_type):
            scope.findings += template_findings(diff, scope.region)
    _harmless_pass(scope)
    _unprotect_and_drift_pass(scope)
    _notes_pass(scope)
    iam, security, disputed = security_review(
        scope.views, scope.diffs, scope.stack, scope.new_template, scope.template_ids
    )
    scope.findings += security
    scope.notes += disputed
    findings = _covered([_finalize(f, prefix, overrides) for f in _merge(scope.findings)])
    return Review(inputs.change_set, scope.views, _parameters(inputs), iam, findings, scope.nested, [], scope.notes)


def _incomplete(lid: str, rtype: str, what: str, *causes: str) -> Finding:
    return Finding("incomplete", lid, rtype, what, causes, "", False, True)


def _change_set_pass(scope: _Scope) -> None:
    """What the change set says of each stateful resource, nested stacks reviewed from their own."""
    for view in scope.views:
        lid, rtype = view.logical_id, view.resource_type
        if not scope.stateful(lid, rtype):
            continue
        if not view.values_known:
            scope.findings.append(
                _incomplete(lid, rtype, f"{view.action} without property values", notes_for(lid, scope.notes))
            )
        scope.findings += change_set_findings(view, scope.diffs.get(lid), scope.region)
        if rtype == NESTED_STACK and view.action not in ("Remove",):
            child = scope.inputs.nested.get(lid)
            if child is None:
                scope.findings.append(
                    _incomplete(
                        lid,
                        rtype,
                        f"nested stack {view.action}: its change set was not described",
                        "the changes inside the nested stack are unknown",
                    )
                )
            else:
                scope.nested[lid] = _review(child, scope.overrides, f"{scope.prefix}{lid}/")
                scope.findings += scope.nested[lid].findings
                scope.notes += [f"{lid}/{note}" for note in scope.nested[lid].notes]


def _harmless_pass(scope: _Scope) -> None:
    """Fail closed: an in-place change of what matters must be known to be harmless."""
    topics = frozenset(
        lid
        for resources in (scope.old_resources, scope.new_resources)
        for lid, r in resources.items()
        if isinstance(r, dict) and r.get("Type") == "AWS::SNS::Topic"
    )
    account, region = scope.stack.account, scope.region
    for view in scope.views:
        if scope.stateful(view.logical_id, view.resource_type) or view.resource_type in GATED_TYPES:
            knows = view.logical_id in scope.template_ids
            # a nested stack's own change is explained by its child change set, reviewed above
            explained = view.resource_type == NESTED_STACK and view.logical_id in scope.nested
            found = change_findings(
                view, scope.diffs.get(view.logical_id), region, template_knows=knows, account=account, topics=topics
            )
            scope.findings += [f for f in found if not (explained and not f.override)]
    for lid in sorted(set(scope.diffs) - set(scope.by_id)):  # a change only the template diff shows: gated too
        diff = scope.diffs[lid]
        if diff.action == "Modify" and (scope.stateful(lid, diff.resource_type) or diff.resource_type in GATED_TYPES):
            unlisted = ResourceChangeView("Modify", lid, diff.resource_type, "", "", "", (), None, None)
            unlisted = dataclasses.replace(unlisted, leaves=_leaves(unlisted, diff))
            found = change_findings(unlisted, diff, region, template_knows=True, account=account, topics=topics)
            scope.findings += [
                dataclasses.replace(f, causes=(*f.causes, "the change set does not list it")) for f in found
            ]


def _unprotect_and_drift_pass(scope: _Scope) -> None:
    """Per changed resource: unprotections, a possibly incomplete description, drift being overwritten."""
    by_id, inputs = scope.by_id, scope.inputs
    changed = {v.logical_id for v in scope.views} | {lid for lid, d in scope.diffs.items() if d.action != "Add"}
    for lid in sorted(changed):
        seen, known = by_id.get(lid), scope.diffs.get(lid)
        rtype = seen.resource_type if seen else known.resource_type if known else ""
        if not scope.stateful(lid, rtype):
            if rtype in RETENTION_CARRIERS:  # stateless, but carries a data retention (the TTL days)
                carried, disputed = _unprotect_findings(seen, known, lid in scope.template_ids)
                scope.findings += carried
                scope.notes += disputed
            continue
        unprotect, disputed = _unprotect_findings(seen, known, lid in scope.template_ids)
        scope.findings += unprotect
        scope.notes += disputed
        if scope.warned and inputs.plain_change_set is None and not (seen and seen.action == "Add"):
            scope.findings.append(
                _incomplete(
                    lid,
                    rtype,
                    "the change set description may be incomplete",
                    f"StatusReason: {scope.reason}",
                    "no description without property values was fetched to check it",
                )
            )
        drift = inputs.drifted.get(lid)
        acting = (seen and seen.action in ("Modify", "Remove", "Dynamic")) or (known and known.action != "Add")
        if drift and acting:
            scope.findings.append(
                Finding(
                    "drift",
                    lid,
                    rtype,
                    f"drifted ({drift}) and changed by this change set",
                    ("its real state differs from the template and would be overwritten",),
                    "",
                    False,
                    True,
                )
            )


def _notes_pass(scope: _Scope) -> None:
    """What the review says without blocking: drift elsewhere, the StatusReason, what was not checked."""
    inputs, notes = scope.inputs, scope.notes
    for lid, drift in sorted(inputs.drifted.items()):
        if not any(f.kind == "drift" and f.logical_id == lid for f in scope.findings):
            notes.append(f"drift: {lid} is {drift} (not changed by this change set)")
    if scope.warned:
        notes.append(f"StatusReason: {scope.reason}")
    if not inputs.drift_checked and scope.prefix == "" and scope.deployed_template is not None:
        notes.append("drift detection was not run")
    for lid in sorted(set(scope.diffs) - set(scope.by_id)):
        notes.append(f"{lid}: the template diff shows a {scope.diffs[lid].action} the change set does not list")


def reviewed_templates(inputs: ReviewInput, notes: list[str]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """The two templates the diff compares: as submitted, or processed when either has a Transform (the
    submitted one names macros, not the resources CloudFormation deploys)."""
    if not (has_transform(inputs.new_template) or has_transform(inputs.deployed_template)):
        return inputs.deployed_template, inputs.new_template
    deployed_ok = inputs.deployed_template is None or inputs.processed_deployed is not None
    if inputs.processed_new is not None and deployed_ok:
        notes.append(
            "Transform: the template diff compares the processed templates (GetTemplate TemplateStage=Processed)"
        )
        return inputs.processed_deployed, inputs.processed_new
    notes.append(
        "Transform: the processed templates could not be read; the template diff compares the templates as "
        "submitted, and the change set's own values decide the rest"
    )
    return inputs.deployed_template, inputs.new_template


def notes_for(lid: str, notes: list[str]) -> str:
    return next((n for n in notes if n.startswith(f"{lid}:")), f"{lid}: reviewed without property values")


def _merge(findings: list[Finding]) -> list[Finding]:
    """One finding per (kind, id, what-prefix): causes from every signal that found it."""
    merged: dict[tuple[str, str, str], Finding] = {}
    for f in findings:
        by_what = f.kind in ("unprotect", "broadening", "change") or "/" in f.logical_id
        key = (f.kind, f.logical_id, f.what if by_what else "")
        if key in merged:
            old = merged[key]
            causes = old.causes + tuple(c for c in f.causes if c not in old.causes)
            merged[key] = dataclasses.replace(old, causes=causes)
        else:
            merged[key] = f
    return list(merged.values())


def _finalize(f: Finding, prefix: str, overrides: Overrides) -> Finding:
    if f.override.startswith("--"):  # a nested finding, already final
        return f
    lid = prefix + f.logical_id
    if f.kind == "change":  # harmless.py leaves the property in `override`
        target = f"{lid}.{f.override}" if f.override else lid
        return dataclasses.replace(
            f,
            logical_id=lid,
            override=f"--allow-change {target}",
            allowed=target in overrides.allow_change or target in overrides.expected_changes,
        )
    if f.kind == "broadening":
        return dataclasses.replace(
            f, logical_id=lid, override="--allow-broadening", allowed=overrides.allow_broadening, needs_human=False
        )
    named = {
        "--allow-replacement": overrides.allow_replacement,
        "--allow-unprotect": overrides.allow_unprotect,
        "--allow-drift": overrides.allow_drift,
    }
    option = _OPTION[f.kind]
    return dataclasses.replace(f, logical_id=lid, override=f"{option} {lid}", allowed=lid in named[option])


def _covered(findings: list[Finding]) -> list[Finding]:
    """Leave out a change that a stronger finding already gates: a replacement or removal of the resource
    or an incomplete description (each blocks even at a prompt; --allow-replacement ID allows the whole
    resource), or an unprotection of
    that property (--allow-unprotect ID)."""
    replaced = {f.logical_id for f in findings if f.kind in ("replacement", "removal", "incomplete")}
    unprotected = {
        (f.logical_id, f.what.split(" ", 1)[0].split(".")[0].split("[")[0]) for f in findings if f.kind == "unprotect"
    }
    out = []
    for f in findings:
        if f.kind == "change":
            prop = f.override.removeprefix("--allow-change ")[len(f.logical_id) + 1 :]
            if f.logical_id in replaced or (f.logical_id, prop) in unprotected:
                continue
        out.append(f)
    return out


def _unmatched(findings: list[Finding], overrides: Overrides) -> list[str]:
    used = {f.override for f in findings}
    out = []
    for option, names in (
        ("--allow-replacement", overrides.allow_replacement),
        ("--allow-unprotect", overrides.allow_unprotect),
        ("--allow-drift", overrides.allow_drift),
        ("--allow-change", overrides.allow_change),
    ):
        out += [f"{option} {n}" for n in sorted(names) if f"{option} {n}" not in used]
    return out
