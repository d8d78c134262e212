"""Benchmarks: measured, not asserted (see bench/README.md)."""
