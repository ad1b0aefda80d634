"""User-facing errors.

Every mistake a user can make (bad config key, wrong value type, missing data file, unknown workload) becomes one of
these. The CLI prints ``str(error)`` as a single line on stderr and exits with status 2, so the message must say what
was wrong and what would be right, without a traceback.
"""

from __future__ import annotations


class FedrayError(Exception):
    """Base class of errors that are the user's to fix; the CLI shows them as one line."""

    exit_code = 2


class ConfigError(FedrayError):
    """An unknown key, a value of the wrong type, or a config file that cannot be read."""


class DataError(FedrayError):
    """A dataset that cannot be found or read."""


class WorkloadError(FedrayError):
    """An unknown workload name."""
