"""Look inside a digit CNN: every layer's activations for one image, and which pixels drove its answer.

After the layer views of CNN Explainer and ConvNetJS. Layers are found by type (Conv2D, Dense), never
by name, so the seed and strong CNNs of core/digits.py and saved or uploaded digit models all work.

Saliency is gradient x input on the class logit (the last Dense layer before its softmax). It was
chosen by measurement (tests/core/test_explain.py, bench/explain.py): in the deletion test on the
whole MNIST test set, blanking the 10% of ink it ranks highest cut the predicted digit's probability
far more than a random 10% did, as much as integrated gradients did at a fraction of the cost (one
backward pass instead of one per step), and far more than Grad-CAM, whose 11x11 (seed) or 3x3 (strong)
last-layer grid is too coarse to rank single strokes.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from core.events import FiltersSnapshot, TrainingEvent
from core.tasks import IMAGE_SIDE

CLASS_COUNT = 10
SALIENCY_METHODS = ("gradient_x_input", "integrated_gradients", "grad_cam")
DEFAULT_METHOD = "gradient_x_input"
# Straight-line steps from a black image for integrated gradients (error < 2% on the seed CNN).
INTEGRATED_STEPS = 16
# Images per forward/backward pass when explaining many images at once.
EXPLAIN_BATCH_SIZE = 500


@dataclass(frozen=True, slots=True, eq=False)
class _Probe:
    """A model's layers of interest and one Keras model that outputs all of them in a single pass."""

    convolution_names: tuple[str, ...]
    dense_names: tuple[str, ...]
    model: keras.Model  # Outputs: each conv map, each hidden dense vector, then the classifier's input.
    kernel: Any  # The classifier's weights, so the logit (before softmax) can be computed.
    bias: Any
    compiled: dict[str, Any]  # Traced tf.functions, built on first use (eager tapes cost ~10x more).


_probes: weakref.WeakKeyDictionary[keras.Model, _Probe] = weakref.WeakKeyDictionary()
_probes_lock = threading.Lock()


def _classifier(model: keras.Model) -> keras.Model:
    """The model itself, or the CNN inside a wrapper that only adds inference-time no-ops around it."""
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    others = [layer for layer in model.layers if not isinstance(layer, keras.Model)]
    # Random* augmentation layers (core.digits.with_augmentation) pass images through unchanged
    # outside training, so explaining the wrapped CNN explains the wrapper.
    if len(inner) == 1 and all(
        isinstance(layer, keras.layers.InputLayer) or type(layer).__name__.startswith("Random")
        for layer in others
    ):
        return _classifier(inner[0])
    if inner:
        raise ValueError("Models nested inside other models cannot be looked into layer by layer.")
    return model


def _probe(model: keras.Model) -> _Probe:
    """Build (once per model) the probe that exposes every conv and dense layer's output."""
    with _probes_lock:
        cached = _probes.get(model)
        if cached is not None:
            return cached
    classifier_model = _classifier(model)
    layers = list(classifier_model.layers)
    convolutions = [layer for layer in layers if isinstance(layer, keras.layers.Conv2D)]
    denses = [layer for layer in layers if isinstance(layer, keras.layers.Dense)]
    if not convolutions or not denses:
        raise ValueError(
            "This is not a digit CNN: it needs at least one Conv2D layer and a Dense classifier, "
            f"but has {', '.join(type(layer).__name__ for layer in layers) or 'no layers'}."
        )
    classifier = denses[-1]
    if int(classifier.units) != CLASS_COUNT:
        raise ValueError(f"The last Dense layer must have {CLASS_COUNT} units, not {classifier.units}.")
    hidden = denses[:-1]
    try:
        outputs = [layer.output for layer in convolutions + hidden] + [classifier.input]
        inputs = classifier_model.inputs
        # A single input as a tensor, not a list, so calling the probe with one array matches.
        probe_model = keras.Model(inputs[0] if len(inputs) == 1 else inputs, outputs)
    except (AttributeError, ValueError) as error:
        raise ValueError(f"The model's layers cannot be read one by one: {error}") from None
    probe = _Probe(
        convolution_names=tuple(layer.name for layer in convolutions),
        dense_names=tuple(layer.name for layer in hidden),
        model=probe_model,
        kernel=classifier.kernel,
        bias=classifier.bias if classifier.use_bias else None,
        compiled={},
    )
    with _probes_lock:
        _probes[model] = probe
    return probe


def _image_batch(images: np.ndarray) -> np.ndarray:
    """(N, 28, 28, 1) float32 from (N, 28, 28[, 1]) images, or ValueError."""
    array = np.asarray(images)
    if array.ndim == 3 and array.shape[1:] == (IMAGE_SIDE, IMAGE_SIDE):
        array = array[..., None]
    if array.ndim != 4 or array.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE, 1):
        raise ValueError(f"Images must have shape (N, 28, 28, 1), not {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError("Images contain NaN or infinite values.")
    return array.astype(np.float32)


def _single_image(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.shape not in ((28, 28, 1), (28, 28)):
        found = f"shape {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        raise ValueError(f"The image must be a numpy array of shape (28, 28, 1), not {found}.")
    return _image_batch(image.reshape(1, IMAGE_SIDE, IMAGE_SIDE, 1))


def _activations_function(probe: _Probe) -> Any:
    """The probe's forward pass, traced once per model (an eager call costs several times more)."""
    import tensorflow as tf

    with _probes_lock:
        compiled = probe.compiled.get("activations")
        if compiled is None:
            compiled = tf.function(
                lambda images: probe.model(images, training=False),
                input_signature=[tf.TensorSpec((None, IMAGE_SIDE, IMAGE_SIDE, 1), tf.float32)],
            )
            probe.compiled["activations"] = compiled
        return compiled


def layer_activations(model: keras.Model, image: np.ndarray) -> dict[str, np.ndarray]:
    """Each Conv2D layer's maps (height, width, channels) and each hidden Dense layer's (units,)."""
    probe = _probe(model)
    outputs = _activations_function(probe)(_single_image(image))
    names = probe.convolution_names + probe.dense_names
    return {
        name: np.asarray(keras.ops.convert_to_numpy(output))[0]
        for name, output in zip(names, outputs[: len(names)], strict=True)
    }


def convolution_layer_names(model: keras.Model) -> tuple[str, ...]:
    """Names of the model's Conv2D layers, first to last (keys of `layer_activations`)."""
    return _probe(model).convolution_names


def _first_convolution(model: keras.Model) -> Any:
    layers = [layer for layer in _classifier(model).layers if isinstance(layer, keras.layers.Conv2D)]
    if not layers:
        raise ValueError("The model has no Conv2D layer, so it has no filters to show.")
    return layers[0]


def first_layer_filters(model: keras.Model) -> np.ndarray:
    """The first Conv2D layer's kernels as (filters, height, width), summed over input channels."""
    kernel = np.asarray(
        keras.ops.convert_to_numpy(_first_convolution(model).kernel)
    )  # (height, width, in, out)
    return np.transpose(kernel.sum(axis=2), (2, 0, 1)).astype(np.float32)


def _logits(probe: _Probe, images: Any) -> tuple[list[Any], Any]:
    """The probe's outputs and the class logits (the classifier's pre-softmax scores)."""
    import tensorflow as tf

    outputs = probe.model(images, training=False)
    logits = tf.matmul(outputs[-1], probe.kernel)
    if probe.bias is not None:
        logits = logits + probe.bias
    return outputs, logits


def _gradient_x_input_function(probe: _Probe) -> Any:
    """One traced function per model: (images, digits) -> gradient x input, never retraced."""
    import tensorflow as tf

    with _probes_lock:
        compiled = probe.compiled.get("gradient_x_input")
        if compiled is not None:
            return compiled

        def gradient_x_input(images: Any, digits: Any) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(images)
                _, logits = _logits(probe, images)
                chosen = tf.gather(logits, digits, axis=1, batch_dims=1)
            return tape.gradient(chosen, images) * images

        compiled = tf.function(
            gradient_x_input,
            input_signature=[
                tf.TensorSpec((None, IMAGE_SIDE, IMAGE_SIDE, 1), tf.float32),
                tf.TensorSpec((None,), tf.int32),
            ],
        )
        probe.compiled["gradient_x_input"] = compiled
        return compiled


def _gradient_x_input(probe: _Probe, images: np.ndarray, digits: np.ndarray) -> np.ndarray:
    result = _gradient_x_input_function(probe)(images.astype(np.float32), digits.astype(np.int32))
    return np.asarray(result)[..., 0]


def _integrated_gradients(probe: _Probe, images: np.ndarray, digits: np.ndarray) -> np.ndarray:
    # Riemann midpoint sum of the gradient along the straight path from a black image.
    total = np.zeros(images.shape[:3], dtype=np.float32)
    for step in range(INTEGRATED_STEPS):
        alpha = (step + 0.5) / INTEGRATED_STEPS
        scaled = images * alpha
        # gradient x (alpha * image) / alpha = gradient x image at the scaled point.
        total += _gradient_x_input(probe, scaled, digits) / alpha
    result: np.ndarray = total / INTEGRATED_STEPS
    return result


def _grad_cam(probe: _Probe, images: np.ndarray, digits: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    tensor = tf.convert_to_tensor(images)
    last = len(probe.convolution_names) - 1
    with tf.GradientTape() as tape:
        outputs, logits = _logits(probe, tensor)
        maps = outputs[last]
        chosen = tf.gather(logits, digits, axis=1, batch_dims=1)
    gradient = tape.gradient(chosen, maps)
    weights = tf.reduce_mean(gradient, axis=(1, 2), keepdims=True)
    cam = tf.nn.relu(tf.reduce_sum(weights * maps, axis=-1, keepdims=True))
    # Bilinear upsampling of the coarse grid back to the image's 28x28 pixels.
    upsampled = tf.image.resize(cam, (IMAGE_SIDE, IMAGE_SIDE), method="bilinear")
    return np.asarray(upsampled)[..., 0]


_METHODS: dict[str, Callable[[_Probe, np.ndarray, np.ndarray], np.ndarray]] = {
    "gradient_x_input": _gradient_x_input,
    "integrated_gradients": _integrated_gradients,
    "grad_cam": _grad_cam,
}


def saliency_batch(
    model: keras.Model, images: np.ndarray, digits: np.ndarray, *, method: str = DEFAULT_METHOD
) -> np.ndarray:
    """Saliency maps (N, 28, 28) of many images at once, each for its own digit; see `saliency`."""
    if method not in _METHODS:
        raise ValueError(
            f"Saliency method must be one of {', '.join(SALIENCY_METHODS)}, not {method!r}."
        )
    batch = _image_batch(images)
    targets = np.asarray(digits)
    if targets.shape != (len(batch),) or targets.dtype.kind not in "iu":
        raise ValueError(f"Need one whole-number digit per image; got shape {targets.shape}.")
    if len(targets) and not (0 <= targets.min() and targets.max() < CLASS_COUNT):
        raise ValueError(f"Digits must be 0 to 9, not {targets.min()} to {targets.max()}.")
    probe = _probe(model)
    maps = [
        _METHODS[method](
            probe, batch[start : start + EXPLAIN_BATCH_SIZE], targets[start : start + EXPLAIN_BATCH_SIZE]
        )
        for start in range(0, len(batch), EXPLAIN_BATCH_SIZE)
    ]
    if not maps:
        return np.zeros((0, IMAGE_SIDE, IMAGE_SIDE), dtype=np.float32)
    return np.concatenate(maps).astype(np.float32)


def saliency(
    model: keras.Model, image: np.ndarray, digit: int, *, method: str = DEFAULT_METHOD
) -> np.ndarray:
    """A (28, 28) map of how much each pixel pushed the model towards `digit` (higher = more)."""
    if (
        isinstance(digit, bool)
        or not isinstance(digit, int | np.integer)
        or not 0 <= digit < CLASS_COUNT
    ):
        raise ValueError(f"The digit must be a whole number from 0 to 9, not {digit!r}.")
    maps = saliency_batch(model, _single_image(image), np.array([int(digit)]), method=method)
    result: np.ndarray = maps[0]
    return result


def runner_up(probabilities: tuple[float, ...] | np.ndarray) -> int:
    """The second most likely digit, for the "why not a 7?" view."""
    order = np.argsort(np.asarray(probabilities))[::-1]
    return int(order[1])


def remove_ink(
    images: np.ndarray, rankings: np.ndarray, *, fraction: float, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Blank the `fraction` of each image's ink ranked highest (or a random share if rng is given)."""
    if not 0 < fraction <= 1:
        raise ValueError(f"The fraction of ink to remove must be in (0, 1], not {fraction}.")
    batch = _image_batch(images).copy()
    flat = batch.reshape(len(batch), -1)
    scores = np.asarray(rankings, dtype=np.float64).reshape(len(batch), -1)
    ink = flat > 0
    if rng is not None:
        # Random ranks among the ink: the baseline a saliency map has to beat.
        scores = rng.random(scores.shape)
    # Background can never be chosen: only ink counts as removable.
    scores = np.where(ink, scores, -np.inf)
    counts = np.ceil(ink.sum(axis=1) * fraction).astype(np.int64)
    order = np.argsort(-scores, axis=1, kind="stable")
    chosen = np.arange(flat.shape[1])[None, :] < counts[:, None]
    rows = np.repeat(np.arange(len(batch)), flat.shape[1]).reshape(order.shape)
    flat[rows[chosen], order[chosen]] = 0.0
    return batch


def filters_snapshot(model: keras.Model, *, epoch: int) -> FiltersSnapshot:
    """The first layer's filters now, as a frozen event."""
    filters = first_layer_filters(model)
    return FiltersSnapshot(
        epoch=epoch,
        filters=tuple(
            tuple(tuple(float(value) for value in row) for row in kernel) for kernel in filters
        ),
    )


class FilterSnapshots(keras.callbacks.Callback):  # type: ignore[misc]  # Keras has no stubs.
    """Sends the first conv layer's filters before training and after every epoch."""

    def __init__(self, model: keras.Model, *, on_event: Callable[[TrainingEvent], None] | None) -> None:
        super().__init__()
        # The classifier, not `self.model`: training may go through an augmentation wrapper.
        self.classifier = model
        self.on_event = on_event

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        if self.on_event is not None:
            self.on_event(filters_snapshot(self.classifier, epoch=0))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.on_event is not None:
            self.on_event(filters_snapshot(self.classifier, epoch=epoch + 1))
