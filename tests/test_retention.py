"""Retention the user controls: PointsRetentionDays and BarsRetentionDays reach the
writers, which stamp each item with its TTL expiry; the table expires on that attribute; shortening either
is guarded like a replacement."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from handlers import aggregate_store, common, contract
from market_cfn.stack.config import StackConfig
from market_cfn.stack.render import render_dict
from tests.deploy_changesets import change_set, resource_change, review_of

DAY = 86_400


@pytest.fixture(scope="module")
def rendered() -> dict:
    return render_dict(StackConfig())


def test_the_template_has_both_parameters_and_ttl_on_their_attribute(rendered):
    params, res = rendered["Parameters"], rendered["Resources"]
    assert params["PointsRetentionDays"]["Default"] == "35"
    assert params["BarsRetentionDays"]["Default"] == "180"
    assert params["PointsRetentionDays"]["MinValue"] == 0 == params["BarsRetentionDays"]["MinValue"]
    ttl = res["MarketDataTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": contract.TTL_ATTRIBUTE, "Enabled": True}
    env = {
        lid: res[lid]["Properties"]["Environment"]["Variables"]
        for lid in ("DataProcessorFunction", "DataAggregatorFunction")
    }
    assert env["DataProcessorFunction"][contract.ENV_POINTS_RETENTION_DAYS] == {"Ref": "PointsRetentionDays"}
    assert env["DataAggregatorFunction"][contract.ENV_BARS_RETENTION_DAYS] == {"Ref": "BarsRetentionDays"}


def test_expiry_is_now_plus_the_days_none_for_zero_and_refused_when_not_a_number(monkeypatch):
    monkeypatch.setenv("X_DAYS", "35")
    assert common.expiry("X_DAYS", now=1_000.9) == {contract.TTL_ATTRIBUTE: {"N": str(1_000 + 35 * DAY)}}
    monkeypatch.setenv("X_DAYS", "0")
    assert common.expiry("X_DAYS") == {}
    monkeypatch.delenv("X_DAYS")
    assert common.expiry("X_DAYS") == {}
    for bad in ("-1", "7.5", "seven", ""):
        monkeypatch.setenv("X_DAYS", bad)
        with pytest.raises(RuntimeError, match="X_DAYS"):
            common.expiry("X_DAYS")


def _csv(rows) -> bytes:
    return ("timestamp,price,volume\n" + "".join(f"{ts},{p},{v}\n" for ts, p, v in rows)).encode()


def test_stored_points_and_bars_expire_after_their_retention(pipeline):
    # GIVEN the template's defaults (35 and 180 days) in the functions' environment
    # WHEN a backfill of 2019 points is stored and aggregated
    t2019 = int(datetime(2019, 1, 2, 14, 32, 10, tzinfo=UTC).timestamp() * 1000)
    before = int(time.time())
    pipeline.put_object("IBM/2019.csv", _csv([(t2019, "120.5", 10), (t2019 + 60_000, "121", 30)]))
    pipeline.deliver_s3_events()
    pipeline.drain_processing_queue()
    pipeline.run_aggregator()
    after = int(time.time())
    items = pipeline.table_items()
    # THEN every item expires its retention after it was stored (not after its 2019 timestamp)
    points = [i for i in items if "#" not in i["symbol"]]
    bars = [i for i in items if i["symbol"].endswith(contract.AGGREGATE_KEY_SUFFIX)]
    assert len(points) == 2 and len(bars) == 1
    for item, days in [(p, 35) for p in points] + [(b, 180) for b in bars]:
        assert before + days * DAY <= int(item[contract.TTL_ATTRIBUTE]) <= after + days * DAY


def test_zero_keeps_bars_for_good(monkeypatch):
    monkeypatch.setenv(contract.ENV_BARS_RETENTION_DAYS, "0")
    agg = {"symbol": "IBM", "window_start": 0, "open": 1, "high": 1, "low": 1, "close": 1, "count": 1}
    item = aggregate_store.aggregate_item({**agg, "volume": 1, "vwap": None}, 1)
    assert contract.TTL_ATTRIBUTE not in item


PARAMS = {"EnvironmentSuffix": "dev", "CodeS3Bucket": "artifacts", "CodeS3Key": "market-data/a.zip"}


def _review(rendered: dict, old: dict, new: dict):
    cs = change_set(
        *(
            resource_change("Modify", lid, "AWS::Lambda::Function", replacement="False")
            for lid in ("DataProcessorFunction", "DataAggregatorFunction")
        )
    )
    return review_of(cs, rendered, rendered, old_parameters={**PARAMS, **old}, new_parameters={**PARAMS, **new})


def _unprotections(review) -> list[tuple[str, str]]:
    return sorted((f.logical_id, f.what) for f in review.findings if f.kind == "unprotect")


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            {"PointsRetentionDays": "35"},
            {"PointsRetentionDays": "7"},
            [("DataProcessorFunction", "Environment.Variables.POINTS_RETENTION_DAYS 35 → 7")],
        ),
        (
            {"BarsRetentionDays": "0"},
            {"BarsRetentionDays": "400"},
            [("DataAggregatorFunction", "Environment.Variables.BARS_RETENTION_DAYS 0 → 400")],
        ),
        ({"PointsRetentionDays": "35"}, {"PointsRetentionDays": "0"}, []),  # 0: kept for good
        ({"BarsRetentionDays": "180"}, {"BarsRetentionDays": "365"}, []),
    ],
)
def test_shortening_a_retention_is_an_unprotection(rendered, old, new, expected):
    assert _unprotections(_review(rendered, old, new)) == expected
