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


FUNCTIONS = ("DataIngestionFunction", "DataProcessorFunction", "DataAggregatorFunction")


def template_memory_mb(template: dict, logical: str) -> int:
    """A function's MemorySize in a rendered template: a number, or a Ref to a parameter
    (then its Default). Anything else is refused: the bill depends on it."""
    value = template["Resources"][logical]["Properties"]["MemorySize"]
    if isinstance(value, dict) and set(value) == {"Ref"}:
        parameter = template.get("Parameters", {}).get(value["Ref"])
        if parameter is None or "Default" not in parameter:
            raise ValueError(f"{logical} MemorySize refers to {value['Ref']}, which has no Default")
        value = parameter["Default"]
    if isinstance(value, dict):
        raise ValueError(f"{logical} MemorySize is {value!r}; the benchmark needs a number or a Ref")
    return int(value)


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
            for logical in FUNCTIONS:
                self.meter.function_memory_mb[self.physical[logical]["Ref"]] = self.memory_mb(logical)

        def memory_mb(self, logical: str) -> int:
            """The function's MemorySize as deployed with the template's defaults."""
            return template_memory_mb(self.template, logical)

        def run_aggregator(self, *, now: datetime | None = None) -> Any:
            """The schedule's invocation, with the handler's own long-poll settings.

            `Pipeline.run_aggregator` sets the handler's wait to 0 so a test never
            sleeps; the benchmark must see the wait the handler really asks for (the
            meter bills it), and bench/speedups.py makes moto answer without sleeping.
            """
            from market_cfn.local.pipeline import scheduled_event

            return self.invoke_async("DataAggregatorFunction", scheduled_event(now or datetime.now(UTC)))

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


def _cron_field(text: str, low: int, high: int) -> set[int]:
    """Values of one AWS cron minutes/hours field: *, n, a-b, with /step, comma lists."""
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if base == "*":
            first, last = low, high
        elif "-" in base:
            first, last = (int(v) for v in base.split("-", 1))
        else:
            first = int(base)
            last = high if step_text else first
        if not (low <= first <= last <= high) or step < 1:
            raise ValueError(f"cron field {text!r} is outside {low}-{high}")
        values.update(range(first, last + 1, step))
    return values


def schedule_minutes(expression: str) -> set[int]:
    """Minutes of a weekday (0-1439, UTC) at which an EventBridge schedule fires.

    `rate(N minutes|hours)` (counted from midnight) and `cron(min hour dom month dow
    year)` whose minute and hour fields use *, numbers, ranges, steps and lists; the
    day fields are assumed to include the benchmark's trading day (a Monday).
    Anything else is refused with ValueError.
    https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-scheduled-rule-pattern.html
    """
    text = expression.strip()
    if text.startswith("rate(") and text.endswith(")"):
        amount, _, unit = text[5:-1].strip().partition(" ")
        minutes = {"minute": 1, "minutes": 1, "hour": 60, "hours": 60, "day": 1440, "days": 1440}.get(unit.strip())
        if minutes is None or not amount.isdigit() or int(amount) < 1:
            raise ValueError(f"unsupported rate expression {expression!r}")
        return set(range(0, 1440, int(amount) * minutes))
    if text.startswith("cron(") and text.endswith(")"):
        fields = text[5:-1].split()
        if len(fields) != 6:
            raise ValueError(f"a cron expression has 6 fields, got {expression!r}")
        minutes = _cron_field(fields[0], 0, 59)
        hours = _cron_field(fields[1], 0, 23)
        return {h * 60 + m for h in hours for m in minutes}
    raise ValueError(f"unsupported schedule expression {expression!r}")


def schedule_runs_per_day(expression: str) -> int:
    """Runs a trading day; refuses a schedule that misses a 5-minute tick of the session,
    since the day's bars would then be late (bench/ours.py run_day runs once per tick)."""
    minutes = schedule_minutes(expression)
    open_minute = OPEN_UTC.hour * 60 + OPEN_UTC.minute
    ticks = {open_minute + 5 * k for k in range(1, 79)}
    missing = sorted(ticks - minutes)
    if missing:
        first = missing[0]
        raise ValueError(
            f"schedule {expression!r} does not fire at {first // 60:02d}:{first % 60:02d} UTC, "
            "a 5-minute tick of the benchmark's session (13:30-20:00 UTC)"
        )
    return len(minutes)


def template_schedule(template: dict) -> str:
    """The aggregation schedule of a rendered template (a string, or a Ref's Default)."""
    value = template["Resources"]["AggregationScheduleRule"]["Properties"]["ScheduleExpression"]
    if isinstance(value, dict) and set(value) == {"Ref"}:
        value = template.get("Parameters", {}).get(value["Ref"], {}).get("Default")
    if not isinstance(value, str):
        raise ValueError(f"cannot read the aggregation schedule from the template: {value!r}")
    return value


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
    # The rest of the day's schedule runs: the queue is empty, each run polls once.
    if schedule_runs < aggregator_runs:
        raise ValueError(f"{schedule_runs} schedule runs a day cannot cover {aggregator_runs} ticks")
    while aggregator_runs < schedule_runs:
        tick += timedelta(minutes=5)
        pipe.run_aggregator(now=tick + TICK_DELAY)
        aggregator_runs += 1
    stats["aggregator_runs"] = aggregator_runs
    stats["ingestion_objects"] = len(files)
    return stats


def day_end() -> datetime:
    return datetime(OPEN_UTC.year, OPEN_UTC.month, OPEN_UTC.day, tzinfo=UTC) + timedelta(days=1)
