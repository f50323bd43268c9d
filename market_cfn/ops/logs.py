"""The `logs` core: a function's log lines from its log group (FilterLogEvents, every page).

The log group is the stack's `<Function>LogGroup` resource (the functions' LoggingConfig
names it). Handlers log Powertools JSON lines with a `level`; `--level` keeps lines at
or above it and is applied here, on the parsed line, so its meaning does not depend on
an endpoint's filter-pattern support. Lines that are not JSON (the Lambda platform's
START / END / REPORT) have no level and are shown only without --level.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_logs import CloudWatchLogsClient

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}


def level_of(message: str) -> str | None:
    try:
        line = json.loads(message)
    except ValueError:
        return None
    level = line.get("level") if isinstance(line, dict) else None
    if not isinstance(level, str):
        return None
    level = level.upper()
    return _ALIASES.get(level, level)


def keep(message: str, minimum: str | None) -> bool:
    if minimum is None:
        return True
    level = level_of(message)
    return level in LEVELS and LEVELS.index(level) >= LEVELS.index(minimum)


def events(
    logs: CloudWatchLogsClient, group: str, *, start_ms: int, minimum: str | None = None
) -> Iterator[dict[str, Any]]:
    """Every event since start_ms (all pages), oldest first within each page, filtered by level."""
    kwargs: dict[str, Any] = {"logGroupName": group, "startTime": start_ms, "interleaved": True}
    while True:
        page = logs.filter_log_events(**kwargs)
        for event in page.get("events", []):
            if keep(event.get("message", ""), minimum):
                yield cast("dict[str, Any]", event)  # the cores hand plain dicts on
        token = page.get("nextToken")
        if not token or token == kwargs.get("nextToken"):
            return
        kwargs["nextToken"] = token


def follow(
    logs: CloudWatchLogsClient,
    group: str,
    *,
    start_ms: int,
    minimum: str | None,
    emit: Callable[[dict[str, Any]], None],
    sleep: Callable[[float], None],
    interval_seconds: float,
    polls: int | None = None,
) -> int:
    """Poll every interval (until KeyboardInterrupt, or `polls` rounds); each event emitted once."""
    seen: set[str] = set()
    since = start_ms
    emitted = 0
    rounds = 0
    while polls is None or rounds < polls:
        rounds += 1
        newest = since
        for event in events(logs, group, start_ms=since, minimum=minimum):
            if event["eventId"] in seen:
                continue
            seen.add(event["eventId"])
            newest = max(newest, int(event["timestamp"]))
            emit(event)
            emitted += 1
        # Re-read from the newest timestamp seen: events stamped in the same millisecond
        # may still arrive; the eventId set drops the ones already shown.
        since = newest
        if polls is None or rounds < polls:
            sleep(interval_seconds)
    return emitted


def format_event(event: dict[str, Any], function: str) -> str:
    when = datetime.fromtimestamp(int(event["timestamp"]) / 1000, UTC)
    return (
        f"{when:%Y-%m-%dT%H:%M:%S}.{int(event['timestamp']) % 1000:03d}Z {function} {event.get('message', '').rstrip()}"
    )
