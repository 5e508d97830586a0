"""The Addition RNN page's form, test-sum table and "ask a model" box."""

from __future__ import annotations

import functools
import math
from typing import Any

import pandas as pd
import streamlit as st

from core.addition import (
    CHARACTERS,
    RECIPES,
    RNN_TYPES,
    AdditionConfig,
    build_addition_rnn,
    distinct_sums,
    example_question,
    fast_config,
    parse_question,
    solve,
)
from core.digits import model_summary
from core.events import DecodedSample, SamplesDecoded
from ui.addition_errors_view import breakdown_specs, breakdown_ui, confidence_table, sample_columns
from ui.charts import (
    CHART_HELP,
    _metric_spec,
    axis_top,
    epoch_frame,
    exact_match_frame,
    metric_chart,
)
from ui.lessons import lesson_slot, show_locked_presets
from ui.links import QUERY_FIELDS, query_from_config
from ui.runs import RunRecord
from ui.saved_models import use_saved_ui


def link_ui() -> dict[str, str]:
    """The address bar's parameters; the page's own come back after a visit to another page."""
    params = st.query_params.to_dict()
    own = {name: value for name, value in params.items() if name in QUERY_FIELDS}
    if own:
        st.session_state["addition_link"] = own
    elif st.session_state["addition_link"]:
        # The sidebar's links carry no parameters: put the page's link back in the address bar.
        own = st.session_state["addition_link"]
        for name, value in own.items():
            st.query_params[name] = value
    return {**params, **own}


def form_ui(
    presets: dict, *, locked: frozenset[str] = frozenset(), hidden: frozenset[str] = frozenset()
) -> AdditionConfig | None:
    """The eight fields of the original form plus Reverse; returns a config when Train is pressed."""
    base = AdditionConfig()

    def preset(name: str):
        return presets.get(name, getattr(base, name))

    # A teacher's lesson link locks fields (shown disabled at its preset) or hides them (preset used).
    show_locked_presets("addition", locked)
    # No minimum or maximum on the number fields: out of range, the browser greys a field red and drops
    # the value without a word; the config's check below says which field and what range instead.
    slot = lesson_slot(hidden, preset)
    with st.form("addition_form"):
        left, middle, right = st.columns(3)
        digits = slot(left, "digits").number_input(
            "Digits", None, None, preset("digits"), key="addition_digits", disabled="digits" in locked
        )
        training_size = slot(middle, "training_size").number_input(
            "Training size",
            None,
            None,
            preset("training_size"),
            step=1000,
            key="addition_training_size",
            disabled="training_size" in locked,
        )
        rnn_type = slot(right, "rnn_type").selectbox(
            "RNN type",
            RNN_TYPES,
            RNN_TYPES.index(preset("rnn_type")),
            key="addition_rnn_type",
            disabled="rnn_type" in locked,
        )
        num_layers = slot(left, "layers").number_input(
            "RNN layers",
            None,
            None,
            preset("layers"),
            key="addition_layers",
            disabled="layers" in locked,
        )
        hidden_size = slot(middle, "hidden_size").number_input(
            "Hidden size",
            None,
            None,
            preset("hidden_size"),
            key="addition_hidden_size",
            disabled="hidden_size" in locked,
        )
        batch_size = slot(right, "batch_size").number_input(
            "Batch size",
            None,
            None,
            preset("batch_size"),
            key="addition_batch_size",
            disabled="batch_size" in locked,
        )
        iterations = slot(left, "iterations").number_input(
            "Train iterations",
            None,
            None,
            preset("iterations"),
            key="addition_iterations",
            disabled="iterations" in locked,
        )
        test_examples = slot(middle, "test_examples").number_input(
            "# of test examples",
            None,
            None,
            preset("test_examples"),
            key="addition_test_examples",
            disabled="test_examples" in locked,
        )
        # Half-width columns of their own: in a third of the form at 1024 px the recipe's label and
        # the checkbox's were cut ("Keras example (Ada…", "Reverse the questi…").
        recipe_column, reverse_column = st.columns(2, vertical_alignment="bottom")
        reverse = slot(reverse_column, "reverse").checkbox(
            "Reverse the question",
            preset("reverse"),
            key="addition_reverse",
            disabled="reverse" in locked,
            help="Feeding '12+345' as '543+21' shortens what the RNN must remember.",
        )
        recipe = slot(recipe_column, "recipe").selectbox(
            "Training recipe",
            RECIPES,
            RECIPES.index(preset("recipe")),
            format_func=RECIPE_LABELS.get,
            key="addition_recipe",
            disabled="recipe" in locked,
            help=(
                "Keras: the examples' Adam at 0.001. Fast: a learning rate scaled to the batch, one "
                "iteration of warm-up then cosine decay, gradient clipping, unrolled RNNs, and a stop "
                "once 99% of the held-out sums come out exactly right."
            ),
        )
        train_column, preset_column = st.columns([1, 4], vertical_alignment="center")
        pressed = train_column.form_submit_button("Train", type="primary")
        fast_preset_ui(preset_column, presets, locked=locked | hidden)
        if not pressed:
            return None
    try:
        return AdditionConfig(
            digits=int(digits),
            training_size=int(training_size),
            rnn_type=rnn_type,
            layers=int(num_layers),
            hidden_size=int(hidden_size),
            batch_size=int(batch_size),
            iterations=int(iterations),
            test_examples=int(test_examples),
            reverse=bool(reverse),
            recipe=str(recipe),
        )
    except ValueError as error:
        st.error(str(error))
        return None


RECIPE_LABELS = {
    "keras": "Keras example (Adam 0.001)",
    "fast": "Fast (scaled rate, warm-up, stop at 99%)",
}
# The form's widget key of each config field.
FORM_KEYS = {
    "digits": "addition_digits",
    "training_size": "addition_training_size",
    "rnn_type": "addition_rnn_type",
    "layers": "addition_layers",
    "hidden_size": "addition_hidden_size",
    "batch_size": "addition_batch_size",
    "iterations": "addition_iterations",
    "test_examples": "addition_test_examples",
    "reverse": "addition_reverse",
    "recipe": "addition_recipe",
}


def fast_preset_ui(container: Any, presets: dict, *, locked: frozenset[str]) -> None:
    """The form's "Fast preset" button: fills it with `fast_config` for its digits (2 at least)."""

    def apply() -> None:
        digits = st.session_state.get(FORM_KEYS["digits"], presets.get("digits", 2))
        config = fast_config(min(max(int(digits), 2), 5) if "digits" not in locked else int(digits))
        values = {name: getattr(config, name) for name in FORM_KEYS if name not in locked}
        # The form's widgets take their values from the link: drop their state so they read it anew.
        for name in values:
            st.session_state.pop(FORM_KEYS[name], None)
        link = query_from_config(config)
        st.query_params.update({name: link[name] for name in values})

    fixed_digits = "digits" in locked and int(presets.get("digits", 2)) < 2
    container.form_submit_button(
        "Fast preset",
        on_click=apply,
        disabled=fixed_digits,
        key="addition_fast_preset",
        help=(
            "An LSTM of 128 on 50,000 sums with the fast recipe: about two minutes to 99% exact match "
            "on 3-digit sums on a two-core server. Press Train after it fills the form."
        ),
    )


@st.cache_data(show_spinner=False)
def summary_rows(digits: int, rnn_type: str, layers: int, hidden_size: int) -> pd.DataFrame:
    """The layer table of a freshly built model of this shape."""
    config = AdditionConfig(
        digits=digits,
        rnn_type=rnn_type,
        layers=layers,
        hidden_size=hidden_size,
        training_size=min(AdditionConfig().training_size, distinct_sums(digits)),
        test_examples=0,
    )
    return pd.DataFrame(model_summary(build_addition_rnn(config)))


def summary_ui(presets: dict) -> None:
    """The layers of the model the form's last submitted values (else its presets) build."""
    shape = {
        name: st.session_state.get(
            f"addition_{name}", presets.get(name, getattr(AdditionConfig(), name))
        )
        for name in ("digits", "rnn_type", "layers", "hidden_size")
    }
    with st.expander("Model summary"):
        try:
            rows = summary_rows(**shape)
        except ValueError as error:
            st.caption(f"No summary for these values: {error}")
            return
        st.dataframe(rows, hide_index=True, width="stretch")
        st.caption(
            f"{shape['rnn_type']}, {shape['layers']} decoder layer(s) of {shape['hidden_size']} units: "
            f"{int(rows['params'].sum()):,} parameters in all (updated when you press Train)."
        )


# The Addition page's metric charts: metric, title and help key, left to right and top to bottom.
# An untrained model's cross-entropy over the answer alphabet, ln 12 ~ 2.48: the loss chart's axis top
# before its first point, which later points seldom pass (a run's loss falls from there).
LOSS_TOP = axis_top(math.log(len(CHARACTERS.chars)))
# Seconds per iteration: the page's tfjs defaults take ~0.2 s here and their first iteration (tracing
# included) 1 to 2.5 s on a busy server; a slower run grows the axis once, when its first iteration ends.
SECONDS_TOP = 3.0
AXIS_TOPS = {"loss": LOSS_TOP, "seconds": SECONDS_TOP}
ADDITION_CHARTS = (
    ("loss", "Loss", "loss"),
    ("seconds", "Seconds per iteration", "seconds"),
    ("accuracy", "Accuracy (per character)", "character accuracy"),
    ("exact match", "Exact match (held-out sums)", "exact match"),
)


@functools.cache
def warm_charts() -> None:
    """Build the charts' specs and the sums table's styling once per process, before any run trains.

    The first draw of a run otherwise spends ~250 ms of GIL-holding Python (Altair's spec building and
    validation, pandas' Styler templates) on the cores and the interpreter the first iterations use.
    """
    for metric, title, _ in ADDITION_CHARTS:
        _metric_spec(metric=metric, title=title, x_title="Iteration", points=True)
    breakdown_specs(RunRecord(label="warm", job_id="none", config=AdditionConfig()))
    samples = SamplesDecoded(epoch=1, samples=(DecodedSample("1+2", "3", "3", (0.9,)),))
    confidence_table(samples).to_html()


def charts_ui(runs: list[RunRecord], active: RunRecord) -> None:
    """Loss, accuracy and time per iteration of the runs picked for overlay, and the test sums."""
    shown = st.multiselect(
        "Runs on the charts",
        [run.label for run in runs],
        default=[active.label],
        key="addition_compare",
        help="Overlay runs to compare SimpleRNN, GRU and LSTM.",
    )
    chosen = [run for run in runs if run.label in shown] or [active]
    frame = pd.concat([epoch_frame(chosen), exact_match_frame(chosen)], ignore_index=True)
    planned = max(run.planned_epochs for run in chosen)
    containers = [*st.columns(2), *st.columns(2)]
    for container, (metric, title, help_key) in zip(containers, ADDITION_CHARTS, strict=True):
        metric_chart(
            frame,
            metric=metric,
            title=title,
            container=container,
            help=CHART_HELP[help_key],
            planned=planned,
            top=AXIS_TOPS.get(metric),
            training=active.training,
        )
    samples_ui(active)
    breakdown_ui(active)


def run_metrics(run: RunRecord) -> dict[str, float]:
    """What a saved addition model is listed with: validation accuracy and exact match."""
    metrics = {"val_accuracy": run.epochs[-1].val_accuracy} if run.epochs else {}
    if run.samples is not None:
        metrics["exact_match"] = run.samples.exact_match
    return metrics


def samples_ui(run: RunRecord) -> None:
    """Test sums of the latest iteration, right ones green and wrong ones red."""
    if run.samples is None:
        if run.training and isinstance(run.config, AdditionConfig):
            # The table's frame from the start, so the browser builds its grid while the run starts.
            st.markdown("**Test sums** — after the first iteration")
            empty = pd.DataFrame(columns=sample_columns(run.config.answer_length))
            st.dataframe(empty, hide_index=True, key="addition_samples_table")
        return
    st.markdown(
        f"**Test sums after iteration {run.samples.epoch}** — exact match "
        f"{run.samples.exact_match:.0%} ({sum(s.correct for s in run.samples.samples)} of "
        f"{len(run.samples.samples)})"
    )
    # Each answer character coloured by the model's probability for it (ui/addition_errors_view.py).
    st.dataframe(confidence_table(run.samples), hide_index=True, key="addition_samples_table")


def ask_ui(chosen: RunRecord | None) -> None:
    """Type a sum and get the answer of the run picked above or of a saved model."""
    st.subheader("Ask a model")
    sources = ["The run picked above", "A saved model"]
    source = st.radio("Model", sources, horizontal=True, key="addition_ask_source")
    if source == sources[0]:
        if chosen is None or chosen.model is None or not isinstance(chosen.config, AdditionConfig):
            st.caption("Train a model above first, or pick a saved one.")
            return
        model, digits, reverse = chosen.model, chosen.config.digits, chosen.config.reverse
    else:
        picked = use_saved_ui(task="addition", key_prefix="addition")
        if picked is None:
            return
        record, model = picked
        digits, reverse = int(record.config.get("digits", 1)), bool(record.config.get("reverse", True))
    # An example this model can answer (the old fixed "12+345" was refused by 2-digit models).
    question = st.text_input(
        "Type a sum", placeholder=example_question(digits), max_chars=40, key="addition_question"
    )
    if not question.strip():
        return
    try:
        a, b = parse_question(question, digits=digits)
    except ValueError as error:
        st.error(str(error))
        return
    answer = solve(model, [f"{a}+{b}"], digits=digits, reverse=reverse)[0]
    verdict = "right" if answer == str(a + b) else f"wrong, it is {a + b}"
    st.markdown(f"{a} + {b} = **{answer}** according to the model ({verdict}).")
