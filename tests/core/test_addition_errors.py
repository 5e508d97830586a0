"""Tests of core/addition_errors.py: carries against Python integer arithmetic, the breakdown, and the
per-character confidences a real (tiny) training run sends."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.addition import AdditionConfig, build_addition_rnn, solve, train_addition
from core.addition_errors import (
    answers_with_confidences,
    count_carries,
    error_breakdown,
    operand_length,
    summarize_errors,
)
from core.events import ErrorBreakdown, SamplesDecoded


def digit_sum(number: int) -> int:
    return sum(int(digit) for digit in str(number))


@given(st.integers(0, 10**12), st.integers(0, 10**12))
def test_carries_match_the_digit_sum_identity(a, b):
    # Each carry turns a column's 10 into a 1 in the next column: the sum loses 9 from its digit sum.
    assert count_carries(a, b) == (digit_sum(a) + digit_sum(b) - digit_sum(a + b)) // 9


@pytest.mark.parametrize(
    ("a", "b", "carries"), [(0, 0, 0), (5, 5, 1), (99, 1, 2), (999, 999, 3), (123, 456, 0), (19, 1, 1)]
)
def test_carries_of_known_sums(a, b, carries):
    assert count_carries(a, b) == carries == count_carries(b, a)


def test_negative_operands_are_refused():
    with pytest.raises(ValueError, match="non-negative"):
        count_carries(-1, 5)


@given(
    st.lists(st.tuples(st.integers(0, 999), st.integers(0, 999), st.booleans()), min_size=1, max_size=60)
)
@settings(max_examples=50)
def test_breakdown_counts_every_problem_once_per_grouping(cases):
    problems = [(a, b) for a, b, _ in cases]
    predicted = [str(a + b) if right else str(a + b + 1) for a, b, right in cases]
    likelihoods = [
        0.9 if right else 0.1 * index / len(cases) for index, (_, _, right) in enumerate(cases)
    ]
    breakdown = summarize_errors(problems, predicted, likelihoods, epoch=3)
    for group, key in (("carries", count_carries), ("length", operand_length)):
        rows = [row for row in breakdown.rows if row.group == group]
        assert sum(row.total for row in rows) == len(cases)
        for row in rows:
            members = [right for a, b, right in cases if key(a, b) == row.value]
            assert (row.total, row.correct) == (len(members), sum(members))
    # The hardest sums are the least likely right answers, lowest first.
    assert [item[3] for item in breakdown.hardest] == sorted(likelihoods)[: len(breakdown.hardest)]


def test_answers_with_confidences_match_solve():
    config = AdditionConfig(digits=2, training_size=100, test_examples=5, seed=0)
    model = build_addition_rnn(config)
    questions = ["12+34", "5+7", "99+99", "0+0"]
    answers = answers_with_confidences(model, questions, digits=2)
    assert [answer for answer, _ in answers] == solve(model, questions, digits=2)
    for answer, confidences in answers:
        assert len(confidences) == len(answer)
        assert all(0 < value <= 1 for value in confidences)


def test_training_sends_a_breakdown_of_every_held_out_sum_each_iteration():
    config = AdditionConfig(digits=1, training_size=50, iterations=2, test_examples=3, seed=0)
    events = []
    result = train_addition(config, on_event=events.append)
    breakdowns = [event for event in events if isinstance(event, ErrorBreakdown)]
    assert [event.epoch for event in breakdowns] == [1, 2]
    carries = [row for row in breakdowns[-1].rows if row.group == "carries"]
    assert sum(row.total for row in carries) == config.validation_size
    samples = [event for event in events if isinstance(event, SamplesDecoded)][-1]
    assert all(len(sample.confidences) == len(sample.predicted) for sample in samples.samples)
    # The breakdown agrees with scoring the final model directly.
    again = error_breakdown(result.model, [(1, 2), (5, 5)], digits=1, epoch=9)
    assert sum(row.total for row in again.rows if row.group == "length") == 2
    predicted = solve(result.model, ["1+2", "5+5"], digits=1)
    right = sum(answer == str(a + b) for answer, (a, b) in zip(predicted, [(1, 2), (5, 5)], strict=True))
    assert sum(row.correct for row in again.rows if row.group == "length") == right
    assert np.isfinite([item[3] for item in again.hardest]).all()
