"""Model Cache page: stored models that survive restarts, loaded fast, compared across formats."""

import streamlit as st

from core.jobs import QueueFullError
from core.modelstore.loading import load_with_progress
from ui.cache_view import (
    actions_ui,
    details_ui,
    formats_ui,
    load_status_ui,
    models_table,
    upload_ui,
)
from ui.live import TrackedJob
from ui.resources import get_model_cache, get_runner, session_handle
from ui.saved_models import store_or_error
from ui.state import setup_state

st.title("Model Cache")
st.caption(
    "Models saved from the training pages live on the server's disk (with a SQLite index) and survive "
    "restarts; loaded ones stay in a memory cache shared by every visitor."
)
setup_state(
    {
        "cache_load_job": None,  # The TrackedJob of a load under way.
        "cache_load_progress": 0.0,
        "cache_last_load": None,  # LoadFinished of the last load.
        "cache_load_error": None,
        "cache_upload_job": None,  # The TrackedJob of an upload being checked.
        "cache_upload_message": None,
        "cache_sort": "newest first",
        "cache_delete_sure": False,
        "cache_rename_error": None,
        "cache_use_page": None,
        "cache_formats_job": None,  # The TrackedJob of a quantize or compare under way.
        "cache_formats_message": None,  # (model id, text, is an error) of the last one.
        "cache_formats_progress": None,
        "cache_reports": {},  # Format reports by the id of the model compared.
    }
)
store = store_or_error()
if store is None:
    st.stop()
cache = get_model_cache()
runner = get_runner()
handle = session_handle()

records = store.list_models()
stats = cache.stats()
columns = st.columns(4)
columns[0].metric("Stored models", len(records))
columns[1].metric("On disk", f"{sum(record.size_bytes for record in records) / 2**20:.2f} MiB")
columns[2].metric("Cache hits / misses", f"{stats.hits} / {stats.misses}")
columns[3].metric("In memory", f"{stats.used_bytes / 2**20:.1f}/{stats.max_bytes / 2**20:.0f} MiB")

selected = models_table(records)
if selected is not None:
    if actions_ui(selected, store=store, cache=cache):
        chosen_id, shared_store = selected.id, store
        try:
            job = runner.submit(
                lambda emit, stop: load_with_progress(shared_store, cache, chosen_id, on_event=emit),
                owner=handle.owner,
                kind="cache-load",
            )
        except QueueFullError as error:
            st.error(str(error))
        else:
            st.session_state["cache_load_job"] = TrackedJob(job_id=job.id, model_id=chosen_id)
            st.session_state["cache_load_progress"] = 0.0
    load_status_ui(runner)
    details_ui(selected)
    # MNIST uploaded on the Digit page (this session) scores digits models when the server has none.
    formats_ui(
        selected,
        store=store,
        cache=cache,
        runner=runner,
        owner=handle.owner,
        mnist=handle.uploaded_mnist,
    )
upload_ui(store)
