"""A local implementation of the Analytics API v1 contract, for tests, demos and benchmarks."""

from tap_analytics.sandbox.server import SandboxServer

__all__ = ["SandboxServer"]
