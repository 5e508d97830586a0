"""Addition RNN: which sums does it get wrong? Per-character confidence and the error breakdown."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from core.events import SamplesDecoded
from ui.runs import RunRecord


def confidence_colour(confidence: float) -> str:
    """A cell background from red (unsure) through yellow to green (sure)."""
    # Hue 0 (red) to 120 (green); lightness keeps the black text readable.
    return f"background-color: hsl({round(120 * max(0.0, min(1.0, confidence)))}, 75%, 82%)"


def confidence_table(samples: SamplesDecoded) -> Any:
    """Test sums with one column per answer character, each coloured by the model's probability."""
    width = max((len(sample.predicted) for sample in samples.samples), default=0)
    characters = [f"#{position + 1}" for position in range(width)]
    rows, colours = [], []
    for sample in samples.samples:
        padded = list(sample.predicted.ljust(width))
        rows.append([sample.question, sample.expected, *padded, "right" if sample.correct else "wrong"])
        sure = list(sample.confidences) + [1.0] * (width - len(sample.confidences))
        colours.append([confidence_colour(value) for value in sure])
    table = pd.DataFrame(rows, columns=["Question", "Answer", *characters, "Right"])
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    if characters:
        styles[characters] = colours
    styles["Right"] = [
        "background-color: #d4f7dc" if sample.correct else "background-color: #fbd5d5"
        for sample in samples.samples
    ]
    return table.style.apply(lambda _: styles, axis=None)


def breakdown_ui(run: RunRecord | None) -> None:
    """Exact match on the held-out sums by number of carries and by operand length, and hardest sums."""
    if run is None or not run.breakdowns:
        return
    latest = run.breakdowns[-1]
    rows = [
        (event.epoch, row.group, row.value, row.exact_match, row.total)
        for event in run.breakdowns
        for row in event.rows
    ]
    frame = pd.DataFrame(rows, columns=["iteration", "group", "value", "exact_match", "problems"])
    left, right = st.columns(2)
    for container, group, title in (
        (left, "carries", "Exact match by number of carries"),
        (right, "length", "Exact match by longer operand's digits"),
    ):
        data = frame[frame["group"] == group]
        chart = (
            alt.Chart(data, title=title)
            .mark_line(point=True)
            .encode(
                x=alt.X(
                    "iteration:Q",
                    title="Iteration",
                    axis=alt.Axis(tickMinStep=1, format="d"),
                    # Written out, not taken from the data: see ui.charts.with_domains.
                    scale=alt.Scale(domain=[1, max(2, int(frame["iteration"].max()))]),
                ),
                y=alt.Y("exact_match:Q", title="Exact match", scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("value:O", title=group.capitalize()),
                tooltip=[
                    "iteration:Q",
                    "value:O",
                    "problems:Q",
                    alt.Tooltip("exact_match:Q", format=".1%"),
                ],
            )
            .properties(height=240)
        )
        container.altair_chart(chart, width="stretch")
    if latest.hardest:
        st.markdown(
            f"**Hardest held-out sums after iteration {latest.epoch}** (least likely right answer)"
        )
        st.dataframe(
            pd.DataFrame(
                [
                    (question, expected, predicted, f"{chance:.1%}")
                    for question, expected, predicted, chance in latest.hardest
                ],
                columns=["Question", "Answer", "Model", "P(right answer)"],
            ),
            hide_index=True,
            key="addition_hardest_table",
        )
