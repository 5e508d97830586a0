"""Cold-load timing: load one model file in a fresh Python process, where nothing has been loaded before.

`measure_cold_load` (the parent side) starts `python -m core.modelstore.cold_load RUNTIME PATH` once
per repeat and reads back one JSON line, {"runtime": ..., "seconds": ...}. The child imports its runtime
before the clock starts, so the number is the load of the file alone, not the import of TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from core.modelstore.formats import RUNTIMES, check_format
from core.settings import check_whole

MAX_REPEATS = 50
# Importing TensorFlow on two busy cores can take most of a minute; anything longer is a hang.
TIMEOUT_SECONDS = 300
REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def _loader(runtime: str) -> Callable[[str], object]:
    """Import `runtime` (untimed) and return a function that loads one file with it."""
    if runtime == "keras":
        import keras

        return lambda path: keras.saving.load_model(path, safe_mode=True)
    if runtime == "savedmodel":
        import tensorflow as tf

        return lambda path: tf.saved_model.load(path)
    # Only LiteRT is imported here, so a TFLite child never pays for (or warms) TensorFlow.
    from ai_edge_litert.interpreter import Interpreter

    def load_tflite(path: str) -> object:
        interpreter = Interpreter(model_path=path)
        interpreter.allocate_tensors()
        return interpreter

    return load_tflite


def main(arguments: list[str] | None = None) -> int:
    """Entry point of the child process: time one load and write its JSON line to stdout."""
    parser = argparse.ArgumentParser(description="Time loading one model file in this fresh process.")
    parser.add_argument("runtime", choices=RUNTIMES)
    parser.add_argument("path")
    options = parser.parse_args(arguments)
    load = _loader(options.runtime)
    started = time.perf_counter()
    load(options.path)
    seconds = time.perf_counter() - started
    sys.stdout.write(json.dumps({"runtime": options.runtime, "seconds": seconds}) + "\n")
    return 0


def measure_cold_load(path: Path | str, *, format: str, repeats: int = 1) -> float:
    """Median seconds to load `path` (a file of `format`) across `repeats` fresh processes."""
    runtime = check_format(format).runtime
    repeats = check_whole("repeats", repeats, 1, MAX_REPEATS)
    resolved = Path(path).resolve()
    if not resolved.exists():
        raise ValueError(f"there is no model file at {resolved}; save the model before timing its load.")
    command = [sys.executable, "-m", "core.modelstore.cold_load", runtime, str(resolved)]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    timings = []
    for _ in range(repeats):
        # Running from the repository root lets `-m core.modelstore.cold_load` import from any cwd.
        finished = subprocess.run(
            command,
            cwd=REPOSITORY_ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
        lines = [line for line in finished.stdout.splitlines() if line.startswith("{")]
        if finished.returncode != 0 or not lines:
            detail = (finished.stderr.strip().splitlines() or ["no output"])[-1]
            raise ValueError(
                f"{resolved.name} could not be loaded as {format} in a fresh process (exit code "
                f"{finished.returncode}): {detail}; check that the file is a complete {format} model."
            )
        timings.append(float(json.loads(lines[-1])["seconds"]))
    return statistics.median(timings)


if __name__ == "__main__":
    sys.exit(main())
