"""market_cfn: typed Troposphere builders, Lambda handlers and a change-set deploy tool
for a serverless market-data pipeline on AWS."""

__version__ = "0.1.0"
