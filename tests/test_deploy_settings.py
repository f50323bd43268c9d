"""deploy.toml: one section per environment; every key checked; the command line wins key by key."""

from __future__ import annotations

from pathlib import Path

import pytest

from market_cfn.deploy import UsageError, load_settings

PROD = """
[env.prod]
stack_name = "market-data-prod"
region = "eu-west-1"
profile = "prod-deployer"
retain_data = true
render_profile = "regulated"
rollback_alarms = true
rollback_monitoring_minutes = 15
stateful_types = ["AWS::Custom::Ledger"]

[env.prod.parameters]
AlarmActionArn = "arn:aws:sns:eu-west-1:123456789012:alarms"

[env.prod.tags]
team = "markets"

[env.dev]
region = "us-east-1"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "deploy.toml"
    path.write_text(text)
    return path


def test_a_section_is_read_whole(tmp_path):
    s = load_settings(write(tmp_path, PROD), "prod", required=True)
    assert (s.stack_name, s.region, s.profile, s.retain_data, s.render_profile) == (
        "market-data-prod",
        "eu-west-1",
        "prod-deployer",
        True,
        "regulated",
    )
    assert s.rollback_alarms is True and s.rollback_monitoring_minutes == 15
    assert s.parameters == {"AlarmActionArn": "arn:aws:sns:eu-west-1:123456789012:alarms"}
    assert s.tags == {"team": "markets"} and s.stateful_types == ("AWS::Custom::Ledger",)
    dev = load_settings(write(tmp_path, PROD), "dev", required=True)
    assert dev.region == "us-east-1" and dev.retain_data is None  # unset, not False


@pytest.mark.parametrize(
    "text, message",
    [
        ("[env.prod]\nretain_date = true\n", "unknown key 'retain_date'"),
        ("[env.prod]\nretain_data = 1\n", "retain_data must be a bool, not int"),
        ("[env.prod]\nregion = ''\n", "region must not be empty"),
        ("[env.Prod]\nregion = 'x'\n", "starting with a letter"),
        ("[env.1prod]\nregion = 'x'\n", "starting with a letter"),
        ("[prod]\nregion = 'x'\n", "unknown top-level key 'prod'"),
        ("[env.prod.parameters]\nMemory = 3\n", "parameters.Memory must be a string"),
        ("[env.prod]\nrollback_monitoring_minutes = 181\n", "0-180"),
        ("[env.prod]\nstateful_types = ['Table']\n", "not a resource type"),
        ("[env.prod]\nstack_name = 'has space'\n", "not a valid CloudFormation stack name"),
        ("[env.prod\n", "not valid TOML"),
    ],
)
def test_bad_settings_are_one_line_errors(tmp_path, text, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_settings(write(tmp_path, text), "prod", required=False)


def test_every_section_is_checked_not_only_the_one_deployed(tmp_path):
    with pytest.raises(UsageError, match=r"\[env.stage\]: unknown key 'regoin'"):
        load_settings(write(tmp_path, "[env.prod]\n[env.stage]\nregoin = 'x'\n"), "prod", required=False)


def test_a_missing_file_or_section_is_an_error_only_when_named(tmp_path):
    missing = tmp_path / "nope.toml"
    assert load_settings(missing, "prod", required=False).region is None
    with pytest.raises(UsageError, match="does not exist"):
        load_settings(missing, "prod", required=True)
    path = write(tmp_path, PROD)
    assert load_settings(path, "stage", required=False).region is None
    with pytest.raises(UsageError, match=r"has no \[env.stage\] section \(it has: dev, prod\)"):
        load_settings(path, "stage", required=True)


def test_the_committed_deploy_toml_keeps_prod_retaining_its_data():
    root = Path(__file__).resolve().parents[1]
    prod = load_settings(root / "deploy.toml", "prod", required=True)
    assert prod.retain_data is True and prod.rollback_alarms is True
