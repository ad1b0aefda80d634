"""User-facing errors.

Every mistake a user can make (bad config key, wrong value type, missing data file, unknown workload) becomes one of
these. The CLI prints ``str(error)`` as a single line on stderr and exits with status 2, so the message must say what
was wrong and what would be right, without a traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


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


def check_range(
    key: str,
    pair: Sequence[float],
    floor: float,
    ceiling: float | None = None,
    *,
    floor_open: bool = False,
    ceiling_open: bool = False,
) -> None:
    """A :class:`ConfigError` unless ``pair`` is a range ``[low, high]`` with floor ≤ low ≤ high ≤ ceiling (strict
    at an open end), as ``data.blur_sigma must be a range [low, high] with 0 ≤ low ≤ high, got [3, 1]``. Sampling
    ``uniform(low, high)`` from a reversed or out-of-domain range fails deep inside a task, or silently yields
    nonsense, so every range key is checked here first."""
    if len(pair) == 2:
        low, high = pair
        low_ok = low > floor if floor_open else low >= floor
        high_ok = ceiling is None or (high < ceiling if ceiling_open else high <= ceiling)
        if low <= high and low_ok and high_ok:
            return
    bounds = f"{floor:g} {'<' if floor_open else '≤'} low ≤ high"
    if ceiling is not None:
        bounds += f" {'<' if ceiling_open else '≤'} {ceiling:g}"
    raise ConfigError(f"{key} must be a range [low, high] with {bounds}, got {list(pair)}")
