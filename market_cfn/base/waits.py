"""Waiting: every poll loop's sleep, clocks and timeouts, injectable so tests never sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

T = TypeVar("T")


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Waits:
    """Everything a poll loop needs, injectable so tests never sleep."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = _utcnow
    poll_seconds: float = 5.0
    change_set_timeout_seconds: float = 600.0
    stack_timeout_seconds: float = 3600.0
    # Stack events are stamped by AWS; the marker is taken from this machine's clock.
    clock_skew_seconds: float = 120.0


def poll(
    look: Callable[[], T],
    done: Callable[[T], bool],
    waits: Waits,
    *,
    timeout_seconds: float,
    timed_out: Callable[[T], Exception],
) -> T:
    """The one poll loop: `look` now and then every `waits.poll_seconds` until `done(what it saw)`,
    which is returned; past `timeout_seconds` raise `timed_out(what it saw last)`. The deadline is
    checked after a look, so an operation that finishes just in time is never reported as timed out."""
    deadline = waits.clock() + timeout_seconds
    while True:
        seen = look()
        if done(seen):
            return seen
        if waits.clock() >= deadline:
            raise timed_out(seen)
        waits.sleep(waits.poll_seconds)
