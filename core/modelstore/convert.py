"""TFLite conversion and running: Keras models to built-in-op flatbuffers, run on LiteRT.

TFLite files run on LiteRT (`ai_edge_litert`), the successor of the deprecated `tf.lite.Interpreter`,
which has no Flex (Select TF ops) delegate: conversions use built-in ops only.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from core.modelstore.formats import TFLITE_IDENTIFIER, check_quantization
from core.settings import check_whole

# Far above any core count; the bound only refuses nonsense before LiteRT sees it.
MAX_THREADS = 1_024


def _all_layers(model: keras.Model) -> Iterator[keras.layers.Layer]:
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)


def has_rnn(model: keras.Model) -> bool:
    """Whether `model` (or a model nested in it) has a recurrent layer."""
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
    quantization = check_quantization(quantization)  # Refuses an unknown one with the choices.
    # `from_keras_model` exports a SavedModel too, but prints its endpoints to stdout; this is quiet.
    with tempfile.TemporaryDirectory(prefix="live-training-lab-tflite-") as temporary:
        export_savedmodel(_unrolled_copy(model) if has_rnn(model) else model, temporary)
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
        if (
            not isinstance(content, bytes | bytearray | memoryview)
            or bytes(content[4:8]) != TFLITE_IDENTIFIER
        ):
            raise ValueError(
                "content is not a TFLite flatbuffer; convert a model with convert_to_tflite."
            )
        if num_threads is not None:
            num_threads = check_whole("num_threads", num_threads, 1, MAX_THREADS)
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
