"""The shareable-link codec of the Addition RNN page: query parameters to form presets and back."""

from __future__ import annotations

import dataclasses
from typing import Any

from core.addition import MAX_TRAINING_SIZE, RNN_TYPES, AdditionConfig

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
}


def form_values_from_query(params: dict[str, str]) -> tuple[dict[str, object], list[str]]:
    """Form presets from URL query parameters, and a message for each value that was ignored."""
    defaults = AdditionConfig()
    values: dict[str, object] = {}
    problems: list[str] = []
    for name, field_name in QUERY_FIELDS.items():
        if name not in params:
            continue
        raw = str(params[name]).strip()
        if field_name == "rnn_type":
            matches = [kind for kind in RNN_TYPES if kind.lower() == raw.lower()]
            if matches:
                values[field_name] = matches[0]
            else:
                problems.append(f"rnn_type={raw!r} is not one of {', '.join(RNN_TYPES)}.")
        elif field_name == "reverse":
            if raw.lower() in ("1", "true", "yes", "on"):
                values[field_name] = True
            elif raw.lower() in ("0", "false", "no", "off"):
                values[field_name] = False
            else:
                problems.append(f"reverse={raw!r} should be true or false.")
        else:
            try:
                number = int(raw)
                # Check this one field alone; the form checks how the fields fit together.
                changes: dict[str, Any] = {
                    "digits": 5,
                    "training_size": MAX_TRAINING_SIZE if field_name == "test_examples" else 10,
                    "test_examples": 0,
                    field_name: number,
                }
                dataclasses.replace(defaults, **changes)
            except ValueError as error:
                message = str(error) if raw.lstrip("-").isdigit() else "it is not a whole number."
                problems.append(f"{name}={raw[:20]!r}: {message}")
                continue
            values[field_name] = number
    return values, problems


def query_from_config(config: AdditionConfig) -> dict[str, str]:
    """The query parameters that preset the form to `config` (for a shareable link)."""
    return {
        name: str(getattr(config, field_name)).lower()
        if field_name == "reverse"
        else str(getattr(config, field_name))
        for name, field_name in QUERY_FIELDS.items()
    }
