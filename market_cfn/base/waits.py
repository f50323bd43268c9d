"""Waiting: every poll loop's sleep, clocks and timeouts, injectable so tests never sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime


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
