"""Altair charts shared by the training pages."""

from __future__ import annotations

import altair as alt
import pandas as pd

from core.runs import RunRecord


def epoch_frame(runs: list[RunRecord]) -> pd.DataFrame:
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
                rows.append(
                    {
                        "run": run.label,
                        "epoch": event.epoch,
                        "metric": metric,
                        "split": split,
                        "value": value,
                    }
                )
    return pd.DataFrame(rows, columns=["run", "epoch", "metric", "split", "value"])


def metric_chart(
    frame: pd.DataFrame, *, metric: str, title: str, x_title: str = "Iteration"
) -> alt.Chart:
    """Lines of one metric per run (colour) and split (dash)."""
    data = frame[frame["metric"] == metric]
    return (
        alt.Chart(data, title=title)
        .mark_line(point=len(data) < 60)
        .encode(
            x=alt.X("epoch:Q", title=x_title, axis=alt.Axis(tickMinStep=1)),
            y=alt.Y("value:Q", title=metric.capitalize()),
            color=alt.Color("run:N", title="Run"),
            strokeDash=alt.StrokeDash("split:N", title="Data"),
            tooltip=["run:N", "epoch:Q", "split:N", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=260)
    )


def batch_chart(runs: list[RunRecord], *, metric: str) -> alt.Chart:
    """Per-batch training `metric` over steps, one line per run."""
    rows = [
        {"run": run.label, "step": event.step, "value": getattr(event, metric)}
        for run in runs
        for event in run.batches
    ]
    data = pd.DataFrame(rows, columns=["run", "step", "value"])
    return (
        alt.Chart(data, title=f"Per-batch {metric}")
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="Batch"),
            y=alt.Y("value:Q", title=metric.capitalize()),
            color=alt.Color("run:N", title="Run"),
            tooltip=["run:N", "step:Q", alt.Tooltip("value:Q", format=".4f")],
        )
        .properties(height=220)
    )
