"""Rendering the review and the result for a terminal; it prints, it never decides."""

from __future__ import annotations

from market_cfn.base.console import Console, short, table
from market_cfn.deploy.review.model import ExecutionResult, IamFinding, ResourceChangeView, Review

# --- Rendering the review -------------------------------------------------------------

_FORCES = {"Always": "replaces", "Conditionally": "may replace", "Never": "in place"}


def pair(before: str, after: str, limit: int = 60) -> tuple[str, str]:
    """Both values, cut (if at all) around where they first differ, so they never look the same."""
    if len(before) <= limit and len(after) <= limit:
        return before, after
    i = next((k for k, (a, b) in enumerate(zip(before, after, strict=False)) if a != b), min(len(before), len(after)))
    start = max(0, i - 12)

    def cut(text: str) -> str:
        piece = text[start : start + limit]
        return ("…" if start else "") + piece + ("…" if start + limit < len(text) else "")

    return cut(before), cut(after)


def _leaf_text(before: str, after: str) -> str:
    b, a = pair(before, after)
    return f"{b} → {a}"


def property_rows(change: ResourceChangeView) -> list[list[str]]:
    """One row per changed property (with what CloudFormation says it forces) and per differing leaf."""
    rows: list[list[str]] = []
    leaves = [(path.removeprefix("Properties."), b, a) for path, b, a in change.leaves]
    used: set[int] = set()
    for p in change.properties:
        label = p.name.replace("/", ".") if p.attribute == "Properties" else p.attribute
        forces = _FORCES.get(p.requires_recreation, "")
        mine = [
            k for k, (path, _, _) in enumerate(leaves) if path == label or path.startswith((label + ".", label + "["))
        ]
        if mine:
            for n, k in enumerate(mine):
                used.add(k)
                path, b, a = leaves[k]
                rows.append([f"· {path}", forces if n == 0 else "", _leaf_text(b, a)])
        elif p.before is not None or p.after is not None:
            rows.append([f"· {label}", forces, _leaf_text(short(p.before, 10_000), short(p.after, 10_000))])
        else:
            rows.append([f"· {label}", forces, "(values not reported)"])
    for k, (path, b, a) in enumerate(leaves):
        if k not in used:
            rows.append([f"· {path}", "", _leaf_text(b, a)])
    return rows


def _parameter_value(old: str | None, new: str | None) -> str:
    def show(value: str | None) -> str:
        return "(none)" if value is None else value if value != "" else '""'

    if old is None or old == new:
        return show(new)
    return f"{show(old)} → {show(new)}"


def render_review(review: Review, console: Console) -> None:
    """The review for a terminal: parameters, changes with their differing leaves, notes, the security
    diff, then what the guard blocks (all before any prompt)."""
    cs = review.change_set
    say = console.say
    say(
        f"Change set {cs.get('ChangeSetName')} for stack {cs.get('StackName')} "
        f"({cs.get('Status')}, {cs.get('ExecutionStatus')})"
    )
    if review.parameters:
        say("")
        say("Parameters:")
        for line in table([[name, _parameter_value(old, new)] for name, old, new in review.parameters]):
            say(line)
    say("")
    _render_changes(review, console, "")
    if review.notes:
        say("Notes:")
        for note in review.notes:
            say(f"  {note}")
        say("")
    _render_security(review, console)
    _render_unlisted(review, console)
    _render_guard(review, console)


def _render_changes(review: Review, console: Console, indent: str) -> None:
    say = console.say
    counts: dict[str, int] = {}
    for c in review.changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    summary = ", ".join(f"{n} {a.lower()}" for a, n in sorted(counts.items()))
    say(f"{indent}Resource changes ({len(review.changes)}: {summary or 'none'}):")
    rows = [["Action", "Logical ID", "Type", "Replacement", "PolicyAction"]]
    for c in review.changes:
        rows.append([c.action, c.logical_id, c.resource_type, c.replacement or "-", c.policy_action or "-"])
    danger = {
        f.logical_id.rsplit("/", 1)[-1]
        for f in review.findings
        if f.kind not in ("broadening", "change") and "/" not in f.logical_id
    }
    colors = {"Add": "32", "Modify": "33", "Remove": "31"}
    for i, line in enumerate(table(rows, indent=indent + "  ")):
        change = review.changes[i - 1] if i else None
        if change and change.logical_id in danger:
            line = console.paint(line, "1;31")
        elif change:
            line = console.paint(line, colors.get(change.action, "0"))
        say(line)
        if change and not change.values_known:
            say(f"{indent}        (described without property values)")
        if change and change.action in ("Modify", "Dynamic"):
            for prop_line in table(property_rows(change), indent=indent + "        "):
                say(prop_line)
        if change and change.logical_id in review.nested:
            say(f"{indent}    nested stack {change.logical_id}:")
            _render_changes(review.nested[change.logical_id], console, indent + "    ")
    say("")


def _render_security(review: Review, console: Console) -> None:
    say = console.say
    iam = _all_iam(review)
    if iam:
        broad = sum(1 for _, f in iam if f.broadening)
        say(f"IAM changes ({len(iam)}, {broad} security-broadening):")
        rows = [["!" if f.broadening else " ", prefix + f.logical_id, f.where, f.text] for prefix, f in iam]
        for line, (_, finding) in zip(table(rows), iam, strict=True):
            say(console.paint(line, "1;31") if finding.broadening else line)
    else:
        say("IAM changes: none")
    broadening = [f for f in review.findings if f.kind == "broadening"]
    if broadening:
        say(console.paint("Security broadening (not executed under --yes without --allow-broadening):", "1;33"))
        for f in broadening:
            state = "  [allowed by --allow-broadening]" if f.allowed else ""
            say(f"  {f.logical_id} ({f.resource_type}): {f.what}{state}")
            for cause in f.causes:
                say(f"      {cause}")
    say("")


def _render_unlisted(review: Review, console: Console) -> None:
    """The in-place changes not on the allow-list of harmless changes (harmless.py)."""
    unlisted = [f for f in review.findings if f.kind == "change"]
    if not unlisted:
        return
    say = console.say
    say(console.paint(UNLISTED_TITLE + ":", "1;33"))
    for f in unlisted:
        state = f"  [allowed by {f.override}]" if f.allowed else ""
        say(f"  {f.logical_id} ({f.resource_type}): {f.what}{state}")
        for cause in f.causes:
            say(f"      {cause}")
    names = [f.override for f in unlisted if not f.allowed]
    if names:
        say("  To execute them under --yes, name each one: " + " ".join(dict.fromkeys(names)))
    say("")


UNLISTED_TITLE = "Changes not known to be harmless (not executed under --yes without --allow-change)"


def _all_iam(review: Review, prefix: str = "") -> list[tuple[str, IamFinding]]:
    out = [(prefix, f) for f in review.iam]
    for name, child in review.nested.items():
        out += _all_iam(child, f"{prefix}{name}/")
    return out


def _render_guard(review: Review, console: Console) -> None:
    say = console.say
    for f in review.allowed:
        if f.kind != "broadening":
            say(f"Guard: {f.logical_id} ({f.resource_type}) {f.what}: allowed by {f.override}.")
    for option in review.unmatched_overrides:
        say(console.paint(f"Guard: {option} matches nothing in this change set.", "1;31"))
    blocking = review.violations
    if blocking:
        say(console.paint("Guard: this change set would destroy or unprotect data and will not be executed:", "1;31"))
        for f in blocking:
            say(f"  {f.logical_id} ({f.resource_type}) [{f.kind}]: {f.what}")
            for cause in f.causes:
                say(f"      {cause}")
        say("  To go ahead anyway, name each one: " + " ".join(dict.fromkeys(f.override for f in blocking)))
    elif any(f.kind != "broadening" for f in review.allowed):
        say("Guard: nothing else removes, replaces or unprotects a stateful resource.")
    else:
        say("Guard: no stateful resource is removed, replaced or unprotected.")


def review_markdown(review: Review) -> str:
    """The review as Markdown, for a pull-request comment (--review-out FILE)."""
    cs = review.change_set
    out = [f"### Change set `{cs.get('ChangeSetName')}` for stack `{cs.get('StackName')}`", ""]
    blocking = review.violations
    if blocking:
        out.append("**Blocked by the guard** (data would be destroyed or unprotected):")
        out.append("")
        for f in blocking:
            out.append(f"- `{f.logical_id}` ({f.resource_type}) [{f.kind}]: {_md(f.what)}")
            out += [f"  - {_md(c)}" for c in f.causes]
            out.append(f"  - to allow: `{f.override}`")
        out.append("")
    broadening = [f for f in review.findings if f.kind == "broadening"]
    if broadening:
        out.append("**Security broadening** (not executed under `--yes` without `--allow-broadening`):")
        out.append("")
        for f in broadening:
            allowed = " (allowed)" if f.allowed else ""
            out.append(f"- `{f.logical_id}` ({f.resource_type}): {_md(f.what)}{allowed} — {_md('; '.join(f.causes))}")
        out.append("")
    unlisted = [f for f in review.findings if f.kind == "change"]
    if unlisted:
        out += [f"**{UNLISTED_TITLE}:**", ""]
        for f in unlisted:
            allowed = " (allowed)" if f.allowed else ""
            out.append(f"- `{f.logical_id}` ({f.resource_type}): {_md(f.what)}{allowed} — {_md('; '.join(f.causes))}")
            out.append(f"  - to allow: `{f.override}`")
        out.append("")
    if not blocking and not broadening and not unlisted:
        out += ["Guard: nothing blocks this change set.", ""]
    if review.unmatched_overrides:
        out += [f"- override matching nothing: `{o}`" for o in review.unmatched_overrides] + [""]
    if review.parameters:
        out += ["| Parameter | Value |", "|---|---|"]
        out += [f"| `{n}` | {_md(_parameter_value(old, new))} |" for n, old, new in review.parameters]
        out.append("")
    out += _md_changes(review, "")
    iam = _all_iam(review)
    if iam:
        out += ["", "| | Resource | Where | Change |", "|---|---|---|---|"]
        out += [
            f"| {'!' if f.broadening else ''} | `{p}{f.logical_id}` | {_md(f.where)} | {_md(f.text)} |" for p, f in iam
        ]
    if review.notes:
        out += ["", "Notes:", ""] + [f"- {_md(n)}" for n in review.notes]
    return "\n".join(out) + "\n"


def _md_changes(review: Review, prefix: str) -> list[str]:
    out = ["| Action | Logical ID | Type | Replacement | PolicyAction | Changed |", "|---|---|---|---|---|---|"]
    for c in review.changes:
        changed = (
            "<br>".join(
                _md(f"{label.removeprefix('· ')}: {values}" + (f" ({forces})" if forces else ""))
                for label, forces, values in property_rows(c)
            )
            if c.action in ("Modify", "Dynamic")
            else ""
        )
        out.append(
            f"| {c.action} | `{prefix}{c.logical_id}` | {c.resource_type} | {c.replacement or '-'} "
            f"| {c.policy_action or '-'} | {changed} |"
        )
    for name, child in review.nested.items():
        out += ["", f"Nested stack `{prefix}{name}`:", ""] + _md_changes(child, f"{prefix}{name}/")
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_result(result: ExecutionResult, stack_name: str, console: Console) -> None:
    console.say("")
    if result.succeeded:
        console.say(console.paint(f"Stack {stack_name}: {result.status}", "32"))
        if result.outputs or result.outputs_note:
            console.say("")
            console.say("Outputs:" + (f" ({result.outputs_note})" if result.outputs_note else ""))
            for line in table([[k, v] for k, v in sorted(result.outputs.items())]):
                console.say(line)
        return
    console.say(console.paint(f"Stack {stack_name}: {result.status} (the deployment failed)", "1;31"))
    if result.failures:
        console.say("Failed resources (root cause first):")
        rows = [
            [
                e.get("LogicalResourceId", ""),
                e.get("ResourceType", ""),
                e.get("ResourceStatus", ""),
                e.get("ResourceStatusReason") or "",
            ]
            for e in result.failures
        ]
        for line in table(rows):
            console.say(line)
    elif result.status_reason:
        console.say(f"Reason: {result.status_reason}")
