"""OAuth2 client credentials: one access token shared by every stream of a run."""

from __future__ import annotations

import logging
import math
import threading
import time
import typing as t
from urllib.parse import urljoin, urlparse

import backoff
import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_analytics.errors import NotJSONError, TokenRequestError
from tap_analytics.redact import hide, quoted
from tap_analytics.retry import TRANSIENT_ERRORS, RetryPolicy
from tap_analytics.transport import bounded, no_answer

if t.TYPE_CHECKING:
    from collections.abc import Callable

logger = logging.getLogger("tap-analytics.auth")

REFRESH_MARGIN = 60.0  # renew this long before expiry, or at 90 % of a shorter lifetime
DEFAULT_LIFETIME = 3600.0  # of a token whose expires_in is absent or unusable


def token_lifetime(expires_in: object) -> float:
    """Seconds a token lives: expires_in if a positive finite number, else an hour."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float):
        return DEFAULT_LIFETIME
    try:
        seconds = float(expires_in)
    except OverflowError:  # an integer of hundreds of digits
        return DEFAULT_LIFETIME
    return seconds if math.isfinite(seconds) and seconds > 0 else DEFAULT_LIFETIME


class ClientCredentialsAuth(requests.auth.AuthBase):
    """Bearer token from the client-credentials grant, renewed before it expires.

    The SDK's OAuthAuthenticator keeps a token per stream and does not retry the token
    endpoint; the contract needs one token per run, renewal under concurrency, and
    429/5xx retries on the token endpoint, so this class replaces it.
    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        timeout: float,
        retry: RetryPolicy,
        session: requests.Session | None = None,
    ) -> None:
        """Keep the credentials; no request is made until a token is needed."""
        self.token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        hide(client_secret)
        self._scope = scope
        self._timeout = timeout
        self._retry = retry
        self._session = bounded(session or requests.Session(), 1)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._token_served = False  # whether the API accepted the current token yet
        self._unused_in_a_row = 0  # tokens rejected in a row before the API accepted them
        self._renew_at = 0.0
        self._refusal_error: TokenRequestError | None = None

    def __repr__(self) -> str:
        """Name the endpoint, never the secret or the token."""
        return f"ClientCredentialsAuth(token_url={self.token_url!r})"

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        """Add the bearer token to a request."""
        request.headers["Authorization"] = f"Bearer {self.access_token()}"
        return request

    def access_token(self) -> str:
        """Return a valid token, fetching one when there is none or it is about to expire."""
        with self._lock:
            if self._refusal_error is not None:
                raise self._refusal_error  # refused credentials stay refused for this run
            if self._token is None or time.monotonic() >= self._renew_at:
                try:
                    self._fetch()
                except TokenRequestError as refused:
                    self._refusal_error = refused
                    raise
            assert self._token is not None  # noqa: S101 - _fetch sets it or raises
            return self._token

    def served(self, token: str | None) -> None:
        """Note that the API accepted a token: the run makes progress with it."""
        if self._token_served or token != self._token:  # the common case needs no lock
            return
        with self._lock:
            if token == self._token:
                self._token_served, self._unused_in_a_row = True, 0

    def discard(self, token: str | None) -> int:
        """Forget a rejected token unless already replaced; count tokens rejected unused.

        Returns how many tokens in a row were rejected before the API accepted any request
        with them: the run makes no progress while that count grows.
        """
        with self._lock:
            if token is None or token == self._token:
                if not self._token_served:
                    self._unused_in_a_row += 1
                self._token = None
            return self._unused_in_a_row

    def _fetch(self) -> None:
        """Request a token, retrying 429, 5xx, non-JSON answers and connection errors."""
        fetch: Callable[[], object] = backoff.on_exception(
            self._retry.wait_generator,
            TRANSIENT_ERRORS,
            max_tries=self._retry.max_tries,
            jitter=self._retry.jitter,
            on_backoff=self._log_backoff,
            logger=None,
        )(self._post)
        try:
            body = fetch()
        except TRANSIENT_ERRORS as exc:
            advice = (
                "check token_url (a proxy or a login page may be answering), else rerun later"
                if isinstance(exc, NotJSONError)
                else "the token endpoint is unavailable: rerun later"
            )
            cause = no_answer(exc) or str(exc).rstrip(".")
            msg = (
                f"Token request to {self.token_url} failed after {self._retry.max_retries} "
                f"retries ({cause}); {advice}"
            )
            raise TokenRequestError(msg) from None
        token = body.get("access_token") if isinstance(body, dict) else None
        lifetime = token_lifetime(body.get("expires_in") if isinstance(body, dict) else None)
        if not isinstance(token, str) or not token:
            msg = f"Token endpoint {self.token_url} answered 200 without an access_token"
            raise TokenRequestError(msg)
        hide(token)  # before anything can print it
        self._token, self._token_served = token, False
        self._renew_at = time.monotonic() + max(lifetime - min(REFRESH_MARGIN, lifetime / 10), 0)
        logger.info("Fetched an access token valid for %.0f s", lifetime)

    def _post(self) -> object:
        """Send one token request (client credentials in the form body); return its JSON."""
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        if self._scope:
            form["scope"] = self._scope
        # Never redirected: a 307 or 308 would post the form, client_secret included, anywhere.
        response = self._session.post(
            self.token_url, data=form, timeout=self._timeout, allow_redirects=False
        )
        if response.is_redirect:
            raise TokenRequestError(self._redirect_refusal(response))
        if self._retry.is_retryable(response.status_code):
            msg = f"HTTP {response.status_code}"
            raise RetriableAPIError(msg, response)
        if response.status_code != requests.codes.ok:
            raise TokenRequestError(self._refusal(response))
        try:
            return response.json()
        except (ValueError, RecursionError):
            kind = quoted(response.headers.get("Content-Type", "no content type"))
            msg = f"HTTP 200 with a body that is not JSON ({kind})"
            raise NotJSONError(msg, response) from None

    def _redirect_refusal(self, response: requests.Response) -> str:
        """Explain a redirected token request, naming where it points but not following it."""
        target = urlparse(urljoin(self.token_url, response.headers.get("Location", "")))
        origin = quoted(f"{target.scheme}://{target.netloc}")
        return (
            f"Token request to {self.token_url} answered HTTP {response.status_code}, a redirect "
            f"to {origin}: the tap never follows a redirect of the token request (it would send "
            "client_secret to another address, maybe another origin or plain http); if that "
            "address is the provider's token endpoint, set token_url to it"
        )

    def _refusal(self, response: requests.Response) -> str:
        """Explain a refused token request with the RFC 6749 error, never the secret."""
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = {}
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):  # the data endpoints' error shape
            error = error.get("code")
        description = body.get("error_description") if isinstance(body, dict) else None
        detail = f" {error}" if error else ""
        detail += f" ({description})" if description else ""
        detail = quoted(detail)  # a careless server may quote the submitted form
        return (
            f"Token request to {self.token_url} failed: HTTP {response.status_code}{detail}. "
            "Check client_id, client_secret, scope and token_url."
        )

    def _log_backoff(self, details: t.Any) -> None:  # noqa: ANN401 - backoff's details dict
        """Log a retry of the token endpoint."""
        failure = details.get("exception")
        logger.warning(
            "Token request to %s failed (%s); retry %d in %.1f s",
            self.token_url,
            no_answer(failure) or failure,
            details.get("tries"),
            details.get("wait"),
        )
