"""A local implementation of the Analytics API v1 contract, for tests, demos and benchmarks."""
