"""The class board's UI: joining a class, the live board, leaderboards, overlaid curves, teacher tools.

The board and its recorder are process-wide (`st.cache_resource`); the student's class code and display
name live in the browser session. Names are only ever shown as text (tables and plain strings).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import streamlit as st

from core.classboard import (
    LIVE_STATES,
    AttemptLimiter,
    Board,
    BoardRecorder,
    BoardRun,
    ClassBoard,
    ClassBoardError,
    RunChange,
    friendly_name,
    leaderboard,
    teacher_code_matches,
    validate_code,
    validate_name,
)
from core.events import EpochEnded
from ui.charts import epoch_frame, metric_chart
from ui.lessons import FIELDS, Lesson, lesson_from_query, lesson_link
from ui.live import POLL_SECONDS
from ui.resources import get_runner
from ui.runs import format_seconds

PAGE_LABELS = {"addition": "Addition RNN", "digits": "Digit Recognizer"}
SCORE_LABELS = {"addition": "exact match on held-out sums", "digits": "test accuracy"}


@st.cache_resource(show_spinner=False)
def get_class_board() -> ClassBoard:
    """The process-wide class board; runs an earlier server left live are marked stopped."""
    board = ClassBoard()
    board.interrupt_live_runs()
    return board


@st.cache_resource(show_spinner=False)
def get_class_recorder() -> BoardRecorder:
    """The process-wide recorder that writes every class job's events to the board."""
    return BoardRecorder(get_class_board(), get_runner())


def class_session() -> str | None:
    """Set up the session's class keys, join the class in `?class=`, and return the class code."""
    if "class_code" not in st.session_state:
        st.session_state["class_code"] = None
    if "class_name" not in st.session_state:
        st.session_state["class_name"] = friendly_name()
    if "class_teacher" not in st.session_state:
        st.session_state["class_teacher"] = False
    if "class_attempts" not in st.session_state:
        st.session_state["class_attempts"] = AttemptLimiter()
    raw = st.query_params.get("class")
    if raw is not None and raw != st.session_state["class_code"]:
        try:
            code = validate_code(raw)
            if not get_class_board().class_exists(code):
                raise ValueError(
                    f"There is no class {code!r} on this server: it may have expired. Ask your "
                    "teacher for a new link."
                )
        except (ValueError, ClassBoardError) as error:
            st.error(f"Could not join the class: {error}")
        else:
            st.session_state["class_code"] = code
    return st.session_state["class_code"]


def class_labels(page: str, config: dict[str, str]) -> dict[str, Any] | None:
    """Labels that put a job on the session's class board (None outside a class)."""
    code = class_session()
    if code is None:
        return None
    try:
        get_class_recorder()
    except ClassBoardError as error:
        st.warning(f"This run is not on the class board: {error}")
        return None
    return {"class": code, "name": st.session_state["class_name"], "page": page, "config": config}


def digits_link_config(config: Any) -> dict[str, str]:
    """A Digit Recognizer config as the board shows it (and as a lesson link would set it)."""
    return {
        name: str(getattr(config, name) or 0).lower()
        if isinstance(getattr(config, name), bool)
        else str(getattr(config, name) or 0)
        for name in FIELDS["digits"]
    }


def page_lesson(page: str) -> Lesson:
    """The lesson of this page in the session: from a lesson link, kept after the link is replaced."""
    class_session()
    key = f"class_lesson_{page}"
    lesson, problems = lesson_from_query(page, st.query_params.to_dict())
    for problem in problems:
        st.warning(f"Lesson setting ignored: {problem}")
    if lesson is not None:
        st.session_state[key] = lesson
    kept: Lesson = st.session_state.get(key) or Lesson(page=page)
    if kept.locked or kept.hidden:
        st.caption("Your teacher set some of these fields for this lesson.")
    return kept


def name_ui() -> None:
    """The student's display name on the board, checked; a refused one is shown as text with why."""
    typed = st.text_input(
        "Your name on the board",
        value=st.session_state["class_name"],
        max_chars=64,
        key="class_name_input",
        help="1 to 32 letters, digits, spaces, '-', '_' or '.'.",
    )
    try:
        st.session_state["class_name"] = validate_name(typed)
    except ValueError as error:
        st.error(f"Name not changed: {error}")


def display_names(runs: tuple[BoardRun, ...], *, anonymous: bool) -> dict[int, str]:
    """Run id to the name shown: the student's, or 'Student n' (by first run) on an anonymous board."""
    if not anonymous:
        return {run.id: run.name for run in runs}
    numbers: dict[str, int] = {}
    for run in runs:
        numbers.setdefault(run.name, len(numbers) + 1)
    return {run.id: f"Student {numbers[run.name]}" for run in runs}


def state_text(run: BoardRun) -> str:
    """'queued (position 2)', 'training (epoch 3 of 5)', 'finished', 'stopped: …' or 'failed: …'."""
    if run.state == "queued" and run.queue_position is not None:
        return f"queued (position {run.queue_position})"
    if run.state == "training" and run.curve:
        return f"training ({run.curve[-1].epoch} of {run.curve[-1].epochs})"
    if run.state in ("failed", "stopped") and run.error:
        return f"{run.state}: {run.error}"
    return run.state


def clock(seconds: float | None) -> str:
    """Unix seconds as 'HH:MM:SS' UTC (empty for None)."""
    if seconds is None:
        return ""
    return datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%H:%M:%S")


def percent(score: float | None) -> str:
    """A score as '87.5%' (empty while there is none)."""
    return "" if score is None else f"{score:.1%}"


def run_label(run: BoardRun, names: dict[int, str]) -> str:
    """A run's unique label on the board and its charts."""
    return f"#{run.id} {names[run.id]} ({PAGE_LABELS.get(run.page, run.page)})"


# The state ("queued (position 12 of 19)") must show whole; the long configuration goes last, where
# the table scrolls sideways rather than squeezing the columns a teacher reads first.
BOARD_COLUMNS = {
    "Who": st.column_config.TextColumn(width=140),
    "State": st.column_config.TextColumn(width=230),
    "Configuration": st.column_config.TextColumn(width="large"),
}


def board_table(board: Board, names: dict[int, str]) -> pd.DataFrame:
    """One row per run: who, page, state, score, time, started, configuration."""
    rows = [
        {
            "Run": run.id,
            "Who": names[run.id],
            "Page": PAGE_LABELS.get(run.page, run.page),
            "State": state_text(run),
            "Score": percent(run.score),
            "Time": format_seconds(run.seconds) if run.seconds is not None else "",
            "Started (UTC)": clock(run.started or run.created),
            "Configuration": ", ".join(f"{key}={value}" for key, value in sorted(run.config.items())),
        }
        for run in reversed(board.runs)
    ]
    columns = ["Run", "Who", "Page", "State", "Score", "Time", "Started (UTC)", "Configuration"]
    return pd.DataFrame(rows, columns=columns)


def leaderboard_table(board: Board, page: str, names: dict[int, str]) -> pd.DataFrame:
    """The page's scored runs ranked: best score first, ties to the faster run, then the earlier."""
    rows = [
        {
            "Rank": rank,
            "Who": names[run.id],
            "Score": percent(run.score),
            "Time": format_seconds(run.seconds or 0),
            "Run": run.id,
        }
        for rank, run in enumerate(leaderboard(board.runs, page), start=1)
    ]
    return pd.DataFrame(rows, columns=["Rank", "Who", "Score", "Time", "Run"])


@dataclass(frozen=True, slots=True)
class BoardCurve:
    """One board run's label and per-epoch curve, in the shape the pages' chart builders take."""

    label: str
    epochs: tuple[EpochEnded, ...]


def curve_records(runs: list[BoardRun], names: dict[int, str]) -> list[BoardCurve]:
    """Board runs as labelled curves, so the pages' chart builders draw them."""
    return [BoardCurve(label=run_label(run, names), epochs=tuple(run.curve)) for run in runs]


def stop_run(board: ClassBoard, run: BoardRun, *, code: str) -> None:
    """Stop a run of the class: cancel its job, or mark it stopped if this server no longer has it."""
    job = get_runner().get(run.job_id)
    # Job ids restart with the process: only a job labelled with this class and run's name is this run.
    if job is not None and job.labels.get("class") == code and job.labels.get("name") == run.name:
        job.cancel()
        return
    board.apply(
        [RunChange(run_id=run.id, state="stopped", at=time.time(), error="Stopped by the teacher.")]
    )


@st.fragment(run_every=POLL_SECONDS)
def board_live_ui(code: str) -> None:
    """The live board: every run, a leaderboard per page and chosen runs' curves; one query a poll."""
    class_board = get_class_board()
    board = class_board.board(code)
    if board is None:
        st.error(f"The class {code!r} is no longer on this server (boards are kept for a week).")
        return
    teacher = bool(st.session_state.get("class_teacher"))
    names = display_names(board.runs, anonymous=board.anonymous and not teacher)
    counts = {state: sum(run.state == state for run in board.runs) for state in LIVE_STATES}
    done = sum(run.state not in LIVE_STATES for run in board.runs)
    st.markdown(
        f"**{len(board.runs)} runs**: {counts['training']} training, {counts['queued']} queued, "
        f"{done} ended." + (" Names are hidden." if board.anonymous else "")
    )
    st.dataframe(
        board_table(board, names),
        hide_index=True,
        width="stretch",
        column_config=BOARD_COLUMNS,
        key="class_runs_table",
    )
    columns = st.columns(len(PAGE_LABELS))
    for column, (page, label) in zip(columns, PAGE_LABELS.items(), strict=True):
        column.markdown(f"**Leaderboard: {label}** ({SCORE_LABELS[page]})")
        column.dataframe(leaderboard_table(board, page, names), hide_index=True, width="stretch")
    with_curves = [run for run in board.runs if run.curve]
    labels = {run_label(run, names): run for run in with_curves}
    if labels:
        chosen = st.multiselect(
            "Runs on the chart",
            list(labels),
            default=[label for label in st.session_state.get("class_compare", []) if label in labels]
            or list(labels)[-3:],
            key="class_compare",
            help="Pick any runs of the class to overlay their curves.",
        )
        frame = epoch_frame(curve_records([labels[label] for label in chosen], names))
        left, right = st.columns(2)
        metric_chart(frame, metric="loss", title="Loss", x_title="Epoch", container=left)
        metric_chart(frame, metric="accuracy", title="Accuracy", x_title="Epoch", container=right)
    live = [run for run in board.runs if run.state in LIVE_STATES]
    if teacher and live:
        picked = st.selectbox(
            "Stop a run", [run_label(run, names) for run in live], key="class_stop_choice"
        )
        if st.button("Stop this run", key="class_stop"):
            chosen_run = next(run for run in live if run_label(run, names) == picked)
            stop_run(class_board, chosen_run, code=code)
            st.rerun()
    errors = list(get_class_recorder().errors)
    if errors:
        st.warning(f"Some runs could not be recorded: {errors[-1]}")


def teacher_login_ui() -> None:
    """The teacher code box: compared in constant time, a few tries a minute per session."""
    configured = os.environ.get("LTL_TEACHER_CODE") or None
    if configured is None:
        st.caption("Teacher tools are off on this server: set LTL_TEACHER_CODE to turn them on.")
        return
    with st.form("class_teacher_form"):
        entered = st.text_input("Teacher code", type="password", key="class_teacher_code")
        submitted = st.form_submit_button("Unlock teacher tools")
    if not submitted:
        return
    limiter: AttemptLimiter = st.session_state["class_attempts"]
    wait = limiter.wait_seconds()
    if wait > 0:
        st.error(f"Too many tries. Wait {math.ceil(wait)} s before trying again.")
    elif teacher_code_matches(entered, configured):
        st.session_state["class_teacher"] = True
        st.rerun()
    else:
        limiter.record()
        st.error("That is not the teacher code.")


def teacher_tools_ui(code: str | None) -> None:
    """Create a class, hand out lesson links, hide names, clear the board (teacher only)."""
    board = get_class_board()
    if st.button("Create a class", key="class_create"):
        st.session_state["class_code"] = board.create_class()
        st.query_params["class"] = st.session_state["class_code"]
        st.rerun()
    if code is None:
        return
    # The app's address without the page path: links work from whichever page the teacher is on.
    base = (st.context.url or "").rstrip("/").removesuffix("/class")
    st.markdown(f"Join link for class **{code}** (students open it, then pick a page):")
    st.code(f"{base}/class?class={code}", language=None)
    current = board.board(code)
    anonymous = st.toggle(
        "Hide names on the board", value=bool(current and current.anonymous), key="class_anonymous"
    )
    if current is not None and anonymous != current.anonymous:
        board.set_anonymous(code, anonymous)
    with st.expander("Make a lesson link"):
        page = st.radio(
            "Page", list(FIELDS), format_func=PAGE_LABELS.get, horizontal=True, key="class_lesson_page"
        )
        settings = st.text_input(
            "Preset values", placeholder="digits=1&training_size=55&iterations=3", key="class_settings"
        )
        locked = st.multiselect("Lock fields", FIELDS[page], key=f"class_lock_{page}")
        hidden = st.multiselect("Hide fields", FIELDS[page], key=f"class_hide_{page}")
        link, problems = lesson_link(
            page, class_code=code, settings=settings, locked=locked, hidden=hidden
        )
        for problem in problems:
            st.warning(f"Left out of the link: {problem}")
        st.code(base + link, language=None)
    confirm = st.checkbox("Yes, remove every run of this class", key="class_clear_confirm")
    if st.button("Clear the board", key="class_clear", disabled=not confirm):
        removed = board.clear(code)
        st.success(f"Cleared {removed} runs.")
