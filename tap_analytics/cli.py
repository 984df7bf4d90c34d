"""The tap-analytics command: start-up is mostly importing singer-sdk, so make that cheap."""

from __future__ import annotations

import gc


def main() -> None:
    """Run the tap's command line."""
    # The imports create some 50,000 tracked objects that live until exit: collecting while
    # they are made finds nothing to free and costs a fifth of start-up, so pause it, then
    # move them out of every later collection's way.
    gc.disable()
    try:
        from tap_analytics.tap import TapAnalytics  # noqa: PLC0415 - timed with the collector off
    finally:
        gc.enable()
    gc.freeze()
    TapAnalytics.cli()
