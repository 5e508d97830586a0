"""Tests of core/personal.py: the personal set's limits, its validated .npz round trip, fine-tuning."""

import io
import threading
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from core.digits import DigitsConfig, normalize_images, score, train_digits
from core.events import EpochEnded, TrainingStopped
from core.mnist import MnistData, cached_mnist
from core.personal import (
    MAX_EXAMPLES,
    FinetuneConfig,
    PersonalDigits,
    finetune_digits,
    load_npz,
    split_held_out,
)
from core.training import TrainingResult


def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def some_images(count, seed=0):
    return np.random.default_rng(seed).random((count, 28, 28)).astype(np.float32)


def test_examples_are_added_removed_and_capped_at_500():
    personal = PersonalDigits()
    for index in range(MAX_EXAMPLES):
        personal.add(some_images(1, index)[0][..., None], index % 10)
    with pytest.raises(ValueError, match="500"):
        personal.add(some_images(1)[0], 3)
    personal.delete_example(0)
    images, labels = personal.arrays()
    assert images.shape == (499, 28, 28) and images.dtype == np.float32
    assert labels[:3].tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="no example number"):
        personal.delete_example(499)


@pytest.mark.parametrize(
    ("image", "label", "message"),
    [
        (np.zeros((28, 27), np.float32), 1, "28x28"),
        (np.zeros((28, 28), np.uint8), 1, "floats"),
        (np.full((28, 28), 1.5, np.float32), 1, "0 to 1"),
        (np.full((28, 28), np.nan, np.float32), 1, "0 to 1"),
        (np.zeros((28, 28), np.float32), 10, "0 to 9"),
        (np.zeros((28, 28), np.float32), True, "0 to 9"),
        (np.zeros((28, 28), np.float32), "3", "0 to 9"),
    ],
)
def test_bad_examples_are_refused(image, label, message):
    with pytest.raises(ValueError, match=message):
        PersonalDigits().add(image, label)


def test_npz_round_trip_keeps_every_example():
    personal = PersonalDigits()
    for index in range(7):
        personal.add(some_images(1, index)[0], (index * 3) % 10)
    images, labels = load_npz(personal.to_npz())
    original_images, original_labels = personal.arrays()
    np.testing.assert_array_equal(images, original_images)
    np.testing.assert_array_equal(labels, original_labels)


@given(
    count=st.integers(1, 40),
    dtype=st.sampled_from([np.float16, np.float32, np.float64]),
    label_dtype=st.sampled_from([np.uint8, np.int32, np.int64]),
    channel=st.booleans(),
)
@settings(max_examples=25, deadline=None)
def test_valid_npz_files_are_accepted(count, dtype, label_dtype, channel):
    images = some_images(count).astype(dtype)
    if channel:
        images = images[..., None]
    labels = (np.arange(count) % 10).astype(label_dtype)
    loaded_images, loaded_labels = load_npz(npz_bytes(images=images, labels=labels))
    assert loaded_images.shape == (count, 28, 28) and loaded_labels.tolist() == labels.tolist()


@given(
    problem=st.sampled_from(
        [
            "shape",
            "integer_images",
            "out_of_range",
            "nan",
            "label_range",
            "negative_label",
            "float_labels",
            "count_mismatch",
            "extra_array",
            "missing_labels",
            "empty",
            "too_many",
        ]
    ),
    count=st.integers(1, 20),
)
@settings(max_examples=40, deadline=None)
def test_invalid_npz_files_are_refused(problem, count):
    images, labels = some_images(count), np.arange(count) % 10
    arrays = {"images": images, "labels": labels}
    match problem:
        case "shape":
            arrays["images"] = np.zeros((count, 28, 29), np.float32)
        case "integer_images":
            arrays["images"] = (images * 255).astype(np.uint8)
        case "out_of_range":
            arrays["images"] = images + 1.5
        case "nan":
            arrays["images"] = np.full_like(images, np.nan)
        case "label_range":
            arrays["labels"] = labels + 10
        case "negative_label":
            arrays["labels"] = labels - 1 - labels.max()
        case "float_labels":
            arrays["labels"] = labels.astype(np.float32)
        case "count_mismatch":
            arrays["labels"] = np.arange(count + 1) % 10
        case "extra_array":
            arrays["secret"] = np.zeros(3)
        case "missing_labels":
            del arrays["labels"]
        case "empty":
            arrays = {"images": np.zeros((0, 28, 28), np.float32), "labels": np.zeros(0, np.int64)}
        case "too_many":
            arrays = {
                "images": np.zeros((MAX_EXAMPLES + 1, 28, 28), np.float16),
                "labels": np.zeros(MAX_EXAMPLES + 1, np.uint8),
            }
    with pytest.raises(ValueError):
        load_npz(npz_bytes(**arrays))


def test_pickled_objects_and_non_npz_files_are_refused_with_a_message():
    objects = npz_bytes(images=np.array([{"a": 1}], dtype=object), labels=np.zeros(1, np.int64))
    with pytest.raises(ValueError, match="cannot be read"):
        load_npz(objects)
    with pytest.raises(ValueError, match="not a .npz"):
        load_npz(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100)
    with pytest.raises(ValueError, match="MB"):
        load_npz(b"\x00" * 5_000_000)


def test_a_zip_bomb_is_refused_before_it_expands():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("images.npy", b"\x00" * 50_000_000)  # Compresses to ~50 KB.
        archive.writestr("labels.npy", b"\x00" * 10)
    assert len(buffer.getvalue()) < 1_000_000
    with pytest.raises(ValueError, match="larger than"):
        load_npz(buffer.getvalue())


def test_held_out_split_covers_every_drawn_digit_and_keeps_training_examples():
    labels = np.repeat(np.arange(10), 3)
    train, held = split_held_out(labels, fraction=0.3, rng=np.random.default_rng(0))
    assert len(held) == 9 and len(train) == 21
    assert sorted(set(train) | set(held)) == list(range(30))
    assert len(set(labels[held])) == 9  # Spread over the digits, never two of one.


@pytest.mark.parametrize(
    ("field", "value"),
    [("epochs", 0), ("learning_rate", 1.0), ("held_out_fraction", 0.0), ("mnist_examples", -1)],
)
def test_finetune_config_refuses_bad_values(field, value):
    with pytest.raises(ValueError):
        FinetuneConfig(**{field: value})


def slanted(image, shear=1.0):
    picture = Image.fromarray(image).transform(
        (28, 28), Image.Transform.AFFINE, (1, shear, -shear * 14, 0, 1, 0), Image.Resampling.BILINEAR
    )
    return np.asarray(picture, dtype=np.float32) / 255


@pytest.fixture(scope="module")
def small_mnist(mnist_dir):
    mnist = cached_mnist(mnist_dir)
    return MnistData(
        train_images=mnist.train_images[:3000],
        train_labels=mnist.train_labels[:3000],
        test_images=mnist.test_images[:1000],
        test_labels=mnist.test_labels[:1000],
        source="first 3,000 train and 1,000 test images",
    )


@pytest.fixture(scope="module")
def base_model(small_mnist):
    return train_digits(DigitsConfig(epochs=1, seed=0), data=small_mnist).model


def test_finetune_trains_a_copy_and_measures_before_and_after(base_model, small_mnist):
    # Slanted test digits 1000-1099: the style the base model reads worst.
    images = np.stack([slanted(image) for image in small_mnist.test_images[:100]])
    labels = small_mnist.test_labels[:100].astype(np.int64)
    original_weights = [weight.copy() for weight in base_model.get_weights()]
    events = []
    config = FinetuneConfig(epochs=2, mnist_examples=1000, held_out_fraction=0.5, seed=0)
    result = finetune_digits(
        config, model=base_model, images=images, labels=labels, on_event=events.append, data=small_mnist
    )
    assert isinstance(result, TrainingResult)
    assert result.model is not base_model
    # The original is untouched.
    for before, after in zip(original_weights, base_model.get_weights(), strict=True):
        np.testing.assert_array_equal(before, after)
    assert (result.held_out, result.trained_on) == (50, 50)
    assert [event.epoch for event in events if isinstance(event, EpochEnded)] == [1, 2]
    # "Before" is the original model's score; "after" is the copy's, on the same images.
    _, held = split_held_out(labels, fraction=0.5, rng=np.random.default_rng(0))
    x_held = images[held][..., None]
    assert result.personal_before == score(base_model, x_held, labels[held]).accuracy
    assert result.personal_after == score(result.model, x_held, labels[held]).accuracy
    x_test = normalize_images(small_mnist.test_images)
    assert result.mnist_after == score(result.model, x_test, small_mnist.test_labels).accuracy
    # Trained on 50 slanted digits, the copy reads unseen slanted ones better and keeps MNIST.
    assert result.personal_after > result.personal_before
    assert result.mnist_after > result.mnist_before - 0.05


def test_finetune_stops_on_request_and_refuses_too_few_examples(base_model, small_mnist):
    stop = threading.Event()
    stop.set()
    events = []
    images, labels = some_images(8), np.arange(8) % 10
    result = finetune_digits(
        FinetuneConfig(epochs=3, mnist_examples=200),
        model=base_model,
        images=images,
        labels=labels,
        on_event=events.append,
        stop=stop,
        data=small_mnist,
    )
    assert result.stopped_reason == "Stopped on request."
    assert any(isinstance(event, TrainingStopped) for event in events)
    assert len(result.history) <= 1
    with pytest.raises(ValueError, match="at least 4"):
        finetune_digits(FinetuneConfig(), model=base_model, images=images[:3], labels=labels[:3])
