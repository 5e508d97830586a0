"""Chart specs: runs told apart by hue, not by shades of one colour."""

import colorsys

from ui.charts import _batch_spec, _metric_spec


def hue_degrees(colour: str) -> float:
    red, green, blue = (int(colour[index : index + 2], 16) / 255 for index in (1, 3, 5))
    return colorsys.rgb_to_hsv(red, green, blue)[0] * 360


def hue_distance(first: str, second: str) -> float:
    difference = abs(hue_degrees(first) - hue_degrees(second))
    return min(difference, 360 - difference)


def test_the_first_runs_get_colours_of_clearly_different_hues():
    specs = [
        _metric_spec(metric="loss", title="Loss", x_title="Iteration", points=True),
        _batch_spec(metric="loss"),
    ]
    for spec in specs:
        colours = spec["encoding"]["color"]["scale"]["range"]
        assert len(colours) >= 8
        # Overlaid runs #1 to #4 (the usual comparison) differ by at least 40 degrees of hue pairwise.
        first = colours[:4]
        assert min(hue_distance(a, b) for a in first for b in first if a != b) >= 40
