"""The template diff, independent of the change set: the deployed template against the new one, each
resolved with its own parameter values, resource by resource and leaf by leaf (the shape of CDK's
cloudformation-diff: templates first, then merged with what the change set says)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from market_cfn.intrinsics import IntrinsicResolver

_STACK_ARN = re.compile(
    r"^arn:(?P<partition>[^:]+):cloudformation:(?P<region>[^:]+):(?P<account>\d{12}):stack/(?P<name>[^/]+)/"
)
# CloudFormation's placeholder for values it only knows at execution (BeforeValue/AfterValue, contexts).
KNOWN_AFTER_APPLY = "{{changeSet:KNOWN_AFTER_APPLY}}"


@dataclass(frozen=True)
class StackIdentity:
    """Pseudo-parameter values, from the change set's StackId ARN; "" where unknown."""

    partition: str = ""
    region: str = ""
    account: str = ""
    stack_name: str = ""

    @classmethod
    def from_change_set(cls, change_set: Mapping[str, Any]) -> StackIdentity:
        match = _STACK_ARN.match(str(change_set.get("StackId") or ""))
        if not match:
            return cls(stack_name=str(change_set.get("StackName") or ""))
        return cls(match["partition"], match["region"], match["account"], match["name"])


@dataclass(frozen=True)
class Leaf:
    """One differing leaf: a dotted path under the resource ("Properties.Code.S3Key", "DeletionPolicy")."""

    path: str
    before: Any  # MISSING when absent
    after: Any


class _Missing:
    def __repr__(self) -> str:
        return "(absent)"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class ResourceDiff:
    logical_id: str
    action: str  # Add | Remove | Modify
    old_type: str
    new_type: str
    old: dict[str, Any]  # the resolved resource (Type, Properties, DeletionPolicy, ...); {} when added
    new: dict[str, Any]  # {} when removed
    leaves: tuple[Leaf, ...]

    @property
    def resource_type(self) -> str:
        return self.new_type or self.old_type


class TemplateResolver(IntrinsicResolver):
    """Resolves a template with known parameter values. What cannot be known before execution (a resource's
    Ref or attribute, an unknown parameter) becomes a stable token such as "${Ref:Table}", so the same
    expression compares equal on both sides and a changed one differs."""

    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        stack: StackIdentity,
        masked: Mapping[str, str] | None = None,
    ):
        self.template = template
        self.masked = masked or {}
        declared = template.get("Parameters") or {}
        self.parameters: dict[str, Any] = {
            name: parameters.get(name, spec.get("Default") if isinstance(spec, dict) else None)
            for name, spec in declared.items()
        }
        self.stack = stack
        self._conditions: dict[str, bool | None] = {}

    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::AccountId": self.stack.account,
            "AWS::Region": self.stack.region,
            "AWS::Partition": self.stack.partition,
            "AWS::StackName": self.stack.stack_name,
            "AWS::URLSuffix": "amazonaws.com" if self.stack.partition == "aws" else "",
        }
        if name == "AWS::NoValue":
            return None
        if name in pseudo:
            return pseudo[name] or "${" + name + "}"
        if name in self.masked:  # NoEcho: never let the value into the review
            return self.masked[name]
        value = self.parameters.get(name)
        if value is not None:
            return value
        return "${Ref:" + name + "}"

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return "${GetAtt:" + logical_id + "." + attribute + "}"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Fn::If" and isinstance(arg, list) and len(arg) == 3:
                known = self.condition(str(arg[0]))
                if known is None:  # undecidable: keep both branches, so a change in either shows
                    return {"Fn::If": [arg[0], self.resolve(arg[1]), self.resolve(arg[2])]}
                return self.resolve(arg[1] if known else arg[2])
            if key == "Fn::FindInMap" and isinstance(arg, list) and len(arg) >= 3:
                keys = [self.resolve(a) for a in arg[:3]]
                found = (self.template.get("Mappings") or {}).get(keys[0], {}).get(keys[1], {}).get(keys[2])
                return self.resolve(found) if found is not None else {"Fn::FindInMap": keys}
            if key == "Fn::Select" and isinstance(arg, list) and len(arg) == 2:
                index, items = self.resolve(arg[0]), self.resolve(arg[1])
                if isinstance(items, list) and str(index).isdigit() and int(index) < len(items):
                    return items[int(index)]
                return {"Fn::Select": [index, items]}
        return super().resolve(value)

    __call__ = resolve

    def condition(self, name: str) -> bool | None:
        if name not in self._conditions:
            self._conditions[name] = None  # guards against a cycle
            self._conditions[name] = self._evaluate((self.template.get("Conditions") or {}).get(name))
        return self._conditions[name]

    def _evaluate(self, expression: Any) -> bool | None:
        if not isinstance(expression, dict) or len(expression) != 1:
            return None
        ((key, arg),) = expression.items()
        if key == "Condition":
            return self.condition(str(arg))
        if key == "Fn::Equals" and isinstance(arg, list) and len(arg) == 2:
            left, right = self.resolve(arg[0]), self.resolve(arg[1])
            if _opaque(left) or _opaque(right):
                return None
            return str(left) == str(right)
        if key == "Fn::Not" and isinstance(arg, list) and len(arg) == 1:
            inner = self._evaluate(arg[0])
            return None if inner is None else not inner
        if key in ("Fn::And", "Fn::Or") and isinstance(arg, list):
            values = [self._evaluate(a) for a in arg]
            if key == "Fn::And":
                return False if False in values else None if None in values else True
            return True if True in values else None if None in values else False
        return None

    def resources(self) -> dict[str, dict[str, Any]]:
        """Every resource whose Condition holds (or cannot be decided), resolved."""
        out: dict[str, dict[str, Any]] = {}
        for logical_id, resource in (self.template.get("Resources") or {}).items():
            if not isinstance(resource, dict):
                continue
            if "Condition" in resource and self.condition(str(resource["Condition"])) is False:
                continue
            out[logical_id] = {k: (self.resolve(v) if k == "Properties" else v) for k, v in resource.items()}
        return out


def _opaque(value: Any) -> bool:
    return isinstance(value, dict) or (isinstance(value, str) and ("${" in value or value.startswith("****")))


def template_diff(
    old_template: Mapping[str, Any] | None,
    new_template: Mapping[str, Any],
    old_parameters: Mapping[str, str],
    new_parameters: Mapping[str, str],
    stack: StackIdentity,
    no_echo: frozenset[str] = frozenset(),
) -> dict[str, ResourceDiff]:
    """Every resource that differs between the two templates, keyed by logical id. With no deployed
    template (a CREATE) every new resource is an Add. NoEcho parameters resolve to a mask that differs
    between the sides only when the value changed."""
    old_mask = {name: "****" for name in no_echo}
    new_mask = {
        name: "****" if old_parameters.get(name) == new_parameters.get(name) else "**** (changed)" for name in no_echo
    }
    old = TemplateResolver(old_template or {}, old_parameters, stack, old_mask).resources()
    new = TemplateResolver(new_template, new_parameters, stack, new_mask).resources()
    out: dict[str, ResourceDiff] = {}
    for logical_id in sorted(old.keys() | new.keys()):
        before, after = old.get(logical_id, {}), new.get(logical_id, {})
        action = "Add" if not before else "Remove" if not after else "Modify"
        leaves = tuple(leaf_changes(_comparable(before), _comparable(after)))
        if action == "Modify" and not leaves:
            continue
        out[logical_id] = ResourceDiff(
            logical_id, action, str(before.get("Type", "")), str(after.get("Type", "")), before, after, leaves
        )
    return out


def _comparable(resource: Mapping[str, Any]) -> dict[str, Any]:
    # Metadata and DependsOn change nothing in the resource itself.
    return {k: v for k, v in resource.items() if k not in ("Metadata", "DependsOn")}


def leaf_changes(before: Any, after: Any, path: str = "") -> list[Leaf]:
    """The differing leaves of two JSON values; lists compare item by item (an item only on one side is
    absent on the other). Numbers and their string forms compare equal (CloudFormation passes both)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[Leaf] = []
        for key in sorted(before.keys() | after.keys(), key=str):
            sub = f"{path}.{key}" if path else str(key)
            out += leaf_changes(before.get(key, MISSING), after.get(key, MISSING), sub)
        return out
    if isinstance(before, list) and isinstance(after, list):
        out = []
        for i in range(max(len(before), len(after))):
            b = before[i] if i < len(before) else MISSING
            a = after[i] if i < len(after) else MISSING
            out += leaf_changes(b, a, f"{path}[{i}]")
        return out
    if _scalar(before) == _scalar(after):
        return []
    return [Leaf(path, before, after)]


def _scalar(value: Any) -> Any:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return str(value)
    return value


def parse_json_value(value: Any) -> Any:
    """A Details BeforeValue/AfterValue: JSON text for objects and lists, plain text otherwise."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError:
            return value
    return value


def show(value: Any) -> str:
    if value is MISSING or value is None:
        return "(absent)"
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def has_transform(template: dict[str, Any] | None) -> bool:
    """A template-level Transform (SAM, macros): the submitted template is not what is deployed."""
    return bool(template and template.get("Transform"))
