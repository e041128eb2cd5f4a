"""Benchmark runners and their registry."""
