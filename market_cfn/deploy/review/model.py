"""The review's plain data: what the guard reads (ReviewInput, Overrides) and what it returns (Review)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MASK = "****"  # how a NoEcho parameter value is shown


@dataclass(frozen=True)
class ReviewInput:
    """Everything the guard decides from; the deploy flow fetches it (CONTRACT-deploy.md)."""

    change_set: dict[str, Any]  # DescribeChangeSet(IncludePropertyValues=True), every page merged
    plain_change_set: dict[str, Any] | None  # the same without IncludePropertyValues; None = not fetched
    nested: Mapping[str, ReviewInput]  # child change sets keyed by the parent's AWS::CloudFormation::Stack id
    deployed_template: dict[str, Any] | None  # GetTemplate(TemplateStage="Original"), parsed; None on CREATE
    new_template: dict[str, Any]  # the template this change set deploys, parsed
    old_parameters: Mapping[str, str]  # the stack's current parameter values ({} on CREATE)
    new_parameters: Mapping[str, str]  # the values this change set passes, template defaults filled in
    no_echo: frozenset[str] = frozenset()  # NoEcho parameter names (values masked everywhere)
    drifted: Mapping[str, str] = field(
        default_factory=dict
    )  # logical id -> StackResourceDriftStatus (MODIFIED | DELETED)
    drift_checked: bool = False  # whether drift detection ran to completion
    # GetTemplate(TemplateStage="Processed") of each side, read when a template has a Transform; None: not read
    processed_deployed: dict[str, Any] | None = None
    processed_new: dict[str, Any] | None = None

    @classmethod
    def from_change_set(cls, change_set: dict[str, Any], *, no_echo: frozenset[str] = frozenset()) -> ReviewInput:
        """Only the change set (no templates, no plain description): the review of the change set alone."""
        new = {p["ParameterKey"]: p.get("ParameterValue", "") for p in change_set.get("Parameters") or []}
        return cls(change_set, None, {}, None, {}, {}, new, no_echo=no_echo)


@dataclass(frozen=True)
class Overrides:
    """What the user named on the command line; each name allows exactly that, nothing else."""

    allow_replacement: frozenset[str] = frozenset()  # --allow-replacement ID: replacement or removal of ID
    allow_unprotect: frozenset[str] = frozenset()  # --allow-unprotect ID: in-place unprotection of ID
    allow_drift: frozenset[str] = frozenset()  # --allow-drift ID: overwrite a drifted stateful resource
    allow_broadening: bool = False  # --allow-broadening: IAM/network broadening under --yes
    allow_change: frozenset[str] = frozenset()  # --allow-change ID.PROPERTY: a change not on the allow-list
    # ID.PROPERTY changes a tool-owned stack's own upgrade makes, reviewed in its code (the bootstrap
    # stack); allowed like --allow-change, and never reported as matching nothing
    expected_changes: frozenset[str] = frozenset()
    extra_stateful_types: frozenset[str] = frozenset()  # user-added stateful types


@dataclass(frozen=True)
class Finding:
    """One thing the guard refuses to execute unless an override names it."""

    kind: str  # "removal" | "replacement" | "unprotect" | "broadening" | "change" | "drift" | "incomplete"
    logical_id: str  # nested: "Parent/Child"
    resource_type: str
    what: str  # one line: "DeletionPolicy Retain -> Delete", "replaced (RequiresRecreation: Always on TableName)"
    causes: tuple[str, ...]
    override: str  # the exact option that allows it; "" = cannot be overridden
    allowed: bool  # an override names it
    needs_human: bool  # True: blocks even at a prompt unless overridden; False: blocks only under --yes

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"causes": list(self.causes)}


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
    values_known: bool = True  # False: only the plain description names this change (no property values)
    leaves: tuple[tuple[str, str, str], ...] = ()  # (path, before, after) of each differing leaf, for display


@dataclass(frozen=True)
class IamFinding:
    logical_id: str
    resource_type: str
    where: str  # which policy inside the resource
    broadening: bool
    text: str


# The guard's findings used to be GuardViolation; a Finding has the same logical_id/resource_type/what/causes.
GuardViolation = Finding


@dataclass
class Review:
    change_set: dict[str, Any]
    changes: list[ResourceChangeView]
    parameters: list[tuple[str, str | None, str | None]]  # name, old (None: new), new (None: removed); masked
    iam: list[IamFinding]
    findings: list[Finding] = field(default_factory=list)  # nested findings included, with "Parent/Child" ids
    nested: dict[str, Review] = field(default_factory=dict)
    unmatched_overrides: list[str] = field(default_factory=list)  # e.g. "--allow-replacement Nope"
    notes: list[str] = field(default_factory=list)  # informational: other drift, incomplete descriptions

    def blocking(self, assume_yes: bool) -> list[Finding]:
        """The findings that stop execution: not allowed, and data loss or no human to ask."""
        return [f for f in self.findings if not f.allowed and (f.needs_human or assume_yes)]

    @property
    def violations(self) -> list[Finding]:
        """The findings that block even at a prompt (data loss, unprotection, drift, incomplete)."""
        return self.blocking(assume_yes=False)

    @property
    def allowed(self) -> list[Finding]:
        return [f for f in self.findings if f.allowed]

    @property
    def blocked(self) -> bool:
        return bool(self.violations)

    def to_json(self) -> dict[str, Any]:
        return {
            "ChangeSetId": self.change_set.get("ChangeSetId"),
            "ChangeSetName": self.change_set.get("ChangeSetName"),
            "StackName": self.change_set.get("StackName"),
            "Status": self.change_set.get("Status"),
            "StatusReason": self.change_set.get("StatusReason"),
            "ExecutionStatus": self.change_set.get("ExecutionStatus"),
            "Parameters": [{"Name": n, "Old": old, "New": new} for n, old, new in self.parameters],
            "Changes": [
                {
                    "Action": c.action,
                    "LogicalResourceId": c.logical_id,
                    "ResourceType": c.resource_type,
                    "Replacement": c.replacement,
                    "PolicyAction": c.policy_action,
                    "PhysicalResourceId": c.physical_id,
                    "ValuesKnown": c.values_known,
                    "Leaves": [{"Path": p, "Before": b, "After": a} for p, b, a in c.leaves],
                    "Properties": [asdict(p) for p in c.properties],
                }
                for c in self.changes
            ],
            "Iam": [asdict(f) for f in self.iam],
            "Findings": [f.to_json() for f in self.findings],
            "Blocked": [f.to_json() for f in self.violations],
            "BlockedUnderYes": [f.to_json() for f in self.blocking(assume_yes=True)],
            "Allowed": [f.to_json() for f in self.allowed],
            "UnmatchedOverrides": list(self.unmatched_overrides),
            "Notes": list(self.notes),
            "Nested": {name: review.to_json() for name, review in self.nested.items()},
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


@dataclass
class ExecutionResult:
    status: str
    succeeded: bool
    failures: list[dict[str, Any]]
    outputs: dict[str, str]
    status_reason: str = ""
    outputs_note: str = ""
    resolved_locally: list[str] = field(default_factory=list)  # output keys the endpoint did not report
    template: dict[str, Any] | None = None  # the template now deployed (GetTemplate Original), on success
