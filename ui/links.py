"""The shareable-link codec of the Addition RNN page: query parameters to form presets and back."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.addition import MAX_TRAINING_SIZE, RECIPES, RNN_TYPES, AdditionConfig

# Query-parameter names of a shareable link, mapped to config fields.
QUERY_FIELDS = {
    "digits": "digits",
    "training_size": "training_size",
    "rnn_type": "rnn_type",
    "layers": "layers",
    "hidden_size": "hidden_size",
    "batch_size": "batch_size",
    "iterations": "iterations",
    "test_examples": "test_examples",
    "reverse": "reverse",
    "recipe": "recipe",
}
# Fields whose link value is one of a few words, matched without regard to case.
CHOICE_FIELDS = {"rnn_type": RNN_TYPES, "recipe": RECIPES}
# Digits a link's number may have: far more than any field takes, few enough to read without delay.
LONGEST_NUMBER_DIGITS = 30


def whole_from_text(raw: str) -> int:
    """The whole number a link's text spells ('12', '-3', '+007'); ValueError saying why otherwise."""
    digits = raw[1:] if raw[:1] in ("+", "-") else raw
    # ASCII digits only: int() would also read '١٢' or '1_0', which no one types into a link.
    if not (digits.isascii() and digits.isdigit()):
        raise ValueError("it is not a whole number.")
    significant = digits.lstrip("0") or "0"
    if len(significant) > LONGEST_NUMBER_DIGITS:
        raise ValueError(f"it has {len(significant):,} digits, far more than any field takes.")
    return -int(significant) if raw[:1] == "-" else int(significant)


def link_text(value: object) -> str | None:
    """A query parameter's value as plain text with outer spaces removed, or None if it is not text."""
    return str.__str__(value).strip() if isinstance(value, str) else None


def form_values_from_query(params: dict[str, str]) -> tuple[dict[str, object], list[str]]:
    """Form presets from URL query parameters, and a message for each value that was ignored."""
    defaults = AdditionConfig()
    values: dict[str, object] = {}
    problems: list[str] = []
    for name, field_name in QUERY_FIELDS.items():
        if name not in params:
            continue
        raw = link_text(params[name])
        if raw is None:
            problems.append(f"{name} is not text.")
            continue
        if field_name in CHOICE_FIELDS:
            choices = CHOICE_FIELDS[field_name]
            matches = [kind for kind in choices if kind.lower() == raw.lower()]
            if matches:
                values[field_name] = matches[0]
            else:
                problems.append(f"{name}={raw[:20]!r} is not one of {', '.join(choices)}.")
        elif field_name == "reverse":
            if raw.lower() in ("1", "true", "yes", "on"):
                values[field_name] = True
            elif raw.lower() in ("0", "false", "no", "off"):
                values[field_name] = False
            else:
                problems.append(f"reverse={raw[:20]!r} should be true or false.")
        else:
            try:
                number = whole_from_text(raw)
                # Check this one field alone; the form checks how the fields fit together.
                changes: dict[str, Any] = {
                    "digits": 5,
                    "training_size": MAX_TRAINING_SIZE if field_name == "test_examples" else 10,
                    "test_examples": 0,
                    field_name: number,
                }
                dataclasses.replace(defaults, **changes)
            except ValueError as error:
                problems.append(f"{name}={raw[:20]!r}: {error}")
                continue
            values[field_name] = number
    return values, problems


def link_combination_problem(values: dict[str, object]) -> str | None:
    """Why the link's fields, each valid alone, do not make one config together (None if they do)."""
    if not values:
        return None
    try:
        AdditionConfig(**values)  # type: ignore[arg-type]  # Each value was checked by its field.
    except ValueError as error:
        return str(error)
    return None


def query_from_config(config: AdditionConfig) -> dict[str, str]:
    """The query parameters that preset the form to `config` (for a shareable link)."""
    return {
        name: str(getattr(config, field_name)).lower()
        if field_name == "reverse"
        else str(getattr(config, field_name))
        for name, field_name in QUERY_FIELDS.items()
    }
