"""Checked numbers: config fields and environment settings, refused with ValueError saying why."""

from __future__ import annotations

import os

import numpy as np


def check_whole(name: str, value: object, low: int, high: int) -> None:
    """Refuse anything but a whole number (bools excluded) between `low` and `high`."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be a whole number, not {value!r}.")
    if not low <= value <= high:
        raise ValueError(f"{name} must be between {low:,} and {high:,}, not {value:,}.")


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
