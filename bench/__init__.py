"""Benchmark scripts: accuracy ratios against reference implementations, not timed tests."""
