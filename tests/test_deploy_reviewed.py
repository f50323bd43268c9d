"""Review once, execute what was reviewed: the review digest, and the one destructive question
--yes does not answer (deleting a failed stack)."""

from __future__ import annotations

import pytest
from stubs_cfn import CS_ARN, STACK, STACK_ID, console, output, stack

from market_cfn.base.aws import Where
from market_cfn.base.errors import Refused
from market_cfn.deploy.gate import DeployOptions, execute_hint
from market_cfn.deploy.preflight import preflight
from market_cfn.deploy.review.digest import check_reviewed, review_digest
from market_cfn.deploy.review.model import Overrides, ReviewInput

CHANGES = [
    {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "DataIngestion",
            "ResourceType": "AWS::Lambda::Function",
            "Replacement": "False",
        },
    }
]
CHANGE_SET = {
    "ChangeSetId": CS_ARN,
    "StackId": STACK_ID,
    "StackName": STACK,
    "Parameters": [{"ParameterKey": "EnvironmentSuffix", "ParameterValue": "dev"}],
    "Changes": CHANGES,
    "ResponseMetadata": {"RequestId": "a"},
    "NextToken": "page-2",
}
DEPLOYED = {"Resources": {"DataIngestion": {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 512}}}}


def inputs(**changes) -> ReviewInput:
    base = dict(
        change_set=CHANGE_SET,
        plain_change_set=None,
        nested={},
        deployed_template=DEPLOYED,
        new_template={"Resources": {}},
        old_parameters={"EnvironmentSuffix": "dev"},
        new_parameters={"EnvironmentSuffix": "dev"},
    )
    return ReviewInput(**(base | changes))


def test_the_same_state_gives_the_same_digest_whatever_the_response_metadata():
    again = inputs(change_set=CHANGE_SET | {"ResponseMetadata": {"RequestId": "b"}, "NextToken": None})
    assert review_digest(inputs()) == review_digest(again)
    assert len(review_digest(inputs())) == 64
    assert check_reviewed(review_digest(inputs()).upper(), again) is None


@pytest.mark.parametrize(
    "changed",
    [
        {"change_set": CHANGE_SET | {"ChangeSetId": CS_ARN + "-other"}},  # another change set
        {"change_set": CHANGE_SET | {"Changes": []}},  # other changes
        {"change_set": CHANGE_SET | {"Parameters": []}},
        {"deployed_template": {"Resources": {}}},  # the stack was updated since the review
        {"old_parameters": {"EnvironmentSuffix": "qa"}},
        {"nested": {"Child": inputs()}},
    ],
)
def test_anything_the_review_rested_on_changes_the_digest_and_is_refused(changed):
    reviewed = review_digest(inputs())
    problem = check_reviewed(reviewed, inputs(**changed))
    assert problem is not None and "changed since the review" in problem and reviewed[:12] in problem


def test_the_hint_carries_every_override_yes_where_and_the_digest():
    options = DeployOptions(
        assume_yes=True,
        execute=False,
        overrides=Overrides(
            allow_replacement=frozenset({"MarketDataTable"}),
            allow_broadening=True,
            extra_stateful_types=frozenset({"AWS::EFS::FileSystem"}),
        ),
        drift_check=False,
        where=Where(region="eu-west-1", profile="ops team"),
    )
    hint = execute_hint(options, CS_ARN, "ab" * 32)
    assert hint.startswith(f"bin/deploy --execute {CS_ARN} --region eu-west-1 --profile 'ops team' ")
    for part in (
        "--allow-replacement MarketDataTable",
        "--allow-broadening",
        "--stateful-type AWS::EFS::FileSystem",
        "--no-drift-check",
        "--yes",
    ):
        assert part in hint
    assert hint.endswith("--reviewed-sha256 " + "ab" * 32)


# --- a failed stack is deleted only when asked to -------------------------------------------------


def test_yes_does_not_delete_a_failed_stack(cfn, waits):
    cfn.stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    c = console(None)  # no terminal: as under --yes in CI
    with pytest.raises(Refused, match="--yes does not delete stacks: add --delete-failed-stack"):
        preflight(cfn, STACK, c, waits, delete_failed_stack=False)
    cfn.stubber.assert_no_pending_responses()  # no DeleteStack was called (the Stubber refuses unplanned calls)


def test_delete_failed_stack_deletes_it_without_asking(cfn, waits):
    s = cfn.stubber
    s.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    s.add_response("delete_stack", {}, {"StackName": STACK_ID})
    s.add_response("describe_stacks", stack("DELETE_COMPLETE"), {"StackName": STACK_ID})
    c = console(None)
    assert preflight(cfn, STACK, c, waits, delete_failed_stack=True) is None
    assert "(--delete-failed-stack)" in output(c) and "Deleted stack market-data-dev." in output(c)
    assert c.asked == []  # type: ignore[attr-defined]


def test_at_a_terminal_the_question_is_asked_and_no_means_no(cfn, waits):
    cfn.stubber.add_response("describe_stacks", stack("ROLLBACK_COMPLETE"), {"StackName": STACK})
    c = console("n")
    with pytest.raises(Refused, match="not deleted"):
        preflight(cfn, STACK, c, waits, delete_failed_stack=False)
    assert c.asked == ["Delete stack market-data-dev so the deploy can proceed? [y/N] "]  # type: ignore[attr-defined]
