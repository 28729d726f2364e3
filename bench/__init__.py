"""Reproducible benchmarks of the classroom server (not tests: run them with bench/run.sh)."""
