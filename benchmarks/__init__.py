"""Benchmarks: measured figures for BENCHMARKS.md and benchmarks.json (``nox -s bench``)."""
