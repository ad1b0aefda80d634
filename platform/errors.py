"""User-facing errors.

Every mistake a user can make (bad config key, wrong value type, missing data file, unknown workload) becomes one of
these. The CLI prints ``str(error)`` as a single line on stderr and exits with status 2, so the message must say what
was wrong and what would be right, without a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping


class FedrayError(Exception):
    """Base class of errors that are the user's to fix; the CLI shows them as one line."""

    exit_code = 2


class ConfigError(FedrayError):
    """An unknown key, a value of the wrong type, or a config file that cannot be read."""


class DataError(FedrayError):
    """A dataset that cannot be found or read."""


class WorkloadError(FedrayError):
    """An unknown workload name."""


class DivergedError(FedrayError):
    """A training loss that became NaN or infinite: the run stops there instead of finishing with NaN weights and
    reporting NaN metrics under exit status 0."""


_RULES = {"positive": lambda v: v > 0, "0 or more": lambda v: v >= 0}


def require(rule: str, values: Mapping[str, float | None]) -> None:
    """One :class:`ConfigError` naming every key whose value breaks ``rule`` (``positive`` or ``0 or more``), as
    ``these must be positive: a=0, b=-1``; a None value is unset and passes."""
    bad = [f"{key}={value}" for key, value in values.items() if value is not None and not _RULES[rule](value)]
    if bad:
        raise ConfigError(f"these must be {rule}: {', '.join(bad)}")
