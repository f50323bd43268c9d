"""Lint suppressions live in the resource's own Metadata, each with its reason.

cfn-lint reads Metadata["cfn-lint"]["config"]["ignore_checks"]; the reasons sit beside
it under "reasons". checkov reads Metadata["checkov"]["skip"] as [{id, comment}].
"""

from __future__ import annotations

from troposphere import AWSObject


def suppress(
    resource: AWSObject,
    *,
    cfn_lint: dict[str, str] | None = None,
    checkov: dict[str, str] | None = None,
) -> AWSObject:
    metadata = dict(getattr(resource, "Metadata", None) or {})
    if cfn_lint:
        block = metadata.setdefault("cfn-lint", {"config": {"ignore_checks": []}, "reasons": {}})
        for rule, reason in cfn_lint.items():
            block["config"]["ignore_checks"].append(rule)
            block["reasons"][rule] = reason
    if checkov:
        skips = metadata.setdefault("checkov", {"skip": []})["skip"]
        skips.extend({"id": check, "comment": reason} for check, reason in checkov.items())
    resource.Metadata = metadata
    return resource
