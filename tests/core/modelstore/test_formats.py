"""Tests for core.modelstore.formats: TFLite files run on LiteRT and agree with their Keras model."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import keras
import numpy as np
import pytest

from core.addition import (
    CHARACTERS,
    AdditionConfig,
    build_addition_rnn,
    format_question,
    generate_problems,
    solve,
    vectorize,
)
from core.digits import DigitsConfig, normalize_images, score, train_digits
from core.events import FormatMeasured
from core.mnist import cached_mnist
from core.modelstore.cold_load import measure_cold_load
from core.modelstore.compare import compare_formats
from core.modelstore.convert import TfliteModel, convert_to_tflite
from core.modelstore.formats import FORMATS, QUANTIZATIONS

TEST_IMAGES = 1_000


@pytest.fixture(scope="module")
def seed_model(mnist_dir: Path) -> keras.Model:
    """The seed CNN after one short epoch: about 85% accurate, enough for disagreements to show."""
    config = DigitsConfig(epochs=1, training_size=3_000, seed=0)
    return train_digits(config, data=cached_mnist(mnist_dir)).model


@pytest.fixture(scope="module")
def test_set(mnist_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    data = cached_mnist(mnist_dir)
    return normalize_images(data.test_images[:TEST_IMAGES]), data.test_labels[:TEST_IMAGES].astype(
        "int64"
    )


@pytest.fixture(scope="module")
def tflite_files(seed_model: keras.Model) -> dict[str, bytes]:
    return {
        quantization: convert_to_tflite(seed_model, quantization=quantization)
        for quantization in QUANTIZATIONS
    }


def keras_outputs(model: keras.Model, inputs: np.ndarray) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(inputs, training=False))


@pytest.mark.parametrize("quantization", QUANTIZATIONS)
def test_every_tflite_variant_agrees_with_keras(
    quantization: str,
    seed_model: keras.Model,
    test_set: tuple[np.ndarray, np.ndarray],
    tflite_files: dict[str, bytes],
) -> None:
    images, labels = test_set
    expected = keras_outputs(seed_model, images).argmax(axis=-1)
    predicted = TfliteModel(tflite_files[quantization])(images).argmax(axis=-1)
    float32_predicted = TfliteModel(tflite_files["float32"])(images).argmax(axis=-1)
    # The quantized file makes the same call as its source on nearly every image.
    assert (predicted == expected).mean() >= 0.97
    # And loses at most one point of accuracy against the float32 file.
    assert abs((predicted == labels).mean() - (float32_predicted == labels).mean()) <= 0.01


def test_quantized_files_are_smaller(tflite_files: dict[str, bytes]) -> None:
    float32, float16, int8 = (len(tflite_files[name]) for name in ("float32", "float16", "int8"))
    # int8 weights take a quarter of the bytes; the graph and scales keep the file a little above that.
    assert float32 / int8 >= 3
    # float16 weights take half the bytes.
    assert 1.8 <= float32 / float16 <= 2.2


def test_tflite_model_handles_batch_sizes_1_and_32(
    seed_model: keras.Model, test_set: tuple[np.ndarray, np.ndarray], tflite_files: dict[str, bytes]
) -> None:
    images = test_set[0][:32]
    model = TfliteModel(tflite_files["float32"])
    # Alternating sizes forces the input tensor to be resized back and forth.
    for batch in (images[:1], images, images[:1], images[5:6]):
        outputs = model(batch)
        assert outputs.shape == (len(batch), 10)
        np.testing.assert_allclose(outputs, keras_outputs(seed_model, batch), atol=1e-5)


def test_tflite_model_falls_back_to_single_samples_when_resizing_fails(
    seed_model: keras.Model,
    test_set: tuple[np.ndarray, np.ndarray],
    tflite_files: dict[str, bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = TfliteModel(tflite_files["float32"])
    interpreter = model._interpreter
    resize = interpreter.resize_tensor_input

    def refuse_batches(index: int, shape: list[int], strict: bool = False) -> None:
        # Mimics graphs with static loops, which cannot run on more than one sample at a time.
        if shape[0] != 1:
            raise RuntimeError("cannot resize")
        resize(index, shape, strict=strict)

    monkeypatch.setattr(interpreter, "resize_tensor_input", refuse_batches)
    images = test_set[0][:5]
    np.testing.assert_allclose(model(images), keras_outputs(seed_model, images), atol=1e-5)


def test_tflite_model_can_be_shared_between_threads(
    test_set: tuple[np.ndarray, np.ndarray], tflite_files: dict[str, bytes]
) -> None:
    model = TfliteModel(tflite_files["int8"])
    images = test_set[0]
    batches = [
        images[start : start + size]
        for start, size in zip(range(0, 480, 40), [1, 32, 7] * 4, strict=True)
    ]
    alone = [model(batch) for batch in batches]
    # Different batch sizes from several threads at once: without the lock, calls overwrite each other.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(model, batches * 5))
    for index, outputs in enumerate(together):
        np.testing.assert_array_equal(outputs, alone[index % len(batches)])


def test_tflite_model_rejects_bad_content_and_shapes(tflite_files: dict[str, bytes]) -> None:
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        TfliteModel(b"PK\x03\x04 this is a zip")
    model = TfliteModel(tflite_files["float32"])
    with pytest.raises(ValueError, match=r"shape \(N, 28, 28, 1\)"):
        model(np.zeros((28, 28, 1), dtype="float32"))
    with pytest.raises(ValueError, match="non-empty"):
        model(np.zeros((0, 28, 28, 1), dtype="float32"))


def test_convert_rejects_an_unknown_quantization(seed_model: keras.Model) -> None:
    with pytest.raises(ValueError, match="float32, float16, int8"):
        convert_to_tflite(seed_model, quantization="int4")


@pytest.mark.parametrize("rnn_type", ["SimpleRNN", "GRU", "LSTM"])
def test_addition_rnns_convert_to_builtin_ops(rnn_type: str) -> None:
    config = AdditionConfig(
        digits=1, training_size=50, test_examples=5, rnn_type=rnn_type, layers=2, hidden_size=16
    )
    keras.utils.set_random_seed(0)
    model = build_addition_rnn(config)
    questions = [
        format_question(a, b, digits=1) for a, b in generate_problems(config, np.random.default_rng(0))
    ]
    inputs, _ = vectorize(questions, ["0"] * len(questions), config=config)
    # LiteRT has no Flex delegate, so this only runs if every op in the file is a TFLite built-in.
    lite = TfliteModel(convert_to_tflite(model, quantization="float32"))
    for batch in (inputs[:1], inputs):
        np.testing.assert_allclose(lite(batch), keras_outputs(model, batch), atol=1e-4)
    # Decoded answers match what the Keras model says through core.addition.solve.
    decoded = [CHARACTERS.decode(row).strip() for row in lite(inputs)]
    assert decoded == solve(model, questions, digits=1)


def test_compare_formats_measures_every_format(
    seed_model: keras.Model, test_set: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = test_set
    events: list[FormatMeasured] = []
    reports = compare_formats(
        seed_model,
        task="digits",
        evaluation=(images, labels),
        latency_calls=20,
        warm_repeats=2,
        on_event=events.append,
    )
    by_format = {report.format: report for report in reports}
    assert list(by_format) == list(FORMATS)
    # One progress event before each format, then one saying all are done: the page's bar.
    assert [(event.format, event.done) for event in events] == [
        *((name, index) for index, name in enumerate(FORMATS)),
        ("", len(FORMATS)),
    ]
    assert {event.total for event in events} == {len(FORMATS)}
    reference_accuracy = score(seed_model, images, labels).accuracy
    for report in reports:
        assert report.size_bytes > 0 and report.cold_load_seconds > 0, report
        assert 0 < report.latency_ms_per_sample <= report.latency_ms_p95, report
        # A warm load reads and parses the file like a cold one, so it is no mere dictionary lookup.
        assert report.warm_load_seconds > 0.0001, report
        assert report.samples == len(images), report
        assert report.agreement >= 0.97, report
        assert abs(report.accuracy - reference_accuracy) <= 0.01, report
    # The round trip through a .keras file and the float32 file change nothing the argmax can see.
    assert by_format["keras"].accuracy == pytest.approx(reference_accuracy, abs=0.002)
    assert by_format["keras"].agreement == 1.0
    assert by_format["tflite-int8"].size_bytes * 3 <= by_format["tflite-float32"].size_bytes


def test_compare_formats_scores_addition_by_exact_match() -> None:
    config = AdditionConfig(digits=1, training_size=50, test_examples=5, hidden_size=16)
    keras.utils.set_random_seed(1)
    model = build_addition_rnn(config)
    questions = [
        format_question(a, b, digits=1) for a, b in generate_problems(config, np.random.default_rng(1))
    ]
    inputs, _ = vectorize(questions, ["0"] * len(questions), config=config)
    # The model's own answers with every other one's first character changed: exactly half are right.
    answers = keras_outputs(model, inputs).argmax(axis=-1)
    answers[::2, 0] = (answers[::2, 0] + 1) % len(CHARACTERS.chars)
    (report,) = compare_formats(
        model,
        task="addition",
        evaluation=(inputs, answers),
        formats=("tflite-float32",),
        latency_calls=5,
    )
    assert report.agreement >= 0.98
    assert abs(report.accuracy - 0.5) <= 1 - report.agreement
    assert "unrolled" in report.notes


def test_compare_formats_checks_its_arguments(
    seed_model: keras.Model, test_set: tuple[np.ndarray, np.ndarray]
) -> None:
    images, labels = test_set
    with pytest.raises(ValueError, match="fit the digits task, not addition"):
        compare_formats(seed_model, task="addition", evaluation=(images, labels))
    with pytest.raises(ValueError, match="formats must be"):
        compare_formats(seed_model, task="digits", evaluation=(images, labels), formats=("onnx",))
    with pytest.raises(ValueError, match="as many expected answers as inputs"):
        compare_formats(seed_model, task="digits", evaluation=(images, labels[:10]))
    with pytest.raises(ValueError, match="does not match the model's outputs"):
        compare_formats(seed_model, task="digits", evaluation=(images, np.zeros((len(images), 3))))


def test_cold_load_runs_in_a_fresh_process(tflite_files: dict[str, bytes], tmp_path: Path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(tflite_files["int8"])
    seconds = measure_cold_load(path, format="tflite-int8")
    # Loading a 60 kB file takes milliseconds; far more would mean imports were timed too.
    assert 0 < seconds < 1
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="could not be loaded as tflite-int8 in a fresh process"):
        measure_cold_load(broken, format="tflite-int8")
    with pytest.raises(ValueError, match="there is no model file"):
        measure_cold_load(tmp_path / "missing.keras", format="keras")
