"""One thin module per command: parse, validate, call a core, return an exit code."""
