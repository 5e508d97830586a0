"""A training job as data: which task to train and its config, so any backend can run it.

A page's closure cannot travel to another machine; a `TrainingSpec` can (it pickles). The thread backend
calls it like any other job's work; the Dask backend sends it to a worker and rebuilds the result here.
Keras is imported only when a spec runs, so the job runner can know this class without loading Keras.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core.mnist import MnistData
from core.settings import check_choice

if TYPE_CHECKING:
    import keras

    from core.addition import AdditionConfig, AdditionResult
    from core.digits import DigitsConfig, DigitsResult
    from core.training import TrainingResult

TASKS = ("addition", "digits")
# Each task's config class, as (module, class name).
CONFIG_CLASSES = {
    "addition": ("core.addition", "AdditionConfig"),
    "digits": ("core.digits", "DigitsConfig"),
}


@dataclass(frozen=True, slots=True, eq=False)
class TrainingSpec:
    """One training job: the task ("addition" or "digits"), its config and, for digits, the data."""

    task: str
    config: AdditionConfig | DigitsConfig
    data: MnistData | None = None  # Digits only; None trains on the server's MNIST (`cached_mnist`).

    def __post_init__(self) -> None:
        task = check_choice("Task", self.task, TASKS)
        object.__setattr__(self, "task", task)
        # Compared by module and name: importing the config classes here would load Keras.
        module, expected = CONFIG_CLASSES[task]
        found = type(self.config)
        if (found.__module__, found.__qualname__) != (module, expected):
            raise ValueError(f"A {task} job takes a {expected}, not {found.__name__}.")
        if task == "addition" and self.data is not None:
            raise ValueError("An addition job generates its own sums; it takes no dataset.")
        if self.data is not None and not isinstance(self.data, MnistData):
            raise ValueError(f"A digits job's data must be MnistData, not {type(self.data).__name__}.")

    def __call__(
        self, emit: Callable[[Any], None], stop: threading.Event
    ) -> AdditionResult | DigitsResult:
        """Train here, in this thread (the job runner's `Work` signature)."""
        return self.run(on_event=emit, stop=stop)

    def run(
        self,
        *,
        on_event: Callable[[Any], None] | None = None,
        stop: threading.Event | None = None,
        data: MnistData | None = None,
    ) -> AdditionResult | DigitsResult:
        """Train the task; `data` overrides the spec's dataset (a worker passes its own copy)."""
        if self.task == "addition":
            from core.addition import AdditionConfig, train_addition

            if not isinstance(self.config, AdditionConfig):
                raise ValueError(f"An addition job needs an AdditionConfig, not {self.config!r}.")
            return train_addition(self.config, on_event=on_event, stop=stop)
        from core.digits import DigitsConfig, train_digits

        if not isinstance(self.config, DigitsConfig):
            raise ValueError(f"A digits job needs a DigitsConfig, not {self.config!r}.")
        return train_digits(
            self.config, on_event=on_event, stop=stop, data=data if data is not None else self.data
        )

    def without_data(self) -> TrainingSpec:
        """The same job without its dataset, to send where the data is already (once per worker)."""
        return dataclasses.replace(self, data=None)


@dataclass(frozen=True, slots=True)
class PortableResult:
    """A result with its model as `.keras` bytes, to travel from a worker back to the server."""

    task: str
    fields: dict[str, Any]  # Every field of the result except `model`.
    model_bytes: bytes


def to_portable(task: str, result: TrainingResult) -> PortableResult:
    """Pack a result for the trip: the model saved in the `.keras` format (compiled, with weights)."""
    fields = {
        field.name: getattr(result, field.name)
        for field in dataclasses.fields(result)  # type: ignore[arg-type]  # Results are dataclasses.
        if field.name != "model"
    }
    return PortableResult(task=task, fields=fields, model_bytes=keras_bytes(result.model))


def keras_bytes(model: keras.Model) -> bytes:
    """The model as a `.keras` file's bytes (architecture, compiled state and weights)."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory(prefix="ltl-keras-") as directory:
        path = os.path.join(directory, "model.keras")
        model.save(path)
        with open(path, "rb") as saved:
            return saved.read()


def from_portable(portable: PortableResult) -> AdditionResult | DigitsResult:
    """Rebuild the task's own result type, with a model loaded here (safe mode: no code runs)."""
    import os
    import tempfile

    import keras

    from core.addition import AdditionResult
    from core.digits import DigitsResult

    with tempfile.TemporaryDirectory(prefix="ltl-result-") as directory:
        path = os.path.join(directory, "model.keras")
        with open(path, "wb") as saved:
            saved.write(portable.model_bytes)
        model = keras.saving.load_model(path, safe_mode=True)
    if portable.task == "addition":
        return AdditionResult(model=model, **portable.fields)
    return DigitsResult(model=model, **portable.fields)
