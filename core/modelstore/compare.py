"""The format comparison harness: one model written in every format, measured side by side.

Every format is measured the same way: bytes on disk, load time in a fresh process (cold, see
`core.modelstore.cold_load`) and in this process with its runtime already warm, single-sample latency,
accuracy and agreement with the float32 Keras original.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from core.events import FormatMeasured
from core.modelstore.cold_load import measure_cold_load
from core.modelstore.convert import TfliteModel, convert_to_tflite, export_savedmodel, has_rnn
from core.modelstore.formats import FORMATS, check_format
from core.settings import check_choice, check_whole, plain_text
from core.tasks import COMPARISON_SAMPLES, TASK_NAMES, task_for_shapes

# Rows per forward pass when scoring: large enough to be fast, small enough for memory.
EVALUATION_BATCH_SIZE = 1_000
WARM_UP_CALLS = 10
MAX_CALLS = 1_000_000

Predictor = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True, slots=True)
class FormatReport:
    """How one format of a model measures up against the float32 Keras original."""

    format: str  # A key of core.modelstore.formats.FORMATS.
    size_bytes: int  # The file, or for a SavedModel every file in its directory.
    cold_load_seconds: float  # Median load in fresh processes, imports excluded.
    warm_load_seconds: float  # Median load in this process, its runtime already imported and warm.
    latency_ms_per_sample: float  # p50 of single-sample calls.
    latency_ms_p95: float  # p95 of the same calls.
    accuracy: float  # On the first `samples` of the evaluation set (see `samples`).
    agreement: float  # Fraction of predictions equal to the float32 Keras original's.
    notes: str = ""
    samples: int = 0  # How many evaluation samples `accuracy` and `agreement` were measured on.


def _keras_predictor(model: keras.Model) -> Predictor:
    # Calling the model directly skips `predict`'s per-call setup, which dominates for one sample.
    return lambda batch: np.asarray(model(batch, training=False))


def _write_format(
    model: keras.Model, *, format: str, path: Path
) -> tuple[int, Callable[[], Predictor], str]:
    """Write `model` as `format` at `path`: its size, an in-process loader and notes."""
    if format == "keras":
        # Saved as the store saves it, optimizer state included, so the size is what users see there.
        model.save(path)
        optimizer = getattr(model, "optimizer", None)
        trained = optimizer is not None and optimizer.built
        notes = "Includes the optimizer's state (Adam keeps two values per weight)." if trained else ""

        def load_keras() -> Predictor:
            return _keras_predictor(keras.saving.load_model(path, safe_mode=True))

        return path.stat().st_size, load_keras, notes
    if format == "savedmodel":
        size = export_savedmodel(model, path)

        def load_savedmodel() -> Predictor:
            loaded = tf.saved_model.load(str(path))
            return lambda batch: np.asarray(loaded.serve(tf.constant(batch)))

        return size, load_savedmodel, "A directory of files; needs the full TensorFlow runtime."
    content = convert_to_tflite(model, quantization=format.removeprefix("tflite-"))
    path.write_bytes(content)
    notes = "RNN layers unrolled so only built-in TFLite ops are needed." if has_rnn(model) else ""
    if format == "tflite-int8":
        # The converter keeps weight tensors under 1,024 values in float32: tiny models barely shrink.
        notes = (notes + " Only weight tensors of 1,024 values or more are quantized.").strip()
    return len(content), lambda: TfliteModel(path.read_bytes()), notes


def _predict_all(predict: Predictor, inputs: np.ndarray) -> np.ndarray:
    starts = range(0, len(inputs), EVALUATION_BATCH_SIZE)
    return np.concatenate([predict(inputs[start : start + EVALUATION_BATCH_SIZE]) for start in starts])


def _latencies_ms(predict: Predictor, inputs: np.ndarray, *, calls: int) -> np.ndarray:
    """Milliseconds of `calls` single-sample calls, after a few untimed ones that warm up the runtime."""
    for index in range(WARM_UP_CALLS):
        predict(inputs[index % len(inputs)][None])
    timings = []
    for index in range(calls):
        sample = inputs[index % len(inputs)][None]
        started = time.perf_counter()
        predict(sample)
        timings.append(time.perf_counter() - started)
    return np.asarray(timings) * 1000


def _load_warm(loader: Callable[[], Predictor], *, repeats: int) -> tuple[Predictor, float]:
    """Load the file `repeats` times in this process: the last predictor and the median seconds."""
    # A memory-cache hit is a dictionary lookup, the same for every format; a load from the file with
    # the runtime already imported is what differs between formats once a server is running.
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict = loader()
        timings.append(time.perf_counter() - started)
    return predict, statistics.median(timings)


def _answers(outputs: np.ndarray) -> np.ndarray:
    """Predicted classes, one row per sample: its digit, or the character at each answer position."""
    classes: np.ndarray = outputs.argmax(axis=-1).reshape(len(outputs), -1)
    return classes


def _evaluation_arrays(
    evaluation: tuple[np.ndarray, np.ndarray], *, samples: int
) -> tuple[np.ndarray, np.ndarray]:
    if not isinstance(evaluation, tuple) or len(evaluation) != 2:
        raise ValueError("evaluation must be a pair (inputs, expected), such as (test images, labels).")
    inputs, expected = (np.asarray(array) for array in evaluation)
    if len(inputs) == 0 or len(inputs) != len(expected):
        raise ValueError(
            f"evaluation needs as many expected answers as inputs (at least one); got {len(inputs)} "
            f"inputs and {len(expected)} answers."
        )
    return inputs[:samples].astype("float32"), expected[:samples]


def compare_formats(
    model: keras.Model,
    *,
    task: str,
    evaluation: tuple[np.ndarray, np.ndarray],
    samples: int = COMPARISON_SAMPLES,
    formats: tuple[str, ...] = tuple(FORMATS),
    latency_calls: int = 200,
    warm_repeats: int = 3,
    cold_repeats: int = 1,
    on_event: Callable[[FormatMeasured], None] | None = None,
) -> list[FormatReport]:
    """Write `model` in each format and measure its size, loads, latency, accuracy and agreement.

    `evaluation` is (inputs, expected): digits take float32 images and labels 0..9; addition takes
    one-hot questions and one-hot (or character-index) answers, as `core.addition.vectorize` makes them.
    `on_event` hears a FormatMeasured before each format is measured and once when all are done.
    """
    task = check_choice("task", task, TASK_NAMES)
    detected, _ = task_for_shapes(model.input_shape, model.output_shape)
    if detected != task:
        raise ValueError(f"the model's input and output shapes fit the {detected} task, not {task}.")
    chosen = tuple(formats) if isinstance(formats, tuple | list) else ()
    if not chosen or any(plain_text(format) not in FORMATS for format in chosen):
        raise ValueError(f"formats must be a non-empty choice of {', '.join(FORMATS)}; got {formats}.")
    formats = tuple(check_format(format).name for format in chosen)
    samples = check_whole("samples", samples, 1, MAX_CALLS)
    latency_calls = check_whole("latency_calls", latency_calls, 1, MAX_CALLS)
    warm_repeats = check_whole("warm_repeats", warm_repeats, 1, MAX_CALLS)
    inputs, expected = _evaluation_arrays(evaluation, samples=samples)
    outputs = _predict_all(_keras_predictor(model), inputs)
    reference = _answers(outputs)
    # One-hot answers have the outputs' rank; labels or character indices have one axis fewer.
    one_hot = expected.ndim == outputs.ndim
    truth = (expected.argmax(axis=-1) if one_hot else expected).reshape(len(expected), -1)
    if truth.shape != reference.shape or (one_hot and expected.shape != outputs.shape):
        raise ValueError(
            f"the expected answers have shape {expected.shape}, which does not match the model's "
            f"outputs {outputs.shape}; pass labels, or one-hot answers of the outputs' shape."
        )
    reports = []
    with tempfile.TemporaryDirectory(prefix="live-training-lab-formats-") as temporary:
        for index, format in enumerate(formats):
            if on_event is not None:
                on_event(
                    FormatMeasured(
                        format=format, label=FORMATS[format].label, done=index, total=len(formats)
                    )
                )
            path = Path(temporary) / (format + FORMATS[format].suffix)
            size, loader, notes = _write_format(model, format=format, path=path)
            cold_seconds = measure_cold_load(path, format=format, repeats=cold_repeats)
            predict, warm_seconds = _load_warm(loader, repeats=warm_repeats)
            latencies = _latencies_ms(predict, inputs, calls=latency_calls)
            answers = _answers(_predict_all(predict, inputs))
            reports.append(
                FormatReport(
                    format=format,
                    size_bytes=size,
                    cold_load_seconds=cold_seconds,
                    warm_load_seconds=warm_seconds,
                    latency_ms_per_sample=float(np.percentile(latencies, 50)),
                    latency_ms_p95=float(np.percentile(latencies, 95)),
                    accuracy=float((answers == truth).all(axis=1).mean()),
                    agreement=float((answers == reference).all(axis=1).mean()),
                    notes=notes,
                    samples=len(inputs),
                )
            )
    if on_event is not None:
        on_event(FormatMeasured(format="", label="", done=len(formats), total=len(formats)))
    return reports
