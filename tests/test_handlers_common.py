"""handlers.common's retry loops, against recorded fake clients (no AWS, no sleeping)."""

from __future__ import annotations

import pytest

import handlers.common as common


class FakeEvents:
    """put_events answers from a script of responses and records what it was sent."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.sent: list[list[dict]] = []

    def put_events(self, Entries):
        self.sent.append(list(Entries))
        return self.responses.pop(0)


@pytest.fixture
def events(monkeypatch):
    def install(*responses):
        fake = FakeEvents(*responses)
        monkeypatch.setattr(common, "_clients", {"events": fake})
        monkeypatch.setattr(common, "sleep", lambda seconds: None)
        return fake

    return install


ENTRIES = [{"Source": "s", "DetailType": "d", "Detail": f'{{"n":{n}}}'} for n in range(3)]


def test_only_the_failed_entries_are_sent_again(events):
    fake = events(
        {"FailedEntryCount": 1, "Entries": [{"EventId": "a"}, {"ErrorCode": "InternalFailure"}, {"EventId": "c"}]},
        {"FailedEntryCount": 0, "Entries": [{"EventId": "b"}]},
    )
    assert common.put_events([ENTRIES]) == 2
    assert fake.sent == [ENTRIES, [ENTRIES[1]]]


def test_results_that_do_not_line_up_resend_everything_rather_than_drop(events):
    # A failure count with fewer results than entries cannot say which ones failed.
    fake = events(
        {"FailedEntryCount": 1, "Entries": [{"EventId": "a"}]},
        {"FailedEntryCount": 0, "Entries": [{"EventId": "a"}, {"EventId": "b"}, {"EventId": "c"}]},
    )
    assert common.put_events([ENTRIES]) == 2
    assert fake.sent == [ENTRIES, ENTRIES]


def test_entries_that_keep_failing_raise(events):
    failing = {"FailedEntryCount": 3, "Entries": [{"ErrorCode": "ThrottlingException"}] * 3}
    events(*[failing] * common.MAX_ATTEMPTS)
    with pytest.raises(common.DeliveryError, match="3 entries failed"):
        common.put_events([ENTRIES])
