"""Tests of the class board: SQLite schema and migrations, names and codes, the recorder under load."""

import sqlite3
import threading
import time
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.classboard import (
    MAX_NAME_LENGTH,
    MIGRATIONS,
    AttemptLimiter,
    BoardRecorder,
    ClassBoard,
    ClassBoardError,
    friendly_name,
    leaderboard,
    teacher_code_matches,
    validate_code,
    validate_name,
)
from core.events import DecodedSample, EpochEnded, SamplesDecoded
from core.jobs import JobRunner

DEADLINE = 30.0
ALLOWED = st.characters(categories=("L", "Nd"), include_characters=" -_.")


def epoch(number: int, epochs: int = 3) -> EpochEnded:
    return EpochEnded(
        epoch=number,
        epochs=epochs,
        loss=1.0 / number,
        accuracy=0.3 * number,
        val_loss=1.1 / number,
        val_accuracy=0.25 * number,
        seconds=0.01,
    )


@dataclass
class AdditionLike:
    samples: SamplesDecoded


@dataclass
class DigitsLike:
    test_accuracy: float


def sums(right: int, wrong: int) -> SamplesDecoded:
    samples = [DecodedSample("1+1", "2", "2")] * right + [DecodedSample("1+2", "3", "4")] * wrong
    return SamplesDecoded(epoch=3, samples=tuple(samples))


def epochs_work(result, *, count: int = 3, gate: threading.Event | None = None):
    """Fake training: optionally waits for `gate`, then sends `count` epochs and returns `result`."""

    def work(emit, stop):
        if gate is not None:
            gate.wait(DEADLINE)
        for number in range(1, count + 1):
            if stop.is_set():
                break
            emit(epoch(number, count))
        return result

    return work


def labels(code: str, name: str = "Ada", page: str = "addition") -> dict:
    return {"class": code, "name": name, "page": page, "config": {"digits": "1"}}


@pytest.fixture
def board(tmp_path):
    with ClassBoard(tmp_path / "board.sqlite3") as opened:
        yield opened


@pytest.fixture
def runner():
    runner = JobRunner(max_workers=2, max_queued=100)
    yield runner
    runner.shutdown()


@given(st.text(alphabet=ALLOWED, min_size=1, max_size=MAX_NAME_LENGTH))
def test_names_of_letters_digits_spaces_and_marks_are_accepted(name):
    if not any(character.isalnum() for character in name):
        name = f"a{name}"[:MAX_NAME_LENGTH]
    assert validate_name(name) == name.strip(" ")


@given(
    st.text(min_size=1, max_size=40).filter(
        lambda text: (
            any(not (character.isalnum() or character in " -_.") for character in text)
            or len(text.strip(" ")) > MAX_NAME_LENGTH
            or not any(character.isalnum() for character in text)
        )
    )
)
def test_names_with_anything_else_are_refused(name):
    with pytest.raises(ValueError):
        validate_name(name)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("<img src=x onerror=alert(1)>", "is not allowed"),
        ("Ada\x00", "control"),
        ("Ada\nLovelace", "control"),
        ("Ada\u200bLovelace", "invisible"),
        ("x" * 33, "33 characters"),
        ("   ", "at least one letter"),
        ("", "at least one letter"),
        ("...", "is not allowed"),
    ],
)
def test_a_refused_name_says_why(name, message):
    with pytest.raises(ValueError, match=message):
        validate_name(name)


def test_unicode_names_and_friendly_names_are_valid():
    assert validate_name("  José Núñez-2 ") == "José Núñez-2"
    assert all(validate_name(name) == name for name in (friendly_name() for _ in range(200)))


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=6, max_size=6))
def test_six_letter_or_digit_codes_are_accepted(code):
    assert validate_code(code.upper()) == code


@pytest.mark.parametrize("code", ["abc12", "abc1234", "abc-12", "<b>12>", "", "ab c12", None, 123456])
def test_malformed_codes_are_refused(code):
    with pytest.raises(ValueError, match="6 letters or digits"):
        validate_code(code)


def test_teacher_code_is_compared_and_never_matches_when_unset():
    assert teacher_code_matches("owl-42", "owl-42")
    assert not teacher_code_matches("owl-41", "owl-42")
    assert not teacher_code_matches("", "")
    assert not teacher_code_matches("anything", None)


def test_teacher_attempts_are_limited_per_window():
    limiter = AttemptLimiter(attempts=5, window=60)
    for second in range(5):
        assert limiter.wait_seconds(now=100.0 + second) == 0.0
        limiter.record(now=100.0 + second)
    # The sixth try within the minute must wait until the first one is a minute old.
    assert limiter.wait_seconds(now=110.0) == pytest.approx(50.0)
    assert limiter.wait_seconds(now=160.0) == 0.0


def test_a_new_database_is_migrated_and_survives_reopening(tmp_path):
    path = tmp_path / "board.sqlite3"
    with ClassBoard(path) as first:
        assert first.version == len(MIGRATIONS)
        code = first.create_class()
        run_id = first.add_run(code, job_id="job-1", name="Ada", page="digits", config={"epochs": 1})
        first.apply([])
    with ClassBoard(path) as second:
        board = second.board(code)
    assert board is not None and [run.id for run in board.runs] == [run_id]
    assert board.runs[0].config == {"epochs": 1}
    with sqlite3.connect(path) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_database_from_a_newer_app_is_refused_with_a_message(tmp_path):
    path = tmp_path / "board.sqlite3"
    with sqlite3.connect(path) as connection:
        connection.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(ClassBoardError, match="newer than this app"):
        ClassBoard(path)


def test_unknown_class_and_bad_fields_are_refused(board):
    assert board.board("zzzzzz") is None
    with pytest.raises(ValueError, match="no class"):
        board.add_run("zzzzzz", job_id="job-1", name="Ada", page="addition", config={})
    code = board.create_class()
    with pytest.raises(ValueError, match="page must be"):
        board.add_run(code, job_id="job-1", name="Ada", page="cache", config={})
    with pytest.raises(ValueError, match="is not allowed"):
        board.add_run(code, job_id="job-1", name="<b>x</b>", page="addition", config={})


def test_the_recorder_follows_every_state_and_keeps_curves(board, runner):
    recorder = BoardRecorder(board, runner)
    code = board.create_class()
    gate = threading.Event()
    blockers = [
        runner.submit(epochs_work(None, gate=gate), owner=f"b{index}", kind="addition")
        for index in range(2)
    ]
    finished = runner.submit(
        epochs_work(AdditionLike(sums(3, 1))), owner="s1", kind="addition", labels=labels(code, "Ada")
    )
    queued = runner.submit(
        epochs_work(DigitsLike(0.9)), owner="s2", kind="digits", labels=labels(code, "Bo", "digits")
    )
    cancelled = runner.submit(epochs_work(None), owner="s3", kind="addition", labels=labels(code, "Cy"))
    cancelled.cancel()
    assert recorder.flush(DEADLINE)
    waiting = {run.name: run for run in board.board(code).runs}
    assert waiting["Ada"].state == "queued" and waiting["Ada"].queue_position == 1
    assert waiting["Bo"].state == "queued" and waiting["Bo"].queue_position == 2
    assert waiting["Cy"].state == "stopped"

    def failing(emit, stop):
        emit(epoch(1, 2))
        raise RuntimeError("out of memory")

    failed = runner.submit(failing, owner="s4", kind="addition", labels=labels(code, "Di"))
    gate.set()
    assert all(job.wait(DEADLINE) for job in [*blockers, finished, queued, failed])
    assert recorder.flush(DEADLINE)
    runs = {run.name: run for run in board.board(code).runs}
    assert {name: run.state for name, run in runs.items()} == {
        "Ada": "finished",
        "Bo": "finished",
        "Cy": "stopped",
        "Di": "failed",
    }
    assert runs["Ada"].score == 0.75 and runs["Bo"].score == 0.9
    assert [point.epoch for point in runs["Ada"].curve] == [1, 2, 3]
    assert runs["Ada"].curve[2] == epoch(3, 3)
    assert "out of memory" in runs["Di"].error and len(runs["Di"].curve) == 1
    assert all(run.queue_position is None for run in runs.values())
    assert runs["Ada"].started is not None and runs["Ada"].ended >= runs["Ada"].started
    # Jobs without a class are not recorded.
    assert len(runs) == 4 and not recorder.errors
    recorder.close()


def test_one_query_per_board_read_however_many_runs(board):
    code = board.create_class()
    for index in range(12):
        run_id = board.add_run(code, job_id=f"j{index}", name=f"S{index}", page="addition", config={})
        from core.classboard import RunChange

        board.apply([RunChange(run_id=run_id, epoch=epoch(n)) for n in (1, 2, 3)])
    statements = []
    board._connection.set_trace_callback(statements.append)
    read = board.board(code)
    board._connection.set_trace_callback(None)
    assert len(read.runs) == 12 and all(len(run.curve) == 3 for run in read.runs)
    assert len(statements) == 1


def test_thirty_students_recording_at_once_lose_nothing(tmp_path):
    path = tmp_path / "board.sqlite3"
    board = ClassBoard(path)
    runner = JobRunner(max_workers=4, max_queued=100)
    recorder = BoardRecorder(board, runner)
    code = board.create_class()
    start = threading.Barrier(30)
    jobs = []
    jobs_lock = threading.Lock()

    def student(index: int) -> None:
        start.wait(DEADLINE)
        job = runner.submit(
            epochs_work(AdditionLike(sums(index % 4, 1)), count=5),
            owner=f"s{index}",
            kind="addition",
            labels=labels(code, f"Student {index}"),
        )
        with jobs_lock:
            jobs.append(job)

    # A second process-like writer on the same file at the same time: another connection.
    other = ClassBoard(path)
    other_code = other.create_class()

    def other_writer() -> None:
        start_time = time.monotonic()
        for index in range(30):
            other.add_run(other_code, job_id=f"o{index}", name="Other", page="digits", config={})
        assert time.monotonic() - start_time < DEADLINE

    threads = [threading.Thread(target=student, args=(index,)) for index in range(30)]
    threads.append(threading.Thread(target=other_writer))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert len(jobs) == 30 and all(job.wait(DEADLINE) for job in jobs)
    assert recorder.flush(DEADLINE)
    runs = board.board(code).runs
    assert sorted(run.name for run in runs) == sorted(f"Student {index}" for index in range(30))
    assert all(run.state == "finished" and len(run.curve) == 5 for run in runs)
    assert len(other.board(other_code).runs) == 30
    assert not recorder.errors
    recorder.close()
    runner.shutdown()
    other.close()
    board.close()


def test_purge_removes_only_old_classes(tmp_path):
    with ClassBoard(tmp_path / "board.sqlite3", keep_days=7) as board:
        old = board.create_class()
        fresh = board.create_class()
        board.add_run(old, job_id="j1", name="Ada", page="addition", config={})
        board._connection.execute(
            "UPDATE classes SET created = ? WHERE code = ?", (time.time() - 8 * 86_400, old)
        )
        assert board.purge() == 1
        assert board.board(old) is None and board.board(fresh) is not None
        leftover = board._connection.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    assert leftover == 0


def test_clear_anonymous_and_restart_interruption(tmp_path):
    path = tmp_path / "board.sqlite3"
    with ClassBoard(path) as board:
        code = board.create_class()
        board.add_run(code, job_id="j1", name="Ada", page="addition", config={})
        board.set_anonymous(code, True)
        assert board.board(code).anonymous
    with ClassBoard(path) as restarted:
        assert restarted.interrupt_live_runs() == 1
        run = restarted.board(code).runs[0]
        assert run.state == "stopped" and "restarted" in run.error
        assert restarted.clear(code) == 1
        assert restarted.board(code).runs == ()


def test_leaderboard_ranks_by_score_then_speed_then_time(board):
    from core.classboard import RunChange

    code = board.create_class()
    ids = [
        board.add_run(code, job_id=f"j{n}", name=f"S{n}", page="addition", config={}) for n in range(4)
    ]
    # (score, started, ended): S1 and S2 tie on score; S2 trained faster; S3 is digits.
    timings = [(0.5, 0.0, 10.0), (0.9, 0.0, 20.0), (0.9, 5.0, 15.0), (1.0, 0.0, 1.0)]
    for run_id, (score, started, ended) in zip(ids, timings, strict=True):
        board.apply(
            [
                RunChange(run_id=run_id, state="training", at=1000 + started),
                RunChange(run_id=run_id, state="finished", at=1000 + ended, score=score),
            ]
        )
    board._connection.execute("UPDATE runs SET page = 'digits' WHERE id = ?", (ids[3],))
    runs = board.board(code).runs
    assert [run.name for run in leaderboard(runs, "addition")] == ["S2", "S1", "S0"]
    assert [run.name for run in leaderboard(runs, "digits")] == ["S3"]
