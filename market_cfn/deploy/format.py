"""Rendering the review and the result for a terminal; it prints, it never decides."""

from __future__ import annotations

from market_cfn.deploy.common import Console, _short, table
from market_cfn.deploy.follow import ExecutionResult
from market_cfn.deploy.guard import STATEFUL_TYPES
from market_cfn.deploy.model import Review

# --- Rendering the review -------------------------------------------------------------


def render_review(review: Review, console: Console) -> None:
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
    counts: dict[str, int] = {}
    for c in review.changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    summary = ", ".join(f"{n} {a.lower()}" for a, n in sorted(counts.items()))
    say(f"Resource changes ({len(review.changes)}: {summary or 'none'}):")
    rows = [["Action", "Logical ID", "Type", "Replacement"]]
    colors = {"Add": "32", "Modify": "33", "Remove": "31"}
    for c in review.changes:
        rows.append([c.action, c.logical_id, c.resource_type, c.replacement or "-"])
    for i, line in enumerate(table(rows)):
        change = review.changes[i - 1] if i else None
        if (
            change
            and change.resource_type in STATEFUL_TYPES
            and (change.action == "Remove" or change.replacement in ("True", "Conditional"))
        ):
            line = console.paint(line, "1;31")
        elif change:
            line = console.paint(line, colors.get(change.action, "0"))
        say(line)
        if change and change.action == "Modify" and change.properties:
            prop_rows = []
            for p in change.properties:
                label = (
                    p.name
                    if p.attribute == "Properties"
                    else f"{p.attribute}:{p.name}"
                    if p.name != p.attribute
                    else p.attribute
                )
                values = (
                    f"{_short(p.before, 60)} → {_short(p.after, 60)}"
                    if (p.before is not None or p.after is not None)
                    else "(values not reported)"
                )
                forces = {"Always": "replaces", "Conditionally": "may replace", "Never": "in place"}.get(
                    p.requires_recreation, ""
                )
                prop_rows.append([f"· {label}", forces, values])
            for prop_line in table(prop_rows, indent="        "):
                say(prop_line)
    say("")
    if review.iam:
        broad = sum(1 for f in review.iam if f.broadening)
        say(f"IAM changes ({len(review.iam)}, {broad} security-broadening):")
        rows = [["!" if f.broadening else " ", f.logical_id, f.where, f.text] for f in review.iam]
        for line, finding in zip(table(rows), review.iam, strict=True):
            say(console.paint(line, "1;31") if finding.broadening else line)
        say("")
    else:
        say("IAM changes: none")
        say("")
    for v in review.allowed:
        say(f"Guard: {v.logical_id} ({v.resource_type}) will be {v.what}: allowed by --allow-replacement.")
    if review.violations:
        say(console.paint("Guard: this change set would destroy data and will not be executed:", "1;31"))
        for v in review.violations:
            say(f"  {v.logical_id} ({v.resource_type}) would be {v.what}:")
            for cause in v.causes:
                say(f"      {cause}")
        say(
            "  To go ahead anyway, name each one: "
            + " ".join(f"--allow-replacement {v.logical_id}" for v in review.violations)
        )
    else:
        say(
            "Guard: no stateful resource is removed or replaced"
            + (" (other than those allowed)." if review.allowed else ".")
        )


def _parameter_value(old: str | None, new: str | None) -> str:
    def show(value: str | None) -> str:
        return "(none)" if value is None else value if value != "" else '""'

    if old is None or old == new:
        return show(new)
    return f"{show(old)} → {show(new)}"


def review_markdown(review: Review) -> str:
    """The review as Markdown, for a pull-request comment (--review-out FILE)."""
    cs = review.change_set
    lines = [f"### Change set `{cs.get('ChangeSetName')}` for stack `{cs.get('StackName')}`", ""]
    if review.parameters:
        lines += ["| Parameter | Value |", "|---|---|"]
        lines += [f"| `{n}` | {_md(_parameter_value(old, new))} |" for n, old, new in review.parameters]
        lines.append("")
    lines += ["| Action | Logical ID | Type | Replacement | PolicyAction |", "|---|---|---|---|---|"]
    for c in review.changes:
        lines.append(
            f"| {c.action} | `{c.logical_id}` | {c.resource_type} | {c.replacement or '-'} | {c.policy_action or '-'} |"
        )
    lines.append("")
    blocking = review.violations
    if blocking:
        lines.append("**Blocked by the guard:**")
        lines += [f"- `{f.logical_id}` ({f.resource_type}) {_md(f.what)}: `{f.override}`" for f in blocking]
    else:
        lines.append("Guard: nothing blocks.")
    return "\n".join(lines) + "\n"


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
