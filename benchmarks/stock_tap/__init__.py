"""A stock singer-sdk tap for the Analytics API, written the way the SDK template leads."""
