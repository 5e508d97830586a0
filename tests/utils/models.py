"""The smallest digits-shaped Keras model, for tests that need a model but not a trained one."""

from __future__ import annotations

import keras
from keras import layers


def tiny_digits_model(*, softmax: bool = True) -> keras.Model:
    """Input(28, 28, 1) -> Flatten -> Dense(10), with softmax unless asked for raw logits; untrained."""
    inputs = keras.Input(shape=(28, 28, 1))
    hidden = layers.Flatten()(inputs)
    outputs = layers.Dense(10, activation="softmax" if softmax else None)(hidden)
    return keras.Model(inputs, outputs)
