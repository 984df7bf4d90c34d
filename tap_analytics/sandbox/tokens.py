"""Issued access tokens with server-side expiry and revocation."""

from __future__ import annotations

import secrets
import time

PRUNE_ABOVE = 1000


class TokenRegistry:
    """Tokens issued so far and the monotonic instant each one expires."""

    def __init__(self, *, one_per_client: bool = False) -> None:
        """Start with no tokens; `one_per_client` makes each new token revoke the earlier ones."""
        self.expiries: dict[str, float] = {}
        self.one_per_client = one_per_client

    def issue(self, ttl_seconds: float) -> str:
        """Issue a new random opaque token valid for `ttl_seconds`."""
        if self.one_per_client:  # the sandbox has one client, so every earlier token is its
            self.revoke_all()
        self.drop_expired()
        token = secrets.token_urlsafe(24)
        self.expiries[token] = time.monotonic() + ttl_seconds
        return token

    def is_valid(self, token: str) -> bool:
        """Return whether `token` was issued, is not revoked and has not expired."""
        expiry = self.expiries.get(token)
        return expiry is not None and time.monotonic() < expiry

    def revoke_all(self) -> None:
        """Revoke every token issued so far."""
        self.expiries.clear()

    def drop_expired(self) -> None:
        """Forget expired tokens so the registry does not grow forever."""
        if len(self.expiries) > PRUNE_ABOVE:
            now = time.monotonic()
            self.expiries = {token: at for token, at in self.expiries.items() if at > now}
