"""Change sets: create (nested stacks included), wait, describe every page with and without property
values, describe every child change set, read templates, delete.

AWS semantics (API reference CreateChangeSet, DescribeChangeSet, GetTemplate; botocore's
service model): `IncludeNestedStacks=True` makes CloudFormation create a change set for
each nested stack too; the parent's ResourceChange for an AWS::CloudFormation::Stack names
the child's change set in `ChangeSetId`. DescribeChangeSet pages with `NextToken`; with
`IncludePropertyValues=True` it adds BeforeContext/AfterContext and Details' values, and
may leave changes out while saying so in `StatusReason` (aws/aws-cdk-cli#1780), which is
why the plain description is fetched too. `RollbackConfiguration` belongs to
CreateChangeSet and applies when the change set is executed.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from market_cfn.base.aws import error_code, error_message
from market_cfn.base.console import Console
from market_cfn.base.errors import DeployError, UsageError
from market_cfn.base.waits import Waits, poll
from market_cfn.deploy.preflight import describe_stack, has_resources
from market_cfn.deploy.review.model import MASK
from market_cfn.deploy.states import NO_CHANGES_REASONS

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_cloudformation.literals import CapabilityType, ChangeSetTypeType
    from mypy_boto3_cloudformation.type_defs import (
        CreateChangeSetInputTypeDef,
        DescribeChangeSetInputTypeDef,
        DescribeChangeSetOutputTypeDef,
        GetTemplateInputTypeDef,
        ParameterTypeDef,
        RollbackConfigurationTypeDef,
    )

# --- Change sets ----------------------------------------------------------------------


@dataclass(frozen=True)
class ChangeSetRequest:
    stack_name: str
    parameters: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)
    template_body: str | None = None
    template_url: str | None = None
    description: str = "market_cfn deploy"
    capabilities: tuple[CapabilityType, ...] = ("CAPABILITY_IAM", "CAPABILITY_NAMED_IAM")
    # The new template's parameters and their defaults (None: no default). On an UPDATE, a
    # parameter the stack already has and the command line does not set keeps its
    # previous value, as `aws cloudformation deploy` does: a redeploy without
    # `--parameter AlarmActionArn=...` must not silently switch the alarms' notifications off.
    template_parameters: dict[str, str | None] = field(default_factory=dict)
    rollback_configuration: RollbackConfigurationTypeDef | None = None  # triggers.py


def change_set_name(now: datetime) -> str:
    # Must start with a letter and hold only letters, digits and hyphens (CreateChangeSet).
    return "deploy-" + now.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def change_set_parameters(request: ChangeSetRequest, previous: dict[str, str] | None = None) -> list[ParameterTypeDef]:
    """The Parameters of CreateChangeSet: the given values, then the previous value of each
    parameter of the new template that the existing stack has and nobody set now.

    A previous value equal to the new template's default is left to the default; another
    is passed as itself when DescribeStacks shows it, so an unchanged redeploy sends
    exactly the same parameters as the deploy before it (emulators compare them to find
    "no changes"); a NoEcho value, which DescribeStacks masks, is kept with UsePreviousValue.
    """
    previous = previous or {}
    given: list[ParameterTypeDef] = [
        {"ParameterKey": k, "ParameterValue": v} for k, v in sorted(request.parameters.items())
    ]
    kept: list[ParameterTypeDef] = []
    for key in sorted((previous.keys() & request.template_parameters.keys()) - request.parameters.keys()):
        value = previous[key]
        if value == request.template_parameters[key]:
            continue  # the default gives the same value; sending nothing keeps requests identical
        if value == MASK:
            kept.append({"ParameterKey": key, "UsePreviousValue": True})
        else:
            kept.append({"ParameterKey": key, "ParameterValue": value})
    return given + kept


def create_change_set(
    cfn: CloudFormationClient,
    request: ChangeSetRequest,
    *,
    change_set_type: ChangeSetTypeType,
    name: str,
    previous: dict[str, str] | None = None,
) -> str | None:
    """Create the change set and return its ARN; None when CloudFormation says nothing changed.

    `previous`: the parameters of the stack being updated, as DescribeStacks shows them.
    """
    kwargs: CreateChangeSetInputTypeDef = {
        "StackName": request.stack_name,
        "ChangeSetName": name,
        "ChangeSetType": change_set_type,
        "Capabilities": list(request.capabilities),
        "Parameters": change_set_parameters(request, previous),
        "Tags": [{"Key": k, "Value": v} for k, v in sorted(request.tags.items())],
        "Description": request.description[:1024],
        "ClientToken": uuid.uuid4().hex,
        # a change set for every nested stack too, so the guard sees inside them
        "IncludeNestedStacks": True,
    }
    if request.rollback_configuration:
        kwargs["RollbackConfiguration"] = request.rollback_configuration
    if request.template_url:
        kwargs["TemplateURL"] = request.template_url
    elif request.template_body is not None:
        kwargs["TemplateBody"] = request.template_body
    else:  # every caller names the template one way or the other
        raise ValueError(f"change set for {request.stack_name}: neither template_body nor template_url")
    try:
        return cfn.create_change_set(**kwargs)["Id"]
    except ClientError as exc:
        # Real CloudFormation creates a FAILED change set when nothing changed; some
        # emulations (moto) refuse the CreateChangeSet call itself with this message.
        if error_code(exc) == "ValidationError" and any(r in error_message(exc) for r in NO_CHANGES_REASONS):
            return None
        if error_code(exc) in ("ValidationError", "InsufficientCapabilitiesException", "LimitExceededException"):
            raise DeployError(f"CloudFormation rejected the change set: {error_message(exc)}") from exc
        raise


def wait_for_change_set(cfn: CloudFormationClient, arn: str, waits: Waits) -> DescribeChangeSetOutputTypeDef:
    """Poll DescribeChangeSet until creation finishes (CREATE_COMPLETE or FAILED)."""
    return poll(
        lambda: cfn.describe_change_set(ChangeSetName=arn),
        lambda seen: seen["Status"] in ("CREATE_COMPLETE", "FAILED", "DELETE_COMPLETE", "DELETE_FAILED"),
        waits,
        timeout_seconds=waits.change_set_timeout_seconds,
        timed_out=lambda seen: DeployError(
            f"change set {arn} is still {seen['Status']} after {waits.change_set_timeout_seconds:.0f} s; "
            "giving up (it was left in place: inspect it in the console, or delete it)"
        ),
    )


def is_no_changes(change_set: Mapping[str, Any]) -> bool:
    reason = change_set.get("StatusReason") or ""
    return change_set["Status"] == "FAILED" and any(r in reason for r in NO_CHANGES_REASONS)


def change_set_arn(cfn: CloudFormationClient, stack_name: str, name: str) -> str:
    """The ARN of the change set `name` of `stack_name` (DescribeChangeSet takes a name only with
    StackName beside it: CloudFormation API reference, DescribeChangeSet)."""
    try:
        return str(cfn.describe_change_set(ChangeSetName=name, StackName=stack_name)["ChangeSetId"])
    except ClientError as exc:
        if error_code(exc) in ("ChangeSetNotFound", "ChangeSetNotFoundException", "ValidationError"):
            raise UsageError(f"change set {name!r} of stack {stack_name} not found") from exc
        raise


def describe_change_set_all(cfn: CloudFormationClient, arn: str, *, include_values: bool = True) -> dict[str, Any]:
    """DescribeChangeSet (with IncludePropertyValues unless told not to), every page merged into one."""
    kwargs: DescribeChangeSetInputTypeDef = {"ChangeSetName": arn}
    if include_values:
        kwargs["IncludePropertyValues"] = True
    merged: dict[str, Any] | None = None
    while True:
        page = cfn.describe_change_set(**kwargs)
        if merged is None:
            merged = dict(page)
            merged["Changes"] = list(page.get("Changes", []))
        else:
            merged["Changes"].extend(page.get("Changes", []))
        token = page.get("NextToken")
        if not token:
            merged.pop("NextToken", None)
            return merged
        kwargs["NextToken"] = token


def delete_change_set(cfn: CloudFormationClient, change_set: Mapping[str, Any], console: Console) -> list[str]:
    """Delete a change set, and the empty stack a never-executed CREATE change set leaves.

    Deleting a parent change set deletes its nested change sets (DeleteChangeSet reference).
    Returns what was deleted, one item each, for the final message.
    """
    cfn.delete_change_set(ChangeSetName=change_set["ChangeSetId"])
    name = change_set.get("ChangeSetName") or change_set["ChangeSetId"]
    console.say(f"Deleted change set {name}.")
    deleted = [f"change set {name}"]
    stack = describe_stack(cfn, change_set["StackId"])
    if stack and stack["StackStatus"] == "REVIEW_IN_PROGRESS" and not has_resources(cfn, change_set["StackId"]):
        cfn.delete_stack(StackName=change_set["StackId"])
        console.say(f"Deleted the empty stack {change_set['StackName']} (REVIEW_IN_PROGRESS) it was created for.")
        deleted.append(f"empty stack {change_set['StackName']}")
    return deleted


def parse_template(body: Any, *, what: str) -> dict[str, Any]:
    """A template body as GetTemplate returns it: botocore decodes JSON bodies into a dict; a YAML
    body stays a string and is read with cfn-lint's decoder (short-form tags such as !Ref)."""
    if isinstance(body, dict):
        return json.loads(json.dumps(body))  # plain dicts, not OrderedDicts
    if not isinstance(body, str) or not body.strip():
        raise DeployError(f"{what}: no template body returned")
    try:
        value = json.loads(body)
    except ValueError:
        try:
            from cfnlint.decode.cfn_yaml import loads as yaml_loads  # type: ignore[import-untyped]
        except ImportError as exc:  # fail closed: a template we cannot read is not reviewed as empty
            raise DeployError(f"{what} is YAML; install cfn-lint to read it") from exc
        try:
            value = json.loads(json.dumps(yaml_loads(body)))
        except Exception as exc:
            raise DeployError(f"{what}: cannot be parsed: {' '.join(str(exc).split())[:200]}") from exc
    if not isinstance(value, dict):
        raise DeployError(f"{what}: not a template (a {type(value).__name__})")
    return value


def deployed_template(cfn: CloudFormationClient, stack: str) -> dict[str, Any]:
    """GetTemplate(TemplateStage=Original) of the stack: the template as submitted, before transforms."""
    body = cfn.get_template(StackName=stack, TemplateStage="Original").get("TemplateBody")
    return parse_template(body, what=f"the deployed template of {stack}")


def change_set_template(cfn: CloudFormationClient, change_set_arn: str, stack_id: str) -> dict[str, Any]:
    """GetTemplate(ChangeSetName=ARN, TemplateStage=Original): the template a change set deploys.
    StackName is passed too: optional with an ARN on AWS, and moto reads only StackName."""
    body = cfn.get_template(StackName=stack_id, ChangeSetName=change_set_arn, TemplateStage="Original").get(
        "TemplateBody"
    )
    return parse_template(body, what=f"the template of change set {change_set_arn}")


def processed_template(
    cfn: CloudFormationClient, stack_id: str, change_set_arn: str | None = None
) -> dict[str, Any] | None:
    """GetTemplate(TemplateStage=Processed): the template "after CloudFormation has processed all
    transforms" (GetTemplate reference; botocore shape TemplateStage: Original | Processed), of the stack
    or, with a change set ARN, of the change set. None when CloudFormation (or an emulator) refuses."""
    kwargs: GetTemplateInputTypeDef = {"StackName": stack_id, "TemplateStage": "Processed"}
    if change_set_arn:
        kwargs["ChangeSetName"] = change_set_arn
    try:
        body = cfn.get_template(**kwargs).get("TemplateBody")
    except ClientError:
        return None
    what = f"the processed template of {change_set_arn or stack_id}"
    return parse_template(body, what=what)
