"""Digit Recognizer: "My digits": add drawings with their labels, fine-tune a model on them, compare."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import streamlit as st

from core.jobs import QueueFullError
from core.mnist import MnistData
from core.personal import (
    MAX_EXAMPLES,
    MAX_NPZ_BYTES,
    MIN_FINETUNE_EXAMPLES,
    FinetuneConfig,
    FinetuneResult,
    PersonalDigits,
    finetune_digits,
    load_npz,
)
from ui.charts import epoch_frame, loss_and_accuracy_ui
from ui.live import live_run_ui
from ui.resources import get_runner, session_handle, session_runs
from ui.runs import RunRecord
from ui.saved_models import save_ui

PERSONAL_KEY = "digits_personal"
RUNS_KEY = "digits_personal_runs"
ADDED_KEY = "digits_personal_added"  # The toast for an example just added, shown after the rerun.
GALLERY_COLUMNS = 10
GALLERY_LIMIT = 50  # Examples shown with a delete button (the newest ones).


def personal_set() -> PersonalDigits:
    """The session's personal examples, registered on its handle so they go when the session ends."""
    personal = st.session_state.setdefault(PERSONAL_KEY, PersonalDigits())
    handle = session_handle()
    if not any(registered is personal for registered in handle.personal_sets):
        handle.personal_sets.append(personal)
    return personal


def add_drawing_ui(image: np.ndarray | None) -> None:
    """Pick the drawn digit's label and add the drawing to "My digits"."""
    if image is None:
        return
    personal = personal_set()
    left, right = st.columns([2, 1], vertical_alignment="bottom")
    label = left.selectbox("This drawing is a", list(range(10)), key="digits_personal_label")
    if right.button(f"Add to my digits ({len(personal)}/{MAX_EXAMPLES})", key="digits_personal_add"):
        try:
            personal.add(image, int(label))
        except ValueError as error:
            st.error(str(error))
        else:
            # The gallery below the canvas fragment shows the new example only after a full rerun.
            st.session_state[ADDED_KEY] = f"Added a {label}: {len(personal)} examples."
            st.rerun()


def gallery_ui(personal: PersonalDigits) -> None:
    """The newest examples with their labels, each with a delete button."""
    images, labels = personal.arrays()
    if not len(labels):
        st.caption("No examples yet: draw a digit above, pick its label and press “Add to my digits”.")
        return
    first = max(0, len(labels) - GALLERY_LIMIT)
    if first:
        st.caption(f"Showing the newest {GALLERY_LIMIT} of {len(labels)} examples.")
    columns = st.columns(GALLERY_COLUMNS)
    for position, index in enumerate(range(first, len(labels))):
        column = columns[position % GALLERY_COLUMNS]
        column.image(images[index], caption=str(labels[index]), width=48, clamp=True)
        if column.button("✕", key=f"digits_personal_delete_{index}", help="Delete this example"):
            personal.delete_example(index)
            st.rerun()
    counts = np.bincount(labels, minlength=10)
    st.caption("Per digit: " + ", ".join(f"{digit}: {count}" for digit, count in enumerate(counts)))


def file_ui(personal: PersonalDigits) -> None:
    """Download the set as .npz, or replace it with an uploaded one (validated)."""
    left, right = st.columns(2)
    left.download_button(
        "Download my digits (.npz)",
        personal.to_npz(),
        file_name="my_digits.npz",
        mime="application/octet-stream",
        disabled=not len(personal),
        key="digits_personal_download",
    )
    upload = right.file_uploader(
        "Upload a .npz of digits",
        type=["npz"],
        key="digits_personal_upload",
        # The widget says the real limit ("4MB per file", not the server's 64): load_npz checks it too.
        max_upload_size=math.ceil(MAX_NPZ_BYTES / 2**20),
    )
    if upload is not None and right.button("Use this file", key="digits_personal_use_upload"):
        try:
            images, labels = load_npz(upload.getvalue())
        except ValueError as error:
            st.error(f"That file could not be used: {error}")
        else:
            personal.replace(images, labels)
            st.success(f"Loaded {len(labels)} examples.")


def results_ui(run: RunRecord) -> None:
    """Accuracy before and after fine-tuning, on the held-out personal digits and on MNIST."""
    result = run.result
    if not isinstance(result, FinetuneResult):
        return
    left, right = st.columns(2)
    left.metric(
        f"My held-out digits ({result.held_out})",
        f"{result.personal_after:.0%}",
        f"{result.personal_after - result.personal_before:+.0%} (was {result.personal_before:.0%})",
    )
    right.metric(
        "MNIST test accuracy",
        f"{result.mnist_after:.2%}",
        f"{result.mnist_after - result.mnist_before:+.2%} (was {result.mnist_before:.2%})",
    )
    save_ui(run, task="digits", metrics={"accuracy": result.mnist_after}, key_prefix="digits_personal")


def personal_ui(model: Any, data: MnistData | None) -> None:
    """The "My digits" section: gallery, file, fine-tune with live curves and before/after."""
    if data is None:
        return  # Fine-tuning mixes in MNIST; the page already says how to provide it.
    st.subheader("My digits")
    added = st.session_state.pop(ADDED_KEY, None)
    if added:
        st.toast(added)
    personal = personal_set()
    runs: list[RunRecord] = session_runs(RUNS_KEY)
    gallery_ui(personal)
    file_ui(personal)
    ready = model is not None and len(personal) >= MIN_FINETUNE_EXAMPLES
    if not ready:
        st.caption(
            f"Fine-tuning needs a model (train or load one above) and at least "
            f"{MIN_FINETUNE_EXAMPLES} of your digits."
        )
    if st.button("Fine-tune on my digits", disabled=not ready, key="digits_personal_finetune"):
        images, labels = personal.arrays()
        mnist: MnistData = data
        config = FinetuneConfig()
        try:
            job = get_runner().submit(
                lambda emit, stop: finetune_digits(
                    config,
                    model=model,
                    images=images,
                    labels=labels,
                    on_event=emit,
                    stop=stop,
                    data=mnist,
                ),
                owner=session_handle().owner,
                kind="digits_finetune",
            )
        except QueueFullError as error:
            st.error(str(error))
        else:
            runs.append(
                RunRecord(
                    label=f"fine-tune #{len(runs) + 1}", job_id=job.id, config=config, unit="Epoch"
                )
            )
    live_run_ui(runs, get_runner(), key="digits_personal_stop", charts=finetune_charts_ui)
    chosen = runs[-1] if runs else None
    if chosen is not None and chosen.result is not None:
        results_ui(chosen)


def finetune_charts_ui(active: RunRecord) -> None:
    """The fine-tuning run's loss and held-out accuracy per epoch."""
    if not active.epochs:
        return
    frame = epoch_frame([active])
    frame["split"] = frame["split"].replace({"validation": "my held-out digits"})
    loss_and_accuracy_ui(frame, active, titles=("Fine-tune loss", "Fine-tune accuracy"), help=False)
