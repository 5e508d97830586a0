"""Explain chart specs: a square red/blue saliency overlay, panels in number order, a dense bar chart."""

import numpy as np
import pandas as pd

from ui.explain_view import _grid_frame, _grid_spec, overlay_frame, overlay_spec


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def a_one_and_its_saliency() -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((28, 28, 1), dtype=np.float32)
    image[4:24, 13:15, 0] = 1.0
    salient = np.zeros((28, 28), dtype=np.float32)
    salient[4:14, 13:15] = 0.8  # The top half pushed towards the digit...
    salient[14:24, 13:15] = -0.2  # ...the bottom half away from it.
    return image, salient


def layer(spec, field):
    (found,) = [part for part in spec["layer"] if part["encoding"]["color"]["field"] == field]
    return found


def test_the_saliency_overlay_is_a_square_red_blue_map_over_faint_grey_ink():
    image, salient = a_one_and_its_saliency()
    spec = overlay_spec(title="Why a 1?")
    # Square: 28x28 equal cells, a whole number of pixels each (fractional cells left seams), and
    # the size is the plot's own ("pad"), not shared with the title.
    assert spec["width"] == spec["height"]
    assert spec["width"] % 28 == 0
    assert spec["autosize"]["type"] == "pad"
    # The ink and the saliency each keep their own colour scale (one shared scale made both grey).
    assert spec["resolve"]["scale"]["color"] == "independent"
    heat = layer(spec, "scaled")["encoding"]["color"]["scale"]
    # Diverging around 0, symmetric: blue for the most negative value, red for the most positive;
    # pushes beyond the domain (the few strongest) get the full colour instead of none.
    low, middle, high = heat["domain"]
    assert middle == 0 and low == -high and high > 0 and heat["clamp"] is True
    blue, _, red = (rgb(colour) for colour in heat["range"])
    assert blue[2] > blue[0] + 80 and red[0] > red[2] + 80
    # The ink underneath is a faint grey: even full ink stays light.
    ink = layer(spec, "ink")["encoding"]["color"]["scale"]
    assert ink["domain"] == [0, 1] and min(rgb(ink["range"][-1])) >= 0x99
    # The saliency values themselves are in the chart's data, and coloured by sign and size.
    frame = overlay_frame(image, salient).sort_values(["row", "column"])
    assert set(frame.columns) >= {"row", "column", "ink", "saliency", "scaled"}
    np.testing.assert_allclose(frame["saliency"].to_numpy(), salient.reshape(-1), rtol=1e-6)
    np.testing.assert_array_equal(np.sign(frame["scaled"]), np.sign(frame["saliency"]))
    assert frame["scaled"].max() == high and frame["scaled"].min() > low  # Red towards, fainter blue.


def test_a_flat_saliency_map_still_gets_finite_colours():
    image, _ = a_one_and_its_saliency()
    frame = overlay_frame(image, np.zeros((28, 28), dtype=np.float32))
    assert np.isfinite(frame["scaled"]).all() and (frame["scaled"] == 0).all()


def test_channel_panels_are_ordered_by_number_not_as_text():
    labels = [f"conv_2 #{index + 1}" for index in range(16)]
    frame = _grid_frame(np.zeros((16, 4, 4), dtype=np.float32), labels)
    spec = _grid_spec(title="conv_2", columns=8, size=40, diverging=False)
    sort = spec["facet"]["sort"]
    # The facet is ordered by the panel's position, so #2 comes right after #1 (text order: #1, #10).
    assert sort["field"] in frame.columns
    order = frame.groupby("panel", sort=False)[sort["field"]].min().sort_values().index.tolist()
    assert order == labels


def test_the_dense_layer_is_one_bar_per_unit_with_a_caption():
    from ui.explain_view import dense_chart

    values = np.abs(np.random.default_rng(0).normal(size=128)).astype(np.float32)
    chart, caption = dense_chart("dense", values)
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "bar"
    assert spec["encoding"]["x"]["field"] == "unit" and spec["encoding"]["y"]["field"] == "activation"
    (rows,) = spec["datasets"].values()
    frame = pd.DataFrame(rows)
    assert frame["unit"].tolist() == list(range(1, 129))
    np.testing.assert_allclose(frame["activation"].to_numpy(), values, rtol=1e-6)
    assert "128 units" in caption and "dense" in caption
