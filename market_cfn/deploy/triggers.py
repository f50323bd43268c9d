"""Rollback triggers: the stack's own health alarms (function errors, dead-letter depth) passed to
CreateChangeSet as RollbackConfiguration, so an update whose functions start failing rolls back.

AWS semantics (CloudFormation User Guide, "Roll back your CloudFormation stack on alarm breach
with rollback triggers", using-cfn-rollback-triggers.html; API reference RollbackConfiguration,
RollbackTrigger; botocore's service model): RollbackConfiguration is a member of
CreateChangeSet (not of ExecuteChangeSet) and applies when that change set is executed; at
most 5 triggers (`RollbackTriggers` max 5), each `{"Arn": alarm ARN, "Type":
"AWS::CloudWatch::Alarm" | "AWS::CloudWatch::CompositeAlarm"}`; `MonitoringTimeInMinutes`
0-180. If any trigger goes to ALARM during the operation or the monitoring time after it,
CloudFormation rolls the whole operation back; INSUFFICIENT_DATA does not trigger.

Only alarms that exist before the update and stay in the new template are used: the trigger
is evaluated during the update, and an alarm the update removes would go missing under it.
A first deploy (CREATE) has no alarms yet, so it gets none.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_cloudformation.type_defs import RollbackConfigurationTypeDef, RollbackTriggerTypeDef

MAX_TRIGGERS = 5
DEFAULT_MONITORING_MINUTES = 10
ALARM = "AWS::CloudWatch::Alarm"
COMPOSITE_ALARM = "AWS::CloudWatch::CompositeAlarm"
_DEAD_LETTER_KEYS = ("deadletter", "onfailure")


@dataclass(frozen=True)
class RollbackPlan:
    configuration: RollbackConfigurationTypeDef | None  # CreateChangeSet's; None: not passed
    used: list[tuple[str, str]] = field(default_factory=list)  # (logical id, why)
    left_out: list[str] = field(default_factory=list)  # over the limit of 5
    note: str = ""

    def describe(self) -> list[str]:
        if self.configuration is None:
            return [f"Rollback triggers: none ({self.note})."]
        minutes = self.configuration.get("MonitoringTimeInMinutes", 0)
        lines = [f"Rollback triggers ({len(self.used)}, monitored for {minutes} min after the update):"]
        lines += [f"  {logical_id}  {why}" for logical_id, why in self.used]
        if self.left_out:
            lines.append(f"  not passed (CloudFormation takes at most {MAX_TRIGGERS}): {', '.join(self.left_out)}")
        return lines


def _references(value: Any) -> set[str]:
    """Logical ids that `value` refers to with Ref or Fn::GetAtt."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.add(arg)
            elif key == "Fn::GetAtt":
                found.add(arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0])
            else:
                found |= _references(arg)
    elif isinstance(value, list):
        for item in value:
            found |= _references(item)
    return found


def _dead_letter_queues(template: dict[str, Any]) -> set[str]:
    """Queues that some resource names as its dead-letter or on-failure destination."""
    queues = {k for k, r in (template.get("Resources") or {}).items() if r.get("Type") == "AWS::SQS::Queue"}
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, arg in value.items():
                if any(marker in key.lower() for marker in _DEAD_LETTER_KEYS):
                    found.update(_references(arg) & queues)
                walk(arg)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for resource in (template.get("Resources") or {}).values():
        walk(resource.get("Properties") or {})
    return found


def health_alarms(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(logical id, why) of the template's health alarms, most telling first: composite alarms,
    function errors, then dead-letter queue depth; by logical id within each kind."""
    resources = template.get("Resources") or {}
    dlqs = _dead_letter_queues(template)
    composite, errors, depth = [], [], []
    for logical_id, r in sorted(resources.items()):
        props = r.get("Properties") or {}
        if r.get("Type") == COMPOSITE_ALARM:
            composite.append((logical_id, "composite alarm"))
        elif r.get("Type") != ALARM:
            continue
        elif props.get("Namespace") == "AWS/Lambda" and props.get("MetricName") == "Errors":
            target = sorted(_references(props.get("Dimensions")))
            errors.append((logical_id, f"Lambda Errors of {', '.join(target) or 'a function'}"))
        elif props.get("Namespace") == "AWS/SQS" and props.get("MetricName") == "ApproximateNumberOfMessagesVisible":
            queues = sorted(_references(props.get("Dimensions")) & dlqs)
            if queues:
                depth.append((logical_id, f"messages in dead-letter queue {', '.join(queues)}"))
    return composite + errors + depth


def plan_rollback(
    stack_id: str,
    deployed_template: dict[str, Any] | None,
    new_template: dict[str, Any],
    physical_ids: dict[str, str],
    *,
    enabled: bool,
    monitoring_minutes: int,
    why_disabled: str = "--no-rollback-alarms",
) -> RollbackPlan:
    """The RollbackConfiguration for an UPDATE of `stack_id` (alarm names from `physical_ids`)."""
    if not enabled:
        return RollbackPlan(None, note=why_disabled)
    if deployed_template is None:
        return RollbackPlan(None, note="a new stack has no alarms yet")
    new_resources = new_template.get("Resources") or {}
    old_resources = deployed_template.get("Resources") or {}
    candidates = [
        (logical_id, why)
        for logical_id, why in health_alarms(deployed_template)
        if logical_id in new_resources
        and new_resources[logical_id].get("Type") == old_resources[logical_id].get("Type")
        and physical_ids.get(logical_id)
    ]
    if not candidates:
        return RollbackPlan(None, note="the stack has no function-error or dead-letter alarms")
    # arn:<partition>:cloudformation:<region>:<account>:stack/<name>/<id>
    _, partition, _, region, account = stack_id.split(":")[:5]
    used, left_out = candidates[:MAX_TRIGGERS], [logical_id for logical_id, _ in candidates[MAX_TRIGGERS:]]
    triggers: list[RollbackTriggerTypeDef] = [
        {
            "Arn": f"arn:{partition}:cloudwatch:{region}:{account}:alarm:{physical_ids[logical_id]}",
            "Type": new_resources[logical_id]["Type"],
        }
        for logical_id, _ in used
    ]
    configuration: RollbackConfigurationTypeDef = {
        "RollbackTriggers": triggers,
        "MonitoringTimeInMinutes": monitoring_minutes,
    }
    return RollbackPlan(configuration, used, left_out)
