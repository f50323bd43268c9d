"""Unit tests of the cost curve (bench/fit.py) and the meter's model inputs it relies on.

The fit, the projections and the windows count are pure arithmetic: these tests give them
days built from known F, w and p and check what comes back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench/ is not installed

from bench import fit, meter, ours, workload
from bench.meter import AwsMeter

WRU = 0.625 / 1e6


def _day(points: int, symbols: int, windows: int, parts: dict[str, fit.Linear]) -> fit.Day:
    return fit.Day(
        points, symbols, windows, {s: lin.usd_per_day(windows=windows, points=points) for s, lin in parts.items()}
    )


KNOWN = {
    "DynamoDB writes": fit.Linear(0.0, WRU, WRU),
    "Lambda duration": fit.Linear(0.004, 0.2e-6, 0.01e-6),
    "EventBridge events": fit.Linear(0.0001, 0.05e-6, 0.0),
}
SIZES = [(25_000, 100, 7_800), (100_000, 100, 7_800), (20_000, 1_000, 19_794), (50_000, 500, 36_674)]


def test_the_fit_recovers_a_known_linear_cost_per_service_and_in_total():
    days = [_day(n, s, w, KNOWN) for n, s, w in SIZES]
    result = fit.fit_days(days)
    for service, lin in KNOWN.items():
        got = result.by_service[service]
        assert got.fixed_usd_per_day == pytest.approx(lin.fixed_usd_per_day, abs=1e-12)
        assert got.usd_per_window == pytest.approx(lin.usd_per_window, rel=1e-9, abs=1e-15)
        assert got.usd_per_point == pytest.approx(lin.usd_per_point, rel=1e-9, abs=1e-15)
    assert result.total.fixed_usd_per_day == pytest.approx(0.0041)
    assert result.total.usd_per_window == pytest.approx(WRU + 0.25e-6)
    assert result.max_error == pytest.approx(0.0, abs=1e-12)
    report = result.as_report()
    assert report["usd_per_million_windows"] == pytest.approx(0.875)
    assert report["usd_per_million_points"] == pytest.approx(0.635)


def test_fit_errors_are_relative_and_the_least_squares_residuals_are_orthogonal():
    days = [_day(n, s, w, KNOWN) for n, s, w in SIZES]
    bumped = dict(days[3].usd_by_service)
    bumped["Lambda duration"] *= 1.5  # one day measured 50% dearer on one service
    days[3] = fit.Day(days[3].points, days[3].symbols, days[3].windows, bumped)
    result = fit.fit_days(days)
    for day, error in zip(days, result.errors, strict=True):
        predicted = result.total.usd_per_day(windows=day.windows, points=day.points)
        assert error == pytest.approx(predicted / day.usd - 1.0)
    assert result.max_error > 0.001  # four days, three parameters: the outlier shows
    # Normal equations of the relative-error least squares: sum(r_i * x_ij / c_i) = 0.
    residuals = result.errors
    for column in (lambda d: 1.0, lambda d: d.windows, lambda d: d.points):
        assert sum(r * column(d) / d.usd for r, d in zip(residuals, days, strict=True)) == pytest.approx(
            0.0, abs=1e-9 * max(column(d) / d.usd for d in days)
        )
    # The per-service fits add up to the fit of the total.
    assert sum(s.usd_per_point for s in result.by_service.values()) == pytest.approx(result.total.usd_per_point)


def test_fewer_than_three_days_or_dependent_days_are_refused():
    with pytest.raises(ValueError, match="at least 3"):
        fit.fit_days([_day(n, s, w, KNOWN) for n, s, w in SIZES[:2]])
    # windows = points / 2 on every day: (1, W, N) are dependent, w and p cannot separate.
    same_shape = [_day(n, 10, n // 2, KNOWN) for n in (10_000, 20_000, 40_000)]
    with pytest.raises(ValueError, match="linearly dependent"):
        fit.fit_days(same_shape)


def test_solve_finds_the_solution_and_refuses_a_singular_system():
    assert fit.solve([[2.0, 1.0], [1.0, 3.0]], [5.0, 10.0]) == pytest.approx([1.0, 3.0])
    with pytest.raises(ValueError):
        fit.solve([[1.0, 2.0], [2.0, 4.0]], [1.0, 2.0])


def test_projection_arithmetic_at_1m_points_over_500_symbols():
    ours_cost = fit.Linear(0.01, 0.8e-6, 0.63e-6)
    naive_cost = fit.Linear(0.02, 1.0e-6, 4.0e-6)
    p = fit.project(ours_cost, naive_cost, 1_000_000, 500)
    assert p["windows"] == 500 * 78
    usd = 0.01 + 0.8e-6 * 39_000 + 0.63e-6 * 1_000_000
    assert p["usd_per_day"] == pytest.approx(usd)
    assert p["usd_per_million_points"] == pytest.approx(usd)
    assert p["ratio_to_floor"] == pytest.approx(usd / (1_039_000 * WRU))
    assert p["naive_ratio"] == pytest.approx((0.02 + 1.0e-6 * 39_000 + 4.0e-6 * 1_000_000) / usd)


def test_projections_cover_the_issue_grid():
    grid = fit.projections(fit.Linear(0.01, 1e-6, 1e-6), fit.Linear(0.01, 2e-6, 2e-6))
    assert list(grid) == ["1M/500", "1M/5000", "5M/500", "5M/5000", "10M/5000", "20M/500", "20M/5000"]
    assert grid["20M/5000"]["windows"] == 390_000
    # At the floor's own prices (one WRU per point and per window, nothing fixed) the ratio is 1.
    floor_only = fit.projections(fit.Linear(0.0, WRU, WRU), fit.Linear(0.0, WRU, WRU))
    assert all(v["ratio_to_floor"] == pytest.approx(1.0) for v in floor_only.values())


@pytest.mark.parametrize(("points", "symbols"), [(312, 2), (1_000, 5), (2_000, 50), (1_600, 10), (5_000, 20)])
def test_windows_in_day_equals_the_generated_workload(points, symbols):
    generated = workload.generate(points, symbols)
    assert workload.windows_in_day(points, symbols) == len({(p.symbol, workload.window_of(p)) for p in generated})


# --- what the meter feeds the fit -------------------------------------------------------


def test_putevents_latency_is_found_under_the_meters_service_id():
    # The meter names EventBridge "events"; the latency table used to say "eventbridge",
    # so PutEvents fell through to a 15 ms default.
    assert meter._SERVICE["eventbridge"] == "events"
    assert meter.latency_ms("events", "PutEvents") == 20.0
    with pytest.raises(ValueError, match="no latency assumption"):
        meter.latency_ms("sns", "Publish")


def test_cpu_is_stretched_below_one_vcpu_and_not_above():
    assert meter.cpu_scale(1769) == 1.0
    assert meter.cpu_scale(3008) == 1.0
    assert meter.cpu_scale(512) == pytest.approx(1769 / 512)
    assert meter.billed_ms(100.0, 50.0, 512) == pytest.approx(100 * 1769 / 512 + 50)
    with pytest.raises(ValueError):
        meter.cpu_scale(64)


def test_meter_bills_each_function_at_its_own_memory_and_can_reprice():
    m = AwsMeter(capture_logs=False, memory_mb=3072, function_memory_mb={"agg": 512})
    for function in ("agg", "other"):
        with m.invocation(function) as inv:
            pass
        inv.cpu_ms, inv.modeled_latency_ms = 0.0, 1000.0  # a pure 1 s wait
    assert m.memory_of("agg") == 512 and m.memory_of("other") == 3072
    assert m.gb_seconds_at("agg", 512) == pytest.approx(0.5)
    assert m.gb_seconds_at("agg", 1024) == pytest.approx(1.0)


def test_empty_long_poll_bills_the_wait_the_handler_asked_for():
    import boto3
    from moto import mock_aws

    from bench import speedups

    speedups.apply()
    with mock_aws():
        m = AwsMeter(capture_logs=False)
        m.install()
        try:
            sqs = boto3.client("sqs", region_name="us-east-1")
            url = sqs.create_queue(QueueName="q")["QueueUrl"]
            with m.invocation("f"):
                sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)
            with m.invocation("f"):
                sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)
            sns = boto3.client("sns", region_name="us-east-1")
            sns.create_topic(Name="t")
        finally:
            m.uninstall()
    long_poll, short_poll = m.invocations
    assert long_poll.modeled_latency_ms == pytest.approx(1000.0 + meter.LATENCY_MS[("sqs", "*")])
    assert short_poll.modeled_latency_ms == pytest.approx(meter.LATENCY_MS[("sqs", "*")])
    # A service with no price is not billed silently: it is counted as unpriced.
    assert m.unpriced_calls[("sns", "CreateTopic")] == 1


# --- schedule and memory read from the template -----------------------------------------


def test_schedule_runs_a_day():
    assert ours.schedule_runs_per_day("rate(5 minutes)") == 288
    assert ours.schedule_runs_per_day("cron(0/5 13-20 ? * MON-FRI *)") == 96
    assert ours.schedule_runs_per_day("cron(*/5 13-21 ? * MON-FRI *)") == 108


@pytest.mark.parametrize("expression", ["rate(1 hour)", "cron(0/5 14-20 ? * MON-FRI *)", "at(2024-06-03T13:30:00)"])
def test_schedules_that_miss_a_tick_or_cannot_be_read_are_refused(expression):
    with pytest.raises(ValueError):
        ours.schedule_runs_per_day(expression)


def test_template_memory_and_schedule_read_numbers_and_parameter_defaults():
    template = json.loads(
        json.dumps(
            {
                "Parameters": {"AggMem": {"Type": "Number", "Default": 512}, "Sched": {"Default": "rate(5 minutes)"}},
                "Resources": {
                    "A": {"Properties": {"MemorySize": 1024}},
                    "B": {"Properties": {"MemorySize": {"Ref": "AggMem"}}},
                    "C": {"Properties": {"MemorySize": {"Fn::If": ["x", 1, 2]}}},
                    "AggregationScheduleRule": {"Properties": {"ScheduleExpression": {"Ref": "Sched"}}},
                },
            }
        )
    )
    assert ours.template_memory_mb(template, "A") == 1024
    assert ours.template_memory_mb(template, "B") == 512
    with pytest.raises(ValueError):
        ours.template_memory_mb(template, "C")
    assert ours.template_schedule(template) == "rate(5 minutes)"


def test_meter_bills_batch_get_per_key_and_a_failed_conditional_write():
    import boto3
    from moto import mock_aws

    with mock_aws():
        m = AwsMeter(capture_logs=False)
        m.install()
        try:
            ddb = boto3.client("dynamodb", region_name="us-east-1")
            ddb.create_table(
                TableName="t",
                BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            )
            ddb.put_item(TableName="t", Item={"k": {"S": "a"}, "pad": {"S": "x" * 5000}})  # ~5 KB
            m.reset()
            keys = [{"k": {"S": "a"}}, {"k": {"S": "missing"}}]
            ddb.batch_get_item(RequestItems={"t": {"Keys": keys}})  # eventually consistent
            assert m.usage.ddb_rru == pytest.approx(2 / 2 + 1 / 2)  # 8 KB -> 2 units, missing -> 1; halved
            with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):
                ddb.put_item(TableName="t", Item={"k": {"S": "a"}}, ConditionExpression="attribute_not_exists(k)")
            assert m.usage.ddb_wru == 1
            assert m.items_written["point"] == 0
        finally:
            m.uninstall()


def test_idle_pollers_add_a_day_of_20_second_polls_from_five_pollers():
    m = AwsMeter(capture_logs=False)
    m.add_idle_pollers()
    assert m.usage.sqs_billed_requests == 5 * 86_400 // 20 == 21_600
    assert m.usage.requests[("sqs", "ReceiveMessage (Lambda pollers)")] == 21_600


def test_the_templates_memory_defaults_are_the_right_sized_ones_and_at_most_3008_mb():
    from market_cfn.local.pipeline import load_template
    from market_cfn.stack import config

    template = load_template()
    for base, mb in config.FUNCTION_DEFAULT_MEMORY_MB.items():
        assert ours.template_memory_mb(template, f"{base}Function") == mb <= config.FUNCTION_MEMORY_MB == 3008
    assert ours.schedule_runs_per_day(ours.template_schedule(template)) == 288
