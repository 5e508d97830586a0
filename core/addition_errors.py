"""Which sums does the Addition RNN get wrong: per-character confidence and an error breakdown.

The breakdown groups held-out problems by how many carries the column addition needs and by the
longer operand's length, and lists the sums whose right answer the model finds least likely.
"""

from __future__ import annotations

import keras
import numpy as np

from core.addition import CHARACTERS
from core.events import BreakdownRow, ErrorBreakdown

# Held-out problems scored per iteration: enough for steady percentages, cheap next to an epoch.
MAX_BREAKDOWN_PROBLEMS = 1_000
HARDEST_COUNT = 5


def count_carries(a: int, b: int) -> int:
    """How many columns of the written addition a + b carry a one into the next column."""
    if a < 0 or b < 0:
        raise ValueError(f"Only non-negative operands have carries, not {a} and {b}.")
    carries = carry = 0
    while a or b:
        carry = 1 if a % 10 + b % 10 + carry >= 10 else 0
        carries += carry
        a, b = a // 10, b // 10
    return carries


def operand_length(a: int, b: int) -> int:
    """Digits of the longer operand."""
    return max(len(str(a)), len(str(b)))


def _probabilities(
    model: keras.Model, questions: list[str], *, digits: int, reverse: bool
) -> np.ndarray:
    length = 2 * digits + 1
    padded = [question.replace(" ", "").ljust(length) for question in questions]
    x = np.stack([CHARACTERS.encode(text[::-1] if reverse else text, length=length) for text in padded])
    # Calling the model directly skips `predict`'s per-call setup, which dominates for a few rows.
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)), dtype=np.float64)


def _answer_with_confidences(row: np.ndarray) -> tuple[str, tuple[float, ...]]:
    """The decoded answer without padding, and the probability of each of its characters."""
    indices = row.argmax(axis=-1)
    text = "".join(CHARACTERS.chars[index] for index in indices)
    confidences = [float(row[position, index]) for position, index in enumerate(indices)]
    start = len(text) - len(text.lstrip())
    end = len(text.rstrip())
    return text[start:end], tuple(confidences[start:end])


def answers_with_confidences(
    model: keras.Model, questions: list[str], *, digits: int, reverse: bool = True
) -> list[tuple[str, tuple[float, ...]]]:
    """Each question's predicted answer and the model's probability for each predicted character."""
    if not questions:
        return []
    probabilities = _probabilities(model, questions, digits=digits, reverse=reverse)
    return [_answer_with_confidences(row) for row in probabilities]


def _answer_probability(row: np.ndarray, expected: str) -> float:
    """The model's probability of the whole right answer (product over its padded characters)."""
    padded = expected.ljust(len(row))
    return float(
        np.prod([row[position, CHARACTERS.char_indices[char]] for position, char in enumerate(padded)])
    )


def summarize_errors(
    problems: list[tuple[int, int]],
    predicted: list[str],
    answer_probabilities: list[float],
    *,
    epoch: int,
    hardest: int = HARDEST_COUNT,
) -> ErrorBreakdown:
    """Exact match by carries and by operand length, and the least likely right answers."""
    if not len(problems) == len(predicted) == len(answer_probabilities):
        raise ValueError("Need one answer and one probability per problem.")
    groups: dict[tuple[str, int], list[int]] = {}
    for (a, b), answer in zip(problems, predicted, strict=True):
        right = int(answer == str(a + b))
        for key in (("carries", count_carries(a, b)), ("length", operand_length(a, b))):
            totals = groups.setdefault(key, [0, 0])
            totals[0] += 1
            totals[1] += right
    rows = tuple(
        BreakdownRow(group=group, value=value, total=total, correct=correct)
        for (group, value), (total, correct) in sorted(groups.items())
    )
    order = np.argsort(np.asarray(answer_probabilities), kind="stable")[:hardest]
    return ErrorBreakdown(
        epoch=epoch,
        rows=rows,
        hardest=tuple(
            (
                f"{problems[index][0]}+{problems[index][1]}",
                str(sum(problems[index])),
                predicted[index],
                float(answer_probabilities[index]),
            )
            for index in order
        ),
    )


def error_breakdown(
    model: keras.Model,
    problems: list[tuple[int, int]],
    *,
    digits: int,
    reverse: bool = True,
    epoch: int,
) -> ErrorBreakdown:
    """Score the model on held-out `problems` (at most 1,000 of them) and break its errors down."""
    problems = problems[:MAX_BREAKDOWN_PROBLEMS]
    if not problems:
        return ErrorBreakdown(epoch=epoch, rows=())
    questions = [f"{a}+{b}" for a, b in problems]
    probabilities = _probabilities(model, questions, digits=digits, reverse=reverse)
    predicted = [_answer_with_confidences(row)[0] for row in probabilities]
    likelihoods = [
        _answer_probability(row, str(a + b)) for row, (a, b) in zip(probabilities, problems, strict=True)
    ]
    return summarize_errors(problems, predicted, likelihoods, epoch=epoch)
