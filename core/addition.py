"""Addition RNN: a recurrent network that learns to add integers from example sums.

Port of tfjs-examples addition-rnn-webworker/worker.js and keras-io examples/nlp/addition_rnn.py, without
the original's defects: `layers` really stacks decoder RNNs, test examples never exceed the validation
split, training sizes are checked against the number of distinct sums, and training can be stopped.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import keras
import numpy as np
from keras import layers

from core.events import DecodedSample, EpochEnded, SamplesDecoded, TrainingStopped
from core.settings import check_choice, check_flag, check_whole
from core.training import EventSink, fit_live

RNN_TYPES = ("SimpleRNN", "GRU", "LSTM")
# How the network is trained: "keras" is the examples' plain Adam at 0.001; "fast" is the fast preset's
# recipe (see `fast_config`).
RECIPES = ("keras", "fast")
# The fast recipe's goal: stop once this share of the held-out sums is answered exactly right.
FAST_GOAL_EXACT_MATCH = 0.99
# The fast recipe's peak Adam rate at a batch of 128 (ten times the examples' 0.001: warm-up and clipping
# keep it stable), scaled with the square root of the batch size.
FAST_PEAK_RATE = 0.01
BASE_BATCH_SIZE = 128
FAST_CLIP_NORM = 1.0
MAX_TRAINING_SIZE = 200_000
MAX_ITERATIONS = 1_000
MAX_HIDDEN_SIZE = 1_024
MAX_LAYERS = 8
MAX_BATCH_SIZE = 8_192
MAX_TEST_EXAMPLES = 1_000
# Above this many distinct sums, sampling by rejection is fast; below it, enumerate them all.
ENUMERATION_LIMIT = 2_000_000
MAX_DIGITS = 5
# Each whole-number field's own limits, whatever the other fields say (the form's minimum and maximum).
FIELD_LIMITS = {
    "digits": (1, MAX_DIGITS),
    "training_size": (10, MAX_TRAINING_SIZE),
    "layers": (1, MAX_LAYERS),
    "hidden_size": (1, MAX_HIDDEN_SIZE),
    "batch_size": (1, MAX_BATCH_SIZE),
    "iterations": (1, MAX_ITERATIONS),
    "test_examples": (0, MAX_TEST_EXAMPLES),
}
# The form's label of each field, so a message names the field the person sees.
FIELD_LABELS = {
    "digits": "Digits",
    "training_size": "Training size",
    "rnn_type": "RNN type",
    "layers": "RNN layers",
    "hidden_size": "Hidden size",
    "batch_size": "Batch size",
    "iterations": "Train iterations",
    "test_examples": "Test examples",
    "reverse": "Reverse the question",
    "recipe": "Training recipe",
}


def distinct_sums(digits: int) -> int:
    """How many distinct unordered problems a + b exist with operands of up to `digits` digits."""
    count: int = 10**digits
    return count * (count + 1) // 2


@dataclass(frozen=True, slots=True)
class AdditionConfig:
    """Settings of one Addition RNN run; defaults are those of the tfjs example's form."""

    digits: int = 2  # Maximum digits per operand.
    training_size: int = 5_000  # Distinct problems generated; 10% are held out for validation.
    rnn_type: str = "SimpleRNN"  # SimpleRNN, GRU or LSTM.
    layers: int = 1  # Stacked decoder RNN layers.
    hidden_size: int = 128  # Units per recurrent layer.
    batch_size: int = 128
    iterations: int = 100  # Each iteration is one `fit` epoch.
    test_examples: int = 20  # Validation problems decoded and shown after each iteration.
    reverse: bool = True  # Feed the question reversed, which shortens the paths the RNN must learn.
    recipe: str = "keras"  # "keras" (plain Adam) or "fast" (the fast preset's recipe).
    seed: int | None = None

    def __post_init__(self) -> None:
        # Each field is checked alone first, with the limits and the name the form shows it under,
        # and stored as its plain type (a numpy integer becomes an int).
        for field_name, (low, high) in FIELD_LIMITS.items():
            value = check_whole(FIELD_LABELS[field_name], getattr(self, field_name), low, high)
            object.__setattr__(self, field_name, value)
        rnn_type = check_choice(FIELD_LABELS["rnn_type"], self.rnn_type, RNN_TYPES)
        object.__setattr__(self, "rnn_type", rnn_type)
        object.__setattr__(self, "reverse", check_flag(FIELD_LABELS["reverse"], self.reverse))
        object.__setattr__(self, "recipe", check_choice(FIELD_LABELS["recipe"], self.recipe, RECIPES))
        if self.seed is not None:
            object.__setattr__(self, "seed", check_whole("Seed", self.seed, 0, 2**32 - 1))
        # Then how they fit together.
        if self.training_size > distinct_sums(self.digits):
            limit = min(distinct_sums(self.digits), MAX_TRAINING_SIZE)
            raise ValueError(
                f"{self.digits} {'digits allow' if self.digits > 1 else 'digit allows'} at most "
                f"{distinct_sums(self.digits):,} distinct sums; lower the training size to {limit:,} "
                "or use more digits."
            )
        if self.test_examples > self.validation_size:
            raise ValueError(
                f"{self.test_examples} test examples need at least {self.test_examples * 10:,} "
                f"training examples (tests come from the 10% held out); the training size "
                f"{self.training_size:,} allows at most {self.validation_size:,}."
            )

    @property
    def validation_size(self) -> int:
        """Problems held out for validation: 10% of the training size, at least one."""
        return max(1, self.training_size // 10)

    @property
    def question_length(self) -> int:
        """Characters in a padded question such as '12+345'."""
        return 2 * self.digits + 1

    @property
    def answer_length(self) -> int:
        """Characters in a padded answer: a sum has at most one more digit than its operands."""
        return self.digits + 1

    @property
    def steps_per_iteration(self) -> int:
        """Batches in one iteration over the training split."""
        return max(1, -(-(self.training_size - self.validation_size) // self.batch_size))


# The fast preset per digit count: (batch size, iterations). Larger batches make each iteration cheaper
# on a CPU; the scaled learning rate, warm-up and clipping keep them as good per example.
FAST_SETTINGS = {2: (128, 80), 3: (512, 25), 4: (256, 40), 5: (256, 40)}


def fast_config(digits: int) -> AdditionConfig:
    """The fast preset: 50,000 sums (or all there are), an LSTM of 128, the fast recipe; stops at 99%."""
    if isinstance(digits, bool) or not isinstance(digits, int) or digits not in FAST_SETTINGS:
        raise ValueError(
            f"The fast preset is for {min(FAST_SETTINGS)} to {max(FAST_SETTINGS)} digits, "
            f"not {digits!r}."
        )
    batch_size, iterations = FAST_SETTINGS[digits]
    return AdditionConfig(
        digits=digits,
        training_size=min(50_000, distinct_sums(digits)),
        rnn_type="LSTM",
        layers=1,
        hidden_size=128,
        batch_size=batch_size,
        iterations=iterations,
        test_examples=20,
        reverse=True,
        recipe="fast",
    )


def fast_learning_rate(config: AdditionConfig) -> keras.optimizers.schedules.LearningRateSchedule:
    """A batch-scaled peak rate reached after one iteration of warm-up, then cosine decay."""
    peak = FAST_PEAK_RATE * (config.batch_size / BASE_BATCH_SIZE) ** 0.5
    steps = config.steps_per_iteration
    warmup = min(steps, max(1, config.iterations * steps - 1))
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0,
        decay_steps=max(1, config.iterations * steps - warmup),
        alpha=0.05,
        warmup_target=peak,
        warmup_steps=warmup,
    )


def fast_optimizer(config: AdditionConfig) -> keras.optimizers.Optimizer:
    """Adam on the fast learning-rate schedule, with gradients clipped to a norm of 1."""
    return keras.optimizers.Adam(learning_rate=fast_learning_rate(config), clipnorm=FAST_CLIP_NORM)


class CharacterTable:
    """One-hot encodes strings over a fixed alphabet and decodes probability rows back."""

    def __init__(self, chars: str) -> None:
        self.chars = sorted(set(chars))
        self.char_indices = {char: index for index, char in enumerate(self.chars)}

    def encode(self, text: str, *, length: int) -> np.ndarray:
        """One-hot matrix of shape (length, alphabet size); unknown characters raise ValueError."""
        matrix = np.zeros((length, len(self.chars)), dtype="float32")
        if len(text) > length:
            raise ValueError(f"{text!r} is longer than {length} characters.")
        for position, char in enumerate(text):
            if char not in self.char_indices:
                raise ValueError(f"{char!r} is not one of the characters {''.join(self.chars)!r}.")
            matrix[position, self.char_indices[char]] = 1.0
        return matrix

    def decode(self, matrix: np.ndarray) -> str:
        """The most likely character at each row."""
        return "".join(self.chars[index] for index in np.asarray(matrix).argmax(axis=-1))


CHARACTERS = CharacterTable("0123456789+ ")


def _random_operand(rng: np.random.Generator, digits: int) -> int:
    length = int(rng.integers(1, digits + 1))
    return int("".join(str(digit) for digit in rng.integers(0, 10, size=length)))


def _pair_from_index(index: int, count: int) -> tuple[int, int]:
    """The index-th unordered pair (a <= b) of numbers below `count`, in row-major order."""
    # Row a holds the pairs (a, a) ... (a, count - 1): count - a of them.
    a = int((2 * count + 1 - np.sqrt((2 * count + 1) ** 2 - 8 * index)) // 2)
    while a > 0 and a * count - a * (a - 1) // 2 > index:
        a -= 1
    while (a + 1) * count - (a + 1) * a // 2 <= index:
        a += 1
    start = a * count - a * (a - 1) // 2
    return a, a + index - start


def generate_problems(config: AdditionConfig, rng: np.random.Generator) -> list[tuple[int, int]]:
    """`training_size` distinct problems (a, b); a + b and b + a count as one."""
    total = distinct_sums(config.digits)
    if total <= ENUMERATION_LIMIT and config.training_size > total // 10:
        # Dense requests: rejection sampling would crawl (or loop forever) as the set fills up.
        indices = rng.choice(total, size=config.training_size, replace=False)
        count = 10**config.digits
        pairs = [_pair_from_index(int(index), count) for index in indices]
        return [(b, a) if rng.random() < 0.5 else (a, b) for a, b in pairs]
    # Sparse requests: operands of random length 1..digits, as in the Keras example.
    seen: set[tuple[int, int]] = set()
    problems: list[tuple[int, int]] = []
    while len(problems) < config.training_size:
        a, b = _random_operand(rng, config.digits), _random_operand(rng, config.digits)
        key = (min(a, b), max(a, b))
        if key not in seen:
            seen.add(key)
            problems.append((a, b))
    return problems


def format_question(a: int, b: int, *, digits: int) -> str:
    """'a+b' padded with spaces to the question length."""
    return f"{a}+{b}".ljust(2 * digits + 1)


def vectorize(
    questions: list[str], answers: list[str], *, config: AdditionConfig
) -> tuple[np.ndarray, np.ndarray]:
    """One-hot inputs (reversed if asked) and targets."""
    x = np.stack(
        [
            CHARACTERS.encode(
                question[::-1] if config.reverse else question, length=config.question_length
            )
            for question in questions
        ]
    )
    y = np.stack([CHARACTERS.encode(answer, length=config.answer_length) for answer in answers])
    return x, y


def build_addition_rnn(config: AdditionConfig) -> keras.Model:
    """Encoder RNN -> RepeatVector -> `layers` decoder RNNs -> per-step softmax over characters."""
    rnn = getattr(layers, config.rnn_type)
    alphabet = len(CHARACTERS.chars)
    fast = config.recipe == "fast"
    # The sequences are at most 11 steps: unrolled, the CPU runs one graph instead of a while loop.
    options = {"unroll": True} if fast else {}
    # Explicit names keep concurrent builds in several threads from racing on Keras's name counter.
    inputs = keras.Input(shape=(config.question_length, alphabet), name="question")
    hidden = rnn(config.hidden_size, name="encoder", **options)(inputs)
    hidden = layers.RepeatVector(config.answer_length, name="repeat")(hidden)
    for index in range(config.layers):
        hidden = rnn(config.hidden_size, return_sequences=True, name=f"decoder_{index + 1}", **options)(
            hidden
        )
    outputs = layers.Dense(alphabet, activation="softmax", name="characters")(hidden)
    model = keras.Model(inputs, outputs, name=f"addition_{config.rnn_type.lower()}")
    optimizer = fast_optimizer(config) if fast else "adam"
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


@dataclass(frozen=True, slots=True)
class AdditionResult:
    """A finished (or stopped) run: the model, one event per iteration and the last test sums."""

    config: AdditionConfig
    model: keras.Model
    history: tuple[EpochEnded, ...]
    samples: SamplesDecoded | None
    stopped_reason: str | None = None
    seconds: float = 0.0
    reached_goal: bool = False  # The fast recipe stopped because it reached its goal.


def solve(model: keras.Model, questions: list[str], *, digits: int, reverse: bool = True) -> list[str]:
    """The model's answers to questions such as '12+345', stripped of padding."""
    if not questions:
        return []
    config_length = 2 * digits + 1
    padded = []
    for question in questions:
        text = question.replace(" ", "")
        if len(text) > config_length:
            raise ValueError(f"{question!r} is too long for a {digits}-digit model.")
        padded.append(text.ljust(config_length))
    x = np.stack(
        [CHARACTERS.encode(text[::-1] if reverse else text, length=config_length) for text in padded]
    )
    # Calling the model directly skips `predict`'s per-call setup, which dominates for a few rows.
    probabilities = np.asarray(model(x, training=False))
    return [CHARACTERS.decode(row).strip() for row in probabilities]


def example_question(digits: int) -> str:
    """A sum a `digits`-digit model can answer, for placeholders and messages ('12+34' for 2 digits)."""
    width = min(max(int(digits), 1), MAX_DIGITS)
    return f"{'12345'[:width]}+{'34567'[:width]}"


def parse_question(text: str, *, digits: int) -> tuple[int, int]:
    """Operands of a typed sum such as '12 + 34'; ValueError with a readable message otherwise."""
    digits = check_whole("The model's digits", digits, 1, MAX_DIGITS)
    if not isinstance(text, str):
        raise ValueError(f"Type a sum such as '{example_question(digits)}', not {type(text).__name__}.")
    typed = str.__str__(text)  # Plain text, whatever a subclass's methods do.
    cleaned = typed.replace(" ", "")
    parts = cleaned.split("+")
    if len(parts) != 2 or not all(part.isdigit() and part.isascii() for part in parts):
        raise ValueError(
            f"Type a sum of two whole numbers such as '{example_question(digits)}', not {typed[:40]!r}."
        )
    # Leading zeros are dropped before int() reads them: it refuses strings of thousands of digits.
    operands = [part.lstrip("0") or "0" for part in parts]
    if any(len(operand) > digits for operand in operands):
        raise ValueError(f"This model adds numbers of up to {digits} digits.")
    return int(operands[0]), int(operands[1])


def train_addition(
    config: AdditionConfig,
    *,
    on_event: EventSink | None = None,
    stop: threading.Event | None = None,
) -> AdditionResult:
    """Generate data, build the model and train it, sending events after every iteration."""
    started = time.perf_counter()
    rng = np.random.default_rng(config.seed)
    if config.seed is not None:
        keras.utils.set_random_seed(config.seed)
    problems = generate_problems(config, rng)
    questions = [format_question(a, b, digits=config.digits) for a, b in problems]
    answers = [str(a + b).ljust(config.answer_length) for a, b in problems]
    x, y = vectorize(questions, answers, config=config)
    # Explicitly set apart 10% for validation data that we never train over.
    split = config.training_size - config.validation_size
    x_train, x_val, y_train, y_val = x[:split], x[split:], y[:split], y[split:]
    test_questions = questions[split : split + config.test_examples]
    test_answers = [answer.strip() for answer in answers[split : split + config.test_examples]]

    model = build_addition_rnn(config)
    emit = on_event or (lambda event: None)
    last_samples: list[SamplesDecoded] = []
    goal: list[str] = []

    # Imported here: core.addition_errors builds on this module's character table.
    from core.addition_errors import answers_with_confidences, error_breakdown

    def decode_tests(epoch: int) -> None:
        breakdown = error_breakdown(
            model, problems[split:], digits=config.digits, reverse=config.reverse, epoch=epoch
        )
        emit(breakdown)
        exact_match = breakdown.exact_match
        if config.recipe == "fast" and exact_match is not None and exact_match >= FAST_GOAL_EXACT_MATCH:
            # The fast recipe's goal is reached: more iterations would only cost the class time.
            reached = (
                f"Reached {exact_match:.1%} exact match on {breakdown.total:,} held-out "
                f"sums at iteration {epoch}: the fast recipe stops at {FAST_GOAL_EXACT_MATCH:.0%}."
            )
            goal[:] = [reached]
            emit(TrainingStopped(epoch=epoch, reason=reached, reached_goal=True))
            model.stop_training = True
        if not test_questions:
            return
        predicted = answers_with_confidences(
            model, test_questions, digits=config.digits, reverse=config.reverse
        )
        samples = tuple(
            DecodedSample(
                question=question.strip(), expected=expected, predicted=answer, confidences=sure
            )
            for question, expected, (answer, sure) in zip(
                test_questions, test_answers, predicted, strict=True
            )
        )
        event = SamplesDecoded(epoch=epoch, samples=samples)
        last_samples[:] = [event]
        emit(event)

    callback = fit_live(
        model,
        x_train,
        y_train,
        epochs=config.iterations,
        batch_size=config.batch_size,
        validation_data=(x_val, y_val),
        on_event=emit,
        stop=stop,
        on_epoch=decode_tests,
    )
    return AdditionResult(
        config=config,
        model=model,
        history=tuple(callback.history),
        samples=last_samples[0] if last_samples else None,
        stopped_reason=callback.stopped_reason or (goal[0] if goal else None),
        seconds=time.perf_counter() - started,
        reached_goal=bool(goal) and callback.stopped_reason is None,
    )
