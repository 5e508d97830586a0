"""Tests of derived formats of stored models: quantized children and format comparisons."""

import numpy as np

from core.modelstore.cache import ModelCache
from core.modelstore.derive import compare_stored, derive_tflite, evaluation_data
from core.modelstore.store import ModelStore
from tests.utils.models import tiny_digits_model


def tiny_addition_model():
    from core.addition import AdditionConfig, build_addition_rnn

    return build_addition_rnn(AdditionConfig(digits=1, training_size=55, hidden_size=8, test_examples=0))


def test_quantized_child_is_stored_with_its_parent_and_its_accuracy(tmp_path):
    store = ModelStore(tmp_path)
    cache = ModelCache(64 * 2**20)
    parent = store.save_keras(
        tiny_addition_model(),
        name="adder",
        task="addition",
        config={"digits": 1, "reverse": True},
        metrics={},
    )
    child = derive_tflite(store, cache, parent.id, quantization="float16")
    assert child.format == "tflite-float16" and child.parent_id == parent.id
    assert child.name == "adder (float16)"
    assert 0.0 <= child.metrics["exact_match"] <= 1.0
    # A second derivation of the same kind gets a name of its own instead of failing.
    again = derive_tflite(store, cache, parent.id, quantization="float16")
    assert again.name == "adder (float16 2)"
    assert store.read_bytes(child.id)[4:8] == b"TFL3"


def test_addition_evaluation_data_holds_true_sums(tmp_path):
    store = ModelStore(tmp_path)
    record = store.save_keras(
        tiny_addition_model(),
        name="adder",
        task="addition",
        config={"digits": 1, "reverse": True},
        metrics={},
    )
    inputs, expected = evaluation_data(record)
    from core.addition import CHARACTERS

    # 55 distinct one-digit problems at most; each expected answer is the int sum of its question.
    assert len(inputs) == 55
    for question, answer in zip(inputs[:20], expected[:20], strict=True):
        left, right = CHARACTERS.decode(question)[::-1].strip().split("+")
        assert int(CHARACTERS.decode(answer).strip()) == int(left) + int(right)


def test_compare_stored_reports_every_format(tmp_path, mnist_dir):
    store = ModelStore(tmp_path)
    record = store.save_keras(
        tiny_digits_model(), name="tiny digits", task="digits", config={}, metrics={}
    )
    reports = compare_stored(store, ModelCache(64 * 2**20), record.id)
    assert [report.format for report in reports] == [
        "keras",
        "savedmodel",
        "tflite-float32",
        "tflite-float16",
        "tflite-int8",
    ]
    assert all(report.size_bytes > 0 and report.cold_load_seconds > 0 for report in reports)
    # Every format of the same weights gives (nearly) the same answers as the original.
    assert all(report.agreement >= 0.97 for report in reports)
    assert np.isclose(reports[0].accuracy, reports[2].accuracy, atol=0.01)


def test_quantizing_a_renamed_model_again_picks_a_name_free_in_any_case(tmp_path):
    store = ModelStore(tmp_path)
    cache = ModelCache(64 * 2**20)
    parent = store.save_keras(
        tiny_addition_model(),
        name="adder",
        task="addition",
        config={"digits": 1, "reverse": True},
        metrics={},
    )
    first = derive_tflite(store, cache, parent.id, quantization="int8")
    # The index compares names without case, so "Adder (int8)" is taken by "adder (int8)".
    store.rename(parent.id, "Adder")
    second = derive_tflite(store, cache, parent.id, quantization="int8")
    assert first.name == "adder (int8)"
    assert second.name == "Adder (int8 2)"


def test_digits_models_are_scored_on_uploaded_mnist_when_the_server_has_none(
    tmp_path, mnist_dir, monkeypatch
):
    from core import mnist as mnist_module
    from core.modelstore import derive

    uploaded = mnist_module.cached_mnist(mnist_dir)

    def nowhere(*args, **kwargs):
        raise mnist_module.MnistNotFoundError("MNIST was not found <urlopen error offline>")

    monkeypatch.setattr(derive, "cached_mnist", nowhere)
    store = ModelStore(tmp_path)
    record = store.save_keras(
        tiny_digits_model(), name="tiny digits", task="digits", config={}, metrics={}
    )
    cache = ModelCache(64 * 2**20)
    # Without an upload: a message saying what to do on this app, not the loader's error.
    try:
        derive_tflite(store, cache, record.id, quantization="int8")
    except ValueError as error:
        message = str(error)
    else:
        raise AssertionError("quantizing without MNIST anywhere should be refused")
    assert "upload the four MNIST files on the Digit Recognizer page" in message
    assert "urlopen" not in message
    # With the session's upload, the copy is scored on it.
    child = derive_tflite(store, cache, record.id, quantization="int8", mnist=uploaded)
    assert 0.0 <= child.metrics["accuracy"] <= 1.0
