"""Addition RNN: which sums does it get wrong? Per-character confidence and the error breakdown."""

from __future__ import annotations

import functools
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from core.events import SamplesDecoded
from ui.charts import spec_without_data, with_domains
from ui.runs import RunRecord

BREAKDOWN_COLUMNS = ["iteration", "group", "value", "exact_match", "problems"]
HARDEST_COLUMNS = ["Question", "Answer", "Model", "P(right answer)"]
HARDEST_KEY = "addition_hardest_table"
# The two breakdown charts: which rows each draws and its title.
BREAKDOWN_CHARTS = (
    ("carries", "Exact match by number of carries"),
    ("length", "Exact match by longer operand's digits"),
)


def confidence_colour(confidence: float) -> str:
    """A cell background from red (unsure) through yellow to green (sure)."""
    # Hue 0 (red) to 120 (green); lightness keeps the black text readable.
    return f"background-color: hsl({round(120 * max(0.0, min(1.0, confidence)))}, 75%, 82%)"


def sample_columns(width: int) -> list[str]:
    """The test sums table's columns for answers of `width` characters (also its empty frame's)."""
    return ["Question", "Answer", *(f"#{position + 1}" for position in range(width)), "Right"]


def confidence_table(samples: SamplesDecoded) -> Any:
    """Test sums with one column per answer character, each coloured by the model's probability."""
    width = max((len(sample.predicted) for sample in samples.samples), default=0)
    columns = sample_columns(width)
    characters = columns[2:-1]
    rows, colours = [], []
    for sample in samples.samples:
        padded = list(sample.predicted.ljust(width))
        rows.append([sample.question, sample.expected, *padded, "right" if sample.correct else "wrong"])
        sure = list(sample.confidences) + [1.0] * (width - len(sample.confidences))
        colours.append([confidence_colour(value) for value in sure])
    table = pd.DataFrame(rows, columns=columns)
    styles = pd.DataFrame("", index=table.index, columns=table.columns)
    if characters:
        styles[characters] = colours
    styles["Right"] = [
        "background-color: #d4f7dc" if sample.correct else "background-color: #fbd5d5"
        for sample in samples.samples
    ]
    return table.style.apply(lambda _: styles, axis=None)


@functools.lru_cache(maxsize=4)
def _breakdown_spec(*, group: str, title: str) -> dict[str, Any]:
    chart = (
        alt.Chart(pd.DataFrame(columns=BREAKDOWN_COLUMNS), title=title)
        .mark_line(point=True)
        .encode(
            x=alt.X("iteration:Q", title="Iteration", axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("exact_match:Q", title="Exact match"),
            color=alt.Color("value:O", title=group.capitalize()),
            tooltip=["iteration:Q", "value:O", "problems:Q", alt.Tooltip("exact_match:Q", format=".1%")],
        )
        .properties(height=240)
    )
    return spec_without_data(chart)


def breakdown_frame(run: RunRecord) -> pd.DataFrame:
    """Long table of every iteration's breakdown rows: iteration, group, value, exact match, problems."""
    rows = [
        (event.epoch, row.group, row.value, row.exact_match, row.total)
        for event in run.breakdowns
        for row in event.rows
    ]
    return pd.DataFrame(rows, columns=BREAKDOWN_COLUMNS)


def breakdown_specs(run: RunRecord) -> list[dict[str, Any]]:
    """The breakdown charts' specs: the same from poll to poll while the run trains (ui/charts.py)."""
    last = max((event.epoch for event in run.breakdowns), default=1)
    iterations = (1.0, float(max(2, run.planned_epochs, last)))
    return [
        with_domains(_breakdown_spec(group=group, title=title), x=iterations, y=(0.0, 1.0))
        for group, title in BREAKDOWN_CHARTS
    ]


def breakdown_ui(run: RunRecord | None) -> None:
    """Exact match on the held-out sums by number of carries and by operand length, and hardest sums."""
    # A training run's charts are drawn before its first breakdown: their axes are known (iterations
    # by exact match), so the browser builds the views while the run starts (see `metric_chart`).
    if run is None or not (run.breakdowns or run.training):
        return
    frame = breakdown_frame(run)
    for container, spec, (group, _) in zip(
        st.columns(2), breakdown_specs(run), BREAKDOWN_CHARTS, strict=True
    ):
        container.vega_lite_chart(frame[frame["group"] == group], spec, width="stretch")
    if not run.breakdowns:
        # The hardest sums' table too, empty: its grid is built now rather than mid-run.
        st.markdown("**Hardest held-out sums** — after the first iteration")
        st.dataframe(pd.DataFrame(columns=HARDEST_COLUMNS), hide_index=True, key=HARDEST_KEY)
        return
    latest = run.breakdowns[-1]
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
                columns=HARDEST_COLUMNS,
            ),
            hide_index=True,
            key=HARDEST_KEY,
        )
