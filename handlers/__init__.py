"""Lambda handlers of the market-data pipeline (shipped in the function zip)."""
