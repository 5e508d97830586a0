"""Tests of the Addition RNN link codec: a link presets the form, and bad parameters are reported."""

from core.addition import AdditionConfig
from ui.links import form_values_from_query, query_from_config


def test_query_parameters_preset_the_form_and_bad_ones_are_reported():
    values, problems = form_values_from_query(
        {"digits": "3", "rnn_type": "gru", "iterations": "ten", "hidden_size": "99999", "reverse": "0"}
    )
    assert values == {"digits": 3, "rnn_type": "GRU", "reverse": False}
    assert any("iterations" in problem and "whole number" in problem for problem in problems)
    assert any("hidden_size" in problem and "between 1 and 1,024" in problem for problem in problems)
    # A link made from a config presets the form to that same config.
    config = AdditionConfig(digits=1, training_size=50, rnn_type="LSTM", test_examples=5, reverse=False)
    values, problems = form_values_from_query(query_from_config(config))
    assert problems == []
    assert AdditionConfig(**values) == config


def test_a_link_carries_the_training_recipe_and_refuses_unknown_ones():
    from core.addition import fast_config

    config = fast_config(3)
    values, problems = form_values_from_query(query_from_config(config))
    assert problems == [] and values["recipe"] == "fast"
    assert AdditionConfig(**values) == config
    values, problems = form_values_from_query({"recipe": "FAST"})
    assert values == {"recipe": "fast"} and problems == []
    values, problems = form_values_from_query({"recipe": "turbo"})
    assert values == {}
    assert problems == ["recipe='turbo' is not one of keras, fast."]
