"""Property tests: whatever a person types or a link carries is accepted or refused with ValueError."""

from hypothesis import given, settings
from hypothesis import strategies as st

from core.addition import AdditionConfig, parse_question
from core.digits import DigitsConfig
from core.modelstore.store import validate_name
from ui.links import form_values_from_query

ANYTHING = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    st.text(max_size=20),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
)
NUMBERS = st.one_of(st.integers(min_value=-(10**30), max_value=10**30), ANYTHING)


@settings(max_examples=300, deadline=None)
@given(
    digits=NUMBERS,
    training_size=NUMBERS,
    rnn_type=st.one_of(st.sampled_from(["GRU", "LSTM"]), ANYTHING),
    num_layers=NUMBERS,
    hidden_size=NUMBERS,
    batch_size=NUMBERS,
    iterations=NUMBERS,
    test_examples=NUMBERS,
    reverse=ANYTHING,
)
def test_addition_config_accepts_or_raises_value_error(
    digits,
    training_size,
    rnn_type,
    num_layers,
    hidden_size,
    batch_size,
    iterations,
    test_examples,
    reverse,
):
    try:
        config = AdditionConfig(
            digits=digits,
            training_size=training_size,
            rnn_type=rnn_type,
            layers=num_layers,
            hidden_size=hidden_size,
            batch_size=batch_size,
            iterations=iterations,
            test_examples=test_examples,
            reverse=reverse,
        )
    except ValueError as error:
        assert str(error)  # Every refusal says why.
        return
    # Anything accepted is within the documented limits.
    assert 1 <= config.digits <= 5 and config.test_examples <= config.validation_size


@settings(max_examples=300, deadline=None)
@given(
    model=st.one_of(st.sampled_from(["seed", "strong"]), ANYTHING),
    epochs=NUMBERS,
    batch_size=NUMBERS,
    learning_rate=st.one_of(st.floats(), NUMBERS),
    training_size=NUMBERS,
    augment=ANYTHING,
)
def test_digits_config_accepts_or_raises_value_error(
    model, epochs, batch_size, learning_rate, training_size, augment
):
    try:
        DigitsConfig(
            model=model,
            epochs=epochs,
            batch_size=batch_size,
            learning_rate=learning_rate,
            training_size=training_size,
            augment=augment,
        )
    except ValueError as error:
        assert str(error)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "digits",
                "training_size",
                "rnn_type",
                "layers",
                "hidden_size",
                "batch_size",
                "iterations",
                "test_examples",
                "reverse",
                "other",
            ]
        ),
        st.text(max_size=30),
    )
)
def test_query_parameters_never_raise(params):
    values, problems = form_values_from_query(params)
    # Every parameter is either used or reported, and what is used validates on its own.
    assert all(isinstance(problem, str) and problem for problem in problems)
    assert set(values) <= set(params)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.integers(min_value=1, max_value=5))
def test_typed_sums_parse_or_raise_value_error(text, digits):
    try:
        a, b = parse_question(text, digits=digits)
    except ValueError:
        return
    assert 0 <= a < 10**digits and 0 <= b < 10**digits


@settings(max_examples=300, deadline=None)
@given(ANYTHING)
def test_model_names_are_validated_or_refused(name):
    try:
        accepted = validate_name(name)
    except ValueError:
        return
    assert (
        "/" not in accepted and "\\" not in accepted and ".." not in accepted and "\x00" not in accepted
    )
