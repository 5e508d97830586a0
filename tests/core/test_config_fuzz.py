"""Config fuzz: odd values thrown at every field of every config and at the parsers of core and links.

Whatever comes in is either refused with a ValueError, or accepted and stored as the plain declared
type (`type(x) is int`, never a numpy scalar or a 0-d array) within the declared limits. Valid values,
in every form the checks take (numpy scalars of valid numbers included), must be accepted as their
plain values.
"""

from __future__ import annotations

import dataclasses
import decimal
import fractions
import math
import re
import types
import typing
from collections.abc import Callable

import hypothesis.extra.numpy as hnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core import classboard
from core.addition import (
    FIELD_LABELS,
    FIELD_LIMITS,
    MAX_DIGITS,
    MAX_TRAINING_SIZE,
    RECIPES,
    RNN_TYPES,
    AdditionConfig,
    distinct_sums,
    parse_question,
)
from core.classboard import AttemptLimiter, ClassBoard, teacher_code_matches, validate_code
from core.digits import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_LEARNING_RATE,
    MIN_LEARNING_RATE,
    MIN_TRAINING_SIZE,
    MODELS,
    TRAINING_SIZE_LABEL,
    DigitsConfig,
)
from core.digits import MAX_TRAINING_SIZE as MAX_DIGITS_TRAINING_SIZE
from core.mnist import MnistData
from core.modelstore import store as model_store
from core.modelstore.cache import MAX_BYTES, ModelCache
from core.modelstore.formats import FORMATS, QUANTIZATIONS, STORED_FORMATS, check_format, tflite_format
from core.modelstore.store import ModelNotFoundError, ModelStore
from core.personal import FINETUNE_LABELS, FINETUNE_LIMITS, FinetuneConfig, PersonalDigits
from core.settings import env_number
from core.tasks import TASK_NAMES
from core.training_spec import TASKS, TrainingSpec
from ui.lessons import FIELDS, digits_values_from_query, lesson_from_query
from ui.links import form_values_from_query

FUZZ = settings(max_examples=60, deadline=None)
# The config tests draw a field first, so they need more examples to reach every field several times.
CONFIG_FUZZ = settings(max_examples=400, deadline=None)
SEED_LIMITS = (0, 2**32 - 1)
# Beyond float's range, so a float conversion overflows; small enough for repr() to show it when a
# falsifying example is reported (2**16609 itself is checked by name below).
HUGE = 2**14_000


# Values that misbehave: each stands for a caller that passes something odd through a duck-typed API.


class Unconvertible:
    """An object whose every numeric and truth conversion raises."""

    def __int__(self) -> int:
        raise RuntimeError("no int")

    def __index__(self) -> int:
        raise RuntimeError("no index")

    def __float__(self) -> float:
        raise RuntimeError("no float")

    def __bool__(self) -> bool:
        raise RuntimeError("no bool")

    def __repr__(self) -> str:
        return "Unconvertible()"


class LyingInt(int):
    """An int whose own conversions raise: only its value may be used."""

    def __int__(self) -> int:
        raise RuntimeError("no int")

    def __index__(self) -> int:
        raise RuntimeError("no index")

    def __float__(self) -> float:
        raise RuntimeError("no float")

    def __repr__(self) -> str:
        return f"LyingInt({int.__repr__(self)})"


class LyingFloat(float):
    """A float whose own conversions raise."""

    def __float__(self) -> float:
        raise RuntimeError("no float")

    def __int__(self) -> int:
        raise RuntimeError("no int")

    def __repr__(self) -> str:
        return f"LyingFloat({float.__repr__(self)})"


class LyingStr(str):
    """A str whose own conversions and methods raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def strip(self, *arguments: object) -> str:
        raise RuntimeError("no strip")

    def lower(self) -> str:
        raise RuntimeError("no lower")

    def replace(self, *arguments: object) -> str:
        raise RuntimeError("no replace")

    def __repr__(self) -> str:
        return f"LyingStr({str.__repr__(self)})"


class EqualsEverything:
    """Compares equal to anything, so `value in choices` is always true."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return 0

    def __repr__(self) -> str:
        return "EqualsEverything()"


DTYPES = st.one_of(
    hnp.scalar_dtypes(), hnp.byte_string_dtypes(max_len=3), hnp.unicode_string_dtypes(max_len=3)
)
NUMPY_SCALARS = hnp.arrays(DTYPES, shape=()).map(lambda array: array[()])
ARRAYS = st.one_of(
    hnp.arrays(DTYPES, shape=()),
    hnp.arrays(DTYPES, shape=hnp.array_shapes(min_dims=1, max_dims=1, min_side=0, max_side=3)),
)
SPECIAL_NUMBERS = st.sampled_from(
    [math.nan, math.inf, -math.inf, -0.0, 0.0, HUGE, -HUGE, 2**63, 2**64, -(2**63) - 1, 10**30]
)
HOSTILE = st.sampled_from(
    [
        Unconvertible(),
        LyingInt(3),
        LyingFloat(0.5),
        LyingStr("LSTM"),
        LyingStr("seed"),
        EqualsEverything(),
    ]
)
# Anything a caller might pass for any field.
ODD = st.one_of(
    NUMPY_SCALARS,
    ARRAYS,
    st.booleans(),
    SPECIAL_NUMBERS,
    st.integers(),
    st.floats(),
    st.decimals(),
    st.fractions(),
    st.complex_numbers(),
    st.binary(max_size=4),
    st.integers(-10, 10**6).map(str),
    st.text(max_size=6),
    st.none(),
    HOSTILE,
    st.lists(st.integers(), max_size=2),
    st.sampled_from([{}, (), object(), np.timedelta64(5, "s"), np.datetime64(5, "s")]),
)
# Values that are never a number of any kind.
NOT_NUMBERS = st.one_of(
    st.booleans(),
    st.sampled_from([np.True_, np.False_, None, "3", " 3", "0.5", b"3", Unconvertible()]),
    st.sampled_from([EqualsEverything(), LyingStr("3"), decimal.Decimal(3), fractions.Fraction(1, 2)]),
    st.sampled_from([3 + 0j, np.complex128(3), np.timedelta64(3, "s"), np.datetime64(3, "s")]),
    ARRAYS,
    st.lists(st.integers(), max_size=2),
)


# Rules: what a field takes, how to draw its valid values (as given, as stored) and its invalid ones.


@dataclasses.dataclass(frozen=True)
class Rule:
    """What one field takes: a kind ('whole', 'number', 'flag' or 'choice') and its limits or choices."""

    kind: str
    low: float = 0
    high: float = 0
    choices: tuple[str, ...] = ()
    optional: bool = False  # None is accepted (and stored) too.
    zero_is_none: bool = False  # 0 is accepted and stored as None (DigitsConfig's "all images").
    label: str = ""  # The form's name of the field, which a refusal must name.

    def holds(self, value: object) -> bool:
        """Whether a stored value is the plain declared type within the limits."""
        if value is None:
            return self.optional
        if self.kind == "whole":
            return type(value) is int and self.low <= value <= self.high
        if self.kind == "number":
            return type(value) is float and math.isfinite(value) and self.low <= value <= self.high
        if self.kind == "flag":
            return type(value) is bool
        return type(value) is str and value in self.choices

    def valid(self) -> st.SearchStrategy[tuple[object, object]]:
        """(value as given, value as stored) for values within the rule, in every accepted form."""
        if self.kind == "whole":
            forms = integer_forms(int(self.low), int(self.high))
        elif self.kind == "number":
            forms = number_forms(self.low, self.high)
        elif self.kind == "flag":
            forms = st.booleans().flatmap(
                lambda flag: st.sampled_from([(flag, flag), (np.bool_(flag), flag)])
            )
        else:
            forms = st.sampled_from(self.choices).flatmap(
                lambda choice: st.sampled_from(
                    [(choice, choice), (np.str_(choice), choice), (LyingStr(choice), choice)]
                )
            )
        return st.one_of(st.just((None, None)), forms) if self.optional else forms

    def invalid(self) -> st.SearchStrategy[object]:
        """Values the rule must refuse."""
        if self.kind == "whole":
            bad = st.one_of(
                NOT_NUMBERS,
                st.floats(),  # Even 3.0: a count is typed as a whole number.
                st.sampled_from([np.float64(3.0), np.float32(2.0), LyingFloat(2.0), HUGE, -HUGE]),
                st.integers(max_value=int(self.low) - 1),
                st.integers(min_value=int(self.high) + 1),
            )
        elif self.kind == "number":
            bad = st.one_of(
                NOT_NUMBERS,
                st.sampled_from([math.nan, math.inf, -math.inf, HUGE, -HUGE, np.float64(math.nan)]),
                st.floats(max_value=self.low, exclude_max=True, allow_nan=False),
                st.floats(min_value=self.high, exclude_min=True, allow_nan=False),
                st.integers(min_value=math.floor(self.high) + 1),
                st.integers(max_value=math.ceil(self.low) - 1),
            )
        elif self.kind == "flag":
            bad = st.one_of(
                st.sampled_from([0, 1, 0.0, "true", "false", "", b"1", np.int8(1), np.array(True)]),
                st.sampled_from([np.array([True]), EqualsEverything(), Unconvertible(), [True]]),
            )
        else:
            bad = st.one_of(
                st.text(max_size=10).filter(lambda text: text not in self.choices),
                st.sampled_from(self.choices).flatmap(
                    lambda choice: st.sampled_from(
                        [choice.encode(), np.array(choice), np.array([choice]), [choice], choice + " "]
                    )
                ),
                st.sampled_from([None, 0, 1.0, EqualsEverything(), LyingStr("nope"), np.str_("nope")]),
            )
        if self.zero_is_none:
            bad = bad.filter(lambda value: not (type(value) is int and value == 0))
        return bad.filter(lambda value: value is not None) if self.optional else bad


def integer_forms(low: int, high: int) -> st.SearchStrategy[tuple[object, object]]:
    """(value as given, plain int stored) for whole numbers in [low, high], as int, numpy or subclass."""
    kinds = (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)

    def forms(number: int) -> st.SearchStrategy[tuple[object, object]]:
        fitting = [kind for kind in kinds if np.iinfo(kind).min <= number <= np.iinfo(kind).max]
        return st.sampled_from([int, LyingInt, *fitting]).map(lambda kind: (kind(number), number))

    return st.integers(low, high).flatmap(forms)


def number_forms(low: float, high: float) -> st.SearchStrategy[tuple[object, object]]:
    """(value as given, plain float stored) for numbers in [low, high]: floats of each width, ints."""

    def forms(number: float) -> st.SearchStrategy[tuple[object, object]]:
        candidates = [(number, number), (np.float64(number), number), (LyingFloat(number), number)]
        for kind in (np.float32, np.float16, np.longdouble):
            narrowed = kind(number)
            # A narrower float may round out of the limits; those are rightly refused.
            if low <= float(narrowed) <= high:
                candidates.append((narrowed, float(narrowed)))
        return st.sampled_from(candidates)

    wholes = (
        integer_forms(math.ceil(low), math.floor(high)).map(lambda case: (case[0], float(case[1])))
        if math.ceil(low) <= math.floor(high)
        else st.nothing()
    )
    return st.one_of(st.floats(low, high).flatmap(forms), wholes)


SEED_RULE = Rule("whole", *SEED_LIMITS, optional=True, label="Seed")
ADDITION_RULES = {
    **{
        name: Rule("whole", low, high, label=FIELD_LABELS[name])
        for name, (low, high) in FIELD_LIMITS.items()
    },
    "rnn_type": Rule("choice", choices=RNN_TYPES, label=FIELD_LABELS["rnn_type"]),
    "reverse": Rule("flag", label=FIELD_LABELS["reverse"]),
    "recipe": Rule("choice", choices=RECIPES, label=FIELD_LABELS["recipe"]),
    "seed": SEED_RULE,
}
DIGITS_RULES = {
    "model": Rule("choice", choices=tuple(MODELS), label="Model"),
    "epochs": Rule("whole", 1, MAX_EPOCHS, label="Epochs"),
    "batch_size": Rule("whole", 1, MAX_BATCH_SIZE, label="Batch size"),
    "learning_rate": Rule("number", MIN_LEARNING_RATE, MAX_LEARNING_RATE, label="Learning rate"),
    "decay": Rule("flag", label="Decay the learning rate"),
    "training_size": Rule(
        "whole",
        MIN_TRAINING_SIZE,
        MAX_DIGITS_TRAINING_SIZE,
        optional=True,
        zero_is_none=True,
        label=TRAINING_SIZE_LABEL,
    ),
    "augment": Rule("flag", label="Augment"),
    "seed": SEED_RULE,
}
FINETUNE_RULES = {
    **{
        name: Rule(
            "number" if isinstance(low, float) else "whole", low, high, label=FINETUNE_LABELS[name]
        )
        for name, (low, high) in FINETUNE_LIMITS.items()
    },
    "seed": SEED_RULE,
}


def addition_base(field: str) -> dict[str, object]:
    """Other fields chosen so that any value of `field` within its own limits fits them."""
    if field == "test_examples":
        return {"digits": MAX_DIGITS, "training_size": MAX_TRAINING_SIZE}
    return {"digits": MAX_DIGITS, "training_size": 10, "test_examples": 0}


CONFIGS: dict[str, tuple[Callable[..., object], dict[str, Rule], Callable[[str], dict[str, object]]]] = {
    "AdditionConfig": (AdditionConfig, ADDITION_RULES, addition_base),
    "DigitsConfig": (DigitsConfig, DIGITS_RULES, lambda field: {}),
    "FinetuneConfig": (FinetuneConfig, FINETUNE_RULES, lambda field: {}),
}


def assert_plain_config(config: object, rules: dict[str, Rule]) -> None:
    """Every field is declared by a rule and holds its plain type within the limits."""
    fields = {field.name for field in dataclasses.fields(config)}  # type: ignore[arg-type]
    assert fields == set(rules), "a field of the config has no rule in this test"
    hints = typing.get_type_hints(type(config))
    for name, rule in rules.items():
        value = getattr(config, name)
        assert rule.holds(value), f"{name} holds {type(value).__name__} {value!r}"
        # The rule agrees with the annotation: the stored type is one the field declares.
        declared = typing.get_args(hints[name]) if isinstance(hints[name], types.UnionType) else ()
        assert type(value) in (declared or (hints[name],))
    if isinstance(config, AdditionConfig):
        assert config.training_size <= distinct_sums(config.digits)
        assert config.test_examples <= config.validation_size


def built_or_refused(build: Callable[[], object]) -> object | None:
    """What `build` returns, or None if it raised ValueError with a message; other errors propagate."""
    try:
        return build()
    except ValueError as error:
        assert str(error), "a refusal must say why"
        return None


def config_field(name: str) -> st.SearchStrategy[tuple[str, str]]:
    """(config name, field name) for every field of the config."""
    return st.sampled_from(sorted(CONFIGS[name][1])).map(lambda field: (name, field))


EVERY_FIELD = st.one_of(*(config_field(name) for name in CONFIGS))


@CONFIG_FUZZ
@given(EVERY_FIELD, ODD)
def test_odd_values_in_any_config_field_are_refused_or_stored_plain(where, value):
    name, field = where
    build, rules, base = CONFIGS[name]
    config = built_or_refused(lambda: build(**{**base(field), field: value}))
    if config is not None:
        assert_plain_config(config, rules)


@CONFIG_FUZZ
@given(EVERY_FIELD, st.data())
def test_valid_values_in_any_form_are_accepted_as_plain_values(where, data):
    name, field = where
    build, rules, base = CONFIGS[name]
    given_value, stored = data.draw(rules[field].valid(), label="value")
    config = build(**{**base(field), field: given_value})
    assert getattr(config, field) == stored and type(getattr(config, field)) is type(stored)
    assert_plain_config(config, rules)


@CONFIG_FUZZ
@given(EVERY_FIELD, st.data())
def test_invalid_values_are_refused_naming_the_field(where, data):
    name, field = where
    build, rules, base = CONFIGS[name]
    value = data.draw(rules[field].invalid(), label="value")
    with pytest.raises(ValueError) as refused:
        build(**{**base(field), field: value})
    # The message names the field as the form labels it ("Training size", "RNN type", "Seed").
    assert str(refused.value).startswith(rules[field].label)


@pytest.mark.parametrize("size", [1, MIN_TRAINING_SIZE - 1, np.int64(50), -1])
def test_digits_training_sizes_below_the_minimum_name_the_form_field(size):
    with pytest.raises(ValueError, match=f"Training images must be at least {MIN_TRAINING_SIZE}"):
        DigitsConfig(training_size=size)


@pytest.mark.parametrize(
    "build",
    [
        lambda: AdditionConfig(digits=np.timedelta64(5)),
        lambda: AdditionConfig(rnn_type=np.array("LSTM")),
        lambda: AdditionConfig(training_size=2**16609),
        lambda: DigitsConfig(learning_rate=2**16609),
        lambda: DigitsConfig(learning_rate=-(2**16609)),
        lambda: DigitsConfig(learning_rate=np.timedelta64(1, "ms")),
        lambda: DigitsConfig(epochs=np.array(5)),
        lambda: FinetuneConfig(learning_rate=2**16609),
        lambda: FinetuneConfig(held_out_fraction=np.timedelta64(1)),
        lambda: FinetuneConfig(epochs=np.int64(2) * np.timedelta64(1)),
        lambda: FinetuneConfig(seed=LyingFloat(3.0)),
    ],
    ids=[
        "addition-digits-timedelta64",
        "addition-rnn-type-0d-array",
        "addition-training-size-2**16609",
        "digits-rate-2**16609",
        "digits-rate-minus-2**16609",
        "digits-rate-timedelta64",
        "digits-epochs-0d-array",
        "finetune-rate-2**16609",
        "finetune-fraction-timedelta64",
        "finetune-epochs-timedelta64",
        "finetune-seed-float",
    ],
)
def test_the_reported_odd_values_are_refused_with_value_error(build):
    # Each of these raised TypeError, OverflowError or UFuncTypeError, or was stored as it came.
    with pytest.raises(ValueError):
        build()


# TrainingSpec.


class AdditionConfigLookalike:
    """A class that is named like the real config but is not it."""


AdditionConfigLookalike.__name__ = AdditionConfigLookalike.__qualname__ = "AdditionConfig"
SMALL_MNIST = MnistData(
    train_images=np.zeros((2, 28, 28), np.uint8),
    train_labels=np.zeros(2, np.uint8),
    test_images=np.zeros((1, 28, 28), np.uint8),
    test_labels=np.zeros(1, np.uint8),
    source="two blank images",
)


@FUZZ
@given(
    task=st.one_of(
        ODD, st.sampled_from(TASKS), st.sampled_from([np.str_("digits"), np.array("addition")])
    ),
    config=st.sampled_from(
        [AdditionConfig(), DigitsConfig(), AdditionConfigLookalike(), None, "digits"]
    ),
    data=st.one_of(st.none(), st.just(SMALL_MNIST), ODD),
)
def test_training_specs_hold_a_plain_task_and_its_own_config(task, config, data):
    spec = built_or_refused(lambda: TrainingSpec(task=task, config=config, data=data))
    if spec is None:
        return
    assert isinstance(spec, TrainingSpec)
    assert type(spec.task) is str and spec.task in TASKS
    expected = {"addition": AdditionConfig, "digits": DigitsConfig}[spec.task]
    assert type(spec.config) is expected
    assert spec.data is None or (spec.task == "digits" and isinstance(spec.data, MnistData))


@pytest.mark.parametrize("task", TASKS)
def test_training_specs_take_each_task_with_its_config(task):
    config = AdditionConfig() if task == "addition" else DigitsConfig()
    spec = TrainingSpec(task=np.str_(task), config=config)
    assert type(spec.task) is str and spec.task == task and spec.config is config


# Parsers: the typed sum, environment settings, names and codes, model-store choices.


@FUZZ
@given(st.one_of(ODD, st.text(max_size=12)), st.one_of(ODD, st.integers(1, MAX_DIGITS)))
def test_typed_sums_are_parsed_to_plain_operands_or_refused(text, digits):
    operands = built_or_refused(lambda: parse_question(text, digits=digits))
    if operands is None:
        return
    assert isinstance(operands, tuple) and len(operands) == 2
    # Accepted, so `digits` is a whole number of 1 to 5 (its own class's conversion may raise).
    number = int.__index__(digits) if isinstance(digits, int) else int(digits)
    assert all(type(operand) is int and 0 <= operand < 10**number for operand in operands)


ENVIRONMENT_TEXT = st.one_of(
    st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8),
    st.sampled_from(["nan", "inf", "-inf", "1e400", "1e-400", "9" * 5000, "١٢", "1_0", "0x10", " 7 "]),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=False).map(repr),
)


@FUZZ
@given(ENVIRONMENT_TEXT, st.booleans())
def test_environment_numbers_are_plain_and_within_limits_or_refused(text, whole):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LTL_FUZZ_SETTING", text)
        value = built_or_refused(
            lambda: env_number("LTL_FUZZ_SETTING", default=5, low=1, high=1_000, whole=whole)
        )
    if value is None:
        return
    assert type(value) is (int if whole else float)
    assert isinstance(value, int | float) and 1 <= value <= 1_000
    if not text.strip():
        assert value == 5  # Unset (or blank) falls back to the default.


@FUZZ
@given(st.integers(1, 1_000), st.sampled_from(["", " ", "+", "0"]), st.booleans())
def test_environment_numbers_in_range_are_read(number, prefix, whole):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LTL_FUZZ_SETTING", f" {prefix}{number} " if whole else f"{number}.0")
        value = env_number("LTL_FUZZ_SETTING", default=5, low=1, high=1_000, whole=whole)
    assert value == number and type(value) is (int if whole else float)


@FUZZ
@given(st.one_of(ODD, st.text(max_size=40)))
def test_class_board_names_and_codes_are_plain_text_or_refused(value):
    name = built_or_refused(lambda: classboard.validate_name(value))
    if name is not None:
        assert type(name) is str and 1 <= len(name) <= classboard.MAX_NAME_LENGTH
        assert name == name.strip(" ") and any(character.isalnum() for character in name)
    code = built_or_refused(lambda: validate_code(value))
    if code is not None:
        assert type(code) is str and re.fullmatch(r"[a-z0-9]{6}", code)
    # The teacher code is only ever matched by the same text.
    assert teacher_code_matches(value, "owl-42") == (isinstance(value, str) and value == "owl-42")


@FUZZ
@given(
    st.one_of(integer_forms(1, classboard.MAX_TEACHER_ATTEMPTS).map(lambda case: case[0]), ODD),
    st.one_of(number_forms(0.001, classboard.MAX_TEACHER_WINDOW_SECONDS).map(lambda case: case[0]), ODD),
)
def test_attempt_limits_are_plain_or_refused(attempts, window):
    limiter = built_or_refused(lambda: AttemptLimiter(attempts=attempts, window=window))
    if limiter is None:
        return
    assert isinstance(limiter, AttemptLimiter)
    assert Rule("whole", 1, classboard.MAX_TEACHER_ATTEMPTS).holds(limiter.attempts)
    assert Rule("number", 0.001, classboard.MAX_TEACHER_WINDOW_SECONDS).holds(limiter.window)
    assert limiter.wait_seconds(now=0.0) == 0.0


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    with ClassBoard(tmp_path_factory.mktemp("fuzz-board") / "board.sqlite3", keep_days=1) as opened:
        yield opened


@FUZZ
@given(
    page=st.one_of(ODD, st.sampled_from(classboard.PAGES)),
    state=st.one_of(ODD, st.sampled_from(tuple(classboard.STATES.values()))),
    job_id=st.one_of(ODD, st.text(min_size=1, max_size=8)),
)
def test_class_board_runs_are_recorded_as_plain_text_or_refused(board, page, state, job_id):
    code = board.create_class()
    run_id = built_or_refused(
        lambda: board.add_run(code, job_id=job_id, name="Ada", page=page, state=state, config={})
    )
    if run_id is None:
        return
    (run,) = board.board(code).runs
    assert (type(run.page), type(run.state), type(run.job_id)) == (str, str, str)
    assert run.page in classboard.PAGES and run.state in classboard.STATES.values()


@FUZZ
@given(
    st.one_of(
        ODD,
        number_forms(classboard.MIN_CLASS_DAYS, classboard.MAX_CLASS_DAYS).map(lambda case: case[0]),
    )
)
def test_class_board_keep_days_are_plain_or_refused(tmp_path_factory, keep_days):
    path = tmp_path_factory.mktemp("keep-days") / "board.sqlite3"
    opened = built_or_refused(lambda: ClassBoard(path, keep_days=keep_days))
    if opened is None:
        assert not path.exists()  # Refused before the database was created.
        return
    assert isinstance(opened, ClassBoard)
    opened.close()
    assert Rule("number", classboard.MIN_CLASS_DAYS, classboard.MAX_CLASS_DAYS).holds(opened.keep_days)


@FUZZ
@given(st.one_of(ODD, st.text(max_size=70), st.sampled_from([np.str_("model"), LyingStr("model")])))
def test_model_names_are_plain_text_or_refused(name):
    accepted = built_or_refused(lambda: model_store.validate_name(name))
    if accepted is not None:
        assert type(accepted) is str and accepted == str.__str__(name)


@FUZZ
@given(st.one_of(ODD, st.sampled_from(tuple(FORMATS)), st.sampled_from(QUANTIZATIONS)), st.booleans())
def test_format_and_quantization_choices_are_plain_text_or_refused(choice, stored):
    model_format = built_or_refused(lambda: check_format(choice, stored=stored))
    if model_format is not None:
        assert model_format in FORMATS.values() and model_format.name == choice
        assert not stored or model_format.name in STORED_FORMATS
    name = built_or_refused(lambda: tflite_format(choice))
    if name is not None:
        assert type(name) is str and name in FORMATS and name == f"tflite-{choice}"


@FUZZ
@given(
    st.one_of(ODD, integer_forms(1, MAX_BYTES).map(lambda case: case[0])),
    st.one_of(ODD, integer_forms(0, 100).map(lambda case: case[0])),
    st.one_of(ODD, st.text(max_size=4)),
)
def test_model_cache_sizes_and_ids_are_plain_or_refused(max_bytes, size, model_id):
    cache = built_or_refused(lambda: ModelCache(max_bytes))
    if cache is None:
        return
    assert isinstance(cache, ModelCache) and Rule("whole", 1, MAX_BYTES).holds(cache.max_bytes)
    loaded = built_or_refused(lambda: cache.get_or_load(model_id, lambda: "model", size=size))
    if loaded is not None:
        assert loaded == "model"
        entries = cache.entries()
        assert all(type(entry.model_id) is str and type(entry.size) is int for entry in entries)
        assert cache.stats().used_bytes <= cache.max_bytes


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory):
    with ModelStore(tmp_path_factory.mktemp("fuzz-store")) as opened:
        yield opened


@FUZZ
@given(st.one_of(ODD, st.sampled_from(TASK_NAMES)))
def test_model_store_ids_and_tasks_are_looked_up_or_refused(store, value):
    # No model is saved, so every id is unknown: a ValueError (ModelNotFoundError), never a crash.
    with pytest.raises(ModelNotFoundError):
        store.get(value)
    listed = built_or_refused(lambda: store.list_models(value))
    assert listed in (None, [])
    assert listed == [] or not (isinstance(value, str) and value in TASK_NAMES)


# Link parsers (ui/, but pure functions): each value is used as its plain type, or reported.

QUERY_TEXT = st.one_of(
    st.text(max_size=8),
    st.integers(-10, 10**6).map(str),
    st.floats().map(str),
    st.sampled_from(
        ["9" * 5000, "١٢", "²", "1_0", "0x10", " 5 ", "+3", "-0", "1e-3", "GRU", "seed", "TRUE"]
    ),
)
QUERY_VALUE = st.one_of(QUERY_TEXT, QUERY_TEXT, ODD)


@FUZZ
@given(st.dictionaries(st.sampled_from([*FIELDS["addition"], "other"]), QUERY_VALUE))
def test_addition_links_give_plain_presets_each_valid_alone(params):
    values, problems = form_values_from_query(params)
    assert set(values) <= set(params) and all(type(problem) is str and problem for problem in problems)
    for field, value in values.items():
        assert ADDITION_RULES[field].holds(value), f"{field}={value!r}"
    # Every parameter of the form is either used or reported.
    assert len(values) + len(problems) == len(set(params) & set(FIELDS["addition"]))


@FUZZ
@given(st.dictionaries(st.sampled_from([*FIELDS["digits"], "other"]), QUERY_VALUE))
def test_digits_links_give_plain_presets_each_valid_alone(params):
    values, problems = digits_values_from_query(params)
    assert set(values) <= set(params) and all(type(problem) is str and problem for problem in problems)
    for field, value in values.items():
        # 0 means every image: the form stores it as None.
        if not (field == "training_size" and value == 0):
            assert DIGITS_RULES[field].holds(value), f"{field}={value!r}"
        DigitsConfig(**{field: value})
    assert len(values) + len(problems) == len(set(params) & set(FIELDS["digits"]))


@FUZZ
@given(
    st.one_of(ODD, st.sampled_from(sorted(FIELDS))),
    st.dictionaries(st.sampled_from(["lock", "hide", "digits", "epochs"]), QUERY_VALUE),
)
def test_lesson_links_are_read_or_refused(page, params):
    read = built_or_refused(lambda: lesson_from_query(page, params))
    if read is None:
        return
    lesson, problems = read
    assert all(type(problem) is str and problem for problem in problems)
    if lesson is not None:
        assert type(lesson.page) is str and lesson.page in FIELDS
        assert lesson.locked <= set(FIELDS[lesson.page]) and lesson.hidden <= set(FIELDS[lesson.page])


# Personal digits: labels and example numbers.

BLANK_IMAGE = np.zeros((28, 28), np.float32)


@FUZZ
@given(st.one_of(ODD, integer_forms(0, 9).map(lambda case: case[0])), st.one_of(ODD, st.integers(-2, 2)))
def test_personal_labels_and_indices_are_used_or_refused(label, index):
    examples = PersonalDigits()
    examples.add(BLANK_IMAGE, 1)
    try:
        examples.add(BLANK_IMAGE, label)
    except ValueError as error:
        assert "label" in str(error) and len(examples) == 1
    else:
        _, kept = examples.arrays()[1].tolist()
        assert len(examples) == 2 and 0 <= kept <= 9
        assert kept == (int.__index__(label) if isinstance(label, int) else int(label))
    count = len(examples)
    try:
        examples.delete_example(index)
    except ValueError as error:
        assert "no example number" in str(error) and len(examples) == count
    else:
        assert len(examples) == count - 1


@FUZZ
@given(integer_forms(0, 9))
def test_personal_labels_in_any_integer_form_are_kept(case):
    label, expected = case
    examples = PersonalDigits()
    examples.add(BLANK_IMAGE, label)
    assert examples.arrays()[1].tolist() == [expected]


def test_fuzz_helpers_tell_plain_values_from_numpy_ones():
    # The rules themselves: a numpy scalar is refused where its plain value holds.
    assert not Rule("whole", 0, 9).holds(np.int64(3)) and Rule("whole", 0, 9).holds(3)
    assert not Rule("whole", 0, 9).holds(True) and not Rule("whole", 0, 9).holds(10)
    assert not Rule("number", 0, 1).holds(np.float64(0.5)) and Rule("number", 0, 1).holds(0.5)
    assert not Rule("choice", choices=("a",)).holds(np.str_("a")) and Rule(
        "choice", choices=("a",)
    ).holds("a")
    assert built_or_refused(lambda: int("x")) is None
    with pytest.raises(TypeError):
        built_or_refused(lambda: int(None))
