"""The market_cfn benchmark: AWS requests and US$ per million points (see docs/performance.md)."""
