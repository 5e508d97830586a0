"""Tests of the Addition RNN core, checked against Python's own integer addition."""

import threading

import numpy as np
import pytest

import core.addition
from core.addition import (
    CHARACTERS,
    FAST_SETTINGS,
    AdditionConfig,
    CharacterTable,
    _pair_from_index,
    build_addition_rnn,
    distinct_sums,
    fast_config,
    fast_learning_rate,
    fast_optimizer,
    generate_problems,
    parse_question,
    solve,
    train_addition,
)
from core.events import EpochEnded, SamplesDecoded, TrainingStopped


@pytest.mark.parametrize("digits", [1, 2, 3])
def test_generated_problems_are_distinct_and_in_range(digits):
    config = AdditionConfig(
        digits=digits, training_size=min(500, distinct_sums(digits)), test_examples=0
    )
    problems = generate_problems(config, np.random.default_rng(0))
    # Exactly the requested number of problems, none repeated even with its operands swapped.
    assert len(problems) == config.training_size
    assert len({(min(a, b), max(a, b)) for a, b in problems}) == len(problems)
    assert all(0 <= a < 10**digits and 0 <= b < 10**digits for a, b in problems)


def test_every_distinct_sum_can_be_requested_without_looping():
    # The tfjs original loops forever here; all 55 one-digit problems must come back.
    config = AdditionConfig(digits=1, training_size=55, test_examples=5)
    problems = generate_problems(config, np.random.default_rng(1))
    assert {(min(a, b), max(a, b)) for a, b in problems} == {
        (a, b) for a in range(10) for b in range(a, 10)
    }


def test_pair_index_enumerates_all_unordered_pairs():
    count = 37
    pairs = [_pair_from_index(index, count) for index in range(count * (count + 1) // 2)]
    assert pairs == [(a, b) for a in range(count) for b in range(a, count)]


def test_operands_have_random_lengths():
    config = AdditionConfig(digits=3, training_size=2000, test_examples=0)
    problems = generate_problems(config, np.random.default_rng(2))
    lengths = {len(str(a)) for a, _ in problems}
    # Short operands appear, as in the Keras example, not only full-length ones.
    assert lengths == {1, 2, 3}


def test_training_data_encodes_true_sums():
    config = AdditionConfig(digits=2, training_size=300, test_examples=0, reverse=True)
    problems = generate_problems(config, np.random.default_rng(3))
    for a, b in problems[:50]:
        question = f"{a}+{b}".ljust(config.question_length)
        encoded = CHARACTERS.encode(question[::-1], length=config.question_length)
        decoded = CHARACTERS.decode(encoded)[::-1]
        left, right = decoded.strip().split("+")
        # The reversed, encoded question decodes back to operands whose int sum is the target.
        assert int(left) + int(right) == a + b


def test_character_table_round_trip():
    table = CharacterTable("0123456789+ ")
    for text in ["12+345 ", "0+0", "99999+99999"]:
        assert table.decode(table.encode(text, length=len(text))) == text
    with pytest.raises(ValueError, match="not one of the characters"):
        table.encode("1-2", length=3)
    with pytest.raises(ValueError, match="longer than"):
        table.encode("12345", length=3)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"digits": 0}, "Digits must be between 1 and 5"),
        ({"digits": 6}, "Digits must be between 1 and 5"),
        (
            {"digits": 3, "training_size": 500_501},
            "Training size must be between 10 and 200,000, not 500,501",
        ),
        ({"digits": 1, "training_size": 56}, "1 digit allows at most 55 distinct sums"),
        ({"rnn_type": "Transformer"}, "RNN type must be one of SimpleRNN, GRU, LSTM"),
        ({"layers": 0}, "RNN layers must be between 1"),
        ({"hidden_size": -5}, "Hidden size must be between 1"),
        ({"batch_size": 0}, "Batch size must be between 1"),
        ({"iterations": 10**9}, "Train iterations must be between 1"),
        ({"training_size": 100, "test_examples": 11}, "11 test examples need at least 110 training"),
        ({"digits": 2.5}, "Digits must be a whole number"),
        ({"layers": True}, "RNN layers must be a whole number"),
        ({"reverse": "yes"}, "Reverse the question must be true or false"),
    ],
)
def test_config_errors_say_what_to_do(overrides, message):
    with pytest.raises(ValueError, match=message):
        AdditionConfig(**overrides)


@pytest.mark.parametrize(("num_layers", "rnn_type"), [(1, "SimpleRNN"), (2, "GRU"), (3, "LSTM")])
def test_layers_setting_stacks_decoder_rnns(num_layers, rnn_type):
    model = build_addition_rnn(AdditionConfig(layers=num_layers, rnn_type=rnn_type, hidden_size=8))
    recurrent = [layer for layer in model.layers if type(layer).__name__ == rnn_type]
    # One encoder plus `layers` decoders, all of the chosen type.
    assert len(recurrent) == 1 + num_layers
    assert model.output_shape == (None, 3, 12)


def test_parse_question():
    assert parse_question(" 12 + 345", digits=3) == (12, 345)
    for bad in ["12-3", "1+2+3", "abc", "", "+5", "١+٢"]:
        with pytest.raises(ValueError, match="Type a sum"):
            parse_question(bad, digits=3)
    with pytest.raises(ValueError, match="up to 2 digits"):
        parse_question("123+4", digits=2)


def test_training_streams_events_and_solves_one_digit_sums():
    config = AdditionConfig(
        digits=1,
        training_size=55,
        rnn_type="LSTM",
        hidden_size=128,
        batch_size=2,
        iterations=80,
        test_examples=5,
        seed=7,
    )
    events = []
    result = train_addition(config, on_event=events.append)
    epochs = [event for event in events if isinstance(event, EpochEnded)]
    # One epoch event per iteration, in order, each carrying its own values.
    assert [event.epoch for event in epochs] == list(range(1, 81))
    decoded = [event for event in events if isinstance(event, SamplesDecoded)]
    assert len(decoded) == 80 and all(len(event.samples) == 5 for event in decoded)
    assert len(result.history) == 80
    # The same seed gives the same problems; the first 90% were trained on.
    problems = generate_problems(config, np.random.default_rng(config.seed))[:49]
    answers = solve(result.model, [f"{a}+{b}" for a, b in problems], digits=1)
    exact = sum(answer == str(a + b) for answer, (a, b) in zip(answers, problems, strict=True)) / 49
    # Checked against int addition: solve() encodes questions exactly as training did.
    assert exact >= 0.9, f"exact match {exact:.0%}"


def test_stop_ends_training_early_and_keeps_the_model():
    stop = threading.Event()
    events = []

    def on_event(event):
        events.append(event)
        if isinstance(event, EpochEnded) and event.epoch == 2:
            stop.set()

    config = AdditionConfig(
        digits=1, training_size=55, hidden_size=8, batch_size=8, iterations=50, test_examples=2
    )
    result = train_addition(config, on_event=on_event, stop=stop)
    assert len(result.history) == 2
    assert result.stopped_reason == "Stopped on request."
    assert any(isinstance(event, TrainingStopped) for event in events)
    assert len(solve(result.model, ["1+2"], digits=1)) == 1


@pytest.mark.parametrize("digits", sorted(FAST_SETTINGS))
def test_fast_config_keeps_the_examples_model_and_only_changes_how_it_trains(digits):
    config = fast_config(digits)
    assert config.recipe == "fast" and config.rnn_type == "LSTM" and config.layers == 1
    assert config.hidden_size <= 128
    # 50,000 examples, or every distinct sum when there are fewer (5,050 for two digits).
    assert config.training_size == min(50_000, distinct_sums(digits))
    assert (config.batch_size, config.iterations) == FAST_SETTINGS[digits]
    # The form's defaults stay the tfjs ones: the preset is an option.
    assert AdditionConfig().recipe == "keras"


@pytest.mark.parametrize("digits", [0, 1, 6, -3, True, 3.0, "3", None])
def test_fast_config_refuses_digits_it_has_no_preset_for(digits):
    with pytest.raises(ValueError, match="fast preset is for 2 to 5 digits"):
        fast_config(digits)


@pytest.mark.parametrize("recipe", ["keras", "fast"])
def test_known_recipes_are_accepted(recipe):
    assert AdditionConfig(recipe=recipe).recipe == recipe


@pytest.mark.parametrize("recipe", ["Fast", "turbo", "", None, 1, ["fast"]])
def test_unknown_recipes_are_refused_naming_the_field(recipe):
    with pytest.raises(ValueError, match="Training recipe must be one of keras, fast"):
        AdditionConfig(recipe=recipe)


def test_fast_recipe_warms_up_decays_clips_and_unrolls():
    config = fast_config(3)
    steps = config.steps_per_iteration
    assert steps == -(-(config.training_size - config.validation_size) // config.batch_size)
    rate = fast_learning_rate(config)
    peak = 0.01 * (config.batch_size / 128) ** 0.5
    assert float(rate(0)) == pytest.approx(0.0, abs=1e-9)
    assert float(rate(steps)) == pytest.approx(peak, rel=1e-3)
    last = config.iterations * steps
    assert float(rate(last)) < 0.1 * peak < float(rate(last // 2))
    assert fast_optimizer(config).clipnorm == 1.0
    fast_model = build_addition_rnn(config)
    plain_model = build_addition_rnn(AdditionConfig(digits=3, rnn_type="LSTM"))
    assert fast_model.get_layer("encoder").unroll and fast_model.get_layer("decoder_1").unroll
    assert not plain_model.get_layer("encoder").unroll


@pytest.mark.parametrize("recipe", ["keras", "fast"])
def test_only_the_fast_recipe_stops_at_its_goal(recipe, monkeypatch):
    # A goal of 0% is met after the first iteration: the fast recipe stops there, the plain one goes on.
    monkeypatch.setattr(core.addition, "FAST_GOAL_EXACT_MATCH", 0.0)
    config = AdditionConfig(
        digits=1,
        training_size=55,
        hidden_size=8,
        batch_size=8,
        iterations=3,
        test_examples=2,
        recipe=recipe,
    )
    events = []
    result = train_addition(config, on_event=events.append)
    stops = [event for event in events if isinstance(event, TrainingStopped)]
    if recipe == "fast":
        assert len(result.history) == 1 and result.reached_goal
        assert [stop.reached_goal for stop in stops] == [True]
        assert "exact match on 5 held-out sums at iteration 1" in result.stopped_reason
    else:
        assert len(result.history) == 3 and not result.reached_goal
        assert stops == [] and result.stopped_reason is None
