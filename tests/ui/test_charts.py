"""Chart specs: runs told apart by hue, not by shades of one colour."""

import colorsys

import pandas as pd

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


def test_exact_match_frame_scores_every_held_out_sum_once_per_iteration():
    from core.events import BreakdownRow, ErrorBreakdown
    from ui.charts import exact_match_frame
    from ui.runs import RunRecord

    def breakdown(epoch, by_carries):
        rows = [BreakdownRow("carries", value, total, right) for value, (total, right) in by_carries]
        # Every sum is also counted once by its operand length: those rows must not count twice.
        rows.append(BreakdownRow("length", 1, sum(total for _, (total, _) in by_carries), 0))
        return ErrorBreakdown(epoch=epoch, rows=tuple(rows))

    run = RunRecord(label="#1", job_id="gone", config=None)  # type: ignore[arg-type]
    run.breakdowns = [
        breakdown(1, [(0, (30, 3)), (1, (10, 1))]),
        breakdown(2, [(0, (30, 27)), (1, (10, 5))]),
    ]
    frame = exact_match_frame([run])
    assert list(frame.columns) == ["run", "epoch", "metric", "split", "value"]
    assert frame["epoch"].tolist() == [1, 2]
    assert frame["value"].tolist() == [4 / 40, 32 / 40]
    assert set(frame["metric"]) == {"exact match"} and set(frame["split"]) == {"held-out"}


def test_every_chart_help_is_one_short_line():
    from ui.charts import CHART_HELP

    assert {"loss", "accuracy", "character accuracy", "exact match", "batch"} <= set(CHART_HELP)
    for text in CHART_HELP.values():
        assert "\n" not in text and 20 < len(text) <= 160, text


class RecordingContainer:
    """Stands in for a Streamlit container: keeps what each chart call was given."""

    def __init__(self):
        self.charts, self.captions = [], []

    def vega_lite_chart(self, data, spec, **keywords):
        self.charts.append((data, spec))

    def caption(self, text):
        self.captions.append(text)


def test_metric_and_batch_specs_carry_their_domains_so_an_empty_first_run_logs_nothing():
    from core.digits import DigitsConfig
    from core.events import BatchEnded
    from ui.charts import batch_chart, metric_chart
    from ui.runs import RunRecord

    frame = pd.DataFrame(
        [
            ("#1", 1, "loss", "train", 2.5),
            ("#1", 2, "loss", "train", 1.5),
            ("#1", 2, "loss", "validation", 1.7),
        ],
        columns=["run", "epoch", "metric", "split", "value"],
    )
    container = RecordingContainer()
    metric_chart(frame, metric="loss", title="Loss", container=container, help="What it shows.")
    ((_, spec),) = container.charts
    assert spec["encoding"]["x"]["scale"]["domain"] == [1, 2]
    assert spec["encoding"]["y"]["scale"]["domain"] == [0, 2.5]  # From zero, as Vega-Lite's default.
    assert container.captions == ["What it shows."]

    run = RunRecord(label="#1", job_id="gone", config=DigitsConfig(epochs=3), unit="Epoch")
    run.batches = [BatchEnded(epoch=1, batch=1, batches=10, step=1, loss=2.0, accuracy=0.1)]
    container = RecordingContainer()
    batch_chart([run], metric="loss", container=container)
    ((_, spec),) = container.charts
    # A single point still gets a usable domain, and the x axis spans the planned 3 x 10 batches.
    assert spec["encoding"]["x"]["scale"]["domain"] == [1, 30]
    assert spec["encoding"]["y"]["scale"]["domain"] == [0, 2]


def test_a_training_runs_chart_specs_stay_the_same_from_poll_to_poll():
    # A changed spec makes the browser build the Vega view again (a parse and compile on the cores
    # that train); an unchanged one only gets its rows replaced. Polls while a run trains: new
    # epochs, loss falling, accuracy and exact match rising, one slow first iteration.
    from core.addition import AdditionConfig
    from core.events import BatchEnded, BreakdownRow, EpochEnded, ErrorBreakdown
    from ui.addition_errors_view import breakdown_specs
    from ui.charts import batch_chart, epoch_frame, exact_match_frame, metric_chart
    from ui.runs import RunRecord

    run = RunRecord(label="#1", job_id="live", config=AdditionConfig(iterations=30), unit="Iteration")

    def poll(epochs: int) -> list[dict]:
        run.epochs = [
            EpochEnded(
                epoch=epoch,
                epochs=30,
                loss=2.0 / epoch,
                accuracy=0.3 + epoch / 50,
                val_loss=2.1 / epoch,
                val_accuracy=0.28 + epoch / 50,
                seconds=3.0 if epoch == 1 else 1.0 + epoch / 100,
            )
            for epoch in range(1, epochs + 1)
        ]
        run.batches = [
            BatchEnded(
                epoch=epoch, batch=1, batches=36, step=epoch * 36, loss=2 / epoch, accuracy=epoch / 40
            )
            for epoch in range(1, epochs + 1)
        ]
        run.breakdowns = [
            ErrorBreakdown(
                epoch=epoch,
                rows=(BreakdownRow("carries", 0, 50, epoch), BreakdownRow("length", 3, 50, epoch)),
            )
            for epoch in range(1, epochs + 1)
        ]
        container = RecordingContainer()
        frame = pd.concat([epoch_frame([run]), exact_match_frame([run])], ignore_index=True)
        for metric in ("loss", "accuracy", "exact match", "seconds"):
            metric_chart(frame, metric=metric, title=metric, container=container, planned=30)
        batch_chart([run], metric="loss", container=container)
        batch_chart([run], metric="accuracy", container=container)
        return [spec for _, spec in container.charts] + breakdown_specs(run)

    before = poll(3)
    for epochs in (4, 5, 9, 12):
        assert poll(epochs) == before, f"a chart's spec changed at epoch {epochs}"
    # Data outside the domain still widens it: a loss above the axis is never cut off.
    run_specs = poll(12)
    assert run_specs[0]["encoding"]["y"]["scale"]["domain"][1] >= 2.1
    assert run_specs[0]["encoding"]["x"]["scale"]["domain"] == [1, 30]


def test_the_addition_charts_are_built_before_the_first_run_asks_for_them():
    from ui.addition_view import ADDITION_CHARTS, warm_charts
    from ui.charts import _metric_spec

    _metric_spec.cache_clear()
    warm_charts.cache_clear()
    warm_charts()
    built = _metric_spec.cache_info().misses
    for metric, title, _ in ADDITION_CHARTS:  # What the first poll of a run draws.
        _metric_spec(metric=metric, title=title, x_title="Iteration", points=True)
    assert _metric_spec.cache_info().misses == built == len(ADDITION_CHARTS)


def test_accuracy_per_digit_bars_stay_inside_their_plot_and_the_lowest_still_shows():
    # Its axis starts near the worst digit, not at 0: unclipped bars ran down past the plot, and the
    # chart was laid out so its title and axis were cut off at 1400 px (seen in a walkthrough).
    from ui.charts import per_class_chart

    accuracy = (0.99, 0.97, 0.95, 0.9, 0.93, 0.96, 0.98, 0.94, 0.91, 0.92)
    spec = per_class_chart(accuracy).to_dict()
    assert spec["mark"]["clip"] is True
    low, high = spec["encoding"]["y"]["scale"]["domain"]
    assert 0.0 <= low < min(accuracy) and high == 1.0
    # The worst digit's bar is a visible share of the plot, not a sliver.
    assert (min(accuracy) - low) / (high - low) >= 0.05
    # One digit at 100% and the rest near it: still a range, never [1, 1].
    low, high = per_class_chart((1.0,) * 10).to_dict()["encoding"]["y"]["scale"]["domain"]
    assert low < high == 1.0


def test_a_chart_drawn_before_its_first_point_keeps_its_spec_when_the_points_come():
    # Drawn at the start of a run, the view is built once in the browser; its first points must not
    # change the spec (a new spec builds the view again in the middle of the run).
    from ui.addition_view import AXIS_TOPS
    from ui.charts import metric_chart

    def drawn(rows, metric, *, training=True):
        frame = pd.DataFrame(rows, columns=["run", "epoch", "metric", "split", "value"])
        container = RecordingContainer()
        metric_chart(
            frame,
            metric=metric,
            title=metric,
            container=container,
            planned=21,
            top=AXIS_TOPS.get(metric),
            training=training,
        )
        return [spec for _, spec in container.charts], container.captions

    for metric, first, beyond in (
        ("loss", 1.9, 2.7),
        ("seconds", 2.4, 3.2),
        ("accuracy", 0.35, None),
        ("exact match", 0.0, None),
    ):
        (empty,), _ = drawn([], metric)
        (with_points,), _ = drawn([("#1", 1, metric, "train", first)], metric)
        assert empty == with_points, metric
        if beyond is not None:
            # A point above the guessed top still widens the axis: it is never cut off.
            (wider,), _ = drawn([("#1", 1, metric, "train", beyond)], metric)
            assert wider["encoding"]["y"]["scale"]["domain"][1] >= beyond
    # A metric with no known top, or a run that ended before its first point: no empty frame.
    for metric, training in (("gradient norm", True), ("accuracy", False)):
        charts, captions = drawn([], metric, training=training)
        assert charts == [] and captions == [f"{metric}: appears after the first iteration."]
