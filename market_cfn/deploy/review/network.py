"""The network part of the security diff: security-group ingress opened, and from where."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

OPEN_CIDRS = ("0.0.0.0/0", "::/0")


def _rules(resource_type: str, props: Mapping[str, Any]) -> list[dict[str, Any]]:
    # AWS::EC2::SecurityGroup SecurityGroupIngress[] and AWS::EC2::SecurityGroupIngress (one rule)
    if not props:
        return []
    if resource_type == "AWS::EC2::SecurityGroupIngress":
        return [dict(props)]
    rules = props.get("SecurityGroupIngress") or []
    return [r for r in (rules if isinstance(rules, list) else [rules]) if isinstance(r, dict)]


def _key(rule: Mapping[str, Any]) -> str:
    return json.dumps({k: v for k, v in rule.items() if k != "Description"}, sort_keys=True, default=str)


def _describe(rule: Mapping[str, Any]) -> str:
    source = (
        rule.get("CidrIp")
        or rule.get("CidrIpv6")
        or rule.get("SourceSecurityGroupId")
        or rule.get("SourceSecurityGroupName")
        or rule.get("SourcePrefixListId")
        or "?"
    )
    protocol = str(rule.get("IpProtocol", "?"))
    ports = "all ports" if protocol == "-1" else f"{rule.get('FromPort', '?')}-{rule.get('ToPort', '?')}"
    return f"ingress {'all protocols' if protocol == '-1' else protocol} {ports} from {source}"


def ingress_review(
    resource_type: str, before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[tuple[str, str, str]]:
    """(where, text, open-to or "") for each ingress rule added; open-to is 0.0.0.0/0 or ::/0."""
    old = {_key(r) for r in _rules(resource_type, before)}
    out = []
    for rule in _rules(resource_type, after):
        if _key(rule) in old:
            continue
        cidr = str(rule.get("CidrIp") or rule.get("CidrIpv6") or "")
        out.append(("ingress", "+ " + _describe(rule), cidr if cidr in OPEN_CIDRS else ""))
    return out
