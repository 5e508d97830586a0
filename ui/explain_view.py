"""Digit Recognizer: why did it say that? Activation maps, first-layer filters and saliency overlays.

Charts are built with Altair once (without data, cached) and fed rows through `st.vega_lite_chart`, as
ui/charts.py does: the activation grids have thousands of cells, above Altair's inline-row limit.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st

from core import explain
from core.canvas import Prediction
from ui.runs import RunRecord

CELL_COLUMNS = ["panel", "index", "row", "column", "value"]
OVERLAY_COLUMNS = ["row", "column", "ink", "saliency", "scaled", "strength"]
PANEL_SPACING = 8  # Pixels between small-multiple panels.
MAX_FILTER_EPOCHS = 6  # Filter snapshots shown at once while training (the latest ones).
# Pixels per cell of the 28x28 saliency overlay: a whole number, or cell edges show as seams.
OVERLAY_CELL = 9
SALIENCY_PERCENTILE = 95  # Pushes above this percentile get the full colour.
# ColorBrewer RdBu's ends around a near-white 0: blue pushed away from the digit, red towards it.
SALIENCY_RANGE = ["#2166ac", "#f7f7f7", "#b2182b"]
# The drawing under the saliency: a barely grey square (so its 28x28 edge shows), full ink only a light
# grey, so the colour stands out.
INK_RANGE = ["#f2f2f2", "#b4b4b4"]


def _grid_frame(maps: np.ndarray, labels: list[str]) -> pd.DataFrame:
    """Long table of (panel, index, row, column, value) from (panels, height, width) maps."""
    panels, height, width = maps.shape
    return pd.DataFrame(
        {
            "panel": np.repeat(labels, height * width),
            # The panel's position: facets are ordered by it, not by their labels as text (#1, #10, #2).
            "index": np.repeat(np.arange(panels), height * width),
            "row": np.tile(np.repeat(np.arange(height), width), panels),
            "column": np.tile(np.arange(width), panels * height),
            "value": maps.reshape(-1).astype(float),
        }
    )


@functools.lru_cache(maxsize=32)
def _grid_spec(*, title: str, columns: int, size: int, diverging: bool) -> dict[str, Any]:
    # Vega's redblue runs red to blue; reversed, positive weights are red as in the saliency overlay.
    scale = (
        alt.Scale(scheme="redblue", reverse=True, domainMid=0)
        if diverging
        else alt.Scale(scheme="greys")
    )
    colour = alt.Color("value:Q", scale=scale, legend=None)
    order = alt.EncodingSortField(field="index", op="min", order="ascending")
    chart = (
        alt.Chart(pd.DataFrame(columns=CELL_COLUMNS))
        .mark_rect()
        .encode(
            x=alt.X("column:O", axis=None),
            y=alt.Y("row:O", axis=None),
            color=colour,
            tooltip=["panel:N", "row:O", "column:O", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(width=size, height=size)
        # Tight spacing: eight panels a row fit the expander at 1024 px (the default 20 px did not).
        .facet(
            facet=alt.Facet("panel:N", title=None, sort=order),
            columns=columns,
            title=title,
            spacing=PANEL_SPACING,
        )
        .resolve_scale(color="independent")
    )
    spec = chart.to_dict()
    spec.pop("data", None)
    spec.pop("datasets", None)
    return spec


def grid_chart(
    maps: np.ndarray, labels: list[str], *, title: str, size: int = 60, diverging: bool = False
) -> None:
    """Small multiples of 2-D maps, one panel per label, each on its own colour scale."""
    columns = min(8, len(labels))
    # A whole number of pixels per cell (fractional cells leave seams between rows).
    side = maps.shape[1] * max(1, round(size / maps.shape[1]))
    spec = _grid_spec(title=title, columns=columns, size=side, diverging=diverging)
    st.vega_lite_chart(_grid_frame(maps, labels), copy.deepcopy(spec), width="content")


def overlay_frame(image: np.ndarray, salient: np.ndarray) -> pd.DataFrame:
    """Rows of the overlay: each pixel's ink, saliency and its colour position in [-1, 1]."""
    frame = _grid_frame(image.reshape(1, 28, 28), ["image"]).rename(columns={"value": "ink"})
    frame["saliency"] = salient.reshape(-1).astype(float)
    # Symmetric around 0 and scaled to the 95th percentile of the pushes (the few strongest pixels
    # clamp to full colour), as SmoothGrad's figures clip at a percentile: scaled to the single
    # strongest pixel, one outlier left every other pixel nearly white.
    pushes = np.abs(salient[salient != 0])
    peak = float(np.percentile(pushes, SALIENCY_PERCENTILE)) if pushes.size else 1.0
    frame["scaled"] = np.clip(frame["saliency"] / peak, -1.0, 1.0)
    frame["strength"] = np.abs(frame["scaled"])
    return frame


@functools.lru_cache(maxsize=32)
def overlay_spec(*, title: str) -> dict[str, Any]:
    """The overlay's spec without data (built once per title: Altair's checks cost ~50 ms a chart)."""
    base = alt.Chart(pd.DataFrame(columns=OVERLAY_COLUMNS)).encode(
        x=alt.X("column:O", axis=None), y=alt.Y("row:O", axis=None)
    )
    ink = base.mark_rect().encode(
        color=alt.Color("ink:Q", scale=alt.Scale(domain=[0, 1], range=INK_RANGE), legend=None)
    )
    heat = base.mark_rect().encode(
        color=alt.Color(
            "scaled:Q",
            scale=alt.Scale(domain=[-1, 0, 1], range=SALIENCY_RANGE, clamp=True),
            legend=None,
        ),
        # Faint where the push is weak, so the grey drawing shows through.
        opacity=alt.Opacity(
            "strength:Q", scale=alt.Scale(type="sqrt", domain=[0, 1], range=[0.3, 1]), legend=None
        ),
        tooltip=[
            "row:O",
            "column:O",
            alt.Tooltip("ink:Q", format=".2f"),
            alt.Tooltip("saliency:Q", format=".4f"),
        ],
    )
    side = 28 * OVERLAY_CELL
    chart = (
        alt.layer(ink, heat)
        # Each layer its own colour scale: one shared scale drew the saliency in the ink's greys.
        .resolve_scale(color="independent")
        # "pad": width and height are the plot's own, so the title does not squash it off square.
        .properties(width=side, height=side, title=title, autosize=alt.AutoSizeParams(type="pad"))
    )
    spec = chart.to_dict()
    spec.pop("data", None)
    spec.pop("datasets", None)
    return spec


def overlay_ui(image: np.ndarray, salient: np.ndarray, *, title: str, container: Any = st) -> None:
    """The 28x28 image in faint grey, the saliency on top: red pushed towards the digit, blue away."""
    spec = copy.deepcopy(overlay_spec(title=title))
    container.vega_lite_chart(overlay_frame(image, salient), spec, width="content")


def dense_chart(name: str, values: np.ndarray) -> tuple[alt.Chart, str]:
    """A hidden Dense layer's activations as one bar per unit, and a caption saying what they are."""
    units = len(values)
    frame = pd.DataFrame({"unit": np.arange(1, units + 1), "activation": values.astype(float)})
    ticks = [1, *range(16, units + 1, 16)] if units > 32 else list(range(1, units + 1))
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("unit:O", title="Unit", axis=alt.Axis(values=ticks, labelAngle=0)),
            y=alt.Y("activation:Q", title="Activation"),
            tooltip=["unit:O", alt.Tooltip("activation:Q", format=".3f")],
        )
        # "fit-x": the width follows the page, the height is the bars' own (not shared with the axes).
        .properties(
            height=140,
            title=f"{name} ({units} units)",
            autosize=alt.AutoSizeParams(type="fit-x", contains="padding"),
        )
    )
    silent = int(np.sum(values <= 0))
    caption = (
        f"The {units} units of the layer {name!r}: each bar is how strongly one unit fires for this "
        f"drawing ({silent} of {units} stay at 0). The layer after it reads the digit from these "
        "numbers."
    )
    return chart, caption


def explain_ui(model: Any, image: np.ndarray, prediction: Prediction) -> None:
    """Saliency for the predicted digit and the runner-up, the layers' activations and the filters."""
    try:
        activations = explain.layer_activations(model, image)
        second = explain.runner_up(prediction.probabilities)
        towards = explain.saliency(model, image, prediction.digit)
        against = explain.saliency(model, image, second)
        filters = explain.first_layer_filters(model)
    except ValueError as error:
        st.info(f"This model cannot be looked into: {error}")
        return
    st.markdown(
        "**Why did it say that?** Red pixels pushed the model towards the digit, blue ones away; "
        "the stronger the push, the deeper the colour. The grey underneath is the drawing."
    )
    left, right = st.columns(2)
    overlay_ui(image, towards, title=f"Why a {prediction.digit}?", container=left)
    overlay_ui(image, against, title=f"Why not a {second}?", container=right)
    with st.expander("Inside the network: every layer's activations and the first layer's filters"):
        convolutions = explain.convolution_layer_names(model)
        for name in convolutions:
            maps = np.transpose(activations[name], (2, 0, 1))
            size = 60 if maps.shape[1] > 15 else 40
            # Short labels (the chart's title names the layer): a label wider than its panel widens
            # the whole column.
            labels = [f"#{index + 1}" for index in range(len(maps))]
            grid_chart(maps, labels, title=name, size=size)
        for name, values in activations.items():
            if name in convolutions:
                continue
            chart, caption = dense_chart(name, values)
            st.altair_chart(chart, width="stretch")
            st.caption(caption)
        grid_chart(
            filters,
            [f"filter {index + 1}" for index in range(len(filters))],
            title="First layer's 3×3 filters (red positive, blue negative)",
            size=50,
            diverging=True,
        )


def filters_live_ui(run: RunRecord | None) -> None:
    """The first layer's filters as they change: one row of panels per epoch snapshot."""
    if run is None or not run.filters:
        return
    shown = run.filters[-MAX_FILTER_EPOCHS:]
    maps = np.concatenate([np.asarray(snapshot.filters, dtype=np.float32) for snapshot in shown])
    per_epoch = len(shown[0].filters)
    labels = [
        f"epoch {snapshot.epoch} · {index + 1}" for snapshot in shown for index in range(per_epoch)
    ]
    with st.expander("First-layer filters, one snapshot per epoch (epoch 0 = before training)"):
        grid_chart(maps, labels, title="Filters while training", size=40, diverging=True)


def drawing_insights_ui(model: Any, image: np.ndarray, prediction: Prediction | None) -> None:
    """Everything about one drawing below the prediction: add it to "My digits", then explain it."""
    from ui.personal_view import add_drawing_ui

    add_drawing_ui(image)
    if model is not None and prediction is not None:
        explain_ui(model, image, prediction)
