"""Structured logs and Prometheus metrics, shared by every runtime."""
