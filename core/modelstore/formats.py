"""Model formats: convert a Keras model to SavedModel and TFLite (float32, float16, int8), compare them.

Every format is measured the same way: bytes on disk, load time in a fresh process (cold) and from the
in-memory ModelCache (warm), single-sample latency, accuracy and agreement with the float32 Keras
original. TFLite files run on LiteRT (`ai_edge_litert`), the successor of the deprecated
`tf.lite.Interpreter`, which has no Flex (Select TF ops) delegate: conversions use built-in ops only.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from core.modelstore.cache import ModelCache
from core.modelstore.cold_load import measure_cold_load
from core.modelstore.store import TASKS
from core.modelstore.trust import detect_task

FORMAT_LABELS: dict[str, str] = {
    "keras": "Keras (.keras zip)",
    "savedmodel": "TensorFlow SavedModel (directory)",
    "tflite-float32": "TFLite float32",
    "tflite-float16": "TFLite float16 weights",
    "tflite-int8": "TFLite int8 weights (dynamic range)",
}
QUANTIZATIONS = ("float32", "float16", "int8")
# Rows per forward pass when scoring: large enough to be fast, small enough for memory.
EVALUATION_BATCH_SIZE = 1_000
WARM_UP_CALLS = 10
# Far above any model here, so the cache never evicts while warm loads are timed.
CACHE_BYTES = 1 << 40
_TFLITE_IDENTIFIER = b"TFL3"  # FlatBuffers file identifier, at bytes 4..8 of every .tflite file.
# A SavedModel is a directory, so it gets no suffix.
_SUFFIXES = {
    "keras": ".keras",
    "savedmodel": "",
    "tflite-float32": ".tflite",
    "tflite-float16": ".tflite",
    "tflite-int8": ".tflite",
}

Predictor = Callable[[np.ndarray], np.ndarray]


def _all_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def _has_rnn(model: keras.Model) -> bool:
    return any(isinstance(layer, keras.layers.RNN) for layer in _all_layers(model))


def _unrolled_copy(model: keras.Model) -> keras.Model:
    """A copy of `model`, same weights, whose RNN layers are unrolled into plain per-step ops."""

    # A rolled Keras 3 RNN becomes a TensorList while-loop that TFLite cannot lower with a dynamic batch,
    # and the Flex ops that could run it are missing from LiteRT; unrolled, it needs only built-in ops.
    def clone_layer(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if isinstance(layer, keras.layers.RNN):
            config = {**config, "unroll": True}
        return layer.__class__.from_config(config)

    try:
        copy = keras.models.clone_model(model, clone_function=clone_layer, recursive=True)
    except Exception as error:
        raise ValueError(
            f"the RNN layers of {model.name!r} could not be unrolled for TFLite ({error}); unrolling "
            "needs a functional or Sequential model with a fixed number of time steps."
        ) from error
    copy.set_weights(model.get_weights())
    return copy


def convert_to_tflite(model: keras.Model, *, quantization: str) -> bytes:
    """A .tflite flatbuffer of `model` in built-in ops, with float32, float16 or int8 weights."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}."
        )
    # `from_keras_model` exports a SavedModel too, but prints its endpoints to stdout; this is quiet.
    with tempfile.TemporaryDirectory(prefix="live-training-lab-tflite-") as temporary:
        export_savedmodel(_unrolled_copy(model) if _has_rnn(model) else model, temporary)
        converter = tf.lite.TFLiteConverter.from_saved_model(temporary)
        if quantization != "float32":
            # DEFAULT alone is dynamic-range quantization: int8 weights, float activations, no
            # calibration data.
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantization == "float16":
            converter.target_spec.supported_types = [tf.float16]
        try:
            return bytes(converter.convert())
        except Exception as error:
            # The converter raises its own ConverterError, and MLIR failures surface as other types.
            raise ValueError(
                f"TFLite could not convert {model.name!r} to {quantization}: "
                f"{str(error).splitlines()[0]}"
            ) from error


def export_savedmodel(model: keras.Model, directory: Path | str) -> int:
    """Write `model` as a TensorFlow SavedModel into `directory`; returns its bytes on disk."""
    model.export(str(directory), format="tf_saved_model", verbose=False)
    return sum(path.stat().st_size for path in Path(directory).rglob("*") if path.is_file())


class TfliteModel:
    """A LiteRT interpreter over one .tflite flatbuffer, callable on batches; calls are serialised."""

    def __init__(self, content: bytes, *, num_threads: int | None = None) -> None:
        if bytes(content[4:8]) != _TFLITE_IDENTIFIER:
            raise ValueError(
                "content is not a TFLite flatbuffer; convert a model with convert_to_tflite."
            )
        # The interpreter reads weights from this buffer in place, so the buffer must outlive it.
        self._content = bytes(content)
        self._interpreter = litert.Interpreter(model_content=self._content, num_threads=num_threads)
        self._interpreter.allocate_tensors()
        inputs, outputs = self._interpreter.get_input_details(), self._interpreter.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ValueError(
                f"the model has {len(inputs)} inputs and {len(outputs)} outputs; only one of each is "
                "supported."
            )
        self._input: dict[str, Any] = inputs[0]
        self._output_index: int = outputs[0]["index"]
        self.input_shape: tuple[int | None, ...] = tuple(
            None if size < 0 else int(size) for size in self._input["shape_signature"]
        )
        self.size_bytes = len(self._content)
        self._original_batch = int(self._input["shape"][0])
        self._batch = self._original_batch
        self._resizable = True
        # One interpreter owns one set of tensors: concurrent invokes would overwrite each other's.
        self._lock = threading.Lock()

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """The model's outputs for `batch` (any number of rows), as a new array."""
        array = np.asarray(batch, dtype=self._input["dtype"])
        expected = self.input_shape[1:]
        if array.ndim != len(self.input_shape) or len(array) == 0 or array.shape[1:] != expected:
            raise ValueError(
                f"expected a non-empty batch of shape (N, {', '.join(map(str, expected))}), "
                f"not {array.shape}."
            )
        with self._lock:
            if self._resizable and len(array) != self._batch:
                try:
                    self._resize(len(array))
                    return self._invoke(array)
                except (RuntimeError, ValueError):
                    # Some graphs (static loops, fixed shapes) cannot be resized; run in native batches.
                    self._resizable = False
                    self._resize(self._original_batch)
            if len(array) == self._batch:
                return self._invoke(array)
            return self._invoke_in_chunks(array)

    def _resize(self, batch_size: int) -> None:
        shape = [batch_size, *self._input["shape"][1:]]
        self._interpreter.resize_tensor_input(self._input["index"], shape, strict=False)
        self._interpreter.allocate_tensors()
        self._batch = batch_size

    def _invoke(self, array: np.ndarray) -> np.ndarray:
        self._interpreter.set_tensor(self._input["index"], array)
        self._interpreter.invoke()
        return np.asarray(self._interpreter.get_tensor(self._output_index))

    def _invoke_in_chunks(self, array: np.ndarray) -> np.ndarray:
        outputs = []
        for start in range(0, len(array), self._batch):
            chunk = array[start : start + self._batch]
            # The last chunk is padded with zeros up to the native batch and its padding dropped after.
            padding = np.zeros((self._batch - len(chunk), *chunk.shape[1:]), dtype=array.dtype)
            outputs.append(self._invoke(np.concatenate([chunk, padding]))[: len(chunk)])
        return np.concatenate(outputs)


@dataclass(frozen=True, slots=True)
class FormatReport:
    """How one format of a model measures up against the float32 Keras original."""

    format: str  # A key of FORMAT_LABELS.
    size_bytes: int  # The file, or for a SavedModel every file in its directory.
    cold_load_seconds: float  # Median load in fresh processes, imports excluded.
    warm_load_seconds: float  # Median ModelCache hit.
    latency_ms_per_sample: float  # p50 of single-sample calls.
    latency_ms_p95: float  # p95 of the same calls.
    accuracy: float  # Digits: test accuracy; addition: exact-match rate of whole answers.
    agreement: float  # Fraction of predictions equal to the float32 Keras original's.
    notes: str = ""


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
    notes = "RNN layers unrolled so only built-in TFLite ops are needed." if _has_rnn(model) else ""
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


def _load_warm(loader: Callable[[], Predictor], *, size: int, repeats: int) -> tuple[Predictor, float]:
    """Load once through a ModelCache, then time `repeats` hits: the predictor and median seconds."""
    cache = ModelCache(CACHE_BYTES)
    predict = cast(Predictor, cache.get_or_load("model", loader, size=size))
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        cache.get_or_load("model", loader, size=size)
        timings.append(time.perf_counter() - started)
    return predict, statistics.median(timings)


def _answers(outputs: np.ndarray) -> np.ndarray:
    """Predicted classes, one row per sample: its digit, or the character at each answer position."""
    classes: np.ndarray = outputs.argmax(axis=-1).reshape(len(outputs), -1)
    return classes


def _check_count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, not {value!r}.")
    return int(value)


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
    samples: int = 2_000,
    formats: tuple[str, ...] = tuple(FORMAT_LABELS),
    latency_calls: int = 200,
    warm_repeats: int = 1_000,
    cold_repeats: int = 1,
) -> list[FormatReport]:
    """Write `model` in each format and measure its size, loads, latency, accuracy and agreement.

    `evaluation` is (inputs, expected): digits take float32 images and labels 0..9; addition takes
    one-hot questions and one-hot (or character-index) answers, as `core.addition.vectorize` makes them.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {task!r}.")
    detected, _ = detect_task(model)
    if detected != task:
        raise ValueError(f"the model's input and output shapes fit the {detected} task, not {task}.")
    unknown = [format for format in formats if format not in FORMAT_LABELS]
    if unknown or not formats:
        raise ValueError(
            f"formats must be a non-empty choice of {', '.join(FORMAT_LABELS)}; got {formats}."
        )
    samples = _check_count("samples", samples)
    latency_calls = _check_count("latency_calls", latency_calls)
    warm_repeats = _check_count("warm_repeats", warm_repeats)
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
        for format in formats:
            path = Path(temporary) / (format + _SUFFIXES[format])
            size, loader, notes = _write_format(model, format=format, path=path)
            cold_seconds = measure_cold_load(path, format=format, repeats=cold_repeats)
            predict, warm_seconds = _load_warm(loader, size=size, repeats=warm_repeats)
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
                )
            )
    return reports
