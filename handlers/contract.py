"""Names shared by the CloudFormation template (market_cfn) and the Lambda handlers.

This module is the single source of truth for every string that must be the same on
both sides: environment variable names, EventBridge sources and detail types, and the
DynamoDB key layout. It imports nothing, so it costs nothing on a cold start.
"""

# --- Environment variables the template sets on the functions -----------------------
ENV_PROCESSING_QUEUE_URL = "PROCESSING_QUEUE_URL"  # DataIngestion
ENV_REJECTS_BUCKET = "REJECTS_BUCKET"  # DataIngestion
ENV_TABLE_NAME = "TABLE_NAME"  # DataProcessor, DataAggregator
ENV_EVENT_BUS_NAME = "EVENT_BUS_NAME"  # DataProcessor, DataAggregator
ENV_AGGREGATION_QUEUE_URL = "AGGREGATION_QUEUE_URL"  # DataAggregator; DataProcessor (fallback)
ENV_AGGREGATION_DLQ_URL = "AGGREGATION_DLQ_URL"  # DataAggregator (windows that keep failing)
ENV_POINTS_RETENTION_DAYS = "POINTS_RETENTION_DAYS"  # DataProcessor: TTL of points, 0 = for good
ENV_BARS_RETENTION_DAYS = "BARS_RETENTION_DAYS"  # DataAggregator: TTL of bars, 0 = for good

# --- EventBridge (custom bus) -------------------------------------------------------
# DataProcessor publishes one PointsStored event per batch of stored points; its detail
# names the (symbol, window_start) pairs the batch touched. A rule on the bus routes
# these events (detail only) to the AggregationQueue, which DataAggregator drains.
EVENT_SOURCE_PROCESSOR = "market-data.processor"
DETAIL_TYPE_POINTS_STORED = "PointsStored"
# DataAggregator publishes the finished 5-minute bars as BarsComputed events, many bars
# per event, with a `symbols` array a rule can match (handlers/core/bars.py; the
# consumer contract is in docs/design.md). It replaces the per-bar AggregateComputed
# event of earlier versions.
EVENT_SOURCE_AGGREGATOR = "market-data.aggregator"
DETAIL_TYPE_BARS_COMPUTED = "BarsComputed"

# --- DynamoDB layout (one table: partition key `symbol` S, sort key `timestamp` N) ---
# A point:      symbol = "AAPL",            timestamp = epoch milliseconds UTC
# An aggregate: symbol = "AAPL" + suffix,   timestamp = window start, epoch ms UTC
# Symbols are 1-12 of A-Z 0-9 . - so "#" can never collide with a real symbol.
AGGREGATE_KEY_SUFFIX = "#5m"
# An aggregate item's version: 1 when first written, + 1 on every replacement; the
# aggregator's conditional write (optimistic concurrency) checks it.
AGGREGATE_VERSION_ATTRIBUTE = "version"
WINDOW_MS = 300_000  # 5-minute UTC windows [start, start + 300 s)
# The table's TTL attribute: epoch seconds after which DynamoDB deletes the item (free).
TTL_ATTRIBUTE = "expires"

# --- Lambda handler entry points (module paths inside the function zip) -------------
HANDLER_INGESTION = "handlers.data_ingestion.handler"
HANDLER_PROCESSOR = "handlers.data_processor.handler"
HANDLER_AGGREGATOR = "handlers.data_aggregator.handler"
