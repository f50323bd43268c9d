"""Per-window retries: a window that fails is retried on its own, then dead-lettered with its reason.

An AggregationQueue message names (symbol, window start) pairs (a PointsStored detail,
handlers/core/wire.py). DataAggregator handles each window of a round on its own; a
window whose aggregate cannot be read, computed, stored or published does not fail the
round. It is sent back to the AggregationQueue in a message of its own kind, which is
a PointsStored detail with one more key::

    {"v":1,"points":0,"windows":[["AAPL",1717421400000]],
     "retry":{"attempt":2,"since":1717421712000,"reason":"PutEvents: ..."}}

`attempt` counts the failures so far, `since` is when the first one happened (epoch
ms). The policy (`next_step`):

- a transient failure (throttling, a 5xx, a service still failing after the client's
  retries, a concurrent recomputation that kept winning) is retried after
  min(900, 30 x 2^(attempt-1)) seconds, for as long as the first failure is less than
  `MAX_RETRY_AGE_MS` (24 hours, the same as the PointsStored rule's retry policy) old;
- a permanent failure (an aggregate DynamoDB cannot store, a request DynamoDB or
  EventBridge refuses as invalid or unauthorized, anything not understood) and a
  transient one past 24 hours go to the AggregationDLQ at once, one message per
  window and reason::

    {"v":1,"points":0,"windows":[["AAPL",1717421400000]],
     "dead_letter":{"reason":"volume 1E+40 has ...","attempts":1,"since":1717421712000}}

A dead-lettered body is still a PointsStored detail without `retry`, so redriving it
to the AggregationQueue (SQS StartMessageMoveTask) gives the window a fresh budget.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .wire import WIRE_VERSION, WireFormatError, decode_windows

BASE_DELAY_SECONDS = 30
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds maximum
MAX_RETRY_AGE_MS = 24 * 3600 * 1000
MAX_WINDOWS_PER_MESSAGE = 5_000  # ~25 bytes a window: far below SQS's 1 MiB
MAX_REASON_CHARS = 500


@dataclass(frozen=True)
class WindowTask:
    """One (symbol, window start) to aggregate, with its failure history."""

    symbol: str
    start: int
    attempt: int = 0  # failures so far
    since: int | None = None  # epoch ms of the first failure

    @property
    def key(self) -> tuple[str, int]:
        return (self.symbol, self.start)


@dataclass(frozen=True)
class Failure:
    task: WindowTask
    reason: str
    permanent: bool


def decode_tasks(body: str) -> list[WindowTask]:
    """The windows of an AggregationQueue body, with their retry state if it has one."""
    pairs = decode_windows(body)  # validates the PointsStored shape; raises WireFormatError
    doc = json.loads(body)
    if isinstance(doc, dict) and isinstance(doc.get("detail"), dict):
        doc = doc["detail"]
    retry = doc.get("retry")
    if retry is None:
        return [WindowTask(symbol, start) for symbol, start in pairs]
    if (
        not isinstance(retry, dict)
        or not _is_int(retry.get("attempt"))
        or retry["attempt"] < 1
        or not _is_int(retry.get("since"))
    ):
        raise WireFormatError(f"malformed retry state {retry!r}")
    return [WindowTask(symbol, start, retry["attempt"], retry["since"]) for symbol, start in pairs]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def merge(tasks: list[WindowTask]) -> dict[tuple[str, int], WindowTask]:
    """One task per window: the freshest state wins (a new PointsStored message for a
    window that is also being retried restarts nothing, but keeps the failure count)."""
    merged: dict[tuple[str, int], WindowTask] = {}
    for task in tasks:
        seen = merged.get(task.key)
        if seen is None or task.attempt > seen.attempt:
            merged[task.key] = task
    return merged


def next_step(failure: Failure, now_ms: int) -> tuple[str, int]:
    """("retry", delay seconds) or ("dead_letter", 0) for a failed window."""
    attempt = failure.task.attempt + 1
    since = failure.task.since if failure.task.since is not None else now_ms
    if failure.permanent or now_ms - since >= MAX_RETRY_AGE_MS:
        return "dead_letter", 0
    return "retry", min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** (attempt - 1))


def _reason(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_REASON_CHARS else line[: MAX_REASON_CHARS - 3] + "..."


def plan(failures: list[Failure], now_ms: int) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """The messages that carry failed windows on.

    Returns (retries, dead_letters): retries are (AggregationQueue body, delay seconds),
    grouped by attempt, first-failure time and delay; dead letters are (AggregationDLQ
    body, reason), one per window.
    """
    groups: dict[tuple[int, int, int, str], list[list[Any]]] = {}
    dead: list[tuple[str, str]] = []
    for failure in failures:
        step, delay = next_step(failure, now_ms)
        attempt = failure.task.attempt + 1
        since = failure.task.since if failure.task.since is not None else now_ms
        reason = _reason(failure.reason)
        pair = [failure.task.symbol, failure.task.start]
        if step == "dead_letter":
            body = {
                "v": WIRE_VERSION,
                "points": 0,
                "windows": [pair],
                "dead_letter": {"reason": reason, "attempts": attempt, "since": since},
            }
            dead.append((json.dumps(body, separators=(",", ":")), reason))
        else:
            groups.setdefault((attempt, since, delay, reason), []).append(pair)
    retries: list[tuple[str, int]] = []
    for (attempt, since, delay, reason), pairs in sorted(groups.items()):
        for i in range(0, len(pairs), MAX_WINDOWS_PER_MESSAGE):
            body = {
                "v": WIRE_VERSION,
                "points": 0,
                "windows": pairs[i : i + MAX_WINDOWS_PER_MESSAGE],
                "retry": {"attempt": attempt, "since": since, "reason": reason},
            }
            retries.append((json.dumps(body, separators=(",", ":")), delay))
    return retries, dead
