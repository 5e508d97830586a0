"""Tests of core/explain.py: layer activations for every digit CNN, and a saliency map that passes the
deletion test over the whole MNIST test set."""

import keras
import numpy as np
import pytest

from core import explain
from core.digits import DigitsConfig, build_cnn, build_strong_cnn, normalize_images, train_digits
from core.events import BatchEnded, FiltersSnapshot
from core.mnist import MnistData, cached_mnist
from tests.utils.models import tiny_digits_model


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return cached_mnist(mnist_dir)


@pytest.fixture(scope="module")
def trained(mnist):
    # One epoch of the seed CNN on every train image: ~97% test accuracy in ~15 s.
    return train_digits(DigitsConfig(model="seed", epochs=1, seed=0), data=mnist).model


@pytest.fixture(scope="module")
def test_images(mnist):
    return normalize_images(mnist.test_images)


def test_activations_cover_every_conv_channel_and_the_dense_layer(trained, test_images):
    activations = explain.layer_activations(trained, test_images[0])
    # Seed CNN: 28 -> conv 26 -> pool 13 -> conv 11; 8 and 16 channels; a 128-unit hidden layer.
    assert {name: value.shape for name, value in activations.items()} == {
        "conv_1": (26, 26, 8),
        "conv_2": (11, 11, 16),
        "dense": (128,),
    }
    # The first layer's maps are its ReLU'd convolution of the image: check one channel by hand.
    conv = trained.get_layer("conv_1")
    kernel, bias = (np.asarray(weight) for weight in conv.get_weights())
    image = test_images[0][:, :, 0]
    expected = np.zeros((26, 26), dtype=np.float32)
    for row in range(26):
        for column in range(26):
            expected[row, column] = (
                image[row : row + 3, column : column + 3] * kernel[:, :, 0, 3]
            ).sum()
    expected = np.maximum(expected + bias[3], 0)
    np.testing.assert_allclose(activations["conv_1"][:, :, 3], expected, atol=1e-5)


def test_activations_find_layers_by_type_not_by_name(test_images):
    # A strong CNN (three convs, batch norm, dropout) with layer names no code expects.
    model = build_strong_cnn()
    counter = iter(range(100))

    def renamed_layer(layer):
        return type(layer).from_config({**layer.get_config(), "name": f"part_{next(counter)}"})

    renamed = keras.models.clone_model(model, clone_function=renamed_layer)
    assert not {"conv_1", "conv_2", "conv_3", "dense"} & {layer.name for layer in renamed.layers}
    activations = explain.layer_activations(renamed, test_images[1])
    shapes = [value.shape for value in activations.values()]
    assert shapes == [(26, 26, 32), (11, 11, 32), (9, 9, 32), (128,)]


def test_activations_of_a_saved_and_reloaded_model_match(trained, test_images, tmp_path):
    path = tmp_path / "seed.keras"
    trained.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    original = explain.layer_activations(trained, test_images[2])
    reloaded = explain.layer_activations(loaded, test_images[2])
    assert list(reloaded) == list(original)
    for name in original:
        np.testing.assert_allclose(reloaded[name], original[name], atol=1e-6)
    np.testing.assert_allclose(
        explain.saliency(loaded, test_images[2], 3),
        explain.saliency(trained, test_images[2], 3),
        atol=1e-5,
    )


def test_a_model_wrapped_in_a_sequential_is_looked_into(test_images):
    inner = build_cnn()
    wrapper = keras.Sequential([keras.Input(shape=(28, 28, 1)), inner])
    assert list(explain.layer_activations(wrapper, test_images[0])) == ["conv_1", "conv_2", "dense"]


def test_a_model_that_is_not_a_digit_cnn_is_refused(test_images):
    no_convolution = tiny_digits_model()
    with pytest.raises(ValueError, match="needs at least one Conv2D"):
        explain.layer_activations(no_convolution, test_images[0])


def test_first_layer_filters_are_the_3x3_kernels(trained):
    filters = explain.first_layer_filters(trained)
    kernel = np.asarray(trained.get_layer("conv_1").get_weights()[0])
    assert filters.shape == (8, 3, 3)
    np.testing.assert_allclose(filters[5], kernel[:, :, 0, 5])


def test_saliency_is_28x28_and_zero_where_there_is_no_ink(trained, test_images):
    image = test_images[4]
    for digit in range(10):
        salient = explain.saliency(trained, image, digit)
        assert salient.shape == (28, 28)
        # Gradient x input: a blank pixel contributes nothing.
        assert np.all(salient[image[:, :, 0] == 0] == 0)
    # The maps for different digits differ (each explains its own logit).
    assert not np.allclose(explain.saliency(trained, image, 1), explain.saliency(trained, image, 7))


def test_saliency_refuses_bad_input(trained, test_images):
    with pytest.raises(ValueError, match="0 to 9"):
        explain.saliency(trained, test_images[0], 10)
    with pytest.raises(ValueError, match="0 to 9"):
        explain.saliency(trained, test_images[0], True)
    with pytest.raises(ValueError, match="shape"):
        explain.saliency(trained, np.zeros((28, 27, 1), dtype=np.float32), 1)
    with pytest.raises(ValueError, match="method"):
        explain.saliency(trained, test_images[0], 1, method="magic")


def test_gradient_x_input_sums_to_the_logit_change_for_a_linear_model():
    # For a model linear in its input (conv + dense, no ReLU) gradient x input adds up exactly to
    # logit(image) - logit(black image): the completeness property integrated gradients also has.
    inputs = keras.Input(shape=(28, 28, 1))
    hidden = keras.layers.Conv2D(2, 3, name="c")(inputs)
    hidden = keras.layers.Flatten()(hidden)
    outputs = keras.layers.Dense(10, activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    image = np.random.default_rng(0).random((28, 28, 1)).astype(np.float32)
    probe = explain._probe(model)
    _, logits = explain._logits(probe, np.stack([image, np.zeros_like(image)]))
    change = float(np.asarray(logits)[0, 6] - np.asarray(logits)[1, 6])
    assert explain.saliency(model, image, 6).sum() == pytest.approx(change, rel=1e-4, abs=1e-4)


def test_remove_ink_blanks_exactly_the_top_ranked_share_of_the_ink():
    image = np.zeros((1, 28, 28, 1), dtype=np.float32)
    image[0, 5, :20, 0] = 1.0  # 20 ink pixels.
    ranking = np.zeros((1, 28, 28), dtype=np.float32)
    ranking[0, 5, :20] = np.arange(20)
    ranking[0, 0, 0] = 100.0  # Background ranked highest must never count.
    removed = explain.remove_ink(image, ranking, fraction=0.1)
    assert np.flatnonzero(removed[0, 5, :, 0] == 0).tolist()[:2] == [18, 19]
    assert int((removed > 0).sum()) == 18
    random = explain.remove_ink(image, ranking, fraction=0.1, rng=np.random.default_rng(0))
    assert int((random > 0).sum()) == 18


def test_deletion_test_over_the_whole_mnist_test_set(trained, test_images, mnist):
    # Blanking the 10% of ink the map ranks highest must hurt the predicted digit far more than
    # blanking a random 10%; every image of the test set takes part.
    assert len(test_images) == 10_000
    probabilities = trained.predict(test_images, batch_size=1000, verbose=0)
    predicted = probabilities.argmax(axis=1)
    rows = np.arange(len(predicted))
    before = probabilities[rows, predicted]
    maps = explain.saliency_batch(trained, test_images, predicted)
    top = explain.remove_ink(test_images, maps, fraction=0.1)
    random = explain.remove_ink(test_images, maps, fraction=0.1, rng=np.random.default_rng(0))
    top_drop = before - trained.predict(top, batch_size=1000, verbose=0)[rows, predicted]
    random_drop = before - trained.predict(random, batch_size=1000, verbose=0)[rows, predicted]
    print(
        f"\ndeletion test (seed CNN, 1 epoch, {len(rows):,} test images): mean drop of the predicted "
        f"digit's probability, top-10% ink {top_drop.mean():.4f} vs random-10% "
        f"{random_drop.mean():.4f}; "
        f"top hurts more on {np.mean(top_drop > random_drop):.1%} of images"
    )
    # Measured: ~0.25 vs ~0.013. "Clearly more": at least five times the random drop, and on most images.
    assert top_drop.mean() > 5 * random_drop.mean()
    assert top_drop.mean() > 0.1
    assert np.mean(top_drop > random_drop) > 0.9


def test_digits_training_sends_the_first_layer_filters_before_and_after_every_epoch(mnist):
    small = MnistData(
        train_images=mnist.train_images[:1000],
        train_labels=mnist.train_labels[:1000],
        test_images=mnist.test_images[:200],
        test_labels=mnist.test_labels[:200],
        source="first 1,000 train and 200 test images",
    )
    events = []
    result = train_digits(
        DigitsConfig(epochs=2, seed=1, augment=True), on_event=events.append, data=small
    )
    snapshots = [event for event in events if isinstance(event, FiltersSnapshot)]
    assert [snapshot.epoch for snapshot in snapshots] == [0, 1, 2]
    assert np.asarray(snapshots[0].filters).shape == (8, 3, 3)
    # The last snapshot is the trained model's filters; training changed them.
    np.testing.assert_allclose(
        np.asarray(snapshots[-1].filters), explain.first_layer_filters(result.model)
    )
    assert not np.allclose(np.asarray(snapshots[0].filters), np.asarray(snapshots[-1].filters))
    # Each snapshot follows its epoch's EpochEnded event.
    kinds = [type(event).__name__ for event in events if not isinstance(event, BatchEnded)]
    assert kinds == ["FiltersSnapshot", "EpochEnded", "FiltersSnapshot", "EpochEnded", "FiltersSnapshot"]
