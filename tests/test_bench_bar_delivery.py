"""bench.bar_delivery: the bar delivery options, priced on real bars."""

from __future__ import annotations

import json

from bench.bar_delivery import main, measure, round_bars


def test_multi_bar_events_are_the_cheapest_way_to_deliver_bars():
    results = measure(round_bars(500, 1))
    per_bar, sns, ours = results["per-bar event"], results["SNS PublishBatch"], results["multi-bar event"]
    assert per_bar["usd_per_million_bars"] == 1.0  # one $1/M event per bar
    assert sns["billed_units"] == 50  # ten bars per request
    assert ours["api_calls"] == 1 and ours["bars_per_event"] > 100
    assert (
        ours["total_usd_per_million_bars"] < sns["total_usd_per_million_bars"] < per_bar["total_usd_per_million_bars"]
    )


def test_the_command_prints_one_json_line(capsys):
    assert main(["--symbols", "50"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert set(json.loads(last)["50"]) == {"per-bar event", "SNS PublishBatch", "multi-bar event"}
