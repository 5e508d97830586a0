"""Tests of the Digit Recognizer core: the blog's CNN layer for layer, config checks, short real runs."""

import math
import threading

import keras
import numpy as np
import pytest

from core.digits import (
    MODEL_LABELS,
    MODELS,
    DigitsConfig,
    build_cnn,
    build_strong_cnn,
    model_summary,
    normalize_images,
    train_digits,
    with_augmentation,
)
from core.events import BatchEnded, EpochEnded, TrainingStopped
from core.mnist import MnistData, cached_mnist


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return cached_mnist(mnist_dir)


@pytest.fixture(scope="module")
def small_mnist(mnist):
    # A 1,000-image test split keeps the per-epoch validation of the quicker runs cheap.
    return MnistData(
        train_images=mnist.train_images[:2000],
        train_labels=mnist.train_labels[:2000],
        test_images=mnist.test_images[:1000],
        test_labels=mnist.test_labels[:1000],
        source="first 2,000 train and 1,000 test images",
    )


@pytest.fixture(scope="module")
def short_run(mnist):
    events = []
    config = DigitsConfig(model="seed", epochs=2, training_size=3000, seed=0)
    result = train_digits(config, on_event=events.append, data=mnist)
    return result, events


def test_seed_cnn_is_the_blogs_model():
    model = build_cnn()
    # The TF.js blog's model summary reports exactly this many trainable parameters.
    assert model.count_params() == 53_866
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == [
        "InputLayer",
        "Conv2D",
        "MaxPooling2D",
        "Conv2D",
        "MaxPooling2D",
        "Flatten",
        "Dense",
        "Dense",
    ]
    convolutions = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [(layer.filters, layer.kernel_size) for layer in convolutions] == [(8, (3, 3)), (16, (3, 3))]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    assert [(layer.units, layer.activation.__name__) for layer in dense] == [
        (128, "relu"),
        (10, "softmax"),
    ]
    assert model.input_shape == (None, 28, 28, 1)


def test_models_build_with_the_same_names_in_parallel_threads():
    names: list[list[str]] = []

    def build() -> None:
        names.append([layer.name for layer in build_strong_cnn().layers])

    threads = [threading.Thread(target=build) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Explicit names: no thread got "conv2d_7" from Keras's shared counter.
    assert len(names) == 4 and all(layer_names == names[0] for layer_names in names)
    assert len(set(names[0])) == len(names[0])


def test_strong_model_maps_images_to_ten_probabilities():
    model = build_strong_cnn()
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)
    assert set(MODELS) == set(MODEL_LABELS) == {"seed", "strong"}


def test_augmentation_keeps_shapes_and_acts_only_in_training(mnist):
    classifier = build_cnn()
    augmented = with_augmentation(classifier, seed=1)
    assert augmented.input_shape == classifier.input_shape == (None, 28, 28, 1)
    assert augmented.output_shape == (None, 10)
    images = normalize_images(mnist.test_images[:8])
    first = np.asarray(augmented(images, training=False))
    second = np.asarray(augmented(images, training=False))
    # At inference the random layers pass images through untouched.
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(
        first, np.asarray(classifier(images, training=False)), rtol=1e-5, atol=1e-6
    )
    # While training they shift, turn and zoom, so the classifier sees other pixels.
    training = np.asarray(augmented(images, training=True))
    assert not np.allclose(training, first, atol=1e-6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "Epochs must be between 1 and 50, not 0."),
        ({"epochs": 51}, "Epochs must be between 1 and 50, not 51."),
        ({"epochs": True}, "Epochs must be a whole number, not True."),
        ({"epochs": 2.0}, "Epochs must be a whole number, not 2.0."),
        ({"batch_size": 0}, "Batch size must be between 1 and 4,096, not 0."),
        ({"batch_size": 5000}, "Batch size must be between 1 and 4,096, not 5,000."),
        ({"learning_rate": 0.0}, "Learning rate must be between 0.00001 and 1, not 0.0."),
        ({"learning_rate": 2}, "Learning rate must be between 0.00001 and 1, not 2."),
        ({"learning_rate": math.nan}, "Learning rate must be between 0.00001 and 1, not nan."),
        ({"learning_rate": math.inf}, "Learning rate must be between 0.00001 and 1, not inf."),
        ({"learning_rate": True}, "Learning rate must be a number, not True."),
        ({"learning_rate": "0.01"}, "Learning rate must be a number, not '0.01'."),
        ({"training_size": 99}, "Training images must be at least 100 (0 means all), not 99."),
        ({"training_size": -5}, "Training images must be at least 100 (0 means all), not -5."),
        ({"training_size": False}, "Training images must be a whole number, not False."),
        ({"model": "huge"}, "Model must be one of seed, strong, not 'huge'."),
        ({"augment": "yes"}, "Augment must be true or false, not 'yes'."),
        ({"decay": 1}, "Decay the learning rate must be true or false, not 1."),
        ({"seed": -1}, "Seed must be between 0 and 4,294,967,295, not -1."),
    ],
)
def test_config_rejects_bad_values_with_clear_messages(changes, message):
    with pytest.raises(ValueError) as error:
        DigitsConfig(**changes)
    assert str(error.value) == message


def test_config_treats_zero_training_size_as_all_images():
    # Both spellings of "all" make the same config.
    assert DigitsConfig(training_size=0) == DigitsConfig(training_size=None)
    assert DigitsConfig(training_size=0).training_size is None


def test_training_size_beyond_the_data_is_refused_before_training(small_mnist):
    with pytest.raises(ValueError, match=r"must be at most 2,000 \(the train images available\)"):
        train_digits(DigitsConfig(training_size=2001), data=small_mnist)


def test_short_run_learns_and_streams_events(short_run, mnist):
    result, events = short_run
    # Two epochs on 3,000 images already read most test digits right.
    assert result.test_accuracy >= 0.85
    epoch_events = [event for event in events if isinstance(event, EpochEnded)]
    assert [event.epoch for event in epoch_events] == [1, 2]
    assert tuple(epoch_events) == result.history
    assert any(isinstance(event, BatchEnded) for event in events)
    assert not any(isinstance(event, TrainingStopped) for event in events)
    assert result.stopped_reason is None
    # The last epoch's validation ran on the same test set, with the same weights.
    assert result.history[-1].val_accuracy == pytest.approx(result.test_accuracy, abs=3e-4)
    assert result.model.count_params() == 53_866


def test_scores_match_a_reference_count(short_run, mnist):
    result, _ = short_run
    test_count = len(mnist.test_labels)
    confusion = result.confusion
    assert confusion.shape == (10, 10) and confusion.dtype.kind == "i"
    assert confusion.sum() == test_count
    assert np.trace(confusion) / test_count == pytest.approx(result.test_accuracy)
    # Recount from the model's own predictions, one image at a time in plain Python.
    predicted = np.asarray(result.model.predict(normalize_images(mnist.test_images), verbose=0)).argmax(
        -1
    )
    reference = np.zeros((10, 10), dtype=int)
    for truth, guess in zip(mnist.test_labels, predicted, strict=True):
        reference[truth, guess] += 1
    np.testing.assert_array_equal(confusion, reference)
    for digit in range(10):
        assert result.per_class_accuracy[digit] == pytest.approx(
            reference[digit, digit] / reference[digit].sum()
        )
    wrong = [index for index in range(test_count) if predicted[index] != mnist.test_labels[index]]
    expected = tuple(
        (index, int(mnist.test_labels[index]), int(predicted[index])) for index in wrong[:100]
    )
    assert result.misclassified == expected


def test_stop_after_the_first_epoch_ends_training_early(small_mnist):
    stop = threading.Event()
    events = []

    def on_event(event: object) -> None:
        events.append(event)
        if isinstance(event, EpochEnded):
            stop.set()

    config = DigitsConfig(epochs=5, training_size=500, seed=2)
    result = train_digits(config, on_event=on_event, stop=stop, data=small_mnist)
    assert [event.epoch for event in result.history] == [1]
    assert result.stopped_reason == "Stopped on request."
    assert any(isinstance(event, TrainingStopped) for event in events)
    # A stopped run is still scored, on the whole (small) test split.
    assert result.confusion.sum() == len(small_mnist.test_labels)


def test_augmented_run_returns_a_plain_classifier_that_loads_safely(small_mnist, tmp_path):
    config = DigitsConfig(model="strong", epochs=1, training_size=300, augment=True, seed=3)
    result = train_digits(config, data=small_mnist)
    kinds = {type(layer).__name__ for layer in result.model.layers}
    # The random layers only wrapped the classifier during training; the saved model is the CNN alone.
    assert not kinds & {"RandomTranslation", "RandomRotation", "RandomZoom", "Sequential"}
    path = tmp_path / "digits.keras"
    result.model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    images = normalize_images(small_mnist.test_images[:16])
    np.testing.assert_allclose(
        np.asarray(loaded(images, training=False)),
        np.asarray(result.model(images, training=False)),
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.parametrize("build", [build_cnn, build_strong_cnn])
def test_model_summary_rows_match_the_layers(build):
    model = build()
    rows = model_summary(model)
    assert [row["layer"] for row in rows] == [layer.name for layer in model.layers]
    assert [row["type"] for row in rows] == [type(layer).__name__ for layer in model.layers]
    assert sum(row["params"] for row in rows) == model.count_params()
    assert rows[-1]["output shape"] == "(None, 10)"
    if build is build_cnn:
        assert rows[1] == {
            "layer": "conv_1",
            "type": "Conv2D",
            "output shape": "(None, 26, 26, 8)",
            "params": 80,
        }
