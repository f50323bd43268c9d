"""Day-2 cores: each takes boto3 clients and returns plain data."""
