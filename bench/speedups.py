"""Harness-only speed fixes for moto, applied by bench/run.py before any pipeline runs.

moto 5.2's EventBridge target delivery (`moto/events/utils.py`,
`EventTemplateParser.parse`) builds a fresh jsonpath-ng parser (a PLY LALR table) for
each of its default input paths on every delivered event: about 0.3 s per PutEvents
entry that matches a rule, which would make a 100,000-event baseline run take hours.
jsonpath expressions are immutable once parsed, so caching `jsonpath_ng.ext.parse` by
expression text changes nothing but the speed.

moto 5.2's DynamoDB `Table.query` on the base table builds its candidates from
`self.all_items()`, which sorts the whole table on every call, then keeps the items of
the queried partition: a day's 39,000 window queries over a 139,000-item table would
take hours. For base-table queries (no index) the patch hands `query` the queried
partition alone, in the same (hash, range) order; the filtering, sorting, paging and
projection that follow are moto's own, unchanged.

moto 5.2's SQS `receive_message` checks each message it hands out against the queue's
retention period by building *all* the queue's attributes, which counts every message
in the queue three times: receiving a 1,300-message tick costs ~10^8 operations. The
patch reads the same `message_retention_period` attribute directly. moto's SQS also
asks for the current time through datetime arithmetic (`unix_time_millis`) for every
message it looks at (visible? delayed?); inside moto.sqs that clock is replaced by the
same value from `time.time()`, about 10x cheaper.

A long poll (`WaitTimeSeconds` > 0) on an empty queue makes moto sleep until the
wait is over. The benchmark bills that wait (bench/meter.py) but must not spend it:
`SQSBackend.receive_message` is called with a wait of 0, which answers at once with
what the queue holds now - what the wait would answer too, since nothing else runs
while a handler waits in this single-threaded day. The request keeps its
`WaitTimeSeconds`, so the meter sees the wait the handler asked for.

Nothing here touches billing or counting: the same requests reach moto and get the
same answers.
"""

from __future__ import annotations

import functools


def apply() -> None:
    _cache_jsonpath()
    _partition_query()
    _sqs_retention_check()
    _sqs_no_sleep()


def _sqs_no_sleep() -> None:
    from moto.sqs.models import SQSBackend

    if getattr(SQSBackend.receive_message, "_bench", False):
        return
    original = SQSBackend.receive_message

    def receive_message(self, queue_name, count, wait_seconds_timeout, *args, **kwargs):
        return original(self, queue_name, count, 0, *args, **kwargs)

    receive_message._bench = True
    SQSBackend.receive_message = receive_message


def _sqs_retention_check() -> None:
    import time as _time

    import moto.sqs.models as sqs_models
    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    original_unix_time, original_millis = sqs_models.unix_time, sqs_models.unix_time_millis

    def fast_unix_time(dt=None):
        return _time.time() if dt is None else original_unix_time(dt)

    def fast_unix_time_millis(dt=None):
        return _time.time() * 1000.0 if dt is None else original_millis(dt)

    if not getattr(sqs_models.unix_time, "_bench", False):
        fast_unix_time._bench = True
        sqs_models.unix_time, sqs_models.unix_time_millis = fast_unix_time, fast_unix_time_millis

    if getattr(SQSBackend.is_message_valid_based_on_retention_period, "_bench", False):
        return

    def is_valid(self, queue_name, message):
        retention_period = int(self.get_queue(queue_name).message_retention_period)
        return retention_period + message.sent_timestamp / 1000 > unix_time()

    is_valid._bench = True
    SQSBackend.is_message_valid_based_on_retention_period = is_valid


def _partition_query() -> None:
    import threading

    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "_bench_partition", False):
        return
    original_query, original_all_items = Table.query, Table.all_items
    # The partition handed to one query() call, per thread: handlers may run several
    # Queries at once (thread pools), so an instance attribute on the shared Table
    # would hand one thread's partition to another.
    local = threading.local()

    def all_items(self):
        override = getattr(local, "partition", None)
        if override is not None and override[0] is self:
            return list(override[1])
        return original_all_items(self)

    def query(self, hash_key, *args, **kwargs):
        # index_name is query()'s 8th parameter; moto's backend passes it positionally.
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        if index_name or hash_key is None or not self.range_key_attr:
            return original_query(self, hash_key, *args, **kwargs)
        partition = list(self.items.get(hash_key, {}).values())
        partition.sort(key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)
        local.partition = (self, partition)  # for this call, on this thread only
        try:
            return original_query(self, hash_key, *args, **kwargs)
        finally:
            local.partition = None

    query._bench_partition = True
    Table.query = query
    Table.all_items = all_items


def _cache_jsonpath() -> None:
    import jsonpath_ng.ext

    if not getattr(jsonpath_ng.ext.parse, "_bench_cached", False):
        cached = functools.lru_cache(maxsize=512)(jsonpath_ng.ext.parse)
        cached._bench_cached = True
        jsonpath_ng.ext.parse = cached
