"""The `replay` core: StartReplay of the stack's archive into its bus, followed with DescribeReplay.

A replay can only target the archive's own bus (EventBridge: "Cross event bus replay is
not permitted"), re-sends every archived event in [from, to) to the bus's rules, and is
asynchronous: DescribeReplay goes STARTING -> RUNNING -> COMPLETED (or FAILED, CANCELLING,
CANCELLED); EventLastReplayedTime says how far it got (EventBridge API reference,
StartReplay / DescribeReplay). Replayed PointsStored events make the aggregator recompute
the windows they name - harmless, an aggregate is a pure function of its window's points.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from market_cfn.base.errors import OpsError, UsageError
from market_cfn.base.waits import Waits, poll
from market_cfn.ops.resources import Stack

if TYPE_CHECKING:  # the service stubs are a test extra, never a runtime import
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import StartReplayResponseTypeDef

DONE = {"COMPLETED", "FAILED", "CANCELLED"}


def plan(events: EventBridgeClient, stack: Stack, start: datetime, end: datetime, now: datetime) -> dict[str, Any]:
    if end <= start:
        raise UsageError("--to must be after --from")
    if end > now:
        raise UsageError("--to is in the future; an archive holds only events that already happened")
    archive = events.describe_archive(ArchiveName=stack.archive())
    bus_arn = archive["EventSourceArn"]
    rules: list[str] = []
    kwargs: dict[str, Any] = {"EventBusName": bus_arn.rsplit("/", 1)[-1]}
    while True:
        page = events.list_rules(**kwargs)
        # Rules a service manages (the archive's own "Events-Archive-..." rule) are not targets.
        rules.extend(r["Name"] for r in page.get("Rules", []) if not r.get("ManagedBy"))
        if not page.get("NextToken"):
            break
        kwargs["NextToken"] = page["NextToken"]
    return {
        "archive": archive["ArchiveName"],
        "archive_arn": archive["ArchiveArn"],
        "bus_arn": bus_arn,
        "retention_days": archive.get("RetentionDays"),
        "event_count": archive.get("EventCount"),
        "rules": rules,
        "from": start,
        "to": end,
    }


def start(events: EventBridgeClient, p: dict[str, Any], name: str) -> StartReplayResponseTypeDef:
    return events.start_replay(
        ReplayName=name,
        Description=f"python -m market_cfn replay {p['from'].isoformat()} - {p['to'].isoformat()}",
        EventSourceArn=p["archive_arn"],
        EventStartTime=p["from"],
        EventEndTime=p["to"],
        Destination={"Arn": p["bus_arn"]},
    )


def follow(
    events: EventBridgeClient, name: str, waits: Waits, *, on_state: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:

    def look() -> dict[str, Any]:
        replay = cast("dict[str, Any]", events.describe_replay(ReplayName=name))  # on_state takes plain data
        if on_state:
            on_state(replay)
        return replay

    return poll(
        look,
        lambda seen: seen.get("State") in DONE,
        waits,
        timeout_seconds=waits.stack_timeout_seconds,
        timed_out=lambda seen: OpsError(
            f"replay {name} still {seen.get('State')} after {waits.stack_timeout_seconds:.0f} s; it goes on in "
            f"EventBridge (aws events describe-replay --replay-name {name})"
        ),
    )
