"""Singer tap for the Analytics API v1."""
