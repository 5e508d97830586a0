"""Tests of the fast drawing reader: the TFLite copy is used only when it agrees on every test image."""

from __future__ import annotations

import numpy as np
import pytest

from core import reader as reader_module
from core.canvas import predict_digit
from core.digits import build_cnn, normalize_images
from core.mnist import cached_mnist
from core.reader import fast_reader, keras_reader


@pytest.fixture(scope="module")
def test_images() -> np.ndarray:
    return normalize_images(cached_mnist().test_images)


def test_the_copy_agrees_on_the_whole_test_set_and_answers_like_keras(test_images):
    model = build_cnn()
    reader = fast_reader(model, images=test_images)
    assert reader.runtime == "tflite"
    assert reader.check is not None
    # Every one of the test images was compared, and every answer matched.
    assert reader.check.images == len(test_images) == len(cached_mnist().test_labels)
    assert reader.check.agreeing == reader.check.images
    assert reader.check.max_probability_difference < 1e-4
    for image in test_images[:50]:
        fast, slow = reader.predict(image), predict_digit(model, image)
        assert fast.digit == slow.digit
        assert np.allclose(fast.probabilities, slow.probabilities, atol=1e-4)


def test_a_copy_that_disagrees_anywhere_is_not_used(test_images, monkeypatch):
    real_call = reader_module.TfliteModel.__call__
    calls = []

    def one_wrong_answer(self, batch):
        outputs = real_call(self, batch)
        calls.append(len(batch))
        if len(calls) > 1:
            return outputs
        # Swap the very first image's two most likely classes: one disagreement in 2,000.
        first = outputs[0].copy()
        order = np.argsort(first)
        outputs[0, order[-1]], outputs[0, order[-2]] = first[order[-2]], first[order[-1]]
        return outputs

    monkeypatch.setattr(reader_module.TfliteModel, "__call__", one_wrong_answer)
    model = build_cnn()
    reader = fast_reader(model, images=test_images[:2000])
    assert reader.check is not None and not reader.check.agrees
    assert reader.check.agreeing == 2000 - 1
    assert reader.runtime == "keras"
    image = test_images[0]
    assert reader.predict(image).digit == predict_digit(model, image).digit


def test_a_model_tflite_cannot_convert_is_read_with_keras(test_images, monkeypatch):
    def refuse(model, *, quantization):
        raise ValueError("TFLite could not convert it")

    monkeypatch.setattr(reader_module, "convert_to_tflite", refuse)
    reader = fast_reader(build_cnn(), images=test_images[:10])
    assert reader.runtime == "keras" and reader.check is None


def test_bad_images_are_refused(test_images):
    reader = keras_reader(build_cnn())
    with pytest.raises(ValueError, match="shape"):
        reader.predict(np.zeros((28, 27, 1), dtype=np.float32))
    with pytest.raises(ValueError, match="images must be"):
        fast_reader(build_cnn(), images=np.zeros((3, 28, 28), dtype=np.float32))
