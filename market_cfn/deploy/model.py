"""The review's plain data: what changes, what the guard and the IAM diff found."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PropertyChange:
    attribute: str  # Properties, Tags, DeletionPolicy, ...
    name: str  # property name, or its path when CloudFormation gives one
    requires_recreation: str  # Never | Conditionally | Always | ""
    change_type: str  # Add | Remove | Modify | ""
    before: str | None
    after: str | None
    cause: str  # e.g. "ParameterReference EnvironmentSuffix"


@dataclass(frozen=True)
class ResourceChangeView:
    action: str
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional | "" (not applicable)
    policy_action: str
    physical_id: str
    properties: tuple[PropertyChange, ...]
    before_context: dict[str, Any] | None
    after_context: dict[str, Any] | None


@dataclass(frozen=True)
class IamFinding:
    logical_id: str
    resource_type: str
    where: str  # which policy inside the resource
    broadening: bool
    text: str


@dataclass(frozen=True)
class GuardViolation:
    logical_id: str
    resource_type: str
    what: str  # "removed" / "replaced (Replacement: True)"
    causes: tuple[str, ...]


@dataclass
class Review:
    change_set: dict[str, Any]
    changes: list[ResourceChangeView]
    parameters: list[tuple[str, str]]
    iam: list[IamFinding]
    violations: list[GuardViolation]
    allowed: list[GuardViolation]

    @property
    def blocked(self) -> bool:
        return bool(self.violations)

    def to_json(self) -> dict[str, Any]:
        return {
            "ChangeSetId": self.change_set.get("ChangeSetId"),
            "ChangeSetName": self.change_set.get("ChangeSetName"),
            "StackName": self.change_set.get("StackName"),
            "Status": self.change_set.get("Status"),
            "ExecutionStatus": self.change_set.get("ExecutionStatus"),
            "Parameters": dict(self.parameters),
            "Changes": [
                {
                    "Action": c.action,
                    "LogicalResourceId": c.logical_id,
                    "ResourceType": c.resource_type,
                    "Replacement": c.replacement,
                    "PolicyAction": c.policy_action,
                    "Properties": [p.__dict__ for p in c.properties],
                }
                for c in self.changes
            ],
            "Iam": [f.__dict__ for f in self.iam],
            "Blocked": [v.__dict__ | {"causes": list(v.causes)} for v in self.violations],
            "Allowed": [v.__dict__ | {"causes": list(v.causes)} for v in self.allowed],
        }


def _context(raw: Any) -> dict[str, Any] | None:
    if not raw:
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _properties_of(context: dict[str, Any] | None) -> dict[str, Any]:
    if not context:
        return {}
    props = context.get("Properties", context)
    return props if isinstance(props, dict) else {}
