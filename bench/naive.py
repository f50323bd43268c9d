"""The naive reference pipeline the benchmark compares against (docs/performance.md "How it is measured").

The same architecture as market_cfn (S3 -> ingestion -> SQS -> processor -> DynamoDB +
EventBridge -> SQS -> aggregator), written the way a first version usually is:

* ingestion sends one SQS message per point (SendMessage, no batching, no packing);
* the processor writes one PutItem per point and publishes one event per point
  (one PutEvents call per point) and logs a line per point;
* the aggregator receives the per-point events from its queue 10 at a time, and
  recomputes each (symbol, 5-minute window) named in the batch with a Query and a
  PutItem;
* every handler logs one line per point.

It runs on moto like the real pipeline and is metered by the same `AwsMeter`, so both
are costed by the same rules. Its handlers are deliberately tiny and kept here, in
bench/, not in handlers/.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from decimal import Decimal

import boto3

from bench.meter import AwsMeter, EventRoute

WINDOW_MS = 300_000
SOURCE = "naive.processor"
DETAIL_TYPE = "PointStored"


class NaivePipeline:
    """Resources and handlers of the naive pipeline on the current (moto) AWS."""

    def __init__(self, meter: AwsMeter, *, prefix: str = "naive", region: str = "us-east-1"):
        self.meter = meter
        meter.event_routes.append(EventRoute(SOURCE, DETAIL_TYPE, detail_only=True))
        self.region = region
        self.bucket = f"{prefix}-data"
        self.table = f"{prefix}-market-data"
        self.bus = f"{prefix}-bus"
        # Clients are made after the meter is installed, so every call is counted.
        self.s3 = boto3.client("s3", region_name=region)
        self.sqs = boto3.client("sqs", region_name=region)
        self.ddb = boto3.client("dynamodb", region_name=region)
        self.events = boto3.client("events", region_name=region)
        self.processing_url = ""
        self.aggregation_url = ""
        self.aggregates_written = 0
        self.after_ticks = lambda: None

    # --- resources (not part of the bill: created once per deployment) ---------------------
    def create(self) -> None:
        self.s3.create_bucket(Bucket=self.bucket)
        self.processing_url = self.sqs.create_queue(QueueName=f"{self.bus}-processing")["QueueUrl"]
        self.aggregation_url = self.sqs.create_queue(QueueName=f"{self.bus}-aggregation")["QueueUrl"]
        agg_arn = self.sqs.get_queue_attributes(QueueUrl=self.aggregation_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.ddb.create_table(
            TableName=self.table,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": "symbol", "AttributeType": "S"},
                {"AttributeName": "timestamp", "AttributeType": "N"},
            ],
            KeySchema=[
                {"AttributeName": "symbol", "KeyType": "HASH"},
                {"AttributeName": "timestamp", "KeyType": "RANGE"},
            ],
        )
        self.events.create_event_bus(Name=self.bus)
        self.events.put_rule(
            Name=f"{self.bus}-stored",
            EventBusName=self.bus,
            EventPattern=json.dumps({"source": [SOURCE], "detail-type": [DETAIL_TYPE]}),
        )
        self.events.put_targets(
            Rule=f"{self.bus}-stored",
            EventBusName=self.bus,
            Targets=[{"Id": "agg", "Arn": agg_arn, "InputPath": "$.detail"}],
        )

    # --- the three naive handlers --------------------------------------------------------
    def ingestion_handler(self, event: dict, _context=None) -> dict:
        sent = 0
        for record in event["Records"]:
            key = record["s3"]["object"]["key"]
            body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8")
            rows = (
                csv.DictReader(io.StringIO(body))
                if key.endswith(".csv")
                else (json.loads(line, parse_float=Decimal) for line in body.splitlines() if line)
            )
            for row in rows:
                point = {
                    "symbol": str(row["symbol"]),
                    "timestamp": int(row["timestamp"]),
                    "price": str(row["price"]),
                    "volume": int(row["volume"]),
                }
                self.sqs.send_message(QueueUrl=self.processing_url, MessageBody=json.dumps(point))
                print(json.dumps({"level": "INFO", "message": "queued point", **point}))
                sent += 1
        sys.stdout.flush()
        return {"sent": sent}

    def processor_handler(self, event: dict, _context=None) -> dict:
        for record in event["Records"]:
            p = json.loads(record["body"])
            self.ddb.put_item(
                TableName=self.table,
                Item={
                    "symbol": {"S": p["symbol"]},
                    "timestamp": {"N": str(p["timestamp"])},
                    "price": {"N": p["price"]},
                    "volume": {"N": str(p["volume"])},
                },
            )
            self.events.put_events(
                Entries=[
                    {
                        "Source": SOURCE,
                        "DetailType": DETAIL_TYPE,
                        "EventBusName": self.bus,
                        "Detail": json.dumps({"symbol": p["symbol"], "timestamp": p["timestamp"]}),
                    }
                ]
            )
            print(json.dumps({"level": "INFO", "message": "stored point", **p}))
        sys.stdout.flush()
        return {"batchItemFailures": []}

    def aggregator_handler(self, _event: dict, _context=None, *, max_batches: int = 100) -> dict:
        done = 0
        for _ in range(max_batches):
            messages = self.sqs.receive_message(QueueUrl=self.aggregation_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                break
            pairs = set()
            for m in messages:
                body = json.loads(m["Body"])
                detail = body.get("detail", body)  # moto delivers the whole event envelope
                pairs.add((detail["symbol"], detail["timestamp"] // WINDOW_MS * WINDOW_MS))
                print(json.dumps({"level": "INFO", "message": "aggregating point", **detail}))
            for symbol, start in sorted(pairs):
                self._aggregate(symbol, start)
            self.sqs.delete_message_batch(
                QueueUrl=self.aggregation_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
            done += len(messages)
        sys.stdout.flush()
        return {"messages": done}

    def _aggregate(self, symbol: str, start: int) -> None:
        items = self.ddb.query(
            TableName=self.table,
            KeyConditionExpression="symbol = :s AND #t BETWEEN :a AND :b",
            ExpressionAttributeNames={"#t": "timestamp"},
            ExpressionAttributeValues={
                ":s": {"S": symbol},
                ":a": {"N": str(start)},
                ":b": {"N": str(start + WINDOW_MS - 1)},
            },
        )["Items"]
        if not items:
            return
        prices = [Decimal(i["price"]["N"]) for i in items]
        volumes = [int(i["volume"]["N"]) for i in items]
        vol = sum(volumes)
        item = {
            "symbol": {"S": symbol + "#5m"},
            "timestamp": {"N": str(start)},
            "open": {"N": str(prices[0])},
            "high": {"N": str(max(prices))},
            "low": {"N": str(min(prices))},
            "close": {"N": str(prices[-1])},
            "count": {"N": str(len(items))},
            "volume": {"N": str(vol)},
        }
        if vol:
            vwap = sum(p * v for p, v in zip(prices, volumes, strict=True)) / vol
            item["vwap"] = {"N": str(vwap.quantize(Decimal("0.0001")))}
        self.ddb.put_item(TableName=self.table, Item=item)
        self.aggregates_written += 1

    # --- the run, with the Lambda service's part played by this harness ------------------
    def run(self, files, *, schedule_runs: int = 288, ticks: int | None = None) -> None:
        """Play the day as run_day does for market_cfn: every 5 minutes one object lands
        (-> ingestion), the event source mapping drains the queue, the schedule fires;
        after the close the schedule keeps firing until `schedule_runs` runs.

        `files` may be a sample of the day's objects; `ticks` (default: len(files)) is
        the number of 5-minute ticks the full day has, so the idle runs after the close
        are the same number as in the full day. `self.after_ticks` is called between
        the two phases (run.py snapshots the meter there to scale the sample up).
        """
        ticks = len(files) if ticks is None else ticks
        runs = ticks - len(files)  # the ticks not sampled are scaled, not idle
        for f in sorted(files, key=lambda f: f.key):
            self.s3.put_object(Bucket=self.bucket, Key=f.key, Body=f.body)
            event = {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "s3": {"bucket": {"name": self.bucket}, "object": {"key": f.key, "size": len(f.body)}},
                    }
                ]
            }
            with self.meter.invocation("NaiveIngestion"):
                self.ingestion_handler(event)
            self._drain_processing()
            with self.meter.invocation("NaiveAggregator"):
                self.aggregator_handler({})
            runs += 1
        self.after_ticks()
        while runs < schedule_runs:
            with self.meter.invocation("NaiveAggregator"):
                self.aggregator_handler({})
            runs += 1

    def _drain_processing(self) -> None:
        """The SQS event source mapping: receive 10, invoke, delete the batch."""
        while True:
            messages = self.sqs.receive_message(QueueUrl=self.processing_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not messages:
                return
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "eventSource": "aws:sqs",
                    }
                    for m in messages
                ]
            }
            with self.meter.invocation("NaiveProcessor"):
                self.processor_handler(event)
            self.sqs.delete_message_batch(
                QueueUrl=self.processing_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
