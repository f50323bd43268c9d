"""The security diff: what a change to a policy-bearing resource grants or takes away."""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable
from typing import Any

from market_cfn.deploy.common import _short
from market_cfn.deploy.model import IamFinding, ResourceChangeView, _properties_of

# Resources whose properties are IAM policies (identity- or resource-based).
POLICY_PROPERTIES = {
    "AWS::IAM::Role": ("AssumeRolePolicyDocument", "Policies", "ManagedPolicyArns", "PermissionsBoundary"),
    "AWS::IAM::User": ("Policies", "ManagedPolicyArns", "PermissionsBoundary"),
    "AWS::IAM::Group": ("Policies", "ManagedPolicyArns"),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::RolePolicy": ("PolicyDocument",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::Lambda::Permission": ("Action", "Principal", "SourceArn", "SourceAccount", "FunctionName", "PrincipalOrgID"),
}

# --- IAM ------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _canon(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _document(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


Grant = tuple[str, str, str, str, str]  # effect, principal, condition, action, resource


def _grants(document: Any) -> set[Grant]:
    grants: set[Grant] = set()
    for statement in _as_list(_document(document).get("Statement")):
        if not isinstance(statement, dict):
            continue
        effect = statement.get("Effect", "Allow")
        principals = []
        for key in ("Principal", "NotPrincipal"):
            if key in statement:
                raw = statement[key]
                if isinstance(raw, dict):
                    principals += [f"{key}:{kind}:{_canon(p)}" for kind, ps in raw.items() for p in _as_list(ps)]
                else:
                    principals.append(f"{key}:{_canon(raw)}")
        condition = _canon(statement.get("Condition", {}))
        actions = [_canon(a) for a in _as_list(statement.get("Action"))] + [
            "not:" + _canon(a) for a in _as_list(statement.get("NotAction"))
        ]
        resources = [_canon(r) for r in _as_list(statement.get("Resource"))] + [
            "not:" + _canon(r) for r in _as_list(statement.get("NotResource"))
        ]
        for principal in principals or ["-"]:
            for action in actions or ["-"]:
                for resource in resources or ["-"]:
                    grants.add((effect, principal, condition, action, resource))
    return grants


def _covered(grant: Grant, others: set[Grant]) -> bool:
    effect, principal, condition, action, resource = grant
    action = action.lower()  # IAM action names are case-insensitive; resources are not
    for o_effect, o_principal, o_condition, o_action, o_resource in others:
        # an unconditional statement covers the same grant under any condition
        if (o_effect, o_principal) != (effect, principal) or o_condition not in (condition, "{}"):
            continue
        o_action = o_action.lower()
        if (action == o_action or (not action.startswith("not:") and fnmatch.fnmatchcase(action, o_action))) and (
            resource == o_resource or (not resource.startswith("not:") and fnmatch.fnmatchcase(resource, o_resource))
        ):
            return True
    return False


def _describe_grants(grants: Iterable[Grant]) -> list[str]:
    """Group grants back into readable statements: Effect actions on resources [principal] [if]."""
    groups: dict[tuple[str, str, str, str], set[str]] = {}
    for effect, principal, condition, action, resource in grants:
        groups.setdefault((effect, principal, condition, resource), set()).add(action)
    by_actions: dict[tuple[str, str, str, tuple[str, ...]], list[str]] = {}
    for (effect, principal, condition, resource), actions in groups.items():
        by_actions.setdefault((effect, principal, condition, tuple(sorted(actions))), []).append(resource)
    lines = []
    for (effect, principal, condition, action_names), resources in sorted(by_actions.items()):
        text = f"{effect} {', '.join(action_names)} on {', '.join(sorted(resources))}"
        if principal != "-":
            text += f" to {principal.split(':', 1)[1]}"
        if condition != "{}":
            text += f" if {condition}"
        lines.append(text)
    return lines


def _policy_documents(resource_type: str, props: dict[str, Any]) -> dict[str, Any]:
    """Named policy documents inside a resource's properties."""
    docs: dict[str, Any] = {}
    if "AssumeRolePolicyDocument" in props:
        docs["trust policy"] = props["AssumeRolePolicyDocument"]
    for policy in _as_list(props.get("Policies")):
        if isinstance(policy, dict):
            docs[f"inline policy {policy.get('PolicyName', '?')}"] = policy.get("PolicyDocument")
    if "PolicyDocument" in props:
        docs["policy"] = props["PolicyDocument"]
    return docs


def _props_from_details(view: ResourceChangeView, side: str) -> dict[str, Any]:
    props = {}
    for p in view.properties:
        if p.attribute == "Properties" and "/" not in p.name:
            value = p.before if side == "before" else p.after
            if value is not None:
                try:
                    props[p.name] = json.loads(value)
                except ValueError:
                    props[p.name] = value
    return props


def iam_findings(view: ResourceChangeView) -> list[IamFinding]:
    watched = POLICY_PROPERTIES.get(view.resource_type)
    if not watched or view.action not in ("Add", "Modify", "Remove", "Import"):
        return []
    if (
        view.action == "Modify"
        and view.properties
        and not any(p.attribute == "Properties" and p.name.split("/")[0] in watched for p in view.properties)
    ):
        return []  # e.g. only tags changed
    before = _properties_of(view.before_context) if view.action != "Add" else {}
    after = _properties_of(view.after_context) if view.action != "Remove" else {}
    if view.action == "Modify" and not before and not after:
        before, after = _props_from_details(view, "before"), _props_from_details(view, "after")
    findings = []

    def add(where: str, broadening: bool, text: str) -> None:
        findings.append(IamFinding(view.logical_id, view.resource_type, where, broadening, text))

    if view.resource_type == "AWS::Lambda::Permission":
        if view.action in ("Add", "Modify", "Import"):
            if after:
                source = after.get("SourceArn") or after.get("SourceAccount") or "any source"
                add(
                    "resource policy",
                    True,
                    f"+ {after.get('Principal', '?')} may {after.get('Action', '?')} "
                    f"{_short(after.get('FunctionName', '?'), 80)} (from {_short(source, 80)})",
                )
            else:
                add("resource policy", True, "+ new invoke permission; CloudFormation reported no values: review it")
        else:
            add("resource policy", False, "- invoke permission removed")
        return findings

    if not before and not after:
        if view.action == "Remove":
            add("policy", False, f"- {view.resource_type} removed")
        else:
            verb = {"Add": "new", "Import": "imported"}.get(view.action, "changed")
            add("policy", True, f"+ {verb} {view.resource_type}; CloudFormation reported no policy values: review it")
        return findings
    before_docs, after_docs = (
        _policy_documents(view.resource_type, before),
        _policy_documents(view.resource_type, after),
    )
    for where in sorted(before_docs.keys() | after_docs.keys()):
        old, new = _grants(before_docs.get(where)), _grants(after_docs.get(where))
        widened = {g for g in new if g[0] == "Allow" and not _covered(g, old)}
        unblocked = {g for g in old if g[0] == "Deny" and not _covered(g, new)}
        narrowed = {g for g in old if g[0] == "Allow" and not _covered(g, new)}
        added_denies = {g for g in new if g[0] == "Deny" and not _covered(g, old)}
        for line in _describe_grants(widened):
            add(where, True, "+ " + line)
        for line in _describe_grants(unblocked):
            add(where, True, "- " + line + "  (Deny removed)")
        for line in _describe_grants(narrowed | added_denies):
            add(where, False, ("+ " if line.startswith("Deny") else "- ") + line)
    old_arns = {_canon(a) for a in _as_list(before.get("ManagedPolicyArns"))}
    new_arns = {_canon(a) for a in _as_list(after.get("ManagedPolicyArns"))}
    for arn in sorted(new_arns - old_arns):
        add("managed policies", True, f"+ attach {arn}")
    for arn in sorted(old_arns - new_arns):
        add("managed policies", False, f"- detach {arn}")
    if before.get("PermissionsBoundary") and not after.get("PermissionsBoundary") and view.action != "Remove":
        add("permissions boundary", True, f"- permissions boundary {_canon(before['PermissionsBoundary'])} removed")
    return findings
