"""Derived formats of stored models: quantized TFLite copies and side-by-side format comparisons."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from core.addition import AdditionConfig, format_question, generate_problems, vectorize
from core.digits import normalize_images
from core.events import FormatMeasured
from core.mnist import MnistData, MnistNotFoundError, cached_mnist
from core.modelstore.cache import ModelCache
from core.modelstore.compare import FormatReport, compare_formats
from core.modelstore.convert import TfliteModel, convert_to_tflite
from core.modelstore.formats import check_quantization, tflite_format
from core.modelstore.loading import load_cached
from core.modelstore.store import ModelStore, StoredModel
from core.tasks import COMPARISON_SAMPLES, TASKS

# The same seed every time, so a model's score on fresh sums can be compared between runs.
ADDITION_EVALUATION_SEED = 12345
NO_MNIST_ADVICE = (
    "Scoring a digits model needs the MNIST test images, and this server has none: upload the four "
    "MNIST files on the Digit Recognizer page in this browser tab, then try again (or ask whoever runs "
    "the server to set MNIST_DIR)."
)


def evaluation_data(
    record: StoredModel, *, mnist: MnistData | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and expected answers to score a stored model: MNIST's test set (or `mnist`), or sums."""
    if record.task == "digits":
        if mnist is None:
            try:
                mnist = cached_mnist()
            except MnistNotFoundError as error:
                raise ValueError(NO_MNIST_ADVICE) from error
        return normalize_images(mnist.test_images), mnist.test_labels.astype("int64")
    digits = int(record.config.get("digits", 1))
    reverse = bool(record.config.get("reverse", True))
    size = min(COMPARISON_SAMPLES, (10**digits) * (10**digits + 1) // 2)
    config = AdditionConfig(
        digits=digits,
        training_size=size,
        test_examples=0,
        reverse=reverse,
        seed=ADDITION_EVALUATION_SEED,
    )
    problems = generate_problems(config, np.random.default_rng(ADDITION_EVALUATION_SEED))
    questions = [format_question(a, b, digits=digits) for a, b in problems]
    answers = [str(a + b).ljust(config.answer_length) for a, b in problems]
    return vectorize(questions, answers, config=config)


def tflite_accuracy(content: bytes, record: StoredModel, *, mnist: MnistData | None = None) -> float:
    """Share of the evaluation set a TFLite model gets exactly right."""
    inputs, expected = evaluation_data(record, mnist=mnist)
    outputs = TfliteModel(content)(inputs)
    if record.task == "digits":
        return float(np.mean(outputs.argmax(axis=-1) == expected))
    return float(np.mean(np.all(outputs.argmax(axis=-1) == expected.argmax(axis=-1), axis=-1)))


def derive_tflite(
    store: ModelStore,
    cache: ModelCache,
    model_id: str,
    *,
    quantization: str,
    mnist: MnistData | None = None,
) -> StoredModel:
    """Convert a stored Keras model to TFLite (float32, float16 or int8) and store it as its child."""
    quantization = check_quantization(quantization)
    format = tflite_format(quantization)
    record = store.get(model_id)
    if record.format != "keras":
        raise ValueError(
            f"“{record.name}” is already a {record.format} file; quantize its Keras parent."
        )
    # Checked before converting, so missing MNIST costs no conversion work.
    evaluation_data(record, mnist=mnist)
    model = load_cached(store, cache, model_id)
    content = convert_to_tflite(model, quantization=quantization)
    name = f"{record.name[:50]} ({quantization})"
    # The index compares names without case (ASCII NOCASE; names are ASCII by the name rule).
    existing = {other.name.lower() for other in store.list_models()}
    suffix = 2
    while name.lower() in existing:
        name, suffix = f"{record.name[:46]} ({quantization} {suffix})", suffix + 1
    return store.save_bytes(
        content,
        name=name,
        task=record.task,
        format=format,
        config=record.config,
        metrics={TASKS[record.task].metric: tflite_accuracy(content, record, mnist=mnist)},
        parent_id=record.id,
    )


def compare_stored(
    store: ModelStore,
    cache: ModelCache,
    model_id: str,
    *,
    mnist: MnistData | None = None,
    on_event: Callable[[FormatMeasured], None] | None = None,
) -> list[FormatReport]:
    """Every format of a stored Keras model, measured side by side (runs in the job runner)."""
    record = store.get(model_id)
    if record.format != "keras":
        raise ValueError(f"Compare formats from a Keras model; “{record.name}” is {record.format}.")
    evaluation = evaluation_data(record, mnist=mnist)
    model = load_cached(store, cache, model_id)
    return compare_formats(model, task=record.task, evaluation=evaluation, on_event=on_event)
