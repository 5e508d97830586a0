"""Derived formats of stored models: quantized TFLite copies and side-by-side format comparisons."""

from __future__ import annotations

import numpy as np

from core.addition import AdditionConfig, format_question, generate_problems, vectorize
from core.digits import normalize_images
from core.mnist import cached_mnist
from core.modelstore.cache import ModelCache
from core.modelstore.formats import (
    QUANTIZATIONS,
    FormatReport,
    TfliteModel,
    compare_formats,
    convert_to_tflite,
)
from core.modelstore.store import ModelStore, StoredModel, load_cached

# Problems generated to score an addition model: enough for a stable exact-match rate, quick to run.
ADDITION_EVALUATION_SIZE = 2_000


def evaluation_data(record: StoredModel) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and expected answers to score a stored model: the MNIST test set, or fresh sums."""
    if record.task == "digits":
        data = cached_mnist()
        return normalize_images(data.test_images), data.test_labels.astype("int64")
    digits = int(record.config.get("digits", 1))
    reverse = bool(record.config.get("reverse", True))
    size = min(ADDITION_EVALUATION_SIZE, (10**digits) * (10**digits + 1) // 2)
    config = AdditionConfig(
        digits=digits, training_size=size, test_examples=0, reverse=reverse, seed=12345
    )
    problems = generate_problems(config, np.random.default_rng(12345))
    questions = [format_question(a, b, digits=digits) for a, b in problems]
    answers = [str(a + b).ljust(config.answer_length) for a, b in problems]
    return vectorize(questions, answers, config=config)


def tflite_accuracy(content: bytes, record: StoredModel) -> float:
    """Share of the evaluation set a TFLite model gets exactly right."""
    inputs, expected = evaluation_data(record)
    outputs = TfliteModel(content)(inputs)
    if record.task == "digits":
        return float(np.mean(outputs.argmax(axis=-1) == expected))
    return float(np.mean(np.all(outputs.argmax(axis=-1) == expected.argmax(axis=-1), axis=-1)))


def derive_tflite(
    store: ModelStore, cache: ModelCache, model_id: str, *, quantization: str
) -> StoredModel:
    """Convert a stored Keras model to TFLite (float32, float16 or int8) and store it as its child."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(
            f"Quantization must be one of {', '.join(QUANTIZATIONS)}, not {quantization!r}."
        )
    record = store.get(model_id)
    if record.format != "keras":
        raise ValueError(
            f"“{record.name}” is already a {record.format} file; quantize its Keras parent."
        )
    model = load_cached(store, cache, model_id)
    content = convert_to_tflite(model, quantization=quantization)
    metric = "accuracy" if record.task == "digits" else "exact_match"
    name = f"{record.name[:50]} ({quantization})"
    existing = {other.name for other in store.list_models()}
    suffix = 2
    while name in existing:
        name, suffix = f"{record.name[:46]} ({quantization} {suffix})", suffix + 1
    return store.save_bytes(
        content,
        name=name,
        task=record.task,
        format=f"tflite-{quantization}",
        config=record.config,
        metrics={metric: tflite_accuracy(content, record)},
        parent_id=record.id,
    )


def compare_stored(store: ModelStore, cache: ModelCache, model_id: str) -> list[FormatReport]:
    """Every format of a stored Keras model, measured side by side (runs in the job runner)."""
    record = store.get(model_id)
    if record.format != "keras":
        raise ValueError(f"Compare formats from a Keras model; “{record.name}” is {record.format}.")
    model = load_cached(store, cache, model_id)
    return compare_formats(model, task=record.task, evaluation=evaluation_data(record))
