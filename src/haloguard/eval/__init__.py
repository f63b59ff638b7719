"""Evaluation harness: suites, public benchmark loaders, metrics, runner, reports."""
