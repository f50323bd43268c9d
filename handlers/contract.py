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
ENV_AGGREGATION_QUEUE_URL = "AGGREGATION_QUEUE_URL"  # DataAggregator

# --- EventBridge (custom bus) -------------------------------------------------------
# DataProcessor publishes one PointsStored event per batch of stored points; its detail
# names the (symbol, window_start) pairs the batch touched. A rule on the bus routes
# these events (detail only) to the AggregationQueue, which DataAggregator drains.
EVENT_SOURCE_PROCESSOR = "market-data.processor"
DETAIL_TYPE_POINTS_STORED = "PointsStored"
# DataAggregator publishes one AggregateComputed event per finished 5-minute window.
EVENT_SOURCE_AGGREGATOR = "market-data.aggregator"
DETAIL_TYPE_AGGREGATE_COMPUTED = "AggregateComputed"

# --- DynamoDB layout (one table: partition key `symbol` S, sort key `timestamp` N) ---
# A point:      symbol = "AAPL",            timestamp = epoch milliseconds UTC
# An aggregate: symbol = "AAPL" + suffix,   timestamp = window start, epoch ms UTC
# Symbols are 1-12 of A-Z 0-9 . - so "#" can never collide with a real symbol.
AGGREGATE_KEY_SUFFIX = "#5m"
WINDOW_MS = 300_000  # 5-minute UTC windows [start, start + 300 s)

# --- Lambda handler entry points (module paths inside the function zip) -------------
HANDLER_INGESTION = "handlers.data_ingestion.handler"
HANDLER_PROCESSOR = "handlers.data_processor.handler"
HANDLER_AGGREGATOR = "handlers.data_aggregator.handler"
