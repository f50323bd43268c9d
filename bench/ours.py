"""market_cfn's own pipeline, driven through one trading day for the benchmark.

`market_cfn.simulate.Pipeline` runs the real handlers on moto with the template's
resources. `MeteredPipeline` adds what the benchmark needs, without changing it:

* every Lambda invocation (retries included) runs inside `meter.invocation(...)`, so
  its CPU time, AWS calls and log output are modelled as billed duration;
* the handlers' log lines (Powertools' logger stream and stdout, where Powertools
  Metrics prints its EMF documents) are counted, not discarded;
* EventBridge's own deliveries to the AggregationQueue are billed as SQS SendMessage
  (the bus rule with InputPath "$.detail": the message body is the event's detail).

`run_day` plays the day the way it happens in production: every 5 minutes a feed object
lands in the DataBucket (one S3 event -> DataIngestion), the event source mapping
drains the ProcessingQueue (DataProcessor), and the rate(5 minutes) schedule invokes
DataAggregator with the tick's time; after the close the schedule keeps firing for the
rest of the 24 hours (288 runs a day in all), finding the queue empty.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from bench import costing
from bench.meter import AwsMeter, EventRoute
from bench.workload import OPEN_UTC, WorkFile

SCHEDULE_RUNS_PER_DAY = 24 * 60 // 5  # rate(5 minutes)
TICK_DELAY = timedelta(seconds=30)  # the schedule fires this long after a window ends


class LogCounter:
    """A text stream that counts what Lambda would ship to CloudWatch Logs."""

    def __init__(self) -> None:
        self.bytes = 0
        self.lines = 0
        self._partial = False

    def write(self, text: str) -> int:
        data = text.encode("utf-8", "surrogateescape")
        self.bytes += len(data)
        self.lines += data.count(b"\n")
        if data:
            self._partial = not data.endswith(b"\n")
        return len(text)

    def flush(self) -> None:
        pass

    def take(self) -> int:
        """Bytes ingested since the last take (one CloudWatch event per line)."""
        lines = self.lines + (1 if self._partial else 0)
        total = self.bytes + lines * costing.LOG_EVENT_OVERHEAD_BYTES
        self.bytes = self.lines = 0
        self._partial = False
        return total


def metered_pipeline_class():
    """Build the subclass lazily: importing market_cfn.simulate pulls in the template."""
    from market_cfn.simulate import Pipeline

    class MeteredPipeline(Pipeline):
        def __init__(self, meter: AwsMeter, **kwargs: Any) -> None:
            self.meter = meter
            self.log_counter = LogCounter()
            super().__init__(log_stream=self.log_counter, **kwargs)

        def start(self) -> None:
            super().start()
            self._route_rules()
            aggregator = self.handler_module("DataAggregatorFunction")
            name = self.physical["DataAggregatorFunction"]["Ref"]
            # run_aggregator() asks moto for no long-poll wait; bill the real one.
            self.meter.empty_receive_wait_s[name] = float(aggregator.RECEIVE_WAIT_SECONDS)

        def _route_rules(self) -> None:
            for _logical, props in self._of_type("AWS::Events::Rule"):
                pattern = props.get("EventPattern")
                if not pattern:
                    continue
                for target in props.get("Targets", []):
                    arn = target.get("Arn", {})
                    if (
                        isinstance(arn, dict)
                        and "Fn::GetAtt" in arn
                        and self.resources[arn["Fn::GetAtt"][0]]["Type"] == "AWS::SQS::Queue"
                    ):
                        for source in pattern.get("source", []):
                            for detail_type in pattern.get("detail-type", []):
                                self.meter.event_routes.append(
                                    EventRoute(source, detail_type, detail_only=target.get("InputPath") == "$.detail")
                                )

        def invoke(self, logical: str, event: dict[str, Any], *, context: Any = None) -> Any:
            name = self.physical[logical]["Ref"]
            self.log_counter.take()
            with self.meter.invocation(name) as inv:
                try:
                    with contextlib.redirect_stdout(self.log_counter):
                        return super().invoke(logical, event, context=context)
                finally:
                    inv.log_bytes = self.log_counter.take()

    return MeteredPipeline


def run_day(pipe: Any, files: list[WorkFile], *, schedule_runs: int = SCHEDULE_RUNS_PER_DAY) -> dict:
    """Drive one day through `pipe` (a MeteredPipeline); return what happened."""
    content_type = {"csv": "text/csv", "jsonl": "application/x-ndjson"}
    aggregator_runs = 0
    stats = {"processor_invocations": 0, "messages": 0}
    by_window = sorted(files, key=lambda f: f.key)
    tick = OPEN_UTC
    for f in by_window:
        tick += timedelta(minutes=5)
        pipe.put_object(f.key, f.body, content_type=content_type[f.fmt])
        pipe.deliver_s3_events()
        drained = pipe.drain_processing_queue()
        stats["processor_invocations"] += drained["invocations"]
        stats["messages"] += drained["messages"]
        pipe.run_aggregator(now=tick + TICK_DELAY)
        aggregator_runs += 1
    # The rest of the day's schedule runs: the queue is empty, each run long-polls once.
    while aggregator_runs < schedule_runs:
        tick += timedelta(minutes=5)
        pipe.run_aggregator(now=tick + TICK_DELAY)
        aggregator_runs += 1
    stats["aggregator_runs"] = aggregator_runs
    stats["ingestion_objects"] = len(files)
    return stats


def day_end() -> datetime:
    return datetime(OPEN_UTC.year, OPEN_UTC.month, OPEN_UTC.day, tzinfo=UTC) + timedelta(days=1)
