"""Benchmarks: `python -m bench` (see bench/__main__.py) and bench/ingest_throughput.py."""
