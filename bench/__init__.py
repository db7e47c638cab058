"""Benchmarks of the hub's hot paths, run as modules (`python -m bench.<name>`)."""
