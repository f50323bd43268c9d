"""Stack Outputs an endpoint does not report, resolved here from the template and the stack's
physical resource IDs (moto 5 never fills in Outputs for stacks made through change sets).

Every Output of the deployed template is printed: those the endpoint reports as it reports
them, the others resolved with the shared intrinsic walker (market_cfn/intrinsics.py): Ref of
a resource (its physical ID), of a parameter (the stack's value) or of a pseudo parameter;
Fn::GetAtt for the attributes whose value follows from the physical ID by the documented ARN
formats (Service Authorization Reference, "Resource types" of each service; the
CloudFormation template reference's "Return values" of each resource type); Fn::Sub and
Fn::Join over those. Anything else is reported as not resolved, never guessed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from market_cfn.intrinsics import IntrinsicResolver


class Unresolved(Exception):
    """An intrinsic this module cannot evaluate from physical IDs alone."""


@dataclass(frozen=True)
class StackFacts:
    stack_id: str  # arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>
    parameters: dict[str, str]
    physical: dict[str, str]  # logical id -> physical resource id
    types: dict[str, str]  # logical id -> resource type

    @property
    def partition(self) -> str:
        return self.stack_id.split(":")[1]

    @property
    def region(self) -> str:
        return self.stack_id.split(":")[3]

    @property
    def account(self) -> str:
        return self.stack_id.split(":")[4]


def _last(physical: str, sep: str = "/") -> str:
    return physical.rstrip(sep).rsplit(sep, 1)[-1]


_NAMED_BY_PROPERTY = {"AWS::Events::EventBus": "Name"}


class _PhysicalResolver(IntrinsicResolver):
    def __init__(self, facts: StackFacts, resources: dict[str, Any]) -> None:
        self.facts = facts
        self.resources = resources

    def ref(self, name: str) -> Any:
        f = self.facts
        pseudo = {
            "AWS::Region": f.region,
            "AWS::AccountId": f.account,
            "AWS::Partition": f.partition,
            "AWS::URLSuffix": "amazonaws.com.cn" if f.partition == "aws-cn" else "amazonaws.com",
            "AWS::StackId": f.stack_id,
            "AWS::StackName": f.stack_id.split(":stack/", 1)[-1].split("/", 1)[0],
        }
        if name == "AWS::NoValue":
            return None
        if name in pseudo:
            return pseudo[name]
        if name in f.parameters:
            return f.parameters[name]
        if f.physical.get(name):
            return f.physical[name]
        raise Unresolved(f"Ref {name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        f = self.facts
        physical = f.physical.get(logical_id)
        kind = f.types.get(logical_id, "")
        if not physical and kind in _NAMED_BY_PROPERTY:
            # an endpoint that reports no physical ID (moto, for event buses): the name the template
            # gives it is the name (Ref of an AWS::Events::EventBus returns its Name)
            name = ((self.resources.get(logical_id) or {}).get("Properties") or {}).get(_NAMED_BY_PROPERTY[kind])
            physical = self.resolve(name) if name is not None else None
        if not physical:
            raise Unresolved(f"GetAtt {logical_id}.{attribute}")
        p, r, a = f.partition, f.region, f.account
        formulas: dict[tuple[str, str], str] = {
            ("AWS::DynamoDB::Table", "Arn"): f"arn:{p}:dynamodb:{r}:{a}:table/{physical}",
            ("AWS::SQS::Queue", "Arn"): f"arn:{p}:sqs:{r}:{a}:{_last(physical)}",
            ("AWS::SQS::Queue", "QueueName"): _last(physical),
            ("AWS::SQS::Queue", "QueueUrl"): physical,
            ("AWS::S3::Bucket", "Arn"): f"arn:{p}:s3:::{physical}",
            ("AWS::S3::Bucket", "DomainName"): f"{physical}.s3.{self.ref('AWS::URLSuffix')}",
            ("AWS::S3::Bucket", "RegionalDomainName"): f"{physical}.s3.{r}.{self.ref('AWS::URLSuffix')}",
            ("AWS::Lambda::Function", "Arn"): f"arn:{p}:lambda:{r}:{a}:function:{physical}",
            ("AWS::Events::EventBus", "Name"): _last(physical),
            ("AWS::Events::EventBus", "Arn"): f"arn:{p}:events:{r}:{a}:event-bus/{_last(physical)}",
            ("AWS::SNS::Topic", "TopicName"): _last(physical, ":"),
            ("AWS::SNS::Topic", "TopicArn"): physical,
            ("AWS::Logs::LogGroup", "Arn"): f"arn:{p}:logs:{r}:{a}:log-group:{physical}:*",
            ("AWS::KMS::Key", "KeyId"): _last(physical),
        }
        value = formulas.get((kind, attribute))
        if value is None:
            raise Unresolved(f"GetAtt {logical_id}.{attribute}")
        return value


@dataclass
class ResolvedOutputs:
    values: dict[str, str] = field(default_factory=dict)  # every output with a value
    local: list[str] = field(default_factory=list)  # keys resolved here, not reported by the endpoint
    unresolved: dict[str, str] = field(default_factory=dict)  # key -> what could not be evaluated

    def note(self) -> str:
        if not self.local and not self.unresolved:
            return ""
        parts = []
        if self.local:
            parts.append(f"resolved locally from the stack's physical resource IDs: {', '.join(sorted(self.local))}")
        if self.unresolved:
            parts.append("not resolved: " + ", ".join(f"{k} ({why})" for k, why in sorted(self.unresolved.items())))
        return "; ".join(parts)


def resolve_outputs(template: dict[str, Any], reported: dict[str, str], facts: StackFacts) -> ResolvedOutputs:
    """Every Output of `template`: the reported value where there is one, else resolved here."""
    result = ResolvedOutputs()
    resolver = _PhysicalResolver(facts, template.get("Resources") or {})
    for key, spec in sorted((template.get("Outputs") or {}).items()):
        if key in reported:
            result.values[key] = reported[key]
            continue
        try:
            value = resolver.resolve(spec.get("Value"))
        except Unresolved as exc:
            result.unresolved[key] = str(exc)
            continue
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            result.unresolved[key] = f"unsupported expression: {type(exc).__name__}"
            continue
        if isinstance(value, (dict, list)) or value is None:
            result.unresolved[key] = "unsupported expression"
            continue
        result.values[key] = str(value)
        result.local.append(key)
    for key, value in reported.items():  # reported but not in the template: keep
        result.values.setdefault(key, value)
    return result
