"""Opens foreign .keras files in a short-lived child process, never in the server.

The server calls `import_keras(data)`: the bytes are first checked without Keras (`trust.py`), then
handed to `python -m core.modelstore.importer` running in a private temporary directory with a minimal
environment and `resource` limits (address space, CPU seconds, file size, no core dumps) plus a
wall-clock timeout. The child checks the weights file with h5py before importing TensorFlow (declared
shapes against stored bytes, no compression or links, every weight finite), loads the model with
`safe_mode=True`, checks the task's shapes and writes a canonical `.keras` of its own with `model.save`.
The store keeps that file, so what the server later loads was written by this app. A child killed by a
limit becomes a clear ValueError, and the temporary directory is always removed.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.modelstore.trust import (
    MAX_PARAMETERS,
    MAX_UPLOAD_BYTES,
    MAX_WEIGHTS_BYTES,
    UploadRefused,
    check_keras_archive,
    member_reader,
)
from core.settings import env_number

# Importing TensorFlow and loading a small model needs 1.6 to 2 GiB of address space (measured: 1.6 GiB
# fails, 2 GiB works); 3 GiB leaves room for a 5-million-weight model and kills any bomb past ~1 GB.
CHILD_ADDRESS_SPACE_BYTES = 3 * 1024**3
# Importing TensorFlow takes 3-20 s of CPU on a busy 2-core machine; loading a small model, ~1 s.
CHILD_CPU_SECONDS = 60
# The child writes the canonical copy (stored, uncompressed) and its logs, nothing larger.
CHILD_FILE_BYTES = MAX_WEIGHTS_BYTES + 16 * 1024**2
MAX_RESULT_BYTES = 64 * 1024
MAX_H5_OBJECTS = 10_000
MEMORY_OR_TIME = "the file needed more memory or time than an upload may use; it was refused."
_REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
_CHILD_MODULE = "core.modelstore.importer"


def import_timeout_seconds() -> float:
    """`$LTL_IMPORT_TIMEOUT`: wall-clock seconds an upload's child process may take (default 120)."""
    return env_number("LTL_IMPORT_TIMEOUT", default=120, low=1, high=3_600)


@dataclass(frozen=True, slots=True)
class ImportedModel:
    """An accepted upload: the canonical .keras bytes written by the child, and the task they fit."""

    data: bytes
    task: str
    details: dict[str, int]
    parameters: int


def _child_limits() -> dict[int, int]:
    return {
        resource.RLIMIT_AS: CHILD_ADDRESS_SPACE_BYTES,
        resource.RLIMIT_CPU: CHILD_CPU_SECONDS,
        resource.RLIMIT_FSIZE: CHILD_FILE_BYTES,
        resource.RLIMIT_CORE: 0,
    }


def apply_child_limits() -> None:
    """Lower this process's resource limits to the child's (limits can only go down)."""
    for limit, value in _child_limits().items():
        soft, hard = resource.getrlimit(limit)
        ceiling = value if hard == resource.RLIM_INFINITY else min(value, hard)
        resource.setrlimit(limit, (ceiling, ceiling))


def _child_environment(work: Path) -> dict[str, str]:
    # Nothing from the server's environment leaks in but what Python and Keras need to start.
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        "KERAS_HOME": str(work / "keras"),
        "TMPDIR": str(work),
        "XDG_CACHE_HOME": str(work / "cache"),
        "XDG_CONFIG_HOME": str(work / "config"),
        "MPLCONFIGDIR": str(work / "matplotlib"),
        "PYTHONPATH": str(_REPOSITORY_ROOT),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "PYTHONHASHSEED": "0",
        "LANG": "C.UTF-8",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "KERAS_BACKEND": os.environ.get("KERAS_BACKEND", "tensorflow"),
    }
    return environment


def _read_bounded(path: Path, limit: int) -> bytes:
    try:
        with open(path, "rb") as file:
            return file.read(limit + 1)
    except FileNotFoundError:
        return b""


def import_keras(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> ImportedModel:
    """Check uploaded .keras bytes, open them in a limited child process; the canonical copy it wrote."""
    report = check_keras_archive(data, max_bytes=max_bytes)
    timeout = import_timeout_seconds()
    with tempfile.TemporaryDirectory(prefix="ltl-import-") as temporary:
        work = Path(temporary)
        upload, canonical, result = work / "upload.keras", work / "canonical.keras", work / "result.json"
        descriptor = os.open(upload, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with open(descriptor, "wb") as file:
            file.write(data)
        with open(work / "stderr.txt", "wb") as errors, open(result, "wb") as output:
            # No preexec_fn: forking with it is unsafe in a threaded server (the docs warn of deadlocks).
            # The child lowers its own limits before reading a byte, and the parent sets them again
            # through prlimit as soon as it exists, so the limits hold whichever runs first.
            process = subprocess.Popen(
                [sys.executable, "-m", _CHILD_MODULE, upload.name, canonical.name],
                cwd=work,
                env=_child_environment(work),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=errors,
                start_new_session=True,
                close_fds=True,
            )
            try:
                for limit, value in _child_limits().items():
                    try:
                        resource.prlimit(process.pid, limit, (value, value))
                    except (ProcessLookupError, PermissionError, ValueError):
                        pass  # Already gone, or already lower: the child's own limits stand.
                returncode = process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                returncode = None
            finally:
                if process.poll() is None:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        answer = _parse_answer(_read_bounded(result, MAX_RESULT_BYTES))
        if returncode is None:
            raise UploadRefused(f"{MEMORY_OR_TIME[:-17]} (it took longer than {timeout:.0f} s).")
        if answer is None:
            if returncode < 0 or returncode in (137, 152, 153):
                # Killed by a signal: SIGKILL, SIGXCPU (CPU seconds) or SIGXFSZ (file size).
                raise UploadRefused(MEMORY_OR_TIME)
            tail = _read_bounded(work / "stderr.txt", 100_000)[-400:].decode("utf-8", "replace")
            raise UploadRefused(
                f"this .keras file could not be checked (the checker exited with {returncode}): "
                f"{tail.strip().splitlines()[-1] if tail.strip() else 'no message'}"
            )
        if not answer.get("ok"):
            raise UploadRefused(str(answer.get("error", "this .keras file was refused.")))
        canonical_bytes = _read_bounded(canonical, max(max_bytes, MAX_WEIGHTS_BYTES) + 1024**2)
    # The child's copy must itself pass the checks: it is what the server will load later.
    checked = check_keras_archive(canonical_bytes, max_bytes=len(canonical_bytes) + 1)
    if (checked.task, checked.details) != (report.task, report.details):
        raise UploadRefused("the checked copy of this model does not fit the same task; it was refused.")
    return ImportedModel(
        data=canonical_bytes, task=checked.task, details=checked.details, parameters=checked.parameters
    )


def _parse_answer(raw: bytes) -> dict[str, Any] | None:
    if not raw or len(raw) > MAX_RESULT_BYTES:
        return None
    try:
        answer = json.loads(raw)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


# The child side.


def check_weights_file(path: Path, *, max_elements: int) -> int:
    """Refuse an HDF5 weights file with links, filters, lying shapes or non-finite values; its size."""
    import h5py  # type: ignore[import-untyped]
    import numpy as np

    total = 0
    objects = 0
    with h5py.File(path, "r") as weights:
        stack: list[tuple[Any, int]] = [(weights, 0)]
        while stack:
            group, depth = stack.pop()
            if depth > 8:
                raise UploadRefused("model.weights.h5 nests groups deeper than Keras does.")
            for name in group:
                objects += 1
                if objects > MAX_H5_OBJECTS:
                    raise UploadRefused("model.weights.h5 holds far more objects than a model has.")
                link = group.get(name, getlink=True)
                if not isinstance(link, h5py.HardLink):
                    raise UploadRefused(
                        f"model.weights.h5 holds a link ({name!r}), which Keras never writes."
                    )
                item = group[name]
                if isinstance(item, h5py.Group):
                    stack.append((item, depth + 1))
                    continue
                if not isinstance(item, h5py.Dataset):
                    raise UploadRefused(f"model.weights.h5 holds {name!r}, which is not a weight.")
                where = f"weight {item.name!r}"
                if item.dtype.kind not in "fiu" or item.dtype.itemsize > 8:
                    raise UploadRefused(f"{where} has type {item.dtype}, not a number type.")
                if item.is_virtual or item.external or item.compression or item.chunks is not None:
                    raise UploadRefused(f"{where} is compressed, chunked or stored outside the file.")
                elements = int(np.prod(item.shape, dtype=np.int64)) if item.shape else 1
                total += elements
                if total > max_elements:
                    raise UploadRefused(
                        f"model.weights.h5 holds more than {max_elements:,} numbers; an upload may hold "
                        "at most that many."
                    )
                stored = item.id.get_storage_size()
                if stored != elements * item.dtype.itemsize:
                    raise UploadRefused(
                        f"{where} declares {elements:,} values "
                        f"({elements * item.dtype.itemsize:,} bytes) but stores {stored:,}."
                    )
                if item.dtype.kind == "f" and not np.isfinite(item[()]).all():
                    raise UploadRefused(
                        f"{where} holds NaN or infinite values; a trained model's weights are finite."
                    )
    return total


def _import_in_child(upload: Path, canonical: Path) -> dict[str, Any]:
    data = upload.read_bytes()
    report = check_keras_archive(data, max_bytes=MAX_UPLOAD_BYTES)
    weights_path = Path("weights.h5")
    with open(weights_path, "wb") as file:
        for chunk in member_reader(data, "model.weights.h5")():
            file.write(chunk)
    # Optimizer state can add two slots per weight, plus counters.
    check_weights_file(weights_path, max_elements=3 * MAX_PARAMETERS + 1_000)
    weights_path.unlink()
    del data

    import keras
    import numpy as np

    from core.modelstore.trust import detect_task

    model = keras.saving.load_model(upload, safe_mode=True)
    if not isinstance(model, keras.Model):
        raise UploadRefused(f"the file holds a {type(model).__name__}, not a Keras model.")
    task, details = detect_task(model)
    if (task, details) != (report.task, report.details) or model.count_params() != report.parameters:
        raise UploadRefused("the loaded model is not the one its config.json describes; it was refused.")
    for variable in model.weights:
        if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
            raise UploadRefused(f"weight {variable.path!r} holds NaN or infinite values.")
    model.save(canonical)
    return {"ok": True, "task": task, "details": details, "parameters": report.parameters}


def main(arguments: list[str]) -> int:
    """Child entry point: `python -m core.modelstore.importer UPLOAD CANONICAL`; JSON on stdout."""
    apply_child_limits()
    try:
        answer = _import_in_child(Path(arguments[0]), Path(arguments[1]))
    except MemoryError:
        answer = {"ok": False, "error": MEMORY_OR_TIME}
    except ValueError as error:
        message = str(error)
        if "safe_mode" in message or "Lambda" in message:
            message = (
                f"this model contains code Keras will not load in safe mode; it was refused ({message})."
            )
        answer = {"ok": False, "error": message[:2_000]}
    except Exception as error:  # noqa: BLE001 - Whatever a hostile file provokes becomes a refusal.
        answer = {
            "ok": False,
            "error": f"this .keras file could not be loaded; only built-in Keras layers are accepted "
            f"({type(error).__name__}: {str(error)[:1_000]}).",
        }
    sys.stdout.write(json.dumps(answer))
    sys.stdout.flush()
    return 0 if answer.get("ok") else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
