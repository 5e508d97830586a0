"""Model store: Keras and TFLite files in one directory, indexed by SQLite, saved atomically, verified.

Files are named by a random id (`<32 hex digits>.keras` / `.tflite`), never by the user's name, so no
user text ever reaches a path. A save writes a temp file, fsyncs it, renames it into place and only then
inserts the index row, so a crash can leave a stray file (removed when a store is next opened) but never
a listed model without its file. Deleting a model sets `parent_id` of models derived from it to NULL:
a derived TFLite file is self-contained and keeps working.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras

from core.modelstore.formats import (
    FORMATS,
    STORED_FORMATS,
    TFLITE_IDENTIFIER,
    ZIP_MAGIC,
    check_format,
)
from core.modelstore.importer import import_keras
from core.modelstore.trust import MAX_UPLOAD_BYTES, load_keras_bytes
from core.settings import check_choice, plain_text
from core.tasks import TASK_NAMES

INDEX_FILE_NAME = "index.sqlite3"
TEMP_PREFIX = ".tmp-"
SWEEP_LOCK_FILE_NAME = ".sweep.lock"
CHUNK_SIZE = 64 * 1024
MAX_NAME_LENGTH = 64

_NAME_PATTERN = re.compile(r"[A-Za-z0-9 ._()\-]+")
_NAME_RULE = (
    f"a model name must be 1 to {MAX_NAME_LENGTH} characters: letters A-Z and a-z, digits, spaces and "
    "- _ . ( ); it must not start with a dot or a space, end with a space or contain '..'"
)
_MODEL_FILE_PATTERN = re.compile(r"[0-9a-f]{32}\.(keras|tflite)")
_COLUMNS = (
    "id, name, task, format, file_name, size_bytes, sha256, created, last_loaded, config, metrics, "
    "parent_id"
)
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS models (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    task TEXT NOT NULL CHECK (task IN {TASK_NAMES!r}),
    format TEXT NOT NULL CHECK (format IN {STORED_FORMATS!r}),
    file_name TEXT NOT NULL UNIQUE,
    size_bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    created TEXT NOT NULL,
    last_loaded TEXT,
    config TEXT NOT NULL,
    metrics TEXT NOT NULL,
    parent_id TEXT REFERENCES models (id) ON DELETE SET NULL
)
"""

logger = logging.getLogger(__name__)


class StoreError(ValueError):
    """A model could not be saved, found or read; the message says which and why."""


class CorruptModelError(StoreError):
    """A model's file is missing, has the wrong checksum or cannot be loaded."""


class ModelNotFoundError(StoreError):
    """No model has the given id (it may have been deleted)."""


@dataclass(frozen=True, slots=True)
class StoredModel:
    """One row of the index, with its config and metrics parsed."""

    id: str
    name: str
    task: str  # "addition" or "digits".
    format: str  # One of core.modelstore.formats.STORED_FORMATS.
    file_name: str  # "<id>.keras" or "<id>.tflite", inside the store directory.
    size_bytes: int
    sha256: str
    created: str  # UTC, ISO 8601.
    last_loaded: str | None
    config: dict[str, Any] = field(hash=False)
    metrics: dict[str, Any] = field(hash=False)
    parent_id: str | None  # The model this file was derived from, if it still exists.
    missing: bool = False  # The row is listed but its file is gone; reading it raises CorruptModelError.


def default_store_directory() -> Path:
    """`$MODEL_STORE_DIR`, else `$XDG_DATA_HOME/live-training-lab/models` (~/.local/share by default)."""
    configured = os.environ.get("MODEL_STORE_DIR")
    if configured:
        return Path(configured).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "live-training-lab" / "models"


def allowed_name(text: str, *, fallback: str = "model") -> str:
    """`text` made into a name `validate_name` accepts: other characters become '-', edges trimmed."""
    cleaned = re.sub(r"[^A-Za-z0-9 ._()\-]", "-", text)
    cleaned = re.sub(r"\.{2,}", ".", cleaned)[:MAX_NAME_LENGTH].strip(" .")
    return cleaned or fallback


def validate_name(name: object) -> str:
    """The name unchanged if it is an allowed display label, else ValueError saying what is allowed."""
    text = plain_text(name)
    if text is None:
        raise ValueError(f"{_NAME_RULE}; got {type(name).__name__} instead of text.")
    name = text
    if (
        not 1 <= len(name) <= MAX_NAME_LENGTH
        or not _NAME_PATTERN.fullmatch(name)
        or name[0] in ". "
        or name.endswith(" ")
        or ".." in name
    ):
        raise ValueError(f"{_NAME_RULE}; {name!r} is not allowed.")
    return name


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _to_json(value: object, what: str) -> str:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict, not {type(value).__name__}.")
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"{what} must hold only JSON values (numbers, text, lists, dicts): {error}"
        ) from error


def _describe_os_error(error: OSError) -> str:
    reasons = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EROFS: "the store directory is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
    }
    return reasons.get(error.errno or 0, error.strerror or str(error))


def _fsync_directory(directory: Path) -> None:
    # Makes the rename itself durable; some file systems cannot fsync a directory and say EINVAL.
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    except OSError as error:
        if error.errno != errno.EINVAL:
            raise
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def _directory_lock(directory: Path, operation: int) -> Iterator[None]:
    """Hold `directory`'s sweep lock file shared (writers creating a file) or exclusive (a sweep)."""
    descriptor = os.open(directory / SWEEP_LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, operation)
        yield
    finally:
        # Closing the descriptor releases the lock.
        os.close(descriptor)


class ModelStore:
    """A directory of model files plus its SQLite index; safe to share between threads and processes."""

    def __init__(self, directory: Path | str | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_store_directory()
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            # One connection shared under a lock keeps threads simple; the timeout waits out other
            # processes writing to the same index.
            self._connection = sqlite3.connect(
                self.directory / INDEX_FILE_NAME,
                timeout=30,
                isolation_level=None,
                check_same_thread=False,
            )
            self._connection.row_factory = sqlite3.Row
            self._connection.execute("PRAGMA journal_mode = WAL")
            self._connection.execute("PRAGMA foreign_keys = ON")
            self._connection.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"could not open the model store in {self.directory}: {error}") from error
        self._lock = threading.Lock()
        self.removed_files = self._remove_orphans()

    def close(self) -> None:
        """Close the index; the store must not be used afterwards."""
        with self._lock:
            self._connection.close()

    def __enter__(self) -> ModelStore:
        return self

    def __exit__(self, *exception: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield self._connection
            except BaseException:
                self._connection.execute("ROLLBACK")
                raise
            self._connection.execute("COMMIT")

    def _query(self, sql: str, parameters: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._connection.execute(sql, parameters).fetchall()

    def _remove_orphans(self) -> list[str]:
        """Delete temp files and id-named files without a row, unless a save in progress holds them."""
        # Exclusive against every writer's create-then-lock step: once held, an unlocked temp file
        # can only belong to a writer that died, never to one between creating and locking its file.
        with _directory_lock(self.directory, fcntl.LOCK_EX):
            removed = self._remove_unlocked_orphans()
        if removed:
            logger.warning(
                "Removed %d unfinished model files from %s: %s", len(removed), self.directory, removed
            )
        missing = [model.name for model in self.list_models() if model.missing]
        if missing:
            logger.warning("These models are listed but their files are missing: %s", missing)
        return removed

    def _remove_unlocked_orphans(self) -> list[str]:
        known = {row["file_name"] for row in self._query("SELECT file_name FROM models")}
        removed = []
        for entry in os.scandir(self.directory):
            # Only files named the way this store names them are touched; anything else is left alone.
            is_temp = entry.name.startswith(TEMP_PREFIX)
            if not entry.is_file(follow_symlinks=False) or entry.name in known:
                continue
            if not is_temp and not _MODEL_FILE_PATTERN.fullmatch(entry.name):
                continue
            try:
                descriptor = os.open(entry.path, os.O_RDONLY)
            except FileNotFoundError:
                continue
            try:
                # A save holds an exclusive lock on its file until its row is committed.
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                continue
            try:
                # Re-check under the lock: the save may have committed since the index was read.
                if is_temp or not self._query("SELECT 1 FROM models WHERE file_name = ?", (entry.name,)):
                    # Another process's sweep may have removed it first; that is the same outcome.
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                        removed.append(entry.name)
            finally:
                os.close(descriptor)
        return removed

    def _row_to_model(self, row: sqlite3.Row) -> StoredModel:
        values = dict(row)
        values["config"] = json.loads(values["config"])
        values["metrics"] = json.loads(values["metrics"])
        missing = not (self.directory / values["file_name"]).is_file()
        return StoredModel(**values, missing=missing)

    def save_keras(
        self,
        model: keras.Model,
        *,
        name: str,
        task: str,
        config: dict[str, Any],
        metrics: dict[str, Any],
        parent_id: str | None = None,
    ) -> StoredModel:
        """Save a Keras model as a new .keras file and index row."""

        def write(path: Path, descriptor: int) -> None:
            keras.saving.save_model(model, path)

        return self._save(
            write,
            name=name,
            task=task,
            format="keras",
            config=config,
            metrics=metrics,
            parent_id=parent_id,
        )

    def save_bytes(
        self,
        data: bytes,
        *,
        name: str,
        task: str,
        format: str,
        config: dict[str, Any],
        metrics: dict[str, Any],
        parent_id: str | None = None,
    ) -> StoredModel:
        """Save an already-serialized model (.tflite flatbuffer or .keras zip) as a new file and row."""
        if not isinstance(data, bytes | bytearray | memoryview) or not data:
            raise ValueError("data must be the non-empty bytes of a model file.")
        format = check_format(format, stored=True).name
        if format == "keras" and bytes(data[:4]) != ZIP_MAGIC:
            raise ValueError("data is not a .keras file (a .keras file is a zip archive).")
        if format.startswith("tflite") and bytes(data[4:8]) != TFLITE_IDENTIFIER:
            raise ValueError(f"data is not a TFLite flatbuffer, so it cannot be saved as {format}.")

        def write(path: Path, descriptor: int) -> None:
            with open(descriptor, "wb", closefd=False) as file:
                file.write(data)

        return self._save(
            write,
            name=name,
            task=task,
            format=format,
            config=config,
            metrics=metrics,
            parent_id=parent_id,
        )

    def _save(
        self,
        write: Callable[[Path, int], None],
        *,
        name: str,
        task: str,
        format: str,
        config: dict[str, Any],
        metrics: dict[str, Any],
        parent_id: str | None,
    ) -> StoredModel:
        name = validate_name(name)
        task = check_choice("task", task, TASK_NAMES)
        format = check_format(format, stored=True).name
        suffix = FORMATS[format].suffix
        config_text, metrics_text = _to_json(config, "config"), _to_json(metrics, "metrics")
        # Checked before writing so the usual mistakes cost no disk work; the index re-checks on insert.
        self._check_name_free(name)
        if parent_id is not None:
            self.get(parent_id)
        model_id = uuid.uuid4().hex
        file_name = model_id + suffix
        final_path = self.directory / file_name
        temp_path = self.directory / (TEMP_PREFIX + file_name)
        descriptor = None
        committed = False
        try:
            # Shared with other writers, exclusive against a sweep: no sweep can see the file unlocked.
            with _directory_lock(self.directory, fcntl.LOCK_SH):
                descriptor = os.open(temp_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
                # Held until the row is committed, so other stores' sweeps leave this file alone.
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            write(temp_path, descriptor)
            # Keras writes by path; had the file been replaced meanwhile, the lock would not cover it.
            if os.stat(temp_path).st_ino != os.fstat(descriptor).st_ino:
                raise StoreError(f"could not save model {name!r}: its temp file was replaced meanwhile.")
            os.fsync(descriptor)
            size_bytes, digest = _size_and_digest(temp_path)
            os.replace(temp_path, final_path)
            _fsync_directory(self.directory)
            created = _now()
            with self._transaction() as connection:
                connection.execute(
                    f"INSERT INTO models ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, ?)",
                    (
                        model_id,
                        name,
                        task,
                        format,
                        file_name,
                        size_bytes,
                        digest,
                        created,
                        config_text,
                        metrics_text,
                        parent_id,
                    ),
                )
            committed = True
        except sqlite3.IntegrityError as error:
            # Both were checked before writing; another thread or process got in between.
            self._check_name_free(name)
            raise StoreError(
                f"could not save model {name!r}: its parent model {parent_id!r} was deleted meanwhile."
            ) from error
        except OSError as error:
            raise StoreError(f"could not save model {name!r}: {_describe_os_error(error)}.") from error
        except sqlite3.Error as error:
            raise StoreError(
                f"could not save model {name!r}: the index could not be updated ({error})."
            ) from error
        finally:
            if not committed:
                temp_path.unlink(missing_ok=True)
                final_path.unlink(missing_ok=True)
            if descriptor is not None:
                os.close(descriptor)
        return self.get(model_id)

    def _check_name_free(self, name: str, *, except_id: str | None = None) -> None:
        rows = self._query("SELECT id FROM models WHERE name = ?", (name,))
        if rows and rows[0]["id"] != except_id:
            raise ValueError(f"a model named {name!r} already exists; choose another name.")

    def list_models(self, task: str | None = None) -> list[StoredModel]:
        """Every indexed model (of one task, if given), newest first; `missing` marks lost files."""
        if task is not None:
            task = check_choice("task", task, TASK_NAMES)
        rows = self._query(
            f"SELECT {_COLUMNS} FROM models WHERE ? IS NULL OR task = ? "
            "ORDER BY created DESC, rowid DESC",
            (task, task),
        )
        return [self._row_to_model(row) for row in rows]

    def get(self, model_id: str) -> StoredModel:
        """The model with this id, or ModelNotFoundError."""
        # Only text can be an id; anything else would reach SQLite and fail there, less clearly.
        rows = (
            self._query(f"SELECT {_COLUMNS} FROM models WHERE id = ?", (model_id,))
            if isinstance(model_id, str)
            else []
        )
        if not rows:
            raise ModelNotFoundError(
                f"there is no model with id {model_id!r}; it may have been deleted."
            )
        return self._row_to_model(rows[0])

    def rename(self, model_id: str, new_name: str) -> StoredModel:
        """Give a model a new display name; its file keeps its id-based name."""
        new_name = validate_name(new_name)
        self._check_name_free(new_name, except_id=model_id)
        try:
            with self._transaction() as connection:
                cursor = connection.execute(
                    "UPDATE models SET name = ? WHERE id = ?", (new_name, model_id)
                )
        except sqlite3.IntegrityError as error:
            raise ValueError(
                f"a model named {new_name!r} already exists; choose another name."
            ) from error
        if cursor.rowcount == 0:
            raise ModelNotFoundError(
                f"there is no model with id {model_id!r}; it may have been deleted."
            )
        return self.get(model_id)

    def delete(self, model_id: str) -> None:
        """Remove a model's row, then its file; models derived from it stay, their parent_id None."""
        record = self.get(model_id)
        with self._transaction() as connection:
            connection.execute("DELETE FROM models WHERE id = ?", (model_id,))
        # The row goes first: a crash here leaves only an unlisted file, which the next start removes.
        try:
            (self.directory / record.file_name).unlink(missing_ok=True)
        except OSError as error:
            logger.warning("Model %r was deleted but its file remains: %s", record.name, error)

    def read_bytes(self, model_id: str, *, on_progress: Callable[[float], None] | None = None) -> bytes:
        """A model file's bytes, read in chunks with progress 0..1, after checking size and sha256."""
        record = self.get(model_id)
        label = f"model {record.name!r} ({record.id})"
        digest = hashlib.sha256()
        chunks = []
        read = 0
        try:
            with open(self.directory / record.file_name, "rb") as file:
                # Reading one byte past the indexed size is enough to notice a file that grew.
                while read <= record.size_bytes and (chunk := file.read(CHUNK_SIZE)):
                    digest.update(chunk)
                    chunks.append(chunk)
                    read += len(chunk)
                    if on_progress is not None:
                        on_progress(min(read / max(record.size_bytes, 1), 1.0))
        except FileNotFoundError as error:
            raise CorruptModelError(
                f"{label} is missing its file; delete it and save it again."
            ) from error
        except OSError as error:
            raise CorruptModelError(
                f"{label} could not be read: {_describe_os_error(error)}."
            ) from error
        if read != record.size_bytes or digest.hexdigest() != record.sha256:
            raise CorruptModelError(
                f"{label} is corrupt: its file does not match the checksum saved with it; "
                "delete it and save it again."
            )
        return b"".join(chunks)

    def load_keras(
        self, model_id: str, *, on_progress: Callable[[float], None] | None = None
    ) -> keras.Model:
        """Read, verify and load a .keras model (safe mode), and record when it was loaded."""
        record = self.get(model_id)
        if record.format != "keras":
            raise ValueError(
                f"model {record.name!r} is a {record.format} file; Keras can only load .keras files."
            )
        data = self.read_bytes(model_id, on_progress=on_progress)
        try:
            model = load_keras_bytes(data)
        except Exception as error:
            raise CorruptModelError(
                f"model {record.name!r} ({record.id}) could not be loaded: {error}"
            ) from error
        with self._transaction() as connection:
            connection.execute("UPDATE models SET last_loaded = ? WHERE id = ?", (_now(), model_id))
        return model

    def most_recent(self, task: str | None = None) -> StoredModel | None:
        """The most recently loaded or saved model whose file is present, for warming the cache."""
        rows = self._query(
            f"SELECT {_COLUMNS} FROM models WHERE ? IS NULL OR task = ? "
            "ORDER BY COALESCE(last_loaded, created) DESC, rowid DESC",
            (task, task),
        )
        return next((model for model in map(self._row_to_model, rows) if not model.missing), None)

    def verify_all(self) -> dict[str, str | None]:
        """Check every file against its checksum: model id -> None if sound, else what is wrong."""
        results: dict[str, str | None] = {}
        for record in self.list_models():
            try:
                self.read_bytes(record.id)
                results[record.id] = None
            except CorruptModelError as error:
                results[record.id] = str(error)
        return results

    def upload_keras(self, data: bytes, *, name: str, max_bytes: int = MAX_UPLOAD_BYTES) -> StoredModel:
        """Check an uploaded .keras file in a limited child process, then save the copy it wrote."""
        name = validate_name(name)
        # Checked before the slow import too, so a taken name costs no child process.
        self._check_name_free(name)
        imported = import_keras(data, max_bytes=max_bytes)
        return self.save_bytes(
            imported.data,
            name=name,
            task=imported.task,
            format="keras",
            config={"source": "upload", **imported.details},
            metrics={},
        )


def _size_and_digest(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as file:
        while chunk := file.read(CHUNK_SIZE):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()
