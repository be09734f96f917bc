"""Shared fixtures of the harness's own test suite."""

pytest_plugins = ["pytester"]
