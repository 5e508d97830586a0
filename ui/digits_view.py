"""The Digit Recognizer page's data source, form, results and drawing canvas."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import streamlit as st

from core.canvas import DRAWING_SIDE, LOW_CONFIDENCE, decode_drawing, preprocess_canvas
from core.digits import (
    MODEL_LABELS,
    MODELS,
    DigitsConfig,
    DigitsResult,
    check_available,
    model_summary,
    normalize_images,
)
from core.jobs import JobState, QueueFullError
from core.mnist import MnistData, MnistNotFoundError, cached_mnist, load_mnist_from_uploads
from core.reader import DigitReader, fast_reader, keras_reader
from ui.charts import (
    batch_chart,
    confusion_chart,
    epoch_frame,
    loss_and_accuracy_ui,
    per_class_chart,
    probability_chart,
)
from ui.drawing import drawing_square
from ui.explain_view import drawing_insights_ui, filters_live_ui
from ui.lessons import lesson_slot, show_locked_presets
from ui.personal_view import personal_ui
from ui.resources import get_runner, session_handle
from ui.runs import RunRecord
from ui.saved_models import use_saved_ui

MIDDLE_WIDTH = 170  # "What the model sees" and the prediction.


def data_ui() -> MnistData | None:
    """Where MNIST comes from, or how to provide it."""
    handle = session_handle()
    data = handle.uploaded_mnist
    try:
        data = data or cached_mnist()
    except ValueError as error:
        if isinstance(error, MnistNotFoundError):
            # One line with the fix; where the loader looked (and why a download failed) on a click.
            st.warning(error.summary)
            if error.summary != str(error):
                st.expander("Where it looked").caption(str(error))
        else:
            st.warning(f"MNIST is not available: {error}")
        files = st.file_uploader(
            "Or upload the four MNIST IDX files (.gz or raw)",
            accept_multiple_files=True,
            key="digits_idx_upload",
        )
        if files and st.button("Use these files", key="digits_use_upload"):
            try:
                # Held by the session handle, so it is freed when the browser session ends.
                handle.uploaded_mnist = load_mnist_from_uploads(
                    {file.name: file.getvalue() for file in files}
                )
            except ValueError as upload_error:
                st.error(f"Those files could not be used: {upload_error}")
            else:
                st.rerun()
        return None
    st.caption(
        f"MNIST: {len(data.train_images):,} train and {len(data.test_images):,} test images "
        f"({data.source})."
    )
    return data


@st.cache_data(show_spinner=False)
def summary_rows(model_name: str) -> pd.DataFrame:
    """The layer table of a freshly built model of this kind."""
    return pd.DataFrame(model_summary(MODELS[model_name]()))


def form_ui(
    available: int,
    *,
    presets: dict | None = None,
    locked: frozenset[str] = frozenset(),
    hidden: frozenset[str] = frozenset(),
) -> DigitsConfig | None:
    """The training form; returns a config when Train is pressed and the values are valid."""
    # A teacher's lesson link presets fields and locks (shown disabled) or hides (preset used) them.
    defaults = {**dataclasses.asdict(DigitsConfig()), "training_size": 0, **(presets or {})}
    show_locked_presets("digits", locked)
    slot = lesson_slot(hidden, defaults.get)
    # The model is chosen outside the form so the model summary below follows the choice at once (a
    # widget inside a form only reports its value on Train); its long label gets a row of its own.
    model_name = slot(st, "model").selectbox(
        "Model",
        list(MODELS),
        list(MODELS).index(defaults["model"]),
        format_func=lambda key: MODEL_LABELS[key],
        key="digits_model",
        disabled="model" in locked,
    )
    # No minimum or maximum on the number fields: out of range, the browser greys a field red and drops
    # the value without a word; the config's check below says which field and what range instead.
    with st.form("digits_form"):
        # The two ticks share a wide column, so no label is cut at 1024 px.
        left, middle, right = st.columns(3)
        epochs = slot(left, "epochs").number_input(
            "Epochs", None, None, defaults["epochs"], key="digits_epochs", disabled="epochs" in locked
        )
        batch_size = slot(middle, "batch_size").number_input(
            "Batch size",
            None,
            None,
            defaults["batch_size"],
            key="digits_batch_size",
            disabled="batch_size" in locked,
        )
        learning_rate = slot(right, "learning_rate").number_input(
            "Learning rate",
            None,
            None,
            defaults["learning_rate"],
            step=0.0005,
            format="%.5f",
            key="digits_learning_rate",
            disabled="learning_rate" in locked,
        )
        left, wide = st.columns([1, 2])
        training_size = slot(left, "training_size").number_input(
            "Training images (0 = all)",
            None,
            None,
            min(int(defaults["training_size"] or 0), available),
            step=1000,
            key="digits_training_size",
            disabled="training_size" in locked,
        )
        augment = slot(wide, "augment").checkbox(
            "Augment (shift, rotate, zoom)",
            defaults["augment"],
            key="digits_augment",
            disabled="augment" in locked,
            help="Random small shifts, rotations and zooms make hand drawings easier to read.",
        )
        decay = slot(wide, "decay").checkbox(
            "Decay the learning rate",
            defaults["decay"],
            key="digits_decay",
            disabled="decay" in locked,
            help="Lower the rate along a cosine to zero by the last epoch (steadier final accuracy).",
        )
        if not st.form_submit_button("Train", type="primary"):
            return None
    try:
        config = DigitsConfig(
            decay=bool(decay),
            model=str(model_name),
            epochs=int(epochs),
            batch_size=int(batch_size),
            learning_rate=float(learning_rate),
            training_size=int(training_size) or None,
            augment=bool(augment),
        )
        check_available(config.training_size, available)
        return config
    except ValueError as error:
        st.error(str(error))
        return None


def charts_ui(active: RunRecord) -> None:
    """Per-batch and per-epoch loss and accuracy of the latest run."""
    left, right = st.columns(2)
    batch_chart([active], metric="loss", container=left)
    batch_chart([active], metric="accuracy", container=right)
    titles = ("Loss per epoch", "Accuracy per epoch")
    loss_and_accuracy_ui(epoch_frame([active]), active, titles=titles)
    filters_live_ui(active)


def results_ui(run: RunRecord, data: MnistData) -> None:
    """Test accuracy, confusion matrix, per-class accuracy and a gallery of mistakes."""
    result = run.result
    if not isinstance(result, DigitsResult):
        return
    st.metric("Test accuracy", f"{result.test_accuracy:.2%}")
    left, right = st.columns(2)
    left.altair_chart(confusion_chart(result.confusion), width="stretch")
    right.altair_chart(per_class_chart(result.per_class_accuracy), width="stretch")
    mistakes = result.misclassified[:24]
    if mistakes:
        st.markdown(f"**Misclassified test images** (first {len(mistakes)} of the mistakes)")
        columns = st.columns(12)
        for position, (index, true, predicted) in enumerate(mistakes):
            columns[position % 12].image(
                data.test_images[index], caption=f"{true} → {predicted}", width=56, clamp=True
            )


def drawing_ui(run: RunRecord | None, data: MnistData | None) -> None:
    """Which model reads, the canvas with what the model reads, then "My digits".

    A stroke reruns only the canvas fragment (not the charts, results and form above it), and each part
    sits in a container placed on every run, so the rerun when training ends keeps the canvas and the
    stroke on it.
    """
    with st.container():
        reader = reader_ui(run)

    @st.fragment
    def drawing() -> None:
        canvas_ui(reader, data)

    with st.container():
        drawing()
    with st.container():
        personal_ui(reader, data)


def reader_ui(run: RunRecord | None) -> Any:
    """Which model reads the drawings: the run picked above or a saved one."""
    st.subheader("Draw a digit")
    sources = ["The run picked above", "A saved model"]
    source = st.radio("Model", sources, horizontal=True, key="digits_reader_source")
    if source == sources[0]:
        return run.model if run is not None else None
    picked = use_saved_ui(task="digits", key_prefix="digits")
    return picked[1] if picked is not None else None


def reader_for(model: Any, data: MnistData | None) -> DigitReader:
    """Keras at once; the model's TFLite copy once a job has converted it and checked it on MNIST.

    The job starts with the model's first drawing and runs once per model and session; until it has
    ended (or if the copy disagrees on any test image, or there is no MNIST to check it on) Keras reads.
    """
    tracked = st.session_state["digits_reader_job"]
    job = get_runner().get(tracked["job_id"]) if tracked and tracked["model"] == id(model) else None
    if job is not None and job.state is JobState.FINISHED:
        reader = job.result
        # The id of a freed model can come back on a new one: the copy must be of this very model.
        if isinstance(reader, DigitReader) and reader.model is model:
            return reader
        job = None
    if job is None and data is not None:
        images = normalize_images(data.test_images)
        try:
            job = get_runner().submit(
                lambda emit, stop: fast_reader(model, images=images),
                owner=session_handle().owner,
                kind="digits-reader",
            )
        except QueueFullError:
            return keras_reader(
                model
            )  # Keras reads as well, only more slowly; tried on a later drawing.
        st.session_state["digits_reader_job"] = {"model": id(model), "job_id": job.id}
    return keras_reader(model)


def clear_drawing() -> None:
    """Give the drawing square a new version: a new, empty square."""
    st.session_state["digits_canvas_version"] += 1


def canvas_ui(model: Any, data: MnistData | None) -> None:
    """Draw a digit; show what the model sees, its answer, confidence and all ten probabilities."""
    # A wrapping row of fixed-width parts: the 280-px square never shrinks into a clipped rectangle
    # (columns at 1024 px were 177 px wide); on a narrow window the parts wrap under one another.
    row = st.container(horizontal=True, wrap=True, gap="medium")
    left = row.container(width=DRAWING_SIDE)
    middle = row.container(width=MIDDLE_WIDTH)
    right = row.container(width="stretch")
    with left:
        version = st.session_state["digits_canvas_version"]
        drawing = drawing_square(key=f"digits_canvas_{version}", version=version)
        # A new key gives a new, empty square (the version tells the browser to wipe it). Bumped in
        # the click's callback, before the rerun the click starts (the fragment's own, in a browser),
        # so no second rerun is needed and a full-page rerun cannot trip over a fragment-only one.
        st.button("Clear", key="digits_clear", on_click=clear_drawing)
    if drawing is None:
        middle.info("Draw a digit on the black square.")
        return
    try:
        # What the browser sent is checked before anything reads it: a client can send anything.
        image = preprocess_canvas(decode_drawing(drawing))
    except ValueError as error:
        middle.warning(f"That drawing could not be read: {error}. Press Clear and draw again.")
        return
    if image is None:
        middle.info("Draw a digit on the black square.")
        return
    middle.image(image[:, :, 0], caption="What the model sees (28×28)", width=140, clamp=True)
    if model is None:
        right.info("Train a model above, or load a saved one, to read your drawing.")
        drawing_insights_ui(None, image, None)
        return
    reader = reader_for(model, data)
    prediction = reader.predict(image)
    middle.metric("Prediction", prediction.digit)
    fast = ", read by its TFLite copy" if reader.runtime == "tflite" else ""
    middle.caption(f"{prediction.confidence:.0%} confident{fast}")
    right.altair_chart(
        probability_chart(prediction.probabilities, predicted=prediction.digit), width="stretch"
    )
    if prediction.confidence < LOW_CONFIDENCE:
        right.warning("Low confidence: try a larger, centred digit drawn with one clear stroke.")
    drawing_insights_ui(model, image, prediction)
