"""The local emulation: simulate's step-by-step Pipeline and the `local` service, on moto.

Shared by both: events (the Lambda events and context), stackview (the template's wiring),
runtime (invocation, asynchronous retries, the SQS event source mapping), readback,
accounting. The service adds: service (LocalService), motoside (what it changes in moto),
apiserver and sigv4 (POST /ingest), bus (EventBridge rule delivery), logsink (function logs).
"""
