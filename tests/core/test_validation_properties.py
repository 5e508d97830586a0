"""Property tests in both directions: valid input is accepted as its plain value, invalid is refused.

Each checker has a generator of valid inputs (accepted, and stored or returned as the plain declared
type) and one of invalid inputs (refused with a ValueError that says why). The last test swaps each
checker for a stub that accepts everything and for one that refuses everything, and checks that a
property then fails: a property that passes against either stub would prove nothing.
"""

import sys

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from core.addition import (
    FIELD_LABELS,
    FIELD_LIMITS,
    MAX_DIGITS,
    MAX_TEST_EXAMPLES,
    MAX_TRAINING_SIZE,
    RECIPES,
    RNN_TYPES,
    AdditionConfig,
    distinct_sums,
    parse_question,
)
from core.digits import (
    MAX_BATCH_SIZE,
    MAX_EPOCHS,
    MAX_LEARNING_RATE,
    MIN_LEARNING_RATE,
    MIN_TRAINING_SIZE,
    MODELS,
    DigitsConfig,
)
from core.modelstore.store import MAX_NAME_LENGTH, validate_name
from ui.links import QUERY_FIELDS, form_values_from_query

# No example database: the stub check below would otherwise store its failures for the real runs.
PROPERTY = settings(max_examples=120, deadline=None, database=None)
# Integer types a numpy caller may pass; each valid whole number is also tried in the ones that hold it.
INTEGER_TYPES = (int, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
NUMERIC_FIELDS = tuple(FIELD_LIMITS)
# Values no whole-number field may take, whatever its limits.
NOT_WHOLE = st.one_of(
    st.booleans(),
    st.sampled_from([np.True_, np.False_, None, "3", b"3", 3.0, float("nan"), float("inf"), 2.5]),
    st.sampled_from([np.timedelta64(3, "D"), np.datetime64(3, "D"), np.array(3), np.array([3]), 3 + 0j]),
    st.sampled_from([2**14000, -(2**14000), np.float64(3.0), np.float32(2.0)]),
)


def integer_forms(low: int, high: int) -> st.SearchStrategy[tuple[object, int]]:
    """(value as given, the plain int it must become) for whole numbers in [low, high]."""

    def in_a_type(number: int) -> st.SearchStrategy[tuple[object, int]]:
        fitting = [
            kind
            for kind in INTEGER_TYPES
            if kind is int or np.iinfo(kind).min <= number <= np.iinfo(kind).max
        ]
        return st.sampled_from(fitting).map(lambda kind: (kind(number), number))

    return st.integers(low, high).flatmap(in_a_type)


def text_forms(choices: tuple[str, ...]) -> st.SearchStrategy[tuple[object, str]]:
    """(value as given, the plain str it must become) for each choice, as str or numpy str_."""
    return st.sampled_from(choices).flatmap(
        lambda choice: st.sampled_from([(choice, choice), (np.str_(choice), choice)])
    )


def flag_forms() -> st.SearchStrategy[tuple[object, bool]]:
    """(value as given, the plain bool it must become)."""
    return st.booleans().flatmap(lambda flag: st.sampled_from([(flag, flag), (np.bool_(flag), flag)]))


def assert_stored(config: object, expected: dict[str, object]) -> None:
    """Every field holds exactly the expected plain value: equal, and of the plain type itself."""
    for name, value in expected.items():
        stored = getattr(config, name)
        assert stored == value, f"{name}: {stored!r} != {value!r}"
        # `type(...) is`, not isinstance: a numpy scalar or a 0-d array would pass isinstance checks.
        assert type(stored) is type(value), f"{name} is stored as {type(stored).__name__}"


# AdditionConfig.


@st.composite
def valid_addition(draw: st.DrawFn) -> tuple[dict[str, object], dict[str, object]]:
    """Keyword arguments of a valid AdditionConfig, in plain and numpy forms, and the values to store."""
    given: dict[str, object] = {}
    expected: dict[str, object] = {}

    def take(name: str, form: st.SearchStrategy[tuple[object, object]]) -> object:
        given[name], expected[name] = draw(form)
        return expected[name]

    digits = take("digits", integer_forms(1, MAX_DIGITS))
    assert isinstance(digits, int)
    training_size = take(
        "training_size", integer_forms(10, min(MAX_TRAINING_SIZE, distinct_sums(digits)))
    )
    assert isinstance(training_size, int)
    take("test_examples", integer_forms(0, min(MAX_TEST_EXAMPLES, max(1, training_size // 10))))
    for name in ("layers", "hidden_size", "batch_size", "iterations"):
        take(name, integer_forms(*FIELD_LIMITS[name]))
    take("rnn_type", text_forms(RNN_TYPES))
    take("reverse", flag_forms())
    return given, expected


@st.composite
def invalid_addition(draw: st.DrawFn) -> tuple[dict[str, object], str]:
    """Keyword arguments with one field out of its limits or of the wrong kind, or fields that misfit."""
    given, _ = draw(valid_addition())
    field = draw(st.sampled_from((*NUMERIC_FIELDS, "rnn_type", "reverse", "fit")))
    if field in NUMERIC_FIELDS:
        low, high = FIELD_LIMITS[field]
        given[field] = draw(
            st.one_of(st.integers(max_value=low - 1), st.integers(min_value=high + 1), NOT_WHOLE)
        )
        return given, FIELD_LABELS[field]
    if field == "rnn_type":
        given[field] = draw(
            st.one_of(
                st.text(max_size=8).filter(lambda text: text not in RNN_TYPES),
                st.sampled_from([np.array("LSTM"), b"GRU", None, 1, ["GRU"]]),
            )
        )
        return given, FIELD_LABELS[field]
    if field == "reverse":
        given[field] = draw(st.sampled_from([0, 1, "true", None, np.array(True), 1.0]))
        return given, FIELD_LABELS[field]
    # Fields within their limits but not together: more sums than exist, or more tests than held out.
    if draw(st.booleans()):
        given.update(digits=1, training_size=draw(st.integers(distinct_sums(1) + 1, MAX_TRAINING_SIZE)))
        return given, "distinct sums"
    training_size = draw(st.integers(10, 9_999))
    given.update(
        digits=MAX_DIGITS,
        training_size=training_size,
        test_examples=draw(st.integers(training_size // 10 + 1, MAX_TEST_EXAMPLES)),
    )
    return given, "test examples"


def accepts_valid_addition(case):
    given_values, expected = case
    assert_stored(AdditionConfig(**given_values), expected)


@PROPERTY
@given(valid_addition())
def test_valid_addition_configs_are_accepted_as_plain_values(case):
    accepts_valid_addition(case)


def refuses_invalid_addition(case):
    given_values, named = case
    with pytest.raises(ValueError) as refused:
        AdditionConfig(**given_values)
    # The message names the field as the form shows it (or the rule the fields broke together).
    assert named in str(refused.value)


@PROPERTY
@given(invalid_addition())
def test_invalid_addition_configs_are_refused_naming_the_field(case):
    refuses_invalid_addition(case)


# DigitsConfig.


def learning_rates() -> st.SearchStrategy[tuple[object, float]]:
    """(value as given, the plain float it must become) for learning rates within the limits."""
    rates = st.floats(MIN_LEARNING_RATE, MAX_LEARNING_RATE)
    as_float32 = rates.map(np.float32).filter(
        lambda rate: MIN_LEARNING_RATE <= float(rate) <= MAX_LEARNING_RATE
    )
    return st.one_of(
        rates.map(lambda rate: (rate, rate)),
        rates.map(lambda rate: (np.float64(rate), rate)),
        as_float32.map(lambda rate: (rate, float(rate))),
        st.just((1, 1.0)),
        st.just((np.int64(1), 1.0)),
    )


@st.composite
def valid_digits(draw: st.DrawFn) -> tuple[dict[str, object], dict[str, object]]:
    """Keyword arguments of a valid DigitsConfig, in plain and numpy forms, and the values to store."""
    given: dict[str, object] = {}
    expected: dict[str, object] = {}
    for name, form in (
        ("model", text_forms(tuple(MODELS))),
        ("epochs", integer_forms(1, MAX_EPOCHS)),
        ("batch_size", integer_forms(1, MAX_BATCH_SIZE)),
        ("learning_rate", learning_rates()),
        ("augment", flag_forms()),
        ("decay", flag_forms()),
    ):
        given[name], expected[name] = draw(form)
    # None and 0 both mean every image, stored as None.
    given["training_size"], expected["training_size"] = draw(
        st.one_of(
            st.just((None, None)),
            integer_forms(0, 0).map(lambda case: (case[0], None)),
            integer_forms(MIN_TRAINING_SIZE, 60_000),
        )
    )
    return given, expected


@st.composite
def invalid_digits(draw: st.DrawFn) -> tuple[dict[str, object], str]:
    """Keyword arguments with one field of the wrong kind or outside its limits, and its label."""
    given, _ = draw(valid_digits())
    field, label, bad = draw(
        st.sampled_from(
            [
                ("model", "Model", st.text(max_size=8).filter(lambda text: text not in MODELS)),
                ("model", "Model", st.sampled_from([np.array("seed"), b"seed", None, 0])),
                ("epochs", "Epochs", st.integers(max_value=0) | st.integers(min_value=MAX_EPOCHS + 1)),
                ("epochs", "Epochs", NOT_WHOLE),
                ("batch_size", "Batch size", st.integers(max_value=0) | NOT_WHOLE),
                ("learning_rate", "Learning rate", st.floats(max_value=MIN_LEARNING_RATE / 2)),
                ("learning_rate", "Learning rate", st.floats(min_value=MAX_LEARNING_RATE * 2)),
                (
                    "learning_rate",
                    "Learning rate",
                    st.sampled_from(
                        [
                            float("nan"),
                            True,
                            "0.01",
                            None,
                            2**14000,
                            np.timedelta64(1, "s"),
                            np.array(0.01),
                        ]
                    ),
                ),
                ("training_size", "Training images", st.integers(1, MIN_TRAINING_SIZE - 1)),
                (
                    "training_size",
                    "Training images",
                    st.integers(max_value=-1) | NOT_WHOLE.filter(lambda value: value is not None),
                ),
                ("augment", "Augment", st.sampled_from([0, 1, "yes", np.array(False)])),
            ]
        )
    )
    given[field] = draw(bad)
    return given, label


def accepts_valid_digits(case):
    given_values, expected = case
    assert_stored(DigitsConfig(**given_values), expected)


@PROPERTY
@given(valid_digits())
def test_valid_digits_configs_are_accepted_as_plain_values(case):
    accepts_valid_digits(case)


def refuses_invalid_digits(case):
    given_values, label = case
    with pytest.raises(ValueError) as refused:
        DigitsConfig(**given_values)
    assert label in str(refused.value)


@PROPERTY
@given(invalid_digits())
def test_invalid_digits_configs_are_refused_naming_the_field(case):
    refuses_invalid_digits(case)


# Shareable links: query parameters to form presets.


class _Presets:
    """Presets as attributes, so `assert_stored` checks them like a config's fields."""

    def __init__(self, values: dict[str, object]) -> None:
        self.__dict__.update(values)


def _spelled(number: int) -> st.SearchStrategy[str]:
    """Ways a link may spell `number`: plain, with leading zeros or a sign, with spaces around."""
    sign = "-" if number < 0 else ""
    return st.tuples(st.sampled_from(["", "0", "000"]), st.sampled_from(["", " "])).map(
        lambda parts: f"{parts[1]}{sign}{parts[0]}{abs(number)}{parts[1]}"
    )


@st.composite
def valid_query(draw: st.DrawFn) -> tuple[dict[str, str], dict[str, object]]:
    """Query parameters whose every value fits its field alone, and the presets they must give."""
    params: dict[str, str] = {}
    expected: dict[str, object] = {}
    for name in draw(st.lists(st.sampled_from(tuple(QUERY_FIELDS)), unique=True)):
        if name in ("rnn_type", "recipe"):
            kind = draw(st.sampled_from(RNN_TYPES if name == "rnn_type" else RECIPES))
            params[name] = draw(st.sampled_from([kind, kind.lower(), kind.upper()]))
            expected[name] = kind
        elif name == "reverse":
            flag = draw(st.booleans())
            spellings = ["1", "true", "yes", "on", "TRUE"] if flag else ["0", "false", "no", "off", "No"]
            params[name], expected[name] = draw(st.sampled_from(spellings)), flag
        else:
            number = draw(st.integers(*FIELD_LIMITS[name]))
            params[name], expected[name] = draw(_spelled(number)), number
    # A parameter that is not a field of the form is ignored.
    if draw(st.booleans()):
        params["other"] = draw(st.text(max_size=10))
    return params, expected


@st.composite
def invalid_query(draw: st.DrawFn) -> tuple[dict[str, str], str]:
    """Query parameters with one value that no form field takes, and that parameter's name."""
    params, _ = draw(valid_query())
    name = draw(st.sampled_from(tuple(QUERY_FIELDS)))
    if name == "rnn_type":
        bad = st.text(max_size=10).filter(
            lambda text: text.strip().lower() not in ("gru", "lstm", "simplernn")
        )
    elif name == "recipe":
        bad = st.text(max_size=10).filter(lambda text: text.strip().lower() not in RECIPES)
    elif name == "reverse":
        bad = st.sampled_from(["", "maybe", "2", "tru", "-1", "ja"])
    else:
        low, high = FIELD_LIMITS[name]
        out_of_range = st.integers(max_value=low - 1) | st.integers(min_value=high + 1)
        bad = st.one_of(
            out_of_range.map(str),
            st.sampled_from(["", "two", "2.0", "1e3", "0x10", "1_0", "١٢", "²", "9" * 5000, "nan"]),
        )
    params[name] = draw(bad)
    return params, name


def accepts_valid_query(case):
    params, expected = case
    values, problems = form_values_from_query(params)
    assert problems == []
    assert_stored(_Presets(values), expected)
    assert set(values) == set(expected)


@PROPERTY
@given(valid_query())
def test_valid_query_parameters_preset_the_form(case):
    accepts_valid_query(case)


def refuses_invalid_query(case):
    params, name = case
    values, problems = form_values_from_query(params)
    assert name not in values
    # Exactly one report, naming the parameter that was left out.
    assert [problem for problem in problems if problem.startswith(name)] != []
    assert len(problems) == 1


@PROPERTY
@given(invalid_query())
def test_invalid_query_parameters_are_reported_and_left_out(case):
    refuses_invalid_query(case)


# Typed sums.


@st.composite
def valid_sum(draw: st.DrawFn) -> tuple[str, int, tuple[int, int]]:
    """A sum as a person may type it (spaces anywhere, leading zeros), its digits and its operands."""
    digits = draw(st.integers(1, MAX_DIGITS))
    a, b = draw(st.integers(0, 10**digits - 1)), draw(st.integers(0, 10**digits - 1))
    zeros = draw(st.sampled_from(["", "0", "00"]))
    pieces = [zeros + str(a), "+", str(b)]
    spaces = st.text(alphabet=" ", max_size=2)
    text = "".join(draw(spaces) + piece for piece in pieces) + draw(spaces)
    return text, digits, (a, b)


@st.composite
def invalid_sum(draw: st.DrawFn) -> tuple[object, int]:
    """Text that is not a sum of two whole numbers of at most `digits` digits, with those digits."""
    digits = draw(st.integers(1, MAX_DIGITS))
    operand = st.integers(0, 10**digits - 1).map(str)
    too_long = st.integers(10**digits, 10 ** (digits + 3)).map(str)
    text = draw(
        st.one_of(
            st.tuples(too_long, operand).map("+".join),
            st.tuples(operand, too_long).map("+".join),
            operand,  # No plus sign.
            st.tuples(operand, operand, operand).map("+".join),
            st.tuples(operand, operand).map("-".join),
            st.tuples(operand, operand).map(lambda pair: f"-{pair[0]}+{pair[1]}"),
            st.sampled_from(["", "+", "1+", "+1", "a+b", "1.5+2", "١+٢", "²+1", "1+1=2"]),
            st.sampled_from([None, 12, b"1+2", ["1", "2"]]),
        )
    )
    return text, digits


def accepts_valid_sum(case):
    text, digits, operands = case
    parsed = parse_question(text, digits=digits)
    assert parsed == operands and all(type(operand) is int for operand in parsed)


@PROPERTY
@given(valid_sum())
def test_typed_sums_give_their_operands(case):
    accepts_valid_sum(case)


def refuses_invalid_sum(case):
    text, digits = case
    with pytest.raises(ValueError) as refused:
        parse_question(text, digits=digits)
    assert str(refused.value)


@PROPERTY
@given(invalid_sum())
def test_what_is_not_a_sum_is_refused(case):
    refuses_invalid_sum(case)


# Model names.

NAME_CHARACTERS = "ABCXYZabcxyz0189 ._()-"
NAME_START = "ABCXYZabcxyz0189_()-"


@st.composite
def valid_name(draw: st.DrawFn) -> str:
    """A name the rule allows: 1 to 64 of its characters, no leading dot or space, no trailing space."""
    first = draw(st.sampled_from(NAME_START))
    rest = draw(st.text(alphabet=NAME_CHARACTERS, max_size=MAX_NAME_LENGTH - 1))
    name = (first + rest).rstrip(" ")
    while ".." in name:
        name = name.replace("..", ".")
    return name


@st.composite
def invalid_name(draw: st.DrawFn) -> object:
    """A name breaking one part of the rule (characters, ends, '..', length), or not text at all."""
    name = draw(valid_name())
    cut = draw(st.integers(0, len(name)))
    return draw(
        st.one_of(
            st.sampled_from("/\\\x00:*?<>|\"'\n\té").map(lambda bad: name[:cut] + bad + name[cut:]),
            st.just("." + name),
            st.just(" " + name),
            st.just(name + " "),
            st.just(name[:cut] + ".." + name[cut:]),
            st.just(""),
            st.just((name + "a" * MAX_NAME_LENGTH)[: MAX_NAME_LENGTH + 1]),
            st.sampled_from([None, 7, b"model", np.array("model"), ["model"]]),
        )
    )


def accepts_valid_name(case):
    name, as_numpy = case
    accepted = validate_name(np.str_(name) if as_numpy else name)
    assert accepted == name and type(accepted) is str


@PROPERTY
@given(st.tuples(valid_name(), st.booleans()))
def test_valid_model_names_are_kept_as_plain_text(case):
    accepts_valid_name(case)


def refuses_invalid_name(name):
    with pytest.raises(ValueError) as refused:
        validate_name(name)
    assert "a model name must be" in str(refused.value)


@PROPERTY
@given(invalid_name())
def test_invalid_model_names_are_refused(name):
    refuses_invalid_name(name)


# The properties above, checked against stubs that accept or refuse everything.


def _accept_config(self: object) -> None:
    """A config check that lets every value through as it came."""


def _refuse(*arguments: object, **keywords: object) -> object:
    """A check that refuses everything."""
    raise ValueError("refused by a stub")


THIS_MODULE = sys.modules[__name__]
# Each checker's two properties as (generator, check), and where to put a stub that accepts everything
# or one that refuses everything.
STUBS = {
    "addition": (
        ((valid_addition(), accepts_valid_addition), (invalid_addition(), refuses_invalid_addition)),
        (AdditionConfig, "__post_init__", _accept_config, _refuse),
    ),
    "digits": (
        ((valid_digits(), accepts_valid_digits), (invalid_digits(), refuses_invalid_digits)),
        (DigitsConfig, "__post_init__", _accept_config, _refuse),
    ),
    "query": (
        ((valid_query(), accepts_valid_query), (invalid_query(), refuses_invalid_query)),
        (
            THIS_MODULE,
            "form_values_from_query",
            lambda params: (dict(params), []),
            lambda params: ({}, [f"{name} refused by a stub" for name in params]),
        ),
    ),
    "sums": (
        ((valid_sum(), accepts_valid_sum), (invalid_sum(), refuses_invalid_sum)),
        (THIS_MODULE, "parse_question", lambda text, digits: (0, 0), _refuse),
    ),
    "names": (
        (
            (st.tuples(valid_name(), st.booleans()), accepts_valid_name),
            (invalid_name(), refuses_invalid_name),
        ),
        (THIS_MODULE, "validate_name", lambda name: name, _refuse),
    ),
}
# A stub is caught within a few examples; skipping the shrink phase saves searching for a smaller one.
STUB_RUN = settings(max_examples=30, deadline=None, database=None, phases=[Phase.generate])


def _fails(strategy: st.SearchStrategy[object], check: object) -> bool:
    """Whether the property `check` fails on some example of `strategy`."""
    try:
        STUB_RUN(given(strategy)(check))()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException:
        # Hypothesis re-raises the failure itself: an AssertionError, ValueError or pytest's Failed.
        return True
    return False


@pytest.mark.parametrize("stub", ["accept everything", "refuse everything"])
@pytest.mark.parametrize("checker", sorted(STUBS))
def test_properties_fail_when_the_checker_is_a_stub(checker, stub, monkeypatch):
    (valid, invalid), (owner, attribute, accept, refuse) = STUBS[checker]
    accepting = stub == "accept everything"
    monkeypatch.setattr(owner, attribute, accept if accepting else refuse)
    # A stub accepting everything must be caught by the invalid inputs, one refusing everything by the
    # valid ones: each direction is checked by a property of its own.
    strategy, check = invalid if accepting else valid
    assert _fails(strategy, check), f"{check.__name__} passes with a {checker} checker that would {stub}"
