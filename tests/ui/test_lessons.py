"""Tests of the lesson-link codec: presets, locked and hidden fields, and what is refused."""

from hypothesis import given
from hypothesis import strategies as st

from ui.lessons import FIELDS, lesson_from_query, lesson_link


def test_a_plain_link_is_no_lesson():
    assert lesson_from_query("addition", {"digits": "2"}) == (None, [])


def test_a_lesson_link_round_trips_through_the_codec():
    path, problems = lesson_link(
        "addition",
        class_code="abc123",
        settings="digits=1&training_size=55&rnn_type=gru",
        locked=["digits", "rnn_type"],
        hidden=["layers"],
    )
    assert problems == []
    assert (
        path == "/?class=abc123&digits=1&training_size=55&rnn_type=GRU&lock=digits,rnn_type&hide=layers"
    )
    query = dict(part.split("=") for part in path.split("?")[1].split("&"))
    lesson, problems = lesson_from_query("addition", query)
    assert problems == []
    assert lesson.presets == {"digits": 1, "training_size": 55, "rnn_type": "GRU"}
    assert lesson.locked == {"digits", "rnn_type"} and lesson.hidden == {"layers"}


def test_bad_values_and_unknown_fields_are_left_out_with_a_reason():
    lesson, problems = lesson_from_query(
        "digits",
        {"epochs": "0", "model": "huge", "augment": "maybe", "learning_rate": "x", "lock": "epochs,<b>"},
    )
    assert lesson.presets == {} and lesson.locked == {"epochs"}
    assert len(problems) == 5
    assert any("'<b>' is not a field" in problem for problem in problems)
    path, problems = lesson_link(
        "digits", class_code=None, settings="epochs=2&colour=red", locked=[], hidden=["augment"]
    )
    assert path == "/digits?epochs=2&hide=augment"
    assert problems == ["'colour' is not a field of this page."]


@given(st.sampled_from(sorted(FIELDS)), st.data())
def test_only_fields_of_the_page_are_ever_locked_or_hidden(page, data):
    names = data.draw(st.lists(st.text(max_size=12) | st.sampled_from(FIELDS[page]), max_size=6))
    lesson, problems = lesson_from_query(page, {"lock": ",".join(names), "hide": ""})
    assert lesson.locked <= set(FIELDS[page])
    valid = {name.strip().lower() for name in names if name.strip().lower() in FIELDS[page]}
    assert lesson.locked == valid
    # Every name refused is reported (a comma inside a name splits it, as in a link).
    assert len(problems) == len(
        [
            part
            for part in ",".join(names).split(",")
            if part.strip() and part.strip().lower() not in FIELDS[page]
        ]
    )
