"""What the streams of one run share: the token, the throttle, the writer and the stop flag."""

from __future__ import annotations

import threading
import typing as t
from dataclasses import dataclass, field

if t.TYPE_CHECKING:
    from tap_analytics.auth import ClientCredentialsAuth
    from tap_analytics.output import LockedWriter
    from tap_analytics.throttle import Throttle


@dataclass(frozen=True)
class RunContext:
    """Handed by the tap to each stream, so that a stream never reaches back into the tap."""

    auth: ClientCredentialsAuth
    throttle: Throttle
    writer: LockedWriter
    stop: threading.Event = field(default_factory=threading.Event)
