"""Altair charts shared by the training pages.

A page polled every second redraws its charts each time. Turning an Altair chart into Vega-Lite costs
~15 ms of GIL-holding Python per chart, which training threads feel, so each chart's spec is built once
with Altair and cached; every poll only sends the new rows to `st.vega_lite_chart`. The spec a poll
sends also stays the same from poll to poll while a run trains (axes span the planned epochs, rates
span 0 to 1, other axes grow in coarse steps): a changed spec makes the browser parse and compile a new
Vega view on the cores that train, an unchanged one only swaps the view's rows.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Sequence
from typing import Any, Protocol

import altair as alt
import pandas as pd
import streamlit as st

from core.events import EpochEnded
from ui.runs import RunRecord

# Tableau 10, a categorical palette: neighbouring runs get different hues (Streamlit's own theme gives
# shades of one blue, so overlaid runs #1 and #2 were hard to tell apart).
RUN_COLOURS = [
    "#4e79a7",
    "#f28e2b",
    "#59a14f",
    "#b07aa1",
    "#e15759",
    "#edc948",
    "#76b7b2",
    "#9c755f",
    "#ff9da7",
    "#bab0ac",
]
RUN_SCALE = alt.Scale(range=RUN_COLOURS)
# The run legend goes under the plot: beside it, a run's label ("#1 SimpleRNN 1x128") took most of a
# half-width column at 1024 px and left the lines ~50 px wide. Solid vs dashed is in each caption.
# No title: the labels name the runs ("#1 SimpleRNN 1x128"), and a chart drawn before its first point
# showed a lone "Run" under its axes.
LEGEND = alt.Legend(orient="bottom", direction="vertical", labelLimit=150, title=None)

EPOCH_COLUMNS = ["run", "epoch", "metric", "split", "value"]
# Metrics that are shares (0 to 1): their axis is always that, so a rising accuracy never changes it.
SHARE_METRICS = frozenset({"accuracy", "exact match"})
# Axis tops of other metrics come from these times a power of ten: they change only in coarse steps.
AXIS_STEPS = (1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0)
BATCH_COLUMNS = ["run", "step", "value"]
# Per-epoch charts mark each point on runs of at most this many epochs (beyond, the dots crowd).
POINT_EPOCHS = 30

# "What am I looking at": one line under each chart. Train is the solid line, validation the dashed.
CHART_HELP = {
    "loss": "Cross-entropy, lower is better: solid on the training data, dashed on held-out data it "
    "never trains on. Dashed rising while solid falls means it is memorising.",
    "accuracy": "Share of images read right: solid on the training images, dashed on the test images "
    "it never trains on.",
    "character accuracy": "Share of answer characters right, solid on training sums, dashed on "
    "held-out ones; a sum with one wrong digit still scores most characters.",
    "exact match": "Share of the held-out sums (never trained on) whose whole answer is right, "
    "after each iteration: the score that matters.",
    "seconds": "Wall time of each iteration: one pass over the training sums, validation included.",
    "batch": "Training loss or accuracy of each batch (past 100 batches an epoch, each point averages "
    "the batches since the last one): noisy, as batches are small.",
}


class Curve(Protocol):
    """Anything with a label and per-epoch events: a session's run or a run on the class board."""

    @property
    def label(self) -> str: ...

    @property
    def epochs(self) -> Sequence[EpochEnded]: ...


def exact_match_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """Long table (as epoch_frame) of exact match on the held-out sums after each iteration."""
    rows = [
        (run.label, event.epoch, "exact match", "held-out", event.exact_match)
        for run in runs
        for event in run.breakdowns
        if event.exact_match is not None
    ]
    return pd.DataFrame(rows, columns=EPOCH_COLUMNS)


def epoch_frame(runs: Sequence[Curve]) -> pd.DataFrame:
    """Long table of per-epoch metrics: run, epoch, metric, split, value."""
    rows = []
    for run in runs:
        for event in run.epochs:
            for metric, split, value in (
                ("loss", "train", event.loss),
                ("loss", "validation", event.val_loss),
                ("accuracy", "train", event.accuracy),
                ("accuracy", "validation", event.val_accuracy),
                ("seconds", "train", event.seconds),
            ):
                rows.append((run.label, event.epoch, metric, split, value))
    return pd.DataFrame(rows, columns=EPOCH_COLUMNS)


def with_domains(spec: dict[str, Any], **domains: tuple[float, float]) -> dict[str, Any]:
    """A copy of `spec` in which each named channel's scale has a fixed domain.

    Streamlit's frontend runs every Vega view once before its rows arrive (streamlit/streamlit#16614),
    so a scale whose domain comes from the data logs "Infinite extent for field" warnings; a domain
    written in the spec needs no data. It changes only when a point falls outside it.
    """
    spec = copy.deepcopy(spec)  # Also what Streamlit needs: it may add keys to the spec it is given.
    for channel, (low, high) in domains.items():
        if not (math.isfinite(low) and math.isfinite(high)):
            continue
        if low == high:  # One value: give the scale some width around it.
            low, high = low - 0.5, high + 0.5
        encoding = spec["encoding"][channel]
        encoding["scale"] = {**encoding.get("scale", {}), "domain": [low, high], "nice": True}
    return spec


def axis_top(value: float) -> float:
    """The smallest of `AXIS_STEPS` times a power of ten at or above `value` (itself if not above 0)."""
    if not (math.isfinite(value) and value > 0):
        return value
    scale = 10.0 ** math.floor(math.log10(value))
    # Rounded so 2.5 x 10^-1 is 0.25, not 0.25000000000000006 (a new spec for the same axis).
    return next(round(step * scale, 12) for step in AXIS_STEPS if round(step * scale, 12) >= value)


def value_domains(
    data: pd.DataFrame,
    *,
    x: str,
    planned: int | None = None,
    share: bool = False,
    top: float | None = None,
) -> dict[str, tuple[float, float]]:
    """Domains of `x` (to the `planned` end, if given) and of `value` (from zero) covering every row.

    A `share` (0 to 1) spans 0 to 1; any other value's top is `axis_top` of its largest, and at least
    `top` when given (the chart is drawn with that top before its first point arrives).
    """
    values = data["value"].astype(float)
    low, high = min(0.0, float(values.min())), float(values.max())
    if share and 0.0 <= low and high <= 1.0:
        low, high = 0.0, 1.0
    else:
        low, high = -axis_top(-low) if low < 0 else low, axis_top(high)
        if top is not None:
            high = max(high, top)
    first, last = float(data[x].min()), float(data[x].max())
    if planned is not None:
        first, last = min(1.0, first), max(float(planned), last)
    return {"x": (first, last), "y": (low, high)}


def spec_without_data(chart: alt.Chart) -> dict[str, Any]:
    """The Vega-Lite spec of `chart` without its rows (they are sent apart, see the module's doc)."""
    spec = chart.to_dict()
    spec.pop("data", None)
    spec.pop("datasets", None)
    return spec


@functools.lru_cache(maxsize=64)
def _metric_spec(*, metric: str, title: str, x_title: str, points: bool) -> dict[str, Any]:
    chart = (
        alt.Chart(pd.DataFrame(columns=EPOCH_COLUMNS), title=title)
        .mark_line(point=points)
        .encode(
            x=alt.X("epoch:Q", title=x_title, axis=alt.Axis(tickMinStep=1, format="d")),
            y=alt.Y("value:Q", title=metric.capitalize()),
            color=alt.Color("run:N", title="Run", scale=RUN_SCALE, legend=LEGEND),
            strokeDash=alt.StrokeDash("split:N", title="Data", legend=None),  # The caption says it.
            tooltip=["run:N", "epoch:Q", "split:N", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=300)
    )
    return spec_without_data(chart)


@functools.lru_cache(maxsize=8)
def _batch_spec(*, metric: str) -> dict[str, Any]:
    chart = (
        alt.Chart(pd.DataFrame(columns=BATCH_COLUMNS), title=f"Per-batch {metric}")
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="Batch"),
            y=alt.Y("value:Q", title=metric.capitalize()),
            color=alt.Color("run:N", title="Run", scale=RUN_SCALE, legend=LEGEND),
            tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=260)
    )
    return spec_without_data(chart)


def metric_chart(
    frame: pd.DataFrame,
    *,
    metric: str,
    title: str,
    x_title: str = "Iteration",
    container: Any = st,
    help: str | None = None,
    planned: int | None = None,
    top: float | None = None,
    training: bool = False,
) -> None:
    """Draw lines of one metric per run (colour) and split (dash), with a line saying what they show.

    `planned` is the number of epochs the runs were asked for: the x axis spans them from the start.
    While a run is `training`, a share (0 to 1) or a metric with a known `top` is drawn before its first
    point, on the axes its points will keep, so the browser builds its view while the run starts (it
    then only swaps the rows); any other metric, or a run that ended first, says when it will appear.
    """
    data = frame[frame["metric"] == metric]
    share = metric in SHARE_METRICS
    known_axes = training and planned is not None and (share or top is not None)
    if data.empty and not known_axes:
        # An empty chart shows a lone "0.000000" tick and bare legends: say when it will fill instead.
        container.caption(f"{title}: appears after the first {x_title.lower()}.")
        return
    # Points on short runs; decided by the planned length, so the spec stays the same all run long.
    epochs = planned if planned is not None else int(data["epoch"].max())
    spec = _metric_spec(metric=metric, title=title, x_title=x_title, points=epochs <= POINT_EPOCHS)
    if data.empty:
        domains = {"x": (1.0, float(planned or 1)), "y": (0.0, 1.0 if share else float(top or 1))}
    else:
        domains = value_domains(data, x="epoch", planned=planned, share=share, top=top)
    container.vega_lite_chart(data, with_domains(spec, **domains), width="stretch")
    if help:
        container.caption(help)


def loss_and_accuracy_ui(
    frame: pd.DataFrame, run: RunRecord, *, titles: tuple[str, str], help: bool = True
) -> None:
    """Per-epoch loss (left) and accuracy (right) of `run` side by side, titled `titles`."""
    for container, metric, title in zip(st.columns(2), ("loss", "accuracy"), titles, strict=True):
        metric_chart(
            frame,
            metric=metric,
            title=title,
            x_title="Epoch",
            container=container,
            help=CHART_HELP[metric] if help else None,
            planned=run.planned_epochs,
            training=run.training,
        )


def batch_chart(runs: list[RunRecord], *, metric: str, container: Any = st) -> None:
    """Draw per-batch training `metric` over steps, one line per run."""
    rows = [(run.label, event.step, getattr(event, metric)) for run in runs for event in run.batches]
    if not rows:
        container.caption(f"Per-batch {metric}: appears after the first batches.")
        return
    data = pd.DataFrame(rows, columns=BATCH_COLUMNS)
    # The planned steps of the run, so the axis does not change (and redraw the chart) on every poll.
    planned = max(run.batches[-1].batches * run.planned_epochs for run in runs if run.batches)
    domains = value_domains(data, x="step", planned=planned, share=metric == "accuracy")
    container.vega_lite_chart(data, with_domains(_batch_spec(metric=metric), **domains), width="stretch")
    container.caption(CHART_HELP["batch"])


def confusion_chart(confusion: Any) -> alt.Chart:
    """Heatmap of true vs predicted digits with the count in each cell."""
    rows = [
        (true, predicted, int(confusion[true][predicted]))
        for true in range(len(confusion))
        for predicted in range(len(confusion))
    ]
    data = pd.DataFrame(rows, columns=["true", "predicted", "count"])
    base = alt.Chart(data, title="Confusion matrix (test set)").encode(
        x=alt.X("predicted:O", title="Predicted digit"),
        y=alt.Y("true:O", title="True digit"),
    )
    cells = base.mark_rect().encode(
        color=alt.Color(
            "count:Q", scale=alt.Scale(type="symlog", domain=[0, int(confusion.max())]), legend=None
        ),
        tooltip=["true:O", "predicted:O", "count:Q"],
    )
    text = base.mark_text(fontSize=10).encode(
        text="count:Q",
        color=alt.condition(
            alt.datum.count > confusion.max() / 4, alt.value("white"), alt.value("black")
        ),
    )
    return (cells + text).properties(height=330)


def per_class_chart(per_class_accuracy: tuple[float, ...]) -> alt.Chart:
    """Bars of test accuracy per digit."""
    data = pd.DataFrame({"digit": range(len(per_class_accuracy)), "accuracy": per_class_accuracy})
    # From a little below the worst digit up to 100%, so differences of a point show; written out, not
    # taken from the data (see with_domains). The bars are clipped to the plot: they start below it.
    worst = min(per_class_accuracy)
    low = max(0.0, worst - max(0.1 * (1.0 - worst), 0.01))
    return (
        alt.Chart(data, title="Accuracy per digit")
        .mark_bar(clip=True)
        .encode(
            x=alt.X("digit:O", title="Digit"),
            y=alt.Y(
                "accuracy:Q",
                title="Accuracy",
                axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[low, 1.0], nice=False, zero=False),
            ),
            tooltip=["digit:O", alt.Tooltip("accuracy:Q", format=".2%")],
        )
        .properties(height=330)
    )


def probability_chart(probabilities: tuple[float, ...], *, predicted: int) -> alt.Chart:
    """Bars of the model's probability for each digit, the predicted one highlighted."""
    data = pd.DataFrame(
        {
            "digit": range(len(probabilities)),
            "probability": probabilities,
            "chosen": [digit == predicted for digit in range(len(probabilities))],
        }
    )
    return (
        alt.Chart(data, title="Probabilities")
        .mark_bar()
        .encode(
            x=alt.X("digit:O", title="Digit"),
            y=alt.Y("probability:Q", title="Probability", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("chosen:N", legend=None, scale=alt.Scale(range=["#9bb7d4", "#d62728"])),
            tooltip=["digit:O", alt.Tooltip("probability:Q", format=".1%")],
        )
        .properties(height=240)
    )


def formats_chart(frame: pd.DataFrame) -> alt.Chart:
    """Small multiples: size, cold load, warm load and latency per format (log scales)."""
    measures = ["size (KB)", "cold load (ms)", "warm load (ms)", "latency per sample (ms)"]
    data = frame.melt(id_vars=["format"], value_vars=measures, var_name="measure", value_name="value")
    # A log scale cannot show zero: drop non-positive values, and start each bar at the plot's left
    # edge (x2 in pixels) instead of at zero, which would put zero in the domain and blank the chart.
    data = data[data["value"] > 0]
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("value:Q", title=None, scale=alt.Scale(type="log"), stack=None),
            x2=alt.value(0),
            y=alt.Y("format:N", title=None, sort=list(frame["format"])),
            color=alt.Color("format:N", legend=None),
            facet=alt.Facet("measure:N", columns=2, title=None, sort=measures),
            tooltip=["format:N", "measure:N", alt.Tooltip("value:Q", format=".4g")],
        )
        .properties(width=300, height=140)
        .resolve_scale(x="independent")
    )
