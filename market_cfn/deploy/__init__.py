"""Change-set deploys, one module per step (STYLE.md "Layout"):

common (outcomes, waits, console) - preflight - changeset (create, wait, every page) - model and review
(plain data from the change set) - guard (data loss) - iam (security diff) - format (printing only)
- follow (execute and events) - artifacts and packaging (content-addressed uploads) - bootstrap - pipeline
(one whole deploy). Every function that talks to AWS takes its boto3 client(s) as arguments.

The names below are re-exported so `from market_cfn import deploy` keeps one namespace for callers.
"""

from market_cfn.deploy.artifacts import (
    ensure_object,
    template_location,
)
from market_cfn.deploy.backstop import (
    apply_stack_policies,
    enable_termination_protection,
    retains_data,
    stack_policy,
)
from market_cfn.deploy.bootstrap import (
    API_LOGGING_POLICY,
    BUCKET_OUTPUT,
    DEFAULT_STACK_NAME,
    NONCURRENT_EXPIRATION_DAYS,
    build_bootstrap_template,
    ensure_bootstrap,
    render_bootstrap_json,
)
from market_cfn.deploy.changeset import (
    ChangeSetRequest,
    change_set_arn,
    change_set_name,
    change_set_parameters,
    change_set_template,
    create_change_set,
    delete_change_set,
    deployed_template,
    describe_change_set_all,
    is_no_changes,
    wait_for_change_set,
)
from market_cfn.deploy.common import (
    CANCELLED_REASONS,
    MASK,
    NO_CHANGES_REASONS,
    SUCCESS_STATUS,
    TEMPLATE_BODY_LIMIT,
    UNRECOVERABLE_STATUSES,
    Console,
    DeployError,
    Refused,
    UsageError,
    Waits,
    Where,
    table,
)
from market_cfn.deploy.drift import DriftResult, detect_drift
from market_cfn.deploy.follow import (
    RESOURCE_DONE,
    ExecutionResult,
    execute_and_follow,
    resolve_outputs_locally,
)
from market_cfn.deploy.format import (
    render_result,
    render_review,
    review_markdown,
)
from market_cfn.deploy.gate import DeployOptions, GateContext, review_and_execute
from market_cfn.deploy.guard import (
    STATEFUL_TYPES,
    stateful_logical_ids,
)
from market_cfn.deploy.iam import (
    POLICY_PROPERTIES,
)
from market_cfn.deploy.inputs import gather_review_input
from market_cfn.deploy.model import (
    Finding,
    GuardViolation,
    IamFinding,
    Overrides,
    PropertyChange,
    ResourceChangeView,
    Review,
    ReviewInput,
)
from market_cfn.deploy.outputs import ResolvedOutputs, StackFacts, resolve_outputs
from market_cfn.deploy.pipeline import (
    TOOL_PARAMETERS,
    Outcome,
    PipelineDeploy,
    check_parameters,
    deploy_pipeline,
    deploy_stack,
    execute_existing,
    no_echo_parameters,
    validate_pipeline,
)
from market_cfn.deploy.policy import Grant
from market_cfn.deploy.preflight import (
    describe_stack,
    preflight,
    stack_outputs,
    stack_resources,
    wait_for_stack,
)
from market_cfn.deploy.review import (
    build_review,
)
from market_cfn.deploy.settings import EnvSettings, load_settings
from market_cfn.deploy.triggers import DEFAULT_MONITORING_MINUTES, RollbackPlan, plan_rollback

__all__ = [
    "deployed_template",
    "change_set_template",
    "stack_resources",
    "plan_rollback",
    "RollbackPlan",
    "DEFAULT_MONITORING_MINUTES",
    "load_settings",
    "EnvSettings",
    "resolve_outputs",
    "StackFacts",
    "ResolvedOutputs",
    "gather_review_input",
    "GateContext",
    "DeployOptions",
    "detect_drift",
    "DriftResult",
    "Where",
    "stack_policy",
    "retains_data",
    "enable_termination_protection",
    "apply_stack_policies",
    "API_LOGGING_POLICY",
    "BUCKET_OUTPUT",
    "CANCELLED_REASONS",
    "ChangeSetRequest",
    "Console",
    "DEFAULT_STACK_NAME",
    "DeployError",
    "ExecutionResult",
    "Finding",
    "Grant",
    "GuardViolation",
    "IamFinding",
    "MASK",
    "NONCURRENT_EXPIRATION_DAYS",
    "NO_CHANGES_REASONS",
    "Outcome",
    "Overrides",
    "POLICY_PROPERTIES",
    "PipelineDeploy",
    "PropertyChange",
    "RESOURCE_DONE",
    "Refused",
    "ResourceChangeView",
    "Review",
    "ReviewInput",
    "STATEFUL_TYPES",
    "SUCCESS_STATUS",
    "TEMPLATE_BODY_LIMIT",
    "TOOL_PARAMETERS",
    "UNRECOVERABLE_STATUSES",
    "UsageError",
    "Waits",
    "build_bootstrap_template",
    "build_review",
    "change_set_name",
    "change_set_parameters",
    "check_parameters",
    "create_change_set",
    "delete_change_set",
    "deploy_pipeline",
    "deploy_stack",
    "change_set_arn",
    "describe_change_set_all",
    "describe_stack",
    "ensure_bootstrap",
    "ensure_object",
    "execute_and_follow",
    "execute_existing",
    "is_no_changes",
    "no_echo_parameters",
    "preflight",
    "render_bootstrap_json",
    "render_result",
    "render_review",
    "resolve_outputs_locally",
    "review_and_execute",
    "review_markdown",
    "stack_outputs",
    "stateful_logical_ids",
    "table",
    "template_location",
    "validate_pipeline",
    "wait_for_change_set",
    "wait_for_stack",
]
