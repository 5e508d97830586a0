"""AppTest runs of the class board: joining, names, the teacher's tools, lesson links, six students."""

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from core.jobs import JobState
from ui import resources
from ui.class_view import get_class_board, get_class_recorder
from ui.resources import get_runner

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 90
TINY = {
    "digits": "1",
    "training_size": "55",
    "hidden_size": "8",
    "batch_size": "8",
    "iterations": "2",
    "test_examples": "5",
}
HOSTILE = "<img src=x onerror=alert(1)>"


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / name), default_timeout=TIMEOUT)


def board_page(code: str | None = None) -> AppTest:
    at = page("app_pages/class_board.py")
    if code is not None:
        at.query_params["class"] = code
    return at.run()


def texts(elements) -> str:
    return "\n".join(str(element.value) for element in elements)


def test_the_board_without_a_class_explains_how_to_join():
    at = board_page()
    assert not at.exception
    assert at.title[0].value == "Class board"
    assert "not in a class yet" in texts(at.info)


@pytest.mark.parametrize(
    ("code", "message"),
    [("zz9zz9", "no class 'zz9zz9'"), ("abc", "6 letters or digits"), (HOSTILE, "6 letters or digits")],
)
def test_unknown_and_malformed_class_codes_get_a_clear_message(code, message):
    at = board_page(code)
    assert not at.exception
    assert message in texts(at.error)
    assert at.session_state["class_code"] is None


def test_a_name_with_markup_is_refused_and_shown_as_text():
    code = get_class_board().create_class()
    at = board_page(code)
    before = at.session_state["class_name"]
    at.text_input(key="class_name_input").set_value(HOSTILE).run()
    assert not at.exception
    # The refused name appears literally in the message (rendered as text, never as HTML).
    assert HOSTILE in texts(at.error)
    assert at.session_state["class_name"] == before
    at.text_input(key="class_name_input").set_value("x" * 40).run()
    assert "40 characters" in texts(at.error)
    at.text_input(key="class_name_input").set_value("  Ada L. ").run()
    assert at.session_state["class_name"] == "Ada L."


def test_teacher_tools_are_off_without_a_code(monkeypatch):
    monkeypatch.delenv("LTL_TEACHER_CODE", raising=False)
    at = board_page()
    assert "Teacher tools are off" in texts(at.caption)
    assert not [button for button in at.button if button.key == "class_create"]


def test_teacher_code_attempts_are_rate_limited_then_the_code_unlocks(monkeypatch):
    monkeypatch.setenv("LTL_TEACHER_CODE", "owl-42")
    at = board_page()
    for _ in range(5):
        at.text_input(key="class_teacher_code").set_value("guess")
        at.button[0].click().run()
        assert "not the teacher code" in texts(at.error)
    at.text_input(key="class_teacher_code").set_value("owl-42")
    at.button[0].click().run()
    # Even the right code waits once the session has used up its tries.
    assert "Too many tries" in texts(at.error) and not at.session_state["class_teacher"]
    fresh = board_page()
    fresh.text_input(key="class_teacher_code").set_value("owl-42")
    fresh.button[0].click().run()
    assert fresh.session_state["class_teacher"]
    fresh.button(key="class_create").click().run()
    code = fresh.session_state["class_code"]
    assert not fresh.exception and get_class_board().class_exists(code)
    assert any(f"/class?class={code}" in block.value for block in fresh.code)


def test_the_lesson_link_locks_and_hides_fields_of_the_form():
    code = get_class_board().create_class()
    at = page("app_pages/addition.py")
    for name, value in {"class": code, "digits": "1", "rnn_type": "gru", "training_size": "55"}.items():
        at.query_params[name] = value
    at.query_params["lock"] = "digits,rnn_type"
    at.query_params["hide"] = "layers,nonsense"
    at.run()
    assert not at.exception
    assert at.number_input(key="addition_digits").value == 1
    assert at.number_input(key="addition_digits").disabled
    assert at.selectbox(key="addition_rnn_type").value == "GRU"
    assert at.selectbox(key="addition_rnn_type").disabled
    assert not at.number_input(key="addition_training_size").disabled
    assert not [field for field in at.number_input if field.key == "addition_layers"]
    assert "'nonsense' is not a field" in texts(at.warning)
    # The lesson stays after the page replaces the link's query with the trained configuration.
    at.query_params.clear()
    at.run()
    assert at.number_input(key="addition_digits").disabled


def test_the_digits_lesson_link_locks_epochs():
    at = page("app_pages/digits.py")
    at.query_params["epochs"] = "1"
    at.query_params["lock"] = "epochs"
    at.query_params["hide"] = "augment"
    at.run()
    assert not at.exception
    assert at.number_input(key="digits_epochs").value == 1
    assert at.number_input(key="digits_epochs").disabled
    assert not [box for box in at.checkbox if box.key == "digits_augment"]


def test_the_teacher_builds_a_lesson_link_and_bad_settings_are_left_out(monkeypatch):
    monkeypatch.setenv("LTL_TEACHER_CODE", "owl-42")
    code = get_class_board().create_class()
    at = board_page(code)
    at.session_state["class_teacher"] = True
    at.run()
    at.text_input(key="class_settings").set_value("digits=1&iterations=lots&colour=red")
    at.multiselect(key="class_lock_addition").select("digits").run()
    links = texts(at.code)
    assert f"/?class={code}&digits=1&lock=digits" in links
    assert "iterations" in texts(at.warning) and "'colour' is not a field" in texts(at.warning)


def test_six_students_train_and_the_board_shows_every_run_and_a_leaderboard(monkeypatch):
    code = get_class_board().create_class()
    jobs = []
    for student in range(6):
        # AppTests of one process share one browser session; give each student a session of their own.
        handle = resources.SessionHandle(owner=f"student-{student}", runner=get_runner())
        monkeypatch.setattr(resources, "session_handle", lambda handle=handle: handle)
        at = page("app_pages/addition.py")
        for name, value in {"class": code, **TINY}.items():
            at.query_params[name] = value
        at.run()
        at.session_state["class_name"] = f"Student {student}"
        at.button[0].click().run()  # Train.
        assert not at.exception
        jobs.append(get_runner().get(at.session_state["addition_runs"][-1].job_id))
    assert all(job is not None and job.wait(TIMEOUT) for job in jobs)
    assert [job.state for job in jobs] == [JobState.FINISHED] * 6, [
        (job.owner, job.error) for job in jobs
    ]
    assert get_class_recorder().flush(TIMEOUT)
    teacher = board_page(code)
    assert not teacher.exception
    table = teacher.dataframe[0].value
    assert sorted(table["Who"]) == [f"Student {index}" for index in range(6)]
    assert set(table["State"]) == {"finished"}
    assert all("digits=1" in config for config in table["Configuration"])
    ranked = teacher.dataframe[1].value
    assert list(ranked["Rank"]) == [1, 2, 3, 4, 5, 6]
    scores = [float(score.rstrip("%")) for score in ranked["Score"]]
    assert scores == sorted(scores, reverse=True)
    # Anonymous board: students see numbers, not names.
    get_class_board().set_anonymous(code, True)
    student = board_page(code)
    hidden = student.dataframe[0].value
    assert sorted(hidden["Who"]) == [f"Student {index}" for index in range(1, 7)]
    assert "Names are hidden" in texts(student.markdown)


def test_the_teacher_stops_a_live_run_of_the_class():
    code = get_class_board().create_class()
    recorder = get_class_recorder()

    def waiting_work(emit, stop):
        stop.wait(TIMEOUT)  # Trains until the teacher stops it.

    labels = {"class": code, "name": "Ada", "page": "addition", "config": {"digits": "1"}}
    job = get_runner().submit(waiting_work, owner="stop-test", kind="addition", labels=labels)
    try:
        assert recorder.flush(TIMEOUT)
        at = page("app_pages/class_board.py")
        at.query_params["class"] = code
        at.session_state["class_teacher"] = True
        at.run()
        assert "Ada" in at.selectbox(key="class_stop_choice").value
        at.button(key="class_stop").click().run()
        assert not at.exception
        assert job.wait(TIMEOUT) and job.state is JobState.CANCELLED
        assert recorder.flush(TIMEOUT)
        assert get_class_board().board(code).runs[0].state == "stopped"
    finally:
        job.cancel()
