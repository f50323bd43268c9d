"""Parameters of an UPDATE change set: what the command line does not set keeps its value."""

from market_cfn.deploy.changeset import ChangeSetRequest, change_set_parameters
from market_cfn.deploy.review.model import MASK

TEMPLATE_PARAMETERS = {
    "EnvironmentSuffix": "dev",
    "EnvironmentTag": "Production",
    "AlarmActionArn": "",
    "CodeS3Bucket": None,
    "CodeS3Key": None,
    "ApiToken": None,  # a NoEcho parameter, masked by DescribeStacks
}


def request(**given: str) -> ChangeSetRequest:
    return ChangeSetRequest("market-data-dev", given, template_parameters=TEMPLATE_PARAMETERS)


def test_a_create_sends_only_what_was_given() -> None:
    assert change_set_parameters(request(EnvironmentSuffix="dev"), {}) == [
        {"ParameterKey": "EnvironmentSuffix", "ParameterValue": "dev"}
    ]


def test_an_update_keeps_previous_values_nobody_set_now() -> None:
    previous = {
        "EnvironmentSuffix": "dev",
        "AlarmActionArn": "arn:aws:sns:us-east-1:123456789012:pager",  # set on an earlier deploy
        "EnvironmentTag": "Production",  # equal to the default: nothing to send
        "ApiToken": MASK,
        "Retired": "x",  # no longer in the template: must not be sent
    }
    params = change_set_parameters(request(EnvironmentSuffix="dev", CodeS3Key="k2"), previous)
    assert params == [
        {"ParameterKey": "CodeS3Key", "ParameterValue": "k2"},
        {"ParameterKey": "EnvironmentSuffix", "ParameterValue": "dev"},
        {"ParameterKey": "AlarmActionArn", "ParameterValue": "arn:aws:sns:us-east-1:123456789012:pager"},
        {"ParameterKey": "ApiToken", "UsePreviousValue": True},
    ]


def test_a_value_given_now_wins_over_the_previous_one() -> None:
    params = change_set_parameters(request(AlarmActionArn=""), {"AlarmActionArn": "arn:aws:sns:us-east-1:1:x"})
    assert params == [{"ParameterKey": "AlarmActionArn", "ParameterValue": ""}]
