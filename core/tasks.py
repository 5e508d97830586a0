"""The task table: per task its model shapes, its metric and the set it is scored on, in one place."""

from __future__ import annotations

from dataclasses import dataclass

# MNIST images are 28x28 grey levels; the digits models read them as (28, 28, 1) floats.
IMAGE_SIDE = 28
DIGIT_CLASSES = 10
# The addition models' one-hot alphabet is the 12 characters of "0123456789+ ".
ADDITION_ALPHABET_SIZE = 12
MAX_ADDITION_DIGITS = 5
# Samples a format comparison scores; the quantize step scores its copy on the whole set.
COMPARISON_SAMPLES = 2_000

Shape = tuple[int | None, ...]


@dataclass(frozen=True, slots=True)
class Task:
    """What the app knows about one task."""

    name: str  # The key stored with every model: "addition" or "digits".
    title: str  # The training page's title.
    page: str  # The training page's script, for links to it.
    metric: str  # The key of the model's score in its stored metrics.
    metric_label: str
    evaluation: str  # What the score is measured on, for captions.


TASKS: dict[str, Task] = {
    "addition": Task(
        name="addition",
        title="Addition RNN",
        page="app_pages/addition.py",
        metric="exact_match",
        metric_label="exact match",
        evaluation=f"{COMPARISON_SAMPLES:,} fresh sums (fewer for 1 digit: 55 exist)",
    ),
    "digits": Task(
        name="digits",
        title="Digit Recognizer",
        page="app_pages/digits.py",
        metric="accuracy",
        metric_label="accuracy",
        evaluation="the MNIST test images",
    ),
}
TASK_NAMES = tuple(TASKS)


def model_shapes(task: str, *, digits: int = 1) -> tuple[Shape, Shape]:
    """The (input, output) shapes a model of `task` has; addition's depend on its digits."""
    if task == "digits":
        return (None, IMAGE_SIDE, IMAGE_SIDE, 1), (None, DIGIT_CLASSES)
    if task == "addition":
        return (None, 2 * digits + 1, ADDITION_ALPHABET_SIZE), (None, digits + 1, ADDITION_ALPHABET_SIZE)
    raise ValueError(f"task must be one of {', '.join(TASK_NAMES)}, not {task!r}.")


def task_for_shapes(input_shape: object, output_shape: object) -> tuple[str, dict[str, int]]:
    """The task whose shapes these are: ("digits", {}) or ("addition", {"digits": D})."""
    if (input_shape, output_shape) == model_shapes("digits"):
        return "digits", {}
    for digits in range(1, MAX_ADDITION_DIGITS + 1):
        if (input_shape, output_shape) == model_shapes("addition", digits=digits):
            return "addition", {"digits": digits}
    digits_in, digits_out = model_shapes("digits")
    raise ValueError(
        f"the model's input shape {input_shape} and output shape {output_shape} fit neither task: "
        f"digits needs {digits_in} -> {digits_out}; addition needs (None, 2D+1, "
        f"{ADDITION_ALPHABET_SIZE}) -> (None, D+1, {ADDITION_ALPHABET_SIZE}) for D from 1 to "
        f"{MAX_ADDITION_DIGITS}."
    )


def score(task: str, metrics: dict[str, object]) -> float | None:
    """The model's stored score for its task's metric, or None when it has none (an upload)."""
    value = metrics.get(TASKS[task].metric) if task in TASKS else None
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
