"""Delivery of notifications from the outbox: retries, backoff, idempotency keys, channels."""
