"""The stock Analytics tap class (template layout); a benchmark contender, not shipped."""

from __future__ import annotations

import typing as t

from singer_sdk import Tap
from singer_sdk import typing as th

from benchmarks.stock_tap import streams

if t.TYPE_CHECKING:
    from benchmarks.stock_tap.client import StockAnalyticsStream

STREAM_TYPES = (
    streams.CustomersStream,
    streams.SessionsStream,
    streams.EventsStream,
    streams.CampaignsStream,
)


class TapStockAnalytics(Tap):
    """Stock singer-sdk tap for the Analytics API v1."""

    name = "tap-stock-analytics"

    config_jsonschema = th.PropertiesList(
        th.Property("client_id", th.StringType, required=True),
        th.Property("client_secret", th.StringType, required=True, secret=True),
        th.Property("base_url", th.StringType, default="https://api.example.com"),
        th.Property("start_date", th.DateTimeType),
    ).to_dict()

    def discover_streams(self) -> list[StockAnalyticsStream]:
        """Return a list of discovered streams."""
        return [stream_class(tap=self) for stream_class in STREAM_TYPES]
