"""What every room shares, and nothing of ours below it: the outcomes and their exit codes (errors),
polling (waits), terminal output (console), and AWS error helpers and options (aws)."""
