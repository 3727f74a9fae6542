"""Benchmarks: `vigil bench core` and `vigil bench ingest` (figures in docs/benchmarks.md)."""
