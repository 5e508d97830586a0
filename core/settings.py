"""Checked numbers: config fields and environment settings, refused with ValueError saying why.

Each check returns the value as the plain declared type (numpy scalars become int, float, str or bool),
so a config stores what it was meant to hold whatever a caller passed in.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence

import numpy as np

# Numbers this long are named by their length: formatting them in full would flood a message.
LONGEST_SHOWN_DIGITS = 30


def _shown(value: object) -> str:
    """A short, readable rendering of any value for an error message."""
    if isinstance(value, int) and not isinstance(value, bool):
        digits = len(str(abs(value))) if value.bit_length() < 200 else int(value.bit_length() * 0.30103)
        if digits > LONGEST_SHOWN_DIGITS:
            return f"a number with about {digits:,} digits"
        return f"{value:,}"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plain(number: float) -> str:
    """A limit written as a person types it: 0.00001, not 1e-05."""
    return f"{number:f}".rstrip("0").rstrip(".")


def _as_whole(value: object) -> int | None:
    """`value` as an int if it is a whole number (a Python or numpy integer), else None."""
    # numpy's timedelta64 subclasses its integer types but is a duration, not a count.
    if isinstance(value, bool | np.bool_ | np.timedelta64):
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    return None


def check_whole(name: str, value: object, low: int, high: int) -> int:
    """`value` as an int in [low, high]; anything else (bools, floats, text) is a ValueError."""
    number = _as_whole(value)
    if number is None:
        raise ValueError(f"{name} must be a whole number, not {_shown(value)}.")
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low:,} and {high:,}, not {_shown(number)}.")
    return number


def check_number(name: str, value: object, low: float, high: float) -> float:
    """`value` as a finite float between `low` and `high`; anything else is a ValueError."""
    whole = _as_whole(value)
    if whole is None and not isinstance(value, float | np.floating):
        raise ValueError(f"{name} must be a number, not {_shown(value)}.")
    shown = _shown(value if whole is None else whole)
    try:
        number = float(value if whole is None else whole)  # type: ignore[arg-type]
    except OverflowError:
        # An int beyond float's range (2**16609, say) is simply out of range.
        number = math.inf
    if not math.isfinite(number) or not low <= number <= high:
        raise ValueError(f"{name} must be between {_plain(low)} and {_plain(high)}, not {shown}.")
    return number


def check_flag(name: str, value: object) -> bool:
    """`value` as a bool (numpy bools included); anything else is a ValueError."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be true or false, not {_shown(value)}.")
    return bool(value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """`value` as a plain str that is one of `choices`; anything else is a ValueError."""
    if not isinstance(value, str) or str(value) not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {_shown(value)}.")
    return str(value)


def env_number(name: str, *, default: float, low: float, high: float, whole: bool = True) -> float:
    """The environment variable `name` as a number within [low, high], or `default` when unset."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        kind = "a whole number" if whole else "a number"
        raise ValueError(f"{name} must be {kind}, not {text!r}.") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:,} and {high:,}, not {value}.")
    return value
