"""IAM policy documents as grants: what a statement grants (NotAction/NotResource/NotPrincipal kept whole,
as the complement they are) and whether one grant covers another (IAM wildcards, action names
case-insensitive, Conditions compared test by test). Pure; iam.py decides what is dangerous."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

Term = tuple[str, Any]  # ("in", "s3:getobject") | ("not", ("s3:deleteobject", ...)) | ("in", "-") none


@dataclass(frozen=True)
class Grant:
    effect: str
    principal: Term
    action: Term
    resource: Term
    condition: str  # canonical JSON; "{}" = none


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def canon(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def parse_document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def _principals(statement: dict[str, Any]) -> list[Term]:
    if "NotPrincipal" in statement:
        raw = statement["NotPrincipal"]
        items = (
            [f"{k}:{canon(p)}" for k, ps in raw.items() for p in as_list(ps)] if isinstance(raw, dict) else [canon(raw)]
        )
        return [("not", tuple(sorted(items)))]
    if "Principal" not in statement:
        return [("in", "-")]
    raw = statement["Principal"]
    if not isinstance(raw, dict):
        return [("in", "*" if raw == "*" else canon(raw))]
    out: list[Term] = []
    for kind, values in raw.items():
        for p in as_list(values):
            text = canon(p)
            if kind == "AWS" and text == "*":
                out.append(("in", "*"))
            elif kind == "AWS" and re.fullmatch(r"\d{12}", text):
                out.append(("in", f"AWS:arn:aws:iam::{text}:root"))
            else:
                out.append(("in", f"{kind}:{text}"))
    return out


def grants(document: Any) -> set[Grant]:
    """A policy's statements as atomic grants; NotAction/NotResource/NotPrincipal stay whole (a complement)."""
    out: set[Grant] = set()
    for statement in as_list(parse_document(document).get("Statement")):
        if not isinstance(statement, dict):
            continue
        effect = str(statement.get("Effect", "Allow"))
        condition = canon(statement.get("Condition") or {})
        actions: list[Term] = [("in", canon(a)) for a in as_list(statement.get("Action"))]
        if "NotAction" in statement:
            actions.append(("not", tuple(sorted(canon(a) for a in as_list(statement["NotAction"])))))
        resources: list[Term] = [("in", canon(r)) for r in as_list(statement.get("Resource"))]
        if "NotResource" in statement:
            resources.append(("not", tuple(sorted(canon(r) for r in as_list(statement["NotResource"])))))
        for principal in _principals(statement):
            for action in actions or [("in", "-")]:
                for resource in resources or [("in", "-")]:
                    out.add(Grant(effect, principal, action, resource, condition))
    return out


def _overlaps(a: str, b: str) -> bool:
    return fnmatch.fnmatchcase(a, b) or fnmatch.fnmatchcase(b, a)


def lower(term: Term) -> Term:
    kind, value = term
    return (kind, tuple(v.lower() for v in value)) if kind == "not" else (kind, str(value).lower())


def action_covers(general: Term, specific: Term) -> bool:
    """As _term_covers, for actions: IAM action names are case-insensitive (resources are not)."""
    return term_covers(lower(general), lower(specific))


def term_covers(general: Term, specific: Term) -> bool:
    """Whether everything `specific` names is also named by `general` (patterns as IAM wildcards)."""
    g_kind, g = general
    s_kind, s = specific
    if s_kind == "in" and g_kind == "in":
        return bool(s == g or fnmatch.fnmatchcase(s, g))
    if s_kind == "in" and g_kind == "not":  # s must avoid every exclusion
        return not any(_overlaps(s, x) for x in g)
    if s_kind == "not" and g_kind == "in":  # a complement is only inside "everything"
        return bool(g == "*")
    # both complements: general excludes no more than specific does
    return all(any(fnmatch.fnmatchcase(x, y) for y in s) for x in g)


def _condition_covers(general: str, specific: str) -> bool:
    """`general` restricts no more than `specific`: each of its (operator, key) tests is in `specific`
    with no more values allowed."""
    g, s = json.loads(general), json.loads(specific)
    for operator, tests in g.items():
        if not isinstance(tests, dict):
            return general == specific
        for key, values in tests.items():
            s_tests = s.get(operator)
            if not isinstance(s_tests, dict) or key not in s_tests:
                return False
            if not {canon(v) for v in as_list(s_tests[key])} <= {canon(v) for v in as_list(values)}:
                return False
    return True


def principal_covers(general: Term, specific: Term) -> bool:
    return general == specific or general == ("in", "*")


def covered(grant: Grant, others: Iterable[Grant]) -> bool:
    for o in others:
        if o.effect != grant.effect or not principal_covers(o.principal, grant.principal):
            continue
        if not (action_covers(o.action, grant.action) and term_covers(o.resource, grant.resource)):
            continue
        if grant.effect == "Allow" and _condition_covers(o.condition, grant.condition):
            return True
        if grant.effect == "Deny" and _condition_covers(grant.condition, o.condition):
            return True
    return False


def term_text(term: Term) -> str:
    kind, value = term
    return f"everything except {', '.join(value)}" if kind == "not" else str(value)


def describe(items: Iterable[Grant]) -> list[str]:
    """Group grants back into readable statements: Effect actions on resources [to principal] [if]."""
    groups: dict[tuple[str, Term, str, Term], set[str]] = {}
    for g in items:
        groups.setdefault((g.effect, g.principal, g.condition, g.resource), set()).add(term_text(g.action))
    by_actions: dict[tuple[str, Term, str, tuple[str, ...]], list[str]] = {}
    for (effect, principal, condition, resource), actions in groups.items():
        by_actions.setdefault((effect, principal, condition, tuple(sorted(actions))), []).append(term_text(resource))
    lines = []
    for (effect, principal, condition, action_names), resources in sorted(by_actions.items(), key=str):
        text = f"{effect} {', '.join(action_names)}"
        if resources != ["-"]:  # a trust policy names no Resource
            text += f" on {', '.join(sorted(resources))}"
        if principal != ("in", "-"):
            text += f" to {term_text(principal)}"
        if condition != "{}":
            text += f" if {condition}"
        lines.append(text)
    return lines
