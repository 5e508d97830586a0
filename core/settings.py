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


def shown_value(value: object) -> str:
    """A short, readable rendering of any value for an error message."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = int.__index__(value)  # The number itself, whatever a subclass's formatting does.
        digits = len(str(abs(value))) if value.bit_length() < 200 else int(value.bit_length() * 0.30103)
        if digits > LONGEST_SHOWN_DIGITS:
            return f"a number with about {digits:,} digits"
        return f"{value:,}"
    try:
        text = repr(value)
    except Exception:
        # A value that cannot even describe itself is named by its type.
        return f"a {type(value).__name__}"
    return text if len(text) <= 40 else text[:37] + "..."


def _plain(number: float) -> str:
    """A limit written as a person types it: 0.00001, not 1e-05."""
    return f"{number:f}".rstrip("0").rstrip(".")


def as_whole(value: object) -> int | None:
    """`value` as a plain int if it is a whole number (a Python or numpy integer), else None."""
    # numpy's timedelta64 subclasses its integer types but is a duration, not a count.
    if isinstance(value, bool | np.bool_ | np.timedelta64):
        return None
    if isinstance(value, int):
        # The base class's own conversion: a subclass's __int__ or __index__ may say anything.
        return int.__index__(value)
    if isinstance(value, np.integer):
        try:
            return int(value)
        except Exception:
            # A numpy subclass whose conversion fails is not a number this app can use.
            return None
    return None


def _as_float(value: object) -> float | None:
    """`value` as a plain float if it is a Python or numpy float, else None."""
    if isinstance(value, float):
        # The base class's own conversion, whatever a subclass's __float__ does.
        return float.__float__(value)
    if isinstance(value, np.floating):
        try:
            return float(value)
        except Exception:
            return None
    return None


def plain_text(value: object) -> str | None:
    """`value` as a plain str if it is text (numpy's str_ and other subclasses included), else None."""
    if not isinstance(value, str):
        return None
    # The base class's own conversion, whatever a subclass's __str__ does.
    return str.__str__(value)


def check_whole(name: str, value: object, low: int, high: int) -> int:
    """`value` as an int in [low, high]; anything else (bools, floats, text) is a ValueError."""
    number = as_whole(value)
    if number is None:
        raise ValueError(f"{name} must be a whole number, not {shown_value(value)}.")
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low:,} and {high:,}, not {shown_value(number)}.")
    return number


def check_number(name: str, value: object, low: float, high: float) -> float:
    """`value` as a finite float between `low` and `high`; anything else is a ValueError."""
    whole = as_whole(value)
    number = _as_float(value) if whole is None else _whole_as_float(whole)
    if number is None:
        raise ValueError(f"{name} must be a number, not {shown_value(value)}.")
    if not math.isfinite(number) or not low <= number <= high:
        shown = shown_value(number if whole is None else whole)
        raise ValueError(f"{name} must be between {_plain(low)} and {_plain(high)}, not {shown}.")
    return number


def _whole_as_float(number: int) -> float:
    """`number` as a float; an int beyond float's range (2**16609, say) is infinitely far out."""
    try:
        return float(number)
    except OverflowError:
        return math.inf if number > 0 else -math.inf


def check_flag(name: str, value: object) -> bool:
    """`value` as a bool (numpy bools included); anything else is a ValueError."""
    if not isinstance(value, bool | np.bool_):
        raise ValueError(f"{name} must be true or false, not {shown_value(value)}.")
    return bool(value)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """`value` as a plain str that is one of `choices`; anything else is a ValueError."""
    text = plain_text(value)
    if text is None or text not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {shown_value(value)}.")
    return text


def env_number(name: str, *, default: float, low: float, high: float, whole: bool = True) -> float:
    """The environment variable `name` as a number within [low, high], or `default` when unset."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default if whole else float(default)
    kind = "a whole number" if whole else "a number"
    try:
        value = int(text) if whole else float(text)
    except ValueError:
        unsigned = text[1:] if text[:1] in ("+", "-") else text
        if whole and unsigned.isascii() and unsigned.isdigit():
            # Too many digits for int() to read: a whole number, far out of range.
            shown = f"a number with {len(unsigned.lstrip('0')):,} digits"
            raise ValueError(f"{name} must be between {low:,} and {high:,}, not {shown}.") from None
        raise ValueError(f"{name} must be {kind}, not {shown_value(text)}.") from None
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:,} and {high:,}, not {shown_value(value)}.")
    return value
