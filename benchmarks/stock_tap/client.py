"""REST client handling, including the StockAnalyticsStream base class (template layout)."""

from __future__ import annotations

import decimal
import typing as t
from functools import cached_property

from singer_sdk.helpers.jsonpath import extract_jsonpath
from singer_sdk.streams import RESTStream

from benchmarks.stock_tap.auth import StockAnalyticsAuthenticator

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Auth, Context

PAGE_SIZE = 100


class StockAnalyticsStream(RESTStream):
    """Stock Analytics stream class."""

    records_jsonpath = "$.data[*]"
    next_page_token_jsonpath = "$.paging.next.after"  # noqa: S105
    primary_keys: t.ClassVar[list[str]] = ["id"]
    replication_key = "updated_at"

    @property
    def url_base(self) -> str:
        """Return the API URL root, configurable via tap settings."""
        return str(self.config["base_url"]).rstrip("/")

    @cached_property
    def authenticator(self) -> Auth:
        """Return the shared OAuth client-credentials authenticator."""
        return StockAnalyticsAuthenticator(
            client_id=self.config["client_id"],
            client_secret=self.config["client_secret"],
            auth_endpoint=f"{self.url_base}/oauth/v1/token",
        )

    def get_url_params(
        self,
        context: Context | None,
        next_page_token: t.Any | None,  # noqa: ANN401
    ) -> dict[str, t.Any]:
        """Return the query parameters: after, limit and updated_since."""
        params: dict[str, t.Any] = {"limit": PAGE_SIZE}
        if next_page_token:
            params["after"] = next_page_token
        if self.replication_key and (start := self.get_starting_timestamp(context)):
            params["updated_since"] = start.isoformat().replace("+00:00", "Z")
        return params

    def parse_response(self, response: requests.Response) -> t.Iterable[dict[str, t.Any]]:
        """Yield the records of one page through the records JSONPath."""
        yield from extract_jsonpath(
            self.records_jsonpath,
            input=response.json(parse_float=decimal.Decimal),
        )
