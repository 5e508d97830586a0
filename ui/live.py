"""Polling helpers shared by the training pages: fold job events into a run and show its status."""

from __future__ import annotations

import streamlit as st

from core.jobs import JobRunner, JobState
from core.settings import env_number
from ui.runs import RunRecord, format_seconds

# Seconds between fragment reruns while a job is live; each rerun costs the server a script run.
POLL_SECONDS = env_number("LTL_POLL_SECONDS", default=2.0, low=0.2, high=60, whole=False)


def chart_interval(run: RunRecord | None) -> float | None:
    """Redraw charts half as often as the status line: each redraw costs the browser far more."""
    return 2 * POLL_SECONDS if run is not None and not run.done else None


def poll_interval(run: RunRecord | None) -> float | None:
    """Poll while the run's job is live; stop polling once it is done."""
    return POLL_SECONDS if run is not None and not run.done else None


def sync_run(run: RunRecord, runner: JobRunner) -> None:
    """Drain the job's events into the run; on the step to done, rerun the page to stop polling."""
    if run.done:
        return
    job = runner.get(run.job_id)
    if job is None:
        run.state = "cancelled"
        run.stopped_reason = run.stopped_reason or "The job is gone (the server was restarted)."
        st.rerun()
        return
    run.apply(job.drain())
    run.state = job.state.value
    if job.state.done:
        run.error = job.error
        result = job.result
        if result is not None:
            run.model = result.model
            run.result = result
            run.stopped_reason = result.stopped_reason or run.stopped_reason
        st.rerun()


def status_ui(run: RunRecord, runner: JobRunner, *, key: str) -> None:
    """One status block: queue position with Cancel, progress with Stop, or how the run ended."""
    job = runner.get(run.job_id)
    if run.state == JobState.QUEUED.value and job is not None:
        position = runner.queue_position(job)
        if position is not None:
            start = runner.estimated_start(job)
            estimate = f", estimated start in ~{format_seconds(start)}" if start is not None else ""
            st.info(f"Queued, position {position[0]} of {position[1]}{estimate}.")
        if st.button("Cancel", key=f"{key}_cancel", help="Leave the queue; nothing is trained yet."):
            job.cancel()
            st.rerun()
        return
    if run.state == JobState.RUNNING.value:
        st.progress(run.fraction_done(), text=run.progress_text())
        if st.button("Stop", key=key, help="Stop at the next batch, keeping what was learned."):
            if job is not None:
                job.cancel()
        return
    unit = run.unit.lower()
    if run.state == JobState.FAILED.value:
        st.error(f"Training failed: {run.error}")
    elif run.stopped_reason and run.stopped_reason != "Stopped on request.":
        st.warning(run.stopped_reason)
    elif run.state == JobState.CANCELLED.value and not (run.epochs or run.batches):
        st.info("Cancelled before training started; nothing was trained.")
    elif run.state == JobState.CANCELLED.value:
        st.info(f"Stopped after {len(run.epochs)} {unit}(s); what it learned so far is kept.")
    elif run.state == JobState.FINISHED.value:
        total = sum(event.seconds for event in run.epochs)
        st.success(f"Finished {len(run.epochs)} {unit}(s) in {format_seconds(total)}.")
