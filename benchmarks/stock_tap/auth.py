"""Stock Analytics authentication, as the SDK template's OAuth2 option generates it."""

from __future__ import annotations

from singer_sdk.authenticators import OAuthAuthenticator, SingletonMeta


# The SingletonMeta metaclass makes the streams reuse the same authenticator instance.
class StockAnalyticsAuthenticator(OAuthAuthenticator, metaclass=SingletonMeta):
    """Authenticator class for the stock Analytics tap."""

    @property
    def oauth_request_body(self) -> dict[str, str | None]:
        """Return the client-credentials request body."""
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
        }
