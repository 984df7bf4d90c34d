"""Stream type classes for the stock Analytics tap; schemas copied from the API contract."""

from __future__ import annotations

from singer_sdk import typing as th

from benchmarks.stock_tap.client import StockAnalyticsStream

SCALAR = th.CustomType({"type": ["string", "number", "boolean", "null"]})


class CustomersStream(StockAnalyticsStream):
    """The customers resource."""

    name = "customers"
    path = "/v1/customers"
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("external_id", th.StringType),
        th.Property("name", th.StringType),
        th.Property("email", th.StringType),
        th.Property("country_code", th.StringType),
        th.Property("plan", th.StringType),
        th.Property("lifetime_value", th.NumberType),
        th.Property("total_events", th.IntegerType),
        th.Property("is_active", th.BooleanType),
        th.Property("tags", th.ArrayType(th.StringType)),
        th.Property("attributes", th.ObjectType(additional_properties=SCALAR)),
        th.Property("created_at", th.DateTimeType),
        th.Property("updated_at", th.DateTimeType, required=True),
    ).to_dict()


class SessionsStream(StockAnalyticsStream):
    """The sessions resource."""

    name = "sessions"
    path = "/v1/sessions"
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("customer_id", th.StringType),
        th.Property("started_at", th.DateTimeType),
        th.Property("ended_at", th.DateTimeType),
        th.Property("duration_seconds", th.IntegerType),
        th.Property("device_type", th.StringType),
        th.Property("browser", th.StringType),
        th.Property("country_code", th.StringType),
        th.Property("landing_page", th.StringType),
        th.Property("referrer", th.StringType),
        th.Property(
            "utm",
            th.ObjectType(
                th.Property("source", th.StringType),
                th.Property("medium", th.StringType),
                th.Property("campaign", th.StringType),
                th.Property("term", th.StringType),
                th.Property("content", th.StringType),
            ),
        ),
        th.Property("page_view_count", th.IntegerType),
        th.Property("updated_at", th.DateTimeType, required=True),
    ).to_dict()


class EventsStream(StockAnalyticsStream):
    """The events resource."""

    name = "events"
    path = "/v1/events"
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("customer_id", th.StringType),
        th.Property("session_id", th.StringType),
        th.Property("event_type", th.StringType),
        th.Property("occurred_at", th.DateTimeType),
        th.Property("properties", th.ObjectType()),
        th.Property("revenue", th.NumberType),
        th.Property("currency", th.StringType),
        th.Property("updated_at", th.DateTimeType, required=True),
    ).to_dict()


class CampaignsStream(StockAnalyticsStream):
    """The campaigns resource."""

    name = "campaigns"
    path = "/v1/campaigns"
    schema = th.PropertiesList(
        th.Property("id", th.StringType, required=True),
        th.Property("name", th.StringType),
        th.Property("channel", th.StringType),
        th.Property("status", th.StringType),
        th.Property("budget", th.NumberType),
        th.Property("currency", th.StringType),
        th.Property("starts_on", th.DateType),
        th.Property("ends_on", th.DateType),
        th.Property("created_at", th.DateTimeType),
        th.Property("updated_at", th.DateTimeType, required=True),
    ).to_dict()
