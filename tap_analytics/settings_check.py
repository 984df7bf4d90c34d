"""The tap's check of its settings as a whole: one clear line per problem, warnings apart."""

from __future__ import annotations

import typing as t

from tap_analytics import redact, resources, settings
from tap_analytics.state import BadBookmarkError, later_than_now, parse_instant

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from tap_analytics.resources import Resource

# The SDK's batch path would run through the tap's record loop, which writes STATE with the
# records: a BATCH after its STATE, and a run killed between them loses its records on resume.
BATCH_REFUSED = (
    "Setting 'batch_config' is refused: the tap writes RECORD messages, not BATCH files (a BATCH "
    "would follow the STATE that counts its records as delivered); remove batch_config"
)


def hide_secrets(config: Mapping[str, t.Any]) -> None:
    """Redact the client secret from every later line, in either of its two places."""
    redact.install()
    redact.hide(config.get("client_secret"))
    redact.hide(((config.get("client") or {}).get("auth") or {}).get("client_secret"))


def checked(
    config: Mapping[str, t.Any], schema: dict[str, t.Any], *, for_sync: bool
) -> tuple[dict[str, t.Any], list[str]]:
    """A copy of the settings as the run reads them (defaults filled), and their problems.

    With `for_sync`, also the settings a sync needs (discovery serves the built-ins offline).
    """
    validated, errors = settings.validated(config, schema)
    if for_sync:
        errors += settings.missing_for_sync(validated)
    if "batch_config" in validated:
        errors.append(BATCH_REFUSED)
    return validated, errors


def declaration_errors(declared: Callable[[], Iterable[Resource]]) -> list[str]:
    """Check the resource declarations, before any request."""
    try:
        declarations = list(declared())
    except resources.DeclarationError as exc:
        return [str(exc)]
    errors = []
    for resource in declarations:
        initial_value = resource.incremental and resource.incremental.initial_value
        if initial_value is not None:
            what = f"The initial_value declared for resource '{resource.name}'"
            try:
                parse_instant(initial_value, what=what)
            except BadBookmarkError as exc:
                errors.append(str(exc))
    return errors


def sdk_errors(sdk: Iterable[str], ours: list[str]) -> list[str]:
    """The SDK's own check's errors that ours do not already report, worded as ours."""
    return [
        settings.worded_sdk_error(error)
        for error in sdk
        if not settings.already_reported(error, ours)
    ]


def warnings(config: Mapping[str, t.Any], known: Iterable[str]) -> list[str]:
    """What a run can go on with but should say: unknown names, a start_date not yet come."""
    lines = settings.unknown_settings(config, known)
    if later_than_now(config.get("start_date")):
        lines.append(
            f"Setting 'start_date' is {config['start_date']}, later than now: streams without a "
            "bookmark read nothing until records are updated after it"
        )
    return lines
