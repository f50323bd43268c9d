"""The allow-list of harmless changes (fail closed by design): under --yes, an in-place change of a
stateful, policy-bearing or privilege-bearing resource executes only when every property it changes is
listed here for its type; anything else is a finding of kind "change" that only `--allow-change
LOGICAL_ID.PROPERTY` allows. The guard's other signals explain such a finding; they are not the gate.
Pure: the change set's views, the template diff and the resource schemas cfn-lint ships in, findings out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from market_cfn.deploy.review.diff import ResourceDiff, leaf_changes
from market_cfn.deploy.review.iam import SECURITY_TYPES
from market_cfn.deploy.review.model import Finding, ResourceChangeView
from market_cfn.deploy.review.schema import UnknownSchema, resource_schema
from market_cfn.deploy.review.sources import TEMPLATE, readings

# Per type, the top-level properties whose change is known to be harmless: it neither loses data, nor
# grants, routes or encrypts anything differently. Each must be an updatable property of the type's
# CloudFormation registry schema (tests/test_deploy_harmless.py checks them against cfn-lint's copy); the
# schema's tag property (`tagging.tagProperty`) is added for every taggable type.
ALLOW_LIST: dict[str, frozenset[str]] = {
    # code and configuration of a function; not Role, VpcConfig, KmsKeyArn, DeadLetterConfig,
    # FileSystemConfigs, CodeSigningConfigArn (who runs it, where its data goes, how it is encrypted)
    "AWS::Lambda::Function": frozenset(
        {
            "Architectures",
            "Code",
            "Description",
            "Environment",
            "EphemeralStorage",
            "Handler",
            "Layers",
            "LoggingConfig",
            "MemorySize",
            "ReservedConcurrentExecutions",
            "Runtime",
            "Timeout",
            "TracingConfig",
        }
    ),
    # delivery settings; not retention, encryption, the redrive target or who may redrive to it
    "AWS::SQS::Queue": frozenset(
        {"VisibilityTimeout", "DelaySeconds", "MaximumMessageSize", "ReceiveMessageWaitTimeSeconds"}
    ),
    # when an alarm fires; not where it notifies, whether its actions run, or what it watches
    "AWS::CloudWatch::Alarm": frozenset(
        {"Threshold", "EvaluationPeriods", "DatapointsToAlarm", "Period", "AlarmDescription", "TreatMissingData"}
    ),
    # capacity and insight; not keys, indexes, streams, TTL, PITR, encryption or the resource policy
    "AWS::DynamoDB::Table": frozenset(
        {
            "BillingMode",
            "ProvisionedThroughput",
            "OnDemandThroughput",
            "WarmThroughput",
            "ContributorInsightsSpecification",
        }
    ),
    "AWS::S3::Bucket": frozenset({"MetricsConfigurations"}),
    "AWS::Logs::LogGroup": frozenset(),
    "AWS::Events::EventBus": frozenset({"Description"}),
    "AWS::Events::Archive": frozenset({"Description"}),
    "AWS::Events::Rule": frozenset({"Description", "ScheduleExpression", "State"}),
    "AWS::KMS::Key": frozenset({"Description"}),
    "AWS::IAM::Role": frozenset({"Description"}),
    "AWS::ApiGateway::RestApi": frozenset({"Description", "MinimumCompressionSize"}),
    # request handling; not AuthorizationType, AuthorizerId, AuthorizationScopes, ApiKeyRequired
    "AWS::ApiGateway::Method": frozenset(
        {"Integration", "MethodResponses", "OperationName", "RequestModels", "RequestParameters", "RequestValidatorId"}
    ),
    # what a nested stack deploys is reviewed in its own change set (merge.py)
    "AWS::CloudFormation::Stack": frozenset({"TemplateURL", "Parameters", "TimeoutInMinutes"}),
    # policies: every change to them is a change to what is granted
    "AWS::S3::BucketPolicy": frozenset(),
    "AWS::SQS::QueuePolicy": frozenset(),
    "AWS::SNS::TopicPolicy": frozenset(),
    "AWS::Lambda::Permission": frozenset(),
}

# Gated besides the stateful and policy-bearing types: what runs with a role or routes to a target, and
# the alarms (bin/deploy's rollback triggers).
PRIVILEGED_TYPES = frozenset(
    {
        "AWS::Lambda::Function",
        "AWS::Events::Rule",
        "AWS::StepFunctions::StateMachine",
        "AWS::Scheduler::Schedule",
        "AWS::Pipes::Pipe",
        "AWS::CodeBuild::Project",
        "AWS::ECS::TaskDefinition",
        "AWS::Glue::Job",
        "AWS::CloudWatch::Alarm",
    }
)

# An alarm's actions are harmless when each one only notifies: an SNS topic of the stack's own account.
ALARM = "AWS::CloudWatch::Alarm"
ALARM_ACTIONS = frozenset({"AlarmActions", "OKActions", "InsufficientDataActions"})
_SNS_TOPIC = re.compile(r"^arn:[a-z-]+:sns:[a-z0-9-]+:(\d{12}):[A-Za-z0-9_.-]+$")

GATED_TYPES = PRIVILEGED_TYPES | SECURITY_TYPES  # and every stateful resource (merge.py)

# Resource attributes (ResourceTargetDefinition.Attribute, botocore ResourceAttribute): Metadata changes
# nothing in the resource; a DeletionPolicy/UpdateReplacePolicy that becomes Retain keeps more, never less.
HARMLESS_ATTRIBUTES = frozenset({"Metadata"})
OTHER_ATTRIBUTES = frozenset({"CreationPolicy", "UpdatePolicy"})
STRONGEST_POLICIES = frozenset({"Retain", "RetainExceptOnCreate"})
_POLICY_ATTRIBUTES = ("DeletionPolicy", "UpdateReplacePolicy")


@lru_cache(maxsize=256)
def harmless_properties(resource_type: str, region: str) -> tuple[frozenset[str], str]:
    """The harmless properties of a type and, when there are none to speak of, why (for the finding)."""
    try:
        schema = resource_schema(resource_type, region)
    except UnknownSchema:
        return frozenset(), f"no resource schema for {resource_type}: no change is known to be harmless"
    tagging = schema.get("tagging") or {}
    tags = set()
    if tagging.get("taggable", True) and str(tagging.get("tagProperty", "")).startswith("/properties/"):
        tags.add(str(tagging["tagProperty"]).split("/")[2])
    elif "Tags" in (schema.get("properties") or {}) and "tagging" not in schema:
        tags.add("Tags")
    listed = ALLOW_LIST.get(resource_type)
    if listed is None:
        return frozenset(tags), f"no allow-list of harmless changes for {resource_type}"
    return frozenset(listed | tags), ""


def _schema_properties(resource_type: str, region: str) -> frozenset[str] | None:
    try:
        return frozenset(resource_schema(resource_type, region).get("properties") or {})
    except UnknownSchema:
        return None


def changed_properties(
    view: ResourceChangeView, diff: ResourceDiff | None, *, template_knows: bool
) -> dict[str, list[str]]:
    """Top-level property (or attribute) -> the sources that show it changing: the change set's details
    (named even without values), its BeforeContext/AfterContext and the template diff."""
    out: dict[str, list[str]] = {}

    def add(name: str, source: str) -> None:
        if name and source not in out.setdefault(name, []):
            out[name].append(source)

    for p in view.properties:
        add(p.name.split("/")[0] if p.attribute == "Properties" else p.attribute, "change set's details")
    modified = diff if diff is not None and diff.action == "Modify" else None
    for reading in readings(view, modified, template_knows=template_knows, top_level_details=False):
        if not reading.whole:
            continue
        for leaf in leaf_changes(_comparable(reading.before), _comparable(reading.after)):
            head = leaf.path.split(".", 1)
            add(
                head[1].split(".")[0].split("[")[0] if head[0] == "Properties" and len(head) > 1 else head[0],
                reading.source,
            )
    return out


def _comparable(resource: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if k not in ("Type", "DependsOn", "Condition")}


def _policy_after(view: ResourceChangeView, diff: ResourceDiff | None, attribute: str) -> set[str]:
    """Every value a source gives the attribute after the change (absent counts as Delete)."""
    values = {p.after or "" for p in view.properties if p.attribute == attribute}
    if diff is not None and diff.action == "Modify":
        values.add(str(diff.new.get(attribute, "Delete")))
    if view.after_context is not None and attribute in view.after_context:
        values.add(str(view.after_context[attribute]))
    return values


def _values_after(view: ResourceChangeView, diff: ResourceDiff | None, name: str, template_knows: bool) -> list[Any]:
    """Every value a source gives the property after the change; [] when a whole source gives none."""
    values = []
    modified = diff if diff is not None and diff.action == "Modify" else None
    for reading in readings(view, modified, template_knows=template_knows, top_level_details=True):
        props = reading.after.get("Properties") or {}
        if reading.source == TEMPLATE and not reading.after:
            continue  # the templates show the resource unchanged: they say nothing of this value
        if name in props:
            values.append(props[name])
        elif reading.whole:
            return []  # removed, or not known: not shown to only notify
    return values


def _notifies_only(values: list[Any], account: str, topics: frozenset[str]) -> bool:
    """Every alarm action, in every source, is an SNS topic of the stack's own account or template: it
    notifies and does nothing else (an alarm action may also stop or terminate an instance, scale, run
    Systems Manager or invoke a function: CloudWatch PutMetricAlarm AlarmActions)."""
    if not values or not account:
        return False
    for value in values:
        if not isinstance(value, list) or not value:
            return False  # no action at all: the alarm no longer notifies anyone
        for action in value:
            match = _SNS_TOPIC.match(str(action))
            own = bool(match and match.group(1) == account)
            if not own and str(action) not in {"${Ref:" + t + "}" for t in topics}:
                return False
    return True


def change_findings(
    view: ResourceChangeView,
    diff: ResourceDiff | None,
    region: str,
    *,
    template_knows: bool,
    account: str = "",
    topics: frozenset[str] = frozenset(),
) -> list[Finding]:
    """The changes of one gated resource that are not on the allow-list; [] when all are harmless.
    `account`: the stack's account (from its StackId); `topics`: the SNS topics the templates declare."""
    lid, rtype = view.logical_id, view.resource_type
    if view.action == "Dynamic":
        return [_finding(lid, rtype, "", "Action Dynamic: what changes is decided only at execution", ())]
    if view.action != "Modify":
        return []
    changed = changed_properties(view, diff, template_knows=template_knows)
    if not changed:
        return [_finding(lid, rtype, "", "modified, but no source names a changed property", ())]
    harmless, why_none = harmless_properties(rtype, region)
    known = _schema_properties(rtype, region)
    out = []
    for name, sources in sorted(changed.items()):
        if name in HARMLESS_ATTRIBUTES:
            continue
        if name in _POLICY_ATTRIBUTES:
            after = _policy_after(view, diff, name)
            if after and after <= STRONGEST_POLICIES:
                continue
            reason = f"{name} becomes {' or '.join(sorted(after)) or 'unknown'}: only Retain is harmless"
        elif name in harmless:
            continue
        elif rtype == ALARM and name in ALARM_ACTIONS:
            if _notifies_only(_values_after(view, diff, name, template_knows), account, topics):
                continue
            reason = f"{name}: only SNS topics of the stack's own account are harmless alarm actions"
        elif name in OTHER_ATTRIBUTES:
            reason = f"the {name} attribute changes how CloudFormation creates or updates it"
        elif known is not None and name not in known and name != "Tags":
            reason = f"not a property in the {rtype} resource schema"
        else:
            reason = why_none or f"not on the allow-list of harmless changes for {rtype}"
        leaves = [f"{path.removeprefix('Properties.')} {b} → {a}" for path, b, a in view.leaves if _top(path) == name]
        leaves = leaves[:3]
        causes = (reason, *leaves, "shown by the " + ", ".join(sources))
        out.append(_finding(lid, rtype, name, f"{name} changes", causes))
    return out


def _top(path: str) -> str:
    head = path.split(".", 1)
    return head[1].split(".")[0].split("[")[0] if head[0] == "Properties" and len(head) > 1 else head[0]


def _finding(lid: str, rtype: str, prop: str, what: str, causes: tuple[str, ...]) -> Finding:
    # override/allowed are filled in by merge.py, which knows the nested path and the overrides; the
    # property travels in the override's name ("LOGICAL_ID.PROPERTY", or "LOGICAL_ID" when none is named)
    return Finding("change", lid, rtype, what, causes, prop, False, False)
