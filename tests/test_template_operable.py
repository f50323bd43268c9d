"""Operable on day one (docs/design.md "Operable on day one"): error metric filters, the alarm topic, an alarm for every
failure mode, the dashboard and the runbook - on build/template.json and the regulated render."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from market_cfn.stack.config import FUNCTION_TIMEOUT_SECONDS, PROFILES, StackConfig
from market_cfn.stack.render import render_dict

ROOT = Path(__file__).resolve().parents[1]
FUNCTIONS = ("DataIngestion", "DataProcessor", "DataAggregator")
TOPIC_ACTIONS = {
    "Fn::If": ["HasAlarmAction", [{"Ref": "AlarmTopic"}, {"Ref": "AlarmActionArn"}], [{"Ref": "AlarmTopic"}]]
}


@pytest.fixture(scope="module", params=PROFILES)
def template(request: pytest.FixtureRequest) -> dict:
    return render_dict(StackConfig(profile=request.param))


@pytest.fixture(scope="module")
def resources(template: dict) -> dict:
    return template["Resources"]


@pytest.fixture(scope="module")
def alarms(resources: dict) -> dict:
    return {k: v["Properties"] for k, v in resources.items() if v["Type"] == "AWS::CloudWatch::Alarm"}


def _dims(alarm: dict) -> dict:
    return {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}


def _find(alarms: dict, namespace: str, metric: str) -> dict[str, dict]:
    return {k: a for k, a in alarms.items() if a.get("Namespace") == namespace and a.get("MetricName") == metric}


# --- error metric filters --------------------------------------------------------------------


@pytest.mark.parametrize("base", FUNCTIONS)
def test_error_filters_match_the_level_field_and_crash_lines_never_a_substring(resources: dict, base: str) -> None:
    filters = {
        k: v["Properties"]
        for k, v in resources.items()
        if v["Type"] == "AWS::Logs::MetricFilter" and v["Properties"]["LogGroupName"] == {"Ref": f"{base}LogGroup"}
    }
    patterns = {f["FilterPattern"] for f in filters.values()}
    # Powertools' JSON lines by their level field; the runtime's own "[ERROR] ..." lines by
    # their first word. No bare terms: "?ERROR ?Exception" matched user data anywhere.
    assert patterns == {
        '{ $.level = "ERROR" || $.level = "CRITICAL" }',
        '[level = "[ERROR]*" || level = "ERROR*", ...]',
    }
    for pattern in patterns:
        assert pattern.startswith(("{", "[")), pattern
    metrics = {json.dumps(t["MetricName"]) for f in filters.values() for t in f["MetricTransformations"]}
    (metric,) = metrics  # both count into one metric
    assert f"{base}ErrorCount-${{Env}}" in metric


# --- the alarm topic ---------------------------------------------------------------------------


def test_the_alarm_topic_is_encrypted_and_only_this_accounts_alarms_publish(resources: dict) -> None:
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] in ({"Fn::GetAtt": ["PipelineKey", "Arn"]}, _key_if())
    (statement,) = resources["AlarmTopicPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": ["cloudwatch.amazonaws.com"]}
    assert statement["Action"] == ["sns:Publish"]
    assert "aws:SourceArn" in statement["Condition"]["ArnLike"]
    assert "aws:SourceAccount" in statement["Condition"]["StringEquals"]


def _key_if() -> dict:
    return {"Fn::If": ["CreateKmsKey", {"Fn::GetAtt": ["PipelineKey", "Arn"]}, {"Ref": "KmsKeyArn"}]}


def test_email_subscription_is_optional(template: dict, resources: dict) -> None:
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert template["Parameters"]["AlarmEmail"]["Default"] == ""
    pattern = template["Parameters"]["AlarmEmail"]["AllowedPattern"]
    assert re.match(pattern, "") and re.match(pattern, "oncall@example.com") and not re.match(pattern, "oncall")


def test_every_alarm_notifies_the_topic_and_the_optional_action_when_firing_and_recovering(alarms: dict) -> None:
    assert len(alarms) >= 20
    for logical_id, alarm in alarms.items():
        assert alarm["AlarmActions"] == TOPIC_ACTIONS, logical_id
        assert alarm["OKActions"] == TOPIC_ACTIONS, logical_id
        assert alarm["AlarmName"]["Fn::Sub"][0] == f"{logical_id}-${{Env}}"
        assert f"docs/operations.md#{logical_id.lower()}" in alarm["AlarmDescription"]


# --- an alarm for every way the pipeline fails --------------------------------------------------


@pytest.mark.parametrize("base", FUNCTIONS)
def test_each_function_alarms_on_errors_throttles_and_duration_near_the_timeout(alarms: dict, base: str) -> None:
    fn = {"FunctionName": {"Ref": f"{base}Function"}}
    for metric in ("Errors", "Throttles", "Duration"):
        found = [a for a in _find(alarms, "AWS/Lambda", metric).values() if _dims(a) == fn]
        assert len(found) == 1, (base, metric)
    (duration,) = [a for a in _find(alarms, "AWS/Lambda", "Duration").values() if _dims(a) == fn]
    assert duration["Statistic"] == "Maximum"
    assert 0.5 * FUNCTION_TIMEOUT_SECONDS * 1000 <= duration["Threshold"] < FUNCTION_TIMEOUT_SECONDS * 1000
    logged = alarms[f"{base}ErrorAlarm"]
    assert logged["Namespace"] == "MarketAnalytics" and f"{base}ErrorCount" in json.dumps(logged["MetricName"])


@pytest.mark.parametrize("queue", ["ProcessingQueue", "AggregationQueue"])
def test_the_age_of_the_oldest_message_is_watched(alarms: dict, queue: str) -> None:
    (alarm,) = [
        a
        for a in _find(alarms, "AWS/SQS", "ApproximateAgeOfOldestMessage").values()
        if _dims(a) == {"QueueName": {"Fn::GetAtt": [queue, "QueueName"]}}
    ]
    assert alarm["Statistic"] == "Maximum" and alarm["Threshold"] >= 300


def test_api_5xx_and_latency(alarms: dict) -> None:
    dims = {"ApiName": {"Fn::Sub": ["MarketDataApi-${Env}", {"Env": {"Ref": "EnvironmentSuffix"}}]}}
    dims["Stage"] = {"Ref": "EnvironmentSuffix"}
    (errors,) = _find(alarms, "AWS/ApiGateway", "5XXError").values()
    (latency,) = _find(alarms, "AWS/ApiGateway", "Latency").values()
    assert _dims(errors) == _dims(latency) == dims
    assert latency["ExtendedStatistic"] == "p99"


@pytest.mark.parametrize("rule,bus", [("PointsStoredRule", True), ("AggregationScheduleRule", False)])
def test_both_rules_alarm_on_undelivered_events(resources: dict, alarms: dict, rule: str, bus: bool) -> None:
    alarm = alarms[f"{rule}DeliveryAlarm"]
    stats = {q["Id"]: q["MetricStat"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert {s["Metric"]["MetricName"] for s in stats.values()} == {
        "FailedInvocations",
        "InvocationsSentToDlq",
        "InvocationsFailedToBeSentToDlq",
    }
    (expression,) = [q for q in alarm["Metrics"] if q.get("ReturnData")]
    assert all(qid in expression["Expression"] for qid in stats)
    for stat in stats.values():
        dims = {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]}
        assert dims["RuleName"] == resources[rule]["Properties"]["Name"]
        # custom-bus rules report with EventBusName too; default-bus rules without it
        assert ("EventBusName" in dims) is bus


def test_every_dead_letter_queue_has_an_alarm(resources: dict, alarms: dict) -> None:
    dlqs = {k for k, v in resources.items() if v["Type"] == "AWS::SQS::Queue" and k.endswith("DLQ")}
    watched = {
        _dims(a)["QueueName"]["Fn::GetAtt"][0]
        for a in _find(alarms, "AWS/SQS", "ApproximateNumberOfMessagesVisible").values()
    }
    assert watched == dlqs and len(dlqs) == 3


def test_aggregation_freshness_uses_the_metrics_the_handlers_publish(resources: dict, alarms: dict) -> None:
    alarm = alarms["AggregationFreshnessAlarm"]
    stats = {q["Id"]: q["MetricStat"]["Metric"] for q in alarm["Metrics"] if "MetricStat" in q}
    assert stats["points"]["MetricName"] == "PointsStored"
    assert stats["aggregates"]["MetricName"] == "AggregatesComputed"
    # The handlers publish them with Powertools: namespace from POWERTOOLS_METRICS_NAMESPACE,
    # dimension `service` = POWERTOOLS_SERVICE_NAME of the function that publishes them.
    for qid, base, handler in (
        ("points", "DataProcessor", "data_processor"),
        ("aggregates", "DataAggregator", "data_aggregator"),
    ):
        env = resources[f"{base}Function"]["Properties"]["Environment"]["Variables"]
        assert stats[qid]["Namespace"] == env["POWERTOOLS_METRICS_NAMESPACE"]
        assert stats[qid]["Dimensions"] == [{"Name": "service", "Value": env["POWERTOOLS_SERVICE_NAME"]}]
        source = (ROOT / "handlers" / f"{handler}.py").read_text()
        assert f'name="{stats[qid]["MetricName"]}"' in source, f"handlers/{handler}.py no longer publishes it"
    (expression,) = [q for q in alarm["Metrics"] if q.get("ReturnData")]
    assert "points" in expression["Expression"] and "aggregates" in expression["Expression"]
    assert alarm["EvaluationPeriods"] * alarm["Metrics"][1]["MetricStat"]["Period"] >= 1800


# --- dashboard and runbook ------------------------------------------------------------------------


def test_the_dashboard_reads_like_the_data_flow(resources: dict, alarms: dict) -> None:
    text, variables = resources["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert variables == {"Env": {"Ref": "EnvironmentSuffix"}}
    body = json.loads(text)
    headings = [w["properties"]["markdown"] for w in body["widgets"] if w["type"] == "text"]
    order = ["1. In", "2. ProcessingQueue", "3. Stored", "4. AggregationQueue", "Dead letters", "Functions"]
    positions = [next(i for i, h in enumerate(headings) if key in h) for key in order]
    assert positions == sorted(positions)
    titles = " ".join(w["properties"].get("title", "") for w in body["widgets"])
    for needle in ("accepted", "rejected", "oldest", "dead-letter", "Aggregates written", "Throttles", "latency"):
        assert needle.lower() in titles.lower(), needle
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    listed = {a.rsplit(":", 1)[1].removesuffix("-${Env}") for a in alarm_widget["properties"]["alarms"]}
    assert listed == set(alarms)


def test_every_custom_metric_on_the_dashboard_is_published_by_its_handler(resources: dict) -> None:
    body = json.loads(resources["PipelineDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0])
    handlers = {
        "DataIngestion": "data_ingestion",
        "DataProcessor": "data_processor",
        "DataAggregator": "data_aggregator",
    }
    found = 0
    for widget in body["widgets"]:
        for metric in widget.get("properties", {}).get("metrics", []):
            if metric[0] != "MarketAnalytics":
                continue
            name, service = metric[1], metric[3].removesuffix("-${Env}")
            source = (ROOT / "handlers" / f"{handlers[service]}.py").read_text()
            assert f'name="{name}"' in source, f"{service} does not publish {name}"
            found += 1
    assert found >= 8


def test_the_runbook_covers_every_alarm(alarms: dict) -> None:
    runbook = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert re.search(r"^## Runbook", runbook, re.M)
    section = runbook[runbook.index("## Runbook") :]
    for logical_id in alarms:
        heading = re.search(rf"^### {re.escape(logical_id)}$", section, re.M)
        assert heading, f"docs/operations.md has no runbook entry for {logical_id}"
        entry = section[heading.end() :].split("\n### ", 1)[0]
        assert "What it means" in entry and "What to do" in entry, logical_id
