"""Benchmarks of tidelog: `python -m bench` runs the comparative suite (bench/suite/)."""
