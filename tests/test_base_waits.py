"""base.waits.poll, the one poll loop drift, preflight, change-set creation and replay wait with."""

from __future__ import annotations

import pytest
from stubs_cfn import FakeTime, make_waits

from market_cfn.base.errors import DeployError
from market_cfn.base.waits import poll


def test_looks_at_once_and_sleeps_between_looks_until_done():
    clock = FakeTime()
    states = iter(["CREATE_PENDING", "CREATE_IN_PROGRESS", "CREATE_COMPLETE", "never read"])
    seen = poll(
        lambda: next(states),
        lambda s: s == "CREATE_COMPLETE",
        make_waits(clock),
        timeout_seconds=60,
        timed_out=lambda s: DeployError(s),
    )
    assert seen == "CREATE_COMPLETE"
    assert clock.sleeps == [5.0, 5.0]  # three looks, two sleeps, none after the last


def test_done_at_the_first_look_never_sleeps():
    clock = FakeTime()
    assert poll(lambda: 7, lambda s: s == 7, make_waits(clock), timeout_seconds=0, timed_out=DeployError) == 7
    assert clock.sleeps == []


def test_past_the_timeout_raises_what_timed_out_makes_of_the_last_look():
    clock = FakeTime()
    looks = iter(range(100))
    with pytest.raises(DeployError, match="still 4 after 20 s"):
        poll(
            lambda: next(looks),
            lambda s: False,
            make_waits(clock),
            timeout_seconds=20,
            timed_out=lambda s: DeployError(f"still {s} after 20 s"),
        )
    assert clock.sleeps == [5.0] * 4  # looks at 0, 5, 10, 15, 20 s: the one at the deadline still counts


def test_finishing_at_the_deadline_is_not_a_timeout():
    clock = FakeTime()
    looks = iter(["IN_PROGRESS"] * 4 + ["COMPLETE"])
    assert (
        poll(
            lambda: next(looks), lambda s: s == "COMPLETE", make_waits(clock), timeout_seconds=20, timed_out=DeployError
        )
        == "COMPLETE"
    )
    assert clock.elapsed == 20.0
