"""Lesson links: a teacher's link that presets a training page's form and locks or hides chosen fields.

A lesson link is an ordinary page link plus `lock=` and `hide=` (comma-separated field names), e.g.
`/?class=abc123&digits=1&training_size=55&lock=digits,training_size&hide=layers`. Every part is checked
like any link: unknown fields and bad values are ignored with a message saying why. A lock is a teaching
aid (TensorFlow Playground's "hide controls"), not a security boundary.
"""

from __future__ import annotations

import dataclasses
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from core.digits import MODELS, DigitsConfig
from core.settings import shown_value
from ui.links import QUERY_FIELDS, form_values_from_query, link_text, whole_from_text

PAGE_PATHS = {"addition": "/", "digits": "/digits"}
FIELDS = {
    "addition": tuple(QUERY_FIELDS),
    "digits": ("model", "epochs", "batch_size", "learning_rate", "training_size", "augment", "decay"),
}
MAX_LIST_LENGTH = 200  # Characters of a lock= or hide= list worth reading.


@dataclass(frozen=True)
class Lesson:
    """What a lesson link asks of a page's form: preset values, locked fields, hidden fields."""

    page: str
    presets: dict[str, Any] = field(default_factory=dict)
    locked: frozenset[str] = frozenset()
    hidden: frozenset[str] = frozenset()


def digits_values_from_query(params: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Digit Recognizer form presets from query parameters, and a message for each one ignored."""
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name in FIELDS["digits"]:
        if name not in params:
            continue
        raw = link_text(params[name])
        if raw is None:
            problems.append(f"{name} is not text.")
            continue
        try:
            value: Any
            if name in ("augment", "decay"):
                value = _boolean(raw)
            elif name == "model":
                value = raw.lower()
                if value not in MODELS:
                    raise ValueError(f"it is not one of {', '.join(MODELS)}.")
            elif name == "learning_rate":
                value = _number_from_text(raw)
            else:
                value = whole_from_text(raw)
            # Check this one field alone, as the form would.
            dataclasses.replace(DigitsConfig(), **{name: value})
        except ValueError as error:
            problems.append(f"{name}={raw[:20]!r}: {error}")
            continue
        values[name] = value
    return values, problems


def _number_from_text(raw: str) -> float:
    """The number a link's text spells ('0.002', '2e-3'); ValueError saying why otherwise."""
    # ASCII only, as typed into a link: float() would also read '١' or '1_0'.
    if not raw.isascii() or "_" in raw:
        raise ValueError("it is not a number.")
    try:
        return float(raw)
    except ValueError:
        raise ValueError("it is not a number.") from None


def _boolean(raw: str) -> bool:
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("it should be true or false.")


def _field_list(page: str, raw: str | None, what: str) -> tuple[frozenset[str], list[str]]:
    if raw is None:
        return frozenset(), [f"{what} is not text."]
    names = [name.strip().lower() for name in raw[:MAX_LIST_LENGTH].split(",") if name.strip()]
    unknown = [name for name in names if name not in FIELDS[page]]
    problems = [
        f"{what}={name[:20]!r} is not a field of this page ({', '.join(FIELDS[page])})."
        for name in unknown
    ]
    return frozenset(name for name in names if name in FIELDS[page]), problems


def lesson_from_query(page: str, params: dict[str, str]) -> tuple[Lesson | None, list[str]]:
    """The lesson a link asks for (None if it has no lock= or hide=), and what was ignored and why."""
    if not isinstance(page, str) or page not in FIELDS:
        raise ValueError(f"page must be one of {', '.join(FIELDS)}, not {shown_value(page)}.")
    page = str.__str__(page)
    if "lock" not in params and "hide" not in params:
        return None, []
    locked, lock_problems = _field_list(page, link_text(params.get("lock", "")), "lock")
    hidden, hide_problems = _field_list(page, link_text(params.get("hide", "")), "hide")
    if page == "addition":
        presets, preset_problems = form_values_from_query(params)
    else:
        presets, preset_problems = digits_values_from_query(params)
    lesson = Lesson(page=page, presets=presets, locked=locked - hidden, hidden=hidden)
    return lesson, preset_problems + lock_problems + hide_problems


def lesson_link(
    page: str,
    *,
    class_code: str | None,
    settings: str,
    locked: list[str],
    hidden: list[str],
) -> tuple[str, list[str]]:
    """The path and query of a lesson link from a teacher's settings ('digits=1&iterations=3')."""
    params = dict(urllib.parse.parse_qsl(settings.strip().lstrip("?"), keep_blank_values=True))
    params["lock"] = ",".join(locked)
    params["hide"] = ",".join(hidden)
    lesson, problems = lesson_from_query(page, params)
    if lesson is None:  # Never: the lock= and hide= keys were just set.
        return PAGE_PATHS[page], problems
    unknown = sorted(set(params) - set(FIELDS[page]) - {"lock", "hide", "class"})
    problems += [f"{name[:20]!r} is not a field of this page." for name in unknown]
    query: dict[str, str] = {}
    if class_code:
        query["class"] = class_code
    for name, value in lesson.presets.items():
        query[name] = str(value).lower() if isinstance(value, bool) else str(value)
    if lesson.locked:
        query["lock"] = ",".join(sorted(lesson.locked))
    if lesson.hidden:
        query["hide"] = ",".join(sorted(lesson.hidden))
    return f"{PAGE_PATHS[page]}?{urllib.parse.urlencode(query, safe=',')}", problems


def show_locked_presets(prefix: str, locked: frozenset[str]) -> None:
    """Forget the session's values of locked fields, so their widgets show the lesson's presets."""
    for name in locked:
        st.session_state.pop(f"{prefix}_{name}", None)


class _HiddenField:
    """Stands in for a form column when a lesson hides a field: any widget call returns the preset."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __getattr__(self, _widget: str) -> Any:
        return lambda *arguments, **keywords: self.value


def lesson_slot(hidden: frozenset[str], preset: Any) -> Any:
    """`slot(column, name)`: the column to draw a field in, or a stand-in if the lesson hides it."""

    def slot(column: Any, name: str) -> Any:
        return _HiddenField(preset(name)) if name in hidden else column

    return slot
