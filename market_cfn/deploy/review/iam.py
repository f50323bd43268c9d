"""The security diff: what a change to a policy-bearing resource really grants or takes away, and which
of those are dangerous broadenings (kind "broadening": blocked under --yes unless --allow-broadening).
Read from every source of values (sources.py): the resolved templates and the change set's own values."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from market_cfn.deploy.review.diff import ResourceDiff, StackIdentity
from market_cfn.deploy.review.model import Finding, IamFinding, ResourceChangeView
from market_cfn.deploy.review.network import ingress_review
from market_cfn.deploy.review.policy import (
    Grant,
    Term,
    as_list,
    canon,
    covered,
    describe,
    grants,
    lower,
    principal_covers,
    term_covers,
)
from market_cfn.deploy.review.sources import TEMPLATE, Reading, readings, unite

# Where each policy-bearing type keeps its policy documents (CloudFormation template reference).
DOCUMENTS: dict[str, tuple[str, ...]] = {
    "AWS::IAM::Role": ("AssumeRolePolicyDocument",),
    "AWS::IAM::Policy": ("PolicyDocument",),
    "AWS::IAM::ManagedPolicy": ("PolicyDocument",),
    "AWS::IAM::RolePolicy": ("PolicyDocument",),
    "AWS::IAM::UserPolicy": ("PolicyDocument",),
    "AWS::IAM::GroupPolicy": ("PolicyDocument",),
    "AWS::KMS::Key": ("KeyPolicy",),
    "AWS::KMS::ReplicaKey": ("KeyPolicy",),
    "AWS::S3::BucketPolicy": ("PolicyDocument",),
    "AWS::S3Express::BucketPolicy": ("PolicyDocument",),
    "AWS::SQS::QueuePolicy": ("PolicyDocument",),
    "AWS::SNS::TopicPolicy": ("PolicyDocument",),
    "AWS::ECR::Repository": ("RepositoryPolicyText",),
    "AWS::Events::EventBus": ("Policy",),
    "AWS::SecretsManager::ResourcePolicy": ("ResourcePolicy",),
    "AWS::DynamoDB::Table": ("ResourcePolicy.PolicyDocument", "StreamSpecification.ResourcePolicy.PolicyDocument"),
    "AWS::ApiGateway::RestApi": ("Policy",),
    "AWS::OpenSearchService::Domain": ("AccessPolicies",),
    "AWS::Elasticsearch::Domain": ("AccessPolicies",),
    "AWS::Backup::BackupVault": ("AccessPolicy",),
    "AWS::EFS::FileSystem": ("FileSystemPolicy",),
}
WITH_INLINE = frozenset({"AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group"})  # Policies, ManagedPolicyArns
ATTACHABLE = frozenset({"AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"})  # Roles, Users, Groups
SECURITY_TYPES = frozenset(
    set(DOCUMENTS)
    | WITH_INLINE
    | {
        "AWS::IAM::UserToGroupAddition",
        "AWS::Events::EventBusPolicy",
        "AWS::Lambda::Permission",
        "AWS::Lambda::Url",
        "AWS::ApiGateway::Method",
        "AWS::ApiGatewayV2::Route",
        "AWS::EC2::SecurityGroup",
        "AWS::EC2::SecurityGroupIngress",
    }
)
POLICY_PROPERTIES = DOCUMENTS  # the older name
# Types whose policy is one property among many: without values, a change to them says nothing about it.
DATA_WITH_POLICY = frozenset(
    {
        "AWS::KMS::Key",
        "AWS::KMS::ReplicaKey",
        "AWS::ECR::Repository",
        "AWS::Events::EventBus",
        "AWS::DynamoDB::Table",
        "AWS::ApiGateway::RestApi",
        "AWS::OpenSearchService::Domain",
        "AWS::Elasticsearch::Domain",
        "AWS::Backup::BackupVault",
        "AWS::EFS::FileSystem",
    }
)

# Actions that support no resource-level permissions, so "*" is the only possible Resource: the X-Ray
# telemetry actions (AWS X-Ray developer guide, "Identity-based policy examples" and the Service
# Authorization Reference for X-Ray: PutTraceSegments, PutTelemetryRecords, GetSamplingRules,
# GetSamplingTargets, GetSamplingStatisticSummaries list no resource type).
STAR_ONLY_ACTIONS = frozenset(
    {
        "xray:puttracesegments",
        "xray:puttelemetryrecords",
        "xray:getsamplingrules",
        "xray:getsamplingtargets",
        "xray:getsamplingstatisticsummaries",
    }
)
# Condition keys that tie a "*" principal to one caller (IAM User Guide, "AWS global condition context
# keys"): with one of them a public principal is not public.
SCOPING_KEYS = frozenset(
    {
        "aws:sourcearn",
        "aws:sourceaccount",
        "aws:sourceowner",
        "aws:sourceorgid",
        "aws:principalorgid",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:sourcevpce",
        "aws:sourcevpc",
    }
)
_BROAD_MANAGED = re.compile(r":policy/(AdministratorAccess|PowerUserAccess|IAMFullAccess|.*FullAccess)$")
_ACCOUNT_IN_ARN = re.compile(r"^arn:[^:]+:(?:iam|sts)::(\d{12}):")


def _get(props: Mapping[str, Any], dotted: str) -> Any:
    value: Any = props
    for key in dotted.split("."):
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _lambda_permission_policy(props: Mapping[str, Any]) -> dict[str, Any]:
    """AWS::Lambda::Permission as the statement it adds to the function's resource policy."""
    principal = canon(props.get("Principal", "?"))
    if principal == "*":
        who: Any = "*"
    elif principal.endswith(".amazonaws.com") or principal.endswith(".amazonaws.com.cn"):
        who = {"Service": principal}
    else:
        who = {"AWS": principal}
    condition: dict[str, Any] = {}
    if props.get("SourceArn"):
        condition.setdefault("ArnLike", {})["aws:SourceArn"] = props["SourceArn"]
    for prop, key in (("SourceAccount", "aws:SourceAccount"), ("PrincipalOrgID", "aws:PrincipalOrgID")):
        if props.get(prop):
            condition.setdefault("StringEquals", {})[key] = props[prop]
    if props.get("FunctionUrlAuthType"):
        condition.setdefault("StringEquals", {})["lambda:FunctionUrlAuthType"] = props["FunctionUrlAuthType"]
    statement = {
        "Effect": "Allow",
        "Principal": who,
        "Action": props.get("Action"),
        "Resource": props.get("FunctionName"),
    }
    if condition:
        statement["Condition"] = condition
    return {"Statement": [statement]}


def _event_bus_policy(props: Mapping[str, Any]) -> dict[str, Any]:
    if props.get("Statement"):
        return {"Statement": [props["Statement"]]}
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Action": props.get("Action"),
        "Principal": {"AWS": props.get("Principal")},
    }
    if props.get("Principal") == "*":
        statement["Principal"] = "*"
    if props.get("Condition"):
        condition = props["Condition"]
        statement["Condition"] = {
            condition.get("Type", "StringEquals"): {condition.get("Key", "?"): condition.get("Value")}
        }
    return {"Statement": [statement]}


def documents(resource_type: str, props: Mapping[str, Any]) -> dict[str, Any]:
    """Named policy documents inside a resource's (resolved) properties."""
    docs: dict[str, Any] = {}
    for dotted in DOCUMENTS.get(resource_type, ()):
        value = _get(props, dotted)
        if value is not None:
            docs["trust policy" if dotted == "AssumeRolePolicyDocument" else dotted] = value
    if resource_type in WITH_INLINE:
        for policy in as_list(props.get("Policies")):
            if isinstance(policy, dict):
                docs[f"inline policy {policy.get('PolicyName', '?')}"] = policy.get("PolicyDocument")
    if resource_type == "AWS::Lambda::Permission" and props:
        docs["resource policy"] = _lambda_permission_policy(props)
    if resource_type == "AWS::Events::EventBusPolicy" and props:
        docs["event bus policy"] = _event_bus_policy(props)
    return docs


def _members(resource_type: str, props: Mapping[str, Any]) -> set[str]:
    """Who a policy is attached to (Policy/ManagedPolicy Roles/Users/Groups; UserToGroupAddition Users)."""
    if resource_type == "AWS::IAM::UserToGroupAddition":
        return {f"user {canon(u)} in group {canon(props.get('GroupName'))}" for u in as_list(props.get("Users"))}
    out = set()
    for key, label in (("Roles", "role"), ("Users", "user"), ("Groups", "group")):
        out |= {f"{label} {canon(x)}" for x in as_list(props.get(key))}
    return out


@dataclass
class _Out:
    logical_id: str
    resource_type: str
    iam: list[IamFinding]
    dangerous: list[Finding]

    def show(self, where: str, broadening: bool, text: str) -> None:
        self.iam.append(IamFinding(self.logical_id, self.resource_type, where, broadening, text))

    def danger(self, what: str, cause: str) -> None:
        self.dangerous.append(
            Finding("broadening", self.logical_id, self.resource_type, what, (cause,), "", False, False)
        )


def _foreign(principal: str, stack: StackIdentity) -> bool:
    match = _ACCOUNT_IN_ARN.match(principal.split(":", 1)[1] if principal.startswith("AWS:") else "")
    if not match:
        return False  # a token for one of the stack's own resources, or not an account principal
    return not stack.account or match.group(1) != stack.account


def _own_root(principal: Term, stack: StackIdentity) -> bool:
    kind, value = principal
    if kind != "in" or not str(value).startswith("AWS:") or not str(value).endswith(":root"):
        return False
    match = _ACCOUNT_IN_ARN.match(str(value)[4:])
    return bool(match and stack.account and match.group(1) == stack.account) or "${AWS::AccountId}" in str(value)


def _dangers(g: Grant, old: set[Grant], stack: StackIdentity, identity: bool) -> list[str]:
    out = []
    kind, action = lower(g.action)
    if _own_root(g.principal, stack):
        # A resource policy granting to the stack's own account root delegates to that account's IAM
        # policies (the default KMS key policy: kms:* to the account root; AWS KMS developer guide,
        # "Default key policy"): it grants nobody anything by itself.
        pass
    elif kind == "not":
        out.append("Allow with NotAction (a complement: every other action)")
    elif action == "*" or action.endswith(":*"):
        out.append(f"wildcard action {action}")
    r_kind, resource = g.resource
    if r_kind == "not":
        out.append("Allow with NotResource (a complement: every other resource)")
    elif resource == "*" and identity and not (kind == "in" and action in STAR_ONLY_ACTIONS):
        out.append("wildcard resource *")
    p_kind, principal = g.principal
    scoped = any(
        k.lower() in SCOPING_KEYS
        for tests in json.loads(g.condition).values()
        if isinstance(tests, dict)
        for k in tests
    )
    if p_kind == "not":
        out.append("Allow with NotPrincipal (every other principal)")
    elif principal == "*" and not scoped:
        out.append("public principal *")
    elif _foreign(principal, stack):
        account = _ACCOUNT_IN_ARN.match(principal.split(":", 1)[1])
        mine = stack.account or "unknown"
        out.append(f"cross-account principal (account {account.group(1) if account else '?'}, the stack's: {mine})")
    if old:
        bare = [
            o
            for o in old
            if o.effect == "Allow" and term_covers(o.action, g.action) and term_covers(o.resource, g.resource)
        ]
        if any(principal_covers(o.principal, g.principal) and o.condition != "{}" for o in bare):
            out.append("a Condition removed or loosened")
    return out


def _compare(out: _Out, where: str, before: Any, after: Any, stack: StackIdentity, identity: bool) -> None:
    old, new = grants(before), grants(after)
    widened = {g for g in new if g.effect == "Allow" and not covered(g, old)}
    unblocked = {g for g in old if g.effect == "Deny" and not covered(g, new)}
    narrowed = {g for g in old if g.effect == "Allow" and not covered(g, new)}
    added_denies = {g for g in new if g.effect == "Deny" and not covered(g, old)}
    for line in describe(widened):
        out.show(where, True, "+ " + line)
    for line in describe(unblocked):
        out.show(where, True, "- " + line + "  (Deny removed)")
        out.danger(f"{where}: Deny removed: {line}", "a removed Deny lets through what it stopped")
    for line in describe(narrowed | added_denies):
        out.show(where, False, ("+ " if line.startswith("Deny") else "- ") + line)
    for g in sorted(widened, key=str):
        for reason in _dangers(g, old, stack, identity):
            out.danger(f"{where}: {describe([g])[0]}", reason)


def review_resource(
    logical_id: str, resource_type: str, before: Mapping[str, Any], after: Mapping[str, Any], stack: StackIdentity
) -> tuple[list[IamFinding], list[Finding]]:
    """The security diff of one resource from its properties before (empty when added) and after
    (empty when removed)."""
    out = _Out(logical_id, resource_type, [], [])
    if resource_type in ("AWS::EC2::SecurityGroup", "AWS::EC2::SecurityGroupIngress"):
        for where, text, open_to in ingress_review(resource_type, before, after):
            out.show(where, True, text)
            if open_to:
                out.danger(f"{where}: {text}", f"ingress from {open_to}")
        return out.iam, out.dangerous
    identity = resource_type.startswith("AWS::IAM::") and resource_type != "AWS::IAM::Role"
    old_docs, new_docs = documents(resource_type, before), documents(resource_type, after)
    old_members, new_members = _members(resource_type, before), _members(resource_type, after)
    gained = sorted(new_members - old_members)
    for where in sorted(old_docs.keys() | new_docs.keys()):
        is_identity = identity or where.startswith("inline policy")
        # attached to someone new: everything the document grants is new to them
        base = None if gained and resource_type in ATTACHABLE else old_docs.get(where)
        _compare(out, where, base, new_docs.get(where), stack, is_identity)
    for member in gained:
        out.show("attachment", True, f"+ attached to {member}")
    for member in sorted(old_members - new_members):
        out.show("attachment", False, f"- detached from {member}")
    old_arns = {canon(a) for a in as_list(before.get("ManagedPolicyArns"))}
    new_arns = {canon(a) for a in as_list(after.get("ManagedPolicyArns"))}
    for arn in sorted(new_arns - old_arns):
        out.show("managed policies", True, f"+ attach {arn}")
        if _BROAD_MANAGED.search(arn):
            out.danger(f"managed policies: + attach {arn}", "a broad AWS managed policy (wildcard actions)")
    for arn in sorted(old_arns - new_arns):
        out.show("managed policies", False, f"- detach {arn}")
    if before.get("PermissionsBoundary") and not after.get("PermissionsBoundary") and after:
        text = f"- permissions boundary {canon(before['PermissionsBoundary'])} removed"
        out.show("permissions boundary", True, text)
        out.danger(f"permissions boundary: {text}", "the boundary no longer limits the role")
    _auth(out, resource_type, before, after)
    return out.iam, out.dangerous


def _auth(out: _Out, resource_type: str, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Auth type NONE: Lambda function URLs and API methods/routes callable without credentials."""
    key = {
        "AWS::Lambda::Url": "AuthType",
        "AWS::Lambda::Permission": "FunctionUrlAuthType",
        "AWS::ApiGateway::Method": "AuthorizationType",
        "AWS::ApiGatewayV2::Route": "AuthorizationType",
    }.get(resource_type)
    if not key or not after:
        return
    default = "NONE" if resource_type == "AWS::ApiGatewayV2::Route" else None  # a route's default is NONE
    was, now = before.get(key, default if before else None), after.get(key, default)
    if now is None or str(now).upper() != "NONE" or (was is not None and str(was).upper() == "NONE"):
        return
    if resource_type == "AWS::ApiGateway::Method" and str(after.get("HttpMethod", "")).upper() == "OPTIONS":
        return  # CORS preflight needs no authorization
    text = f"{key} {was if was is not None else '(new)'} → NONE"
    out.show("authorization", True, text)
    out.danger(f"authorization: {text}", "callable without credentials")


def security_review(
    views: list[ResourceChangeView],
    diffs: Mapping[str, ResourceDiff],
    stack: StackIdentity,
    new_template: Mapping[str, Any],
    template_ids: frozenset[str] = frozenset(),
) -> tuple[list[IamFinding], list[Finding], list[str]]:
    """Every policy-bearing change, read from every source (sources.py): the resolved templates, the
    change set's BeforeContext/AfterContext and its details. A danger any reading shows is a finding (the
    more dangerous reading wins); one that a whole reading does not show is said to be disputed.
    `template_ids`: the logical ids the templates hold. Returns the lines, the findings and the notes."""
    iam: list[IamFinding] = []
    dangerous: list[Finding] = []
    notes: list[str] = []
    by_id = {v.logical_id: v for v in views}
    ids = {lid for lid, d in diffs.items() if d.resource_type in SECURITY_TYPES} if new_template else set()
    ids |= {v.logical_id for v in views if v.resource_type in SECURITY_TYPES}
    for lid in sorted(ids):
        view, diff = by_id.get(lid), diffs.get(lid) if new_template else None
        rtype = diff.resource_type if diff else view.resource_type if view else ""
        if view is not None and view.action not in ("Add", "Modify", "Remove", "Import") and diff is None:
            continue
        found = readings(view, diff, template_knows=bool(new_template) and lid in template_ids, top_level_details=True)
        with_values = [r for r in found if r.before or r.after]
        if not with_values and not new_template and view is not None:
            i, d = _without_values(view)
            iam += i
            dangerous += d
            continue
        lines: dict[tuple[str, str], IamFinding] = {}
        per_reading: list[tuple[Reading, list[Finding]]] = []
        reviewed = [(r, review_resource(lid, rtype, _properties(r.before), _properties(r.after), stack)) for r in found]
        from_template = {_danger_key(f) for r, (_, d) in reviewed if r.source == TEMPLATE for f in d}
        for reading, (i, d) in reviewed:
            per_reading.append((reading, d))
            # the change set's own lines for a change in place, or wherever they show another danger (a new
            # resource's values spell the template's tokens as {{changeSet:KNOWN_AFTER_APPLY}}: no news)
            own = reading.source == TEMPLATE or not new_template
            if not own and (view is None or view.action != "Modify"):
                if all(_danger_key(f) in from_template for f in d):
                    continue
            for line in i:
                if (line.where, line.text) not in lines:
                    extra = "" if own else f"  ({reading.source})"
                    lines[(line.where, line.text)] = dataclasses.replace(line, text=line.text + extra)
        iam += list(lines.values())
        united, disputed = unite(lid, per_reading, _danger_key, lambda f: f.what)
        dangerous += united
        notes += disputed
    return iam, dangerous, notes


def _danger_key(f: Finding) -> tuple[str, tuple[str, ...]]:
    # where (the text before ": ") and why: the same danger read from two sources, whose values may be
    # spelled differently (a template token against the deployed ARN)
    return f.what.split(": ", 1)[0], f.causes


def _without_values(view: ResourceChangeView) -> tuple[list[IamFinding], list[Finding]]:
    """A policy-bearing change that no source gives values for: what it grants is unknown."""
    if view.action == "Remove":
        return [], []
    if view.resource_type in DATA_WITH_POLICY:
        policy_keys = {path.split(".")[0] for path in DOCUMENTS.get(view.resource_type, ())}
        if not any(p.attribute == "Properties" and p.name.split("/")[0] in policy_keys for p in view.properties):
            return [], []  # the change set names no change to its policy
    verb = {"Add": "new", "Import": "imported"}.get(view.action, "changed")
    line = IamFinding(
        view.logical_id,
        view.resource_type,
        "policy",
        True,
        f"+ {verb} {view.resource_type}; no values reported: review it",
    )
    finding = Finding(
        "broadening",
        view.logical_id,
        view.resource_type,
        f"{verb} {view.resource_type} without values",
        ("what it grants is unknown",),
        "",
        False,
        False,
    )
    return [line], [finding]


def _properties(resource: Mapping[str, Any]) -> dict[str, Any]:
    props = resource.get("Properties") if resource else None
    return props if isinstance(props, dict) else {}
