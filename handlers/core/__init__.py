"""The pure core of the handlers: parsing, validation, wire formats, aggregation math.

Nothing in this package imports boto3 or touches the network, so every function here
is tested with plain unit tests (tests/test_handlers_core.py) and property tests
(tests/test_parsers_hypothesis.py). The handler modules do the I/O around it.
"""
