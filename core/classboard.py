"""The class board: every run of a class recorded in SQLite, with its curve, score and standing.

A teacher creates a class (a short code in the join link); students' runs are recorded from the server
side by `BoardRecorder`, a `JobRunner` listener, whatever their pages do. A board is read with one query
per poll. The database is a real SQLite file (WAL), migrated by its `PRAGMA user_version`; classes older
than `LTL_CLASS_DAYS` are purged. Display names, class codes and the teacher code are checked here.
"""

from __future__ import annotations

import collections
import contextlib
import hmac
import json
import os
import queue
import re
import secrets
import sqlite3
import threading
import time
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.events import EpochEnded, SamplesDecoded
from core.jobs import Job, JobRunner, JobState
from core.modelstore.store import default_store_directory
from core.settings import (
    check_choice,
    check_number,
    check_whole,
    env_number,
    plain_text,
    shown_value,
)

DATABASE_FILE_NAME = "classboard.sqlite3"
MAX_NAME_LENGTH = 32
CODE_LENGTH = 6
# Lower-case letters and digits without look-alikes (0/o, 1/l/i), so a code read aloud is typed right.
CODE_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_CODE_PATTERN = re.compile(r"[a-z0-9]{6}")
# Letters and digits of any script, spaces and -_. (`\w` is letters, digits and `_` in Unicode mode).
_NAME_PATTERN = re.compile(r"[\w .-]+")
NAME_RULE = f"A name has 1 to {MAX_NAME_LENGTH} letters, digits, spaces, '-', '_' or '.'"
PAGES = ("addition", "digits")
# Board states: the job states as a class sees them.
STATES = {
    JobState.QUEUED: "queued",
    JobState.RUNNING: "training",
    JobState.FINISHED: "finished",
    JobState.CANCELLED: "stopped",
    JobState.FAILED: "failed",
}
LIVE_STATES = ("queued", "training")
TEACHER_ATTEMPTS = 5  # Wrong teacher codes a session may try per window before it must wait.
TEACHER_WINDOW_SECONDS = 60.0
MAX_TEACHER_ATTEMPTS = 1_000
MAX_TEACHER_WINDOW_SECONDS = 86_400.0
# Days a class may be kept (`LTL_CLASS_DAYS` or a board's `keep_days`): about 15 minutes to ten years.
MIN_CLASS_DAYS = 0.01
MAX_CLASS_DAYS = 3_650.0

_ADJECTIVES = (
    "Brave", "Bright", "Calm", "Clever", "Curious", "Eager", "Gentle", "Happy", "Jolly", "Kind",
    "Lively", "Lucky", "Merry", "Nimble", "Patient", "Quick", "Quiet", "Sunny", "Swift", "Witty",
)  # fmt: skip
_ANIMALS = (
    "Badger", "Beaver", "Crane", "Dolphin", "Falcon", "Fox", "Gecko", "Heron", "Koala", "Lynx",
    "Marmot", "Otter", "Owl", "Panda", "Puffin", "Quokka", "Robin", "Seal", "Tiger", "Wombat",
)  # fmt: skip

# Each entry migrates the database from version i to i + 1; never edit one that has shipped.
MIGRATIONS = (
    """
    CREATE TABLE classes (
        code TEXT PRIMARY KEY,
        created REAL NOT NULL,
        anonymous INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        class_code TEXT NOT NULL REFERENCES classes (code) ON DELETE CASCADE,
        job_id TEXT NOT NULL,
        name TEXT NOT NULL,
        page TEXT NOT NULL,
        config TEXT NOT NULL,
        state TEXT NOT NULL,
        queue_position INTEGER,
        created REAL NOT NULL,
        started REAL,
        ended REAL,
        score REAL,
        error TEXT
    );
    CREATE INDEX runs_by_class ON runs (class_code, id);
    CREATE TABLE curves (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        epoch INTEGER NOT NULL,
        epochs INTEGER NOT NULL,
        loss REAL NOT NULL,
        accuracy REAL NOT NULL,
        val_loss REAL NOT NULL,
        val_accuracy REAL NOT NULL,
        seconds REAL NOT NULL,
        PRIMARY KEY (run_id, epoch)
    );
    """,
)


class ClassBoardError(RuntimeError):
    """The class board's database cannot be opened or used; the message says why."""


def default_database_path() -> Path:
    """`$LTL_CLASS_DB`, else `classboard.sqlite3` in the model store directory (`MODEL_STORE_DIR`)."""
    configured = os.environ.get("LTL_CLASS_DB")
    if configured:
        return Path(configured).expanduser()
    return default_store_directory() / DATABASE_FILE_NAME


def class_days() -> float:
    """Days a class board is kept, from `LTL_CLASS_DAYS` (default 7)."""
    return env_number("LTL_CLASS_DAYS", default=7, low=MIN_CLASS_DAYS, high=MAX_CLASS_DAYS, whole=False)


def validate_name(name: object) -> str:
    """The display name with outer spaces removed, or ValueError saying what a name may hold."""
    text = plain_text(name)
    if text is None:
        raise ValueError(f"{NAME_RULE}; got {type(name).__name__} instead of text.")
    name = text
    if any(unicodedata.category(character).startswith("C") for character in name):
        raise ValueError("A name cannot hold control or invisible characters (tabs, new lines…).")
    stripped = name.strip(" ")
    if not stripped:
        raise ValueError(f"{NAME_RULE}; type at least one letter or digit.")
    if len(stripped) > MAX_NAME_LENGTH:
        raise ValueError(f"{NAME_RULE}; this one has {len(stripped)} characters.")
    if not _NAME_PATTERN.fullmatch(stripped) or not any(c.isalnum() for c in stripped):
        raise ValueError(f"{NAME_RULE}; {stripped!r} is not allowed.")
    return stripped


def validate_code(code: object) -> str:
    """The class code in lower case, or ValueError if it cannot be one (6 letters or digits)."""
    plain = plain_text(code)
    text = plain.strip().lower() if plain is not None else ""
    if not _CODE_PATTERN.fullmatch(text):
        shown = repr(plain)[:20] if plain is not None else type(code).__name__
        raise ValueError(f"A class code is {CODE_LENGTH} letters or digits, like 'abc123'; not {shown}.")
    return text


def friendly_name() -> str:
    """A random display name such as 'Curious Otter 42'."""
    return f"{secrets.choice(_ADJECTIVES)} {secrets.choice(_ANIMALS)} {secrets.randbelow(90) + 10}"


def teacher_code_matches(entered: str, configured: str | None) -> bool:
    """Whether `entered` is the teacher code, compared in constant time; never true when none is set."""
    if not configured or not isinstance(entered, str):
        return False
    entered = str.__str__(entered)
    return hmac.compare_digest(entered.encode("utf-8"), configured.encode("utf-8"))


class AttemptLimiter:
    """At most `attempts` tries per `window` seconds (one per session for the teacher code)."""

    def __init__(
        self, *, attempts: int = TEACHER_ATTEMPTS, window: float = TEACHER_WINDOW_SECONDS
    ) -> None:
        self.attempts = check_whole("attempts", attempts, 1, MAX_TEACHER_ATTEMPTS)
        self.window = check_number("window", window, 0.001, MAX_TEACHER_WINDOW_SECONDS)
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def wait_seconds(self, now: float | None = None) -> float:
        """Seconds until another try is allowed (0 when one is allowed now)."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and now - self._times[0] >= self.window:
                self._times.popleft()
            if len(self._times) < self.attempts:
                return 0.0
            return self.window - (now - self._times[0])

    def record(self, now: float | None = None) -> None:
        """Count one failed try."""
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)


@dataclass(frozen=True, slots=True)
class BoardRun:
    """One run as the board shows it."""

    id: int
    job_id: str
    name: str
    page: str
    config: dict[str, Any]
    state: str
    queue_position: int | None
    created: float  # Unix seconds.
    started: float | None
    ended: float | None
    score: float | None
    error: str | None
    curve: tuple[EpochEnded, ...]

    @property
    def seconds(self) -> float | None:
        """Training time so far, or in all once ended (None before it started)."""
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


@dataclass(frozen=True, slots=True)
class Board:
    """A class and all its runs, oldest first, read in one query."""

    code: str
    created: float
    anonymous: bool
    runs: tuple[BoardRun, ...]


def leaderboard(runs: tuple[BoardRun, ...] | list[BoardRun], page: str) -> list[BoardRun]:
    """Scored runs of `page`, best score first; ties go to the faster run, then to the earlier one."""
    scored = [run for run in runs if run.page == page and run.score is not None and run.ended]
    return sorted(
        scored, key=lambda run: (-(run.score or 0.0), run.seconds or 0.0, run.ended or 0.0, run.id)
    )


# One row per run and epoch (a run without epochs gets one row of NULLs), so a poll is one query.
_BOARD_QUERY = """
SELECT classes.code, classes.created, classes.anonymous,
       runs.id, runs.job_id, runs.name, runs.page, runs.config, runs.state, runs.queue_position,
       runs.created, runs.started, runs.ended, runs.score, runs.error,
       curves.epoch, curves.epochs, curves.loss, curves.accuracy, curves.val_loss,
       curves.val_accuracy, curves.seconds
FROM classes
LEFT JOIN runs ON runs.class_code = classes.code
LEFT JOIN curves ON curves.run_id = runs.id
WHERE classes.code = ?
ORDER BY runs.id, curves.epoch
"""


class ClassBoard:
    """The classes, runs and curves database; safe to share between threads."""

    def __init__(self, path: Path | str | None = None, *, keep_days: float | None = None) -> None:
        self.path = Path(path) if path is not None else default_database_path()
        self.keep_days = (
            class_days()
            if keep_days is None
            else check_number("keep_days", keep_days, MIN_CLASS_DAYS, MAX_CLASS_DAYS)
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One connection under a lock keeps threads simple; the timeout waits out other processes.
            self._connection = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA foreign_keys = ON")
        except (OSError, sqlite3.Error) as error:
            raise ClassBoardError(f"could not open the class board {self.path}: {error}") from error
        self._lock = threading.Lock()
        self._migrate()
        self.purge()

    def close(self) -> None:
        """Close the database; the board must not be used afterwards."""
        with self._lock:
            self._connection.close()

    def __enter__(self) -> ClassBoard:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    @property
    def version(self) -> int:
        """The schema version of the database file."""
        with self._lock:
            return int(self._connection.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        with self._transaction() as connection:
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            if version > len(MIGRATIONS):
                raise ClassBoardError(
                    f"the class board {self.path} is version {version}, newer than this app "
                    f"(version {len(MIGRATIONS)}); upgrade the app or set LTL_CLASS_DB to another file."
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                # One statement at a time: executescript() would commit our transaction.
                for statement in script.split(";"):
                    if statement.strip():
                        connection.execute(statement)
                connection.execute(f"PRAGMA user_version = {number}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                self._connection.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as error:
                raise ClassBoardError(f"the class board is not available: {error}") from error
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def create_class(self) -> str:
        """A new class with a fresh random code; returns the code."""
        self.purge()
        with self._transaction() as connection:
            while True:
                code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
                taken = connection.execute("SELECT 1 FROM classes WHERE code = ?", (code,)).fetchone()
                if not taken:
                    break
            connection.execute("INSERT INTO classes (code, created) VALUES (?, ?)", (code, time.time()))
        return code

    def class_exists(self, code: str) -> bool:
        """Whether a class with this (valid) code is on the board."""
        code = validate_code(code)
        with self._lock:
            row = self._connection.execute("SELECT 1 FROM classes WHERE code = ?", (code,)).fetchone()
        return row is not None

    def set_anonymous(self, code: str, anonymous: bool) -> None:
        """Show or hide students' names on the class's board."""
        with self._transaction() as connection:
            connection.execute(
                "UPDATE classes SET anonymous = ? WHERE code = ?", (int(anonymous), validate_code(code))
            )

    def clear(self, code: str) -> int:
        """Remove every run of the class (and their curves); returns how many went."""
        with self._transaction() as connection:
            cursor = connection.execute("DELETE FROM runs WHERE class_code = ?", (validate_code(code),))
        return cursor.rowcount

    def purge(self, *, now: float | None = None) -> int:
        """Delete classes older than `keep_days`, with their runs; returns how many classes went."""
        cutoff = (time.time() if now is None else now) - self.keep_days * 86_400
        with self._transaction() as connection:
            cursor = connection.execute("DELETE FROM classes WHERE created < ?", (cutoff,))
        return cursor.rowcount

    def board(self, code: str) -> Board | None:
        """The class and all its runs with their curves, in one query; None for an unknown class."""
        code = validate_code(code)
        with self._lock:
            rows = self._connection.execute(_BOARD_QUERY, (code,)).fetchall()
        if not rows:
            return None
        by_run: dict[int, list[tuple[Any, ...]]] = {}
        for row in rows:
            if row[3] is not None:
                by_run.setdefault(row[3], []).append(row[3:])
        runs = tuple(_board_run(run_rows) for run_rows in by_run.values())
        return Board(code=rows[0][0], created=rows[0][1], anonymous=bool(rows[0][2]), runs=runs)

    def add_run(
        self,
        code: str,
        *,
        job_id: str,
        name: str,
        page: str,
        config: Mapping[str, Any],
        state: str = "queued",
        created: float | None = None,
    ) -> int:
        """Record a new run of the class; returns its id. ValueError for an unknown class or field."""
        code = validate_code(code)
        name = validate_name(name)
        page = check_choice("page", page, PAGES)
        state = check_choice("state", state, tuple(STATES.values()))
        job = plain_text(job_id)
        if not job:
            raise ValueError(f"job_id must be a job's id (non-empty text), not {shown_value(job_id)}.")
        job_id = job
        config_json = json.dumps(dict(config), sort_keys=True, default=str)
        with self._transaction() as connection:
            if not connection.execute("SELECT 1 FROM classes WHERE code = ?", (code,)).fetchone():
                raise ValueError(f"There is no class {code!r} on this server (it may have expired).")
            cursor = connection.execute(
                "INSERT INTO runs (class_code, job_id, name, page, config, state, created)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    code,
                    job_id,
                    name,
                    page,
                    config_json,
                    state,
                    time.time() if created is None else created,
                ),
            )
        return int(cursor.lastrowid or 0)

    def apply(self, changes: list[RunChange]) -> None:
        """Write a batch of run changes in one transaction (a run cleared meanwhile is skipped)."""
        with self._transaction() as connection:
            for change in changes:
                _apply_change(connection, change)

    def interrupt_live_runs(self, *, reason: str = "The server restarted during this run.") -> int:
        """Mark runs left queued or training by an earlier server as stopped; returns how many."""
        with self._transaction() as connection:
            cursor = connection.execute(
                "UPDATE runs SET state = 'stopped', queue_position = NULL, error = ?,"
                " ended = COALESCE(ended, ?) WHERE state IN ('queued', 'training')",
                (reason, time.time()),
            )
        return cursor.rowcount


@dataclass(frozen=True, slots=True)
class RunChange:
    """One thing to write about a run: a new state, an epoch of its curve, a score or queue position."""

    run_id: int
    state: str | None = None
    at: float | None = None  # Unix seconds of a state change.
    epoch: EpochEnded | None = None
    score: float | None = None
    error: str | None = None
    queue_position: int | None = None


def _apply_change(connection: sqlite3.Connection, change: RunChange) -> None:
    if change.epoch is not None:
        event = change.epoch
        # INSERT … SELECT writes nothing if the teacher cleared the run meanwhile.
        connection.execute(
            "INSERT OR REPLACE INTO curves SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS"
            " (SELECT 1 FROM runs WHERE id = ?)",
            (
                change.run_id,
                event.epoch,
                event.epochs,
                event.loss,
                event.accuracy,
                event.val_loss,
                event.val_accuracy,
                event.seconds,
                change.run_id,
            ),
        )
    if change.score is not None:
        connection.execute("UPDATE runs SET score = ? WHERE id = ?", (change.score, change.run_id))
    if change.queue_position is not None:
        connection.execute(
            "UPDATE runs SET queue_position = ? WHERE id = ? AND state = 'queued'",
            (change.queue_position, change.run_id),
        )
    if change.state == "training":
        connection.execute(
            "UPDATE runs SET state = ?, started = ?, queue_position = NULL WHERE id = ?",
            (change.state, change.at, change.run_id),
        )
    elif change.state is not None:
        connection.execute(
            "UPDATE runs SET state = ?, ended = ?, error = ?, queue_position = NULL WHERE id = ?",
            (change.state, change.at, change.error, change.run_id),
        )


def _board_run(rows: list[tuple[Any, ...]]) -> BoardRun:
    row = rows[0]
    curve = tuple(
        EpochEnded(
            epoch=int(point[12]),
            epochs=int(point[13]),
            loss=float(point[14]),
            accuracy=float(point[15]),
            val_loss=float(point[16]),
            val_accuracy=float(point[17]),
            seconds=float(point[18]),
        )
        for point in rows
        if point[12] is not None
    )
    return BoardRun(
        id=int(row[0]),
        job_id=str(row[1]),
        name=str(row[2]),
        page=str(row[3]),
        config=json.loads(row[4]),
        state=str(row[5]),
        queue_position=row[6],
        created=float(row[7]),
        started=row[8],
        ended=row[9],
        score=row[10],
        error=row[11],
        curve=curve,
    )


def run_score(job: Job) -> float | None:
    """The run's score: digits' test accuracy, addition's exact match on the held-out test sums."""
    result = job.result
    if result is None:
        return None
    accuracy = getattr(result, "test_accuracy", None)
    if accuracy is not None:
        return float(accuracy)
    samples = getattr(result, "samples", None)
    if isinstance(samples, SamplesDecoded):
        return samples.exact_match
    return None


class BoardRecorder:
    """A `JobRunner` listener that records every class job on the board, from a writer thread of its own.

    Jobs carry their class in `labels` (`class`, `name`, `page`, `config`); other jobs are ignored. The
    listener only queues what happened, so a training thread never waits on the database, and the writer
    writes each batch in one transaction, then refreshes the queue positions of the runs still waiting.
    """

    def __init__(self, board: ClassBoard, runner: JobRunner | None = None) -> None:
        self.board = board
        self.runner = runner
        self._pending: queue.Queue[tuple[Job, Any, float] | None] = queue.Queue()
        self._run_ids: dict[str, int] = {}  # Job id -> run id, for the jobs recorded so far.
        self._queued: dict[str, Job] = {}
        # The latest write failures, for the board page to report.
        self.errors: collections.deque[str] = collections.deque(maxlen=20)
        self._writer = threading.Thread(target=self._write_loop, name="ltl-classboard", daemon=True)
        self._writer.start()
        if runner is not None:
            runner.add_listener(self)

    def job_event(self, job: Job, event: Any) -> None:
        """Queue an epoch's values or test-sum score of a class job."""
        if "class" in job.labels and isinstance(event, EpochEnded | SamplesDecoded):
            self._pending.put((job, event, time.time()))

    def job_state(self, job: Job) -> None:
        """Queue a class job's new state."""
        if "class" in job.labels:
            self._pending.put((job, job.state, time.time()))

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything queued so far is written; true if it was within `timeout`."""
        done = threading.Event()
        self._pending.put((_FLUSH, done, 0.0))
        return done.wait(timeout)

    def close(self) -> None:
        """Write what is queued, then stop the writer thread."""
        self._pending.put(None)
        self._writer.join(timeout=30)

    def _write_loop(self) -> None:
        while True:
            item = self._pending.get()
            batch = [item]
            # Whatever else is already waiting goes into the same transaction.
            while True:
                try:
                    batch.append(self._pending.get_nowait())
                except queue.Empty:
                    break
            stopping = None in batch
            flushes = [entry[1] for entry in batch if entry is not None and entry[0] is _FLUSH]
            try:
                self._write([entry for entry in batch if entry is not None and entry[0] is not _FLUSH])
            except (ClassBoardError, sqlite3.Error, ValueError) as error:
                # A board that cannot be written must not stop training; the page reports the errors.
                self.errors.append(str(error))
            for done in flushes:
                done.set()
            if stopping:
                return

    def _write(self, batch: list[tuple[Job, Any, float]]) -> None:
        changes: list[RunChange] = []
        states_changed = False
        for job, what, at in batch:
            run_id = self._run_ids.get(job.id)
            if run_id is None:
                if not isinstance(what, JobState) or what is not JobState.QUEUED:
                    continue  # Only a job's first (queued) state creates its run.
                if changes:
                    self.board.apply(changes)
                    changes = []
                run_id = self._add_run(job, at)
                if run_id is None:
                    continue
                self._queued[job.id] = job
                states_changed = True
                continue
            if isinstance(what, EpochEnded):
                changes.append(RunChange(run_id=run_id, epoch=what))
            elif isinstance(what, SamplesDecoded):
                changes.append(RunChange(run_id=run_id, score=what.exact_match))
            elif isinstance(what, JobState) and what is not JobState.QUEUED:
                states_changed = True
                self._queued.pop(job.id, None)
                score = run_score(job) if what.done else None
                changes.append(
                    RunChange(run_id=run_id, state=STATES[what], at=at, score=score, error=job.error)
                )
                if what.done:
                    self._run_ids.pop(job.id, None)
        if states_changed and self.runner is not None:
            for job_id, job in list(self._queued.items()):
                position = self.runner.queue_position(job)
                if position is not None:
                    changes.append(RunChange(run_id=self._run_ids[job_id], queue_position=position[0]))
        if changes:
            self.board.apply(changes)

    def _add_run(self, job: Job, at: float) -> int | None:
        labels = job.labels
        try:
            run_id = self.board.add_run(
                str(labels["class"]),
                job_id=job.id,
                name=str(labels.get("name", "")),
                page=str(labels.get("page", job.kind)),
                config=dict(labels.get("config", {})),
                created=at,
            )
        except ValueError as error:
            self.errors.append(str(error))
            return None
        self._run_ids[job.id] = run_id
        return run_id


# Marks a flush request in the writer's queue.
_FLUSH: Any = object()
