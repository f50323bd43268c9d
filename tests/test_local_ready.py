"""`local` is ready when it says Ready: an object uploaded right after start() returns is ingested,
however late the S3 watcher's thread first runs.

The interleaving is forced, not hoped for: the watcher's thread is held back until the uploads
are done (the worst case the scheduler can produce), then released; every upload must still
become exactly one ObjectCreated invocation.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from market_cfn.local.service import LocalService, wait_for

WAIT = 60.0  # seconds: a deadline for a condition, not an expected duration
UPLOADS = 20


@pytest.fixture()
def held_watcher(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Start the `local-s3` thread only when the test releases it; record the S3 invocations."""
    held: dict[str, Any] = {"targets": [], "submitted": []}
    spawn = LocalService._spawn

    def spawn_holding(self: LocalService, name: str, target: Any) -> None:
        if name == "local-s3":
            held["targets"].append(lambda: spawn(self, name, target))
            return
        spawn(self, name, target)

    def record(self: LocalService, function: str, event: dict[str, Any], *, source: str = "") -> None:
        if "Records" in event and event["Records"][0].get("eventSource") == "aws:s3":
            held["submitted"].append(event["Records"][0]["s3"]["object"]["key"])

    monkeypatch.setattr(LocalService, "_spawn", spawn_holding)
    monkeypatch.setattr(LocalService, "submit", record)
    return held


def test_uploads_right_after_start_are_all_ingested_even_when_the_watcher_runs_late(held_watcher):
    with LocalService(tick_seconds=3600, poll_seconds=0.05) as svc:  # start() returned: `local` says Ready
        s3 = svc.client("s3")
        bucket = svc.outputs["s3BucketName"]
        early = [f"AAPL/right-after-ready-{i}.csv" for i in range(UPLOADS)]
        for key in early:  # before the watcher's thread has run at all
            s3.put_object(Bucket=bucket, Key=key, Body=b"symbol,timestamp,price,volume\n")
        (release,) = held_watcher["targets"]
        release()
        s3.put_object(Bucket=bucket, Key="AAPL/after-release.csv", Body=b"symbol,timestamp,price,volume\n")
        expected = sorted([*early, "AAPL/after-release.csv"])
        wait_for(lambda: len(held_watcher["submitted"]) >= len(expected), timeout=WAIT, what="every upload submitted")
        assert sorted(held_watcher["submitted"]) == expected  # once each, none missed


def test_objects_from_before_the_start_are_not_replayed(held_watcher, monkeypatch):
    seeded = threading.Event()
    versions = LocalService._versions

    def versions_seeding(self: LocalService, bucket: str) -> Any:
        if not seeded.is_set():
            seeded.set()
            self.s3.put_object(Bucket=self.view.ref(bucket), Key="AAPL/old.csv", Body=b"x")
        return versions(self, bucket)

    monkeypatch.setattr(LocalService, "_versions", versions_seeding)
    with LocalService(tick_seconds=3600, poll_seconds=0.05) as svc:
        s3 = svc.client("s3")
        (release,) = held_watcher["targets"]
        release()
        s3.put_object(Bucket=svc.outputs["s3BucketName"], Key="AAPL/new.csv", Body=b"x")
        wait_for(lambda: "AAPL/new.csv" in held_watcher["submitted"], timeout=WAIT, what="the new object submitted")
        assert held_watcher["submitted"] == ["AAPL/new.csv"]
