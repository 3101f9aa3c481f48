"""Benchmarks: each prints a markdown table and writes JSON."""
