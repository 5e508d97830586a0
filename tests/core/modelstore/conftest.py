"""Real saved models, built once per test session, for the upload tests."""

from __future__ import annotations

from pathlib import Path

import keras
import pytest
from keras import layers

from core.addition import AdditionConfig, build_addition_rnn
from core.digits import build_cnn, build_strong_cnn, with_augmentation


def saved_bytes(model: keras.Model, directory: Path, name: str) -> bytes:
    """The bytes of `model` saved by Keras 3 as `name`.keras."""
    path = directory / f"{name}.keras"
    model.save(path)
    return path.read_bytes()


def build_valid_models() -> dict[str, keras.Model]:
    """The app's models of both tasks (small settings) and plain Keras models of the tasks' shapes."""
    models: dict[str, keras.Model] = {}
    for rnn_type in ("SimpleRNN", "GRU", "LSTM"):
        models[f"addition-{rnn_type}"] = build_addition_rnn(
            AdditionConfig(
                digits=1, training_size=50, test_examples=2, hidden_size=4, rnn_type=rnn_type, layers=2
            )
        )
    seed = build_cnn()
    schedule = keras.optimizers.schedules.CosineDecay(0.002, decay_steps=10)
    seed.compile(
        optimizer=keras.optimizers.Adam(learning_rate=schedule),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    models["digits-seed"] = seed
    models["digits-strong"] = build_strong_cnn()
    models["digits-augmented-wrapper"] = with_augmentation(build_cnn(), seed=1)
    plain = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            layers.Conv2D(4, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ]
    )
    plain.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    models["plain-sequential-digits"] = plain
    inputs = keras.Input(shape=(5, 12))
    hidden = layers.LSTM(6)(inputs)
    hidden = layers.RepeatVector(3)(hidden)
    hidden = layers.LSTM(6, return_sequences=True)(hidden)
    models["plain-functional-addition"] = keras.Model(
        inputs, layers.Dense(12, activation="softmax")(hidden)
    )
    models["plain-reshape-addition"] = keras.Sequential(
        [
            keras.Input(shape=(3, 12)),
            layers.Flatten(),
            layers.Dense(24),
            layers.Reshape((2, 12)),
            layers.Softmax(),
        ]
    )
    return models


@pytest.fixture(scope="session")
def valid_models() -> dict[str, keras.Model]:
    """Every model of the valid corpus, built once."""
    return build_valid_models()


@pytest.fixture(scope="session")
def valid_uploads(
    valid_models: dict[str, keras.Model], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, bytes]:
    """The valid corpus as .keras bytes, saved once."""
    directory = tmp_path_factory.mktemp("valid-uploads")
    return {name: saved_bytes(model, directory, name) for name, model in valid_models.items()}
