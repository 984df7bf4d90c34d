"""A fixed-window request counter behind the X-RateLimit-* headers."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

DEFAULT_RATE_LIMIT = 1_000_000
DEFAULT_RATE_WINDOW = 60.0


@dataclass
class RateWindow:
    """Counts requests in fixed windows of `window_seconds`, allowing `limit` per window."""

    limit: int = DEFAULT_RATE_LIMIT
    window_seconds: float = DEFAULT_RATE_WINDOW
    window_start: float = 0.0
    used: int = 0

    def roll(self) -> None:
        """Start a new window if the current one is over."""
        now = time.monotonic()
        if now >= self.window_start + self.window_seconds:
            self.window_start = now
            self.used = 0

    def take(self) -> bool:
        """Count one request; return False if it is over the limit."""
        self.roll()
        self.used += 1
        return self.used <= self.limit

    def reset_seconds(self) -> int:
        """Return the whole seconds until the current window resets (at least 1)."""
        left = self.window_start + self.window_seconds - time.monotonic()
        return max(1, math.ceil(left))

    def headers(self) -> list[tuple[str, str]]:
        """Return the X-RateLimit-* headers describing the current window."""
        self.roll()
        return [
            ("X-RateLimit-Limit", str(self.limit)),
            ("X-RateLimit-Remaining", str(max(0, self.limit - self.used))),
            ("X-RateLimit-Reset", str(self.reset_seconds())),
        ]

    def reconfigure(self, limit: int | None = None, window_seconds: float | None = None) -> None:
        """Change the limit or the window length; the current window starts over."""
        if limit is not None:
            self.limit = limit
        if window_seconds is not None:
            self.window_seconds = window_seconds
        self.window_start, self.used = time.monotonic(), 0
