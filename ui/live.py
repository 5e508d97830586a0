"""The one job poller: every live job on every page is watched through `poll_ui`.

One rate (`LTL_POLL_SECONDS`) and one protocol: a fragment reruns on its own every poll while its job is
live; the poll that sees the job end returns True, and the poller then reruns the whole page once, so
every part of the page sees the outcome and the fragment is registered again without `run_every`.
Training pages use it through `live_run_ui`, the Model Cache's load and formats jobs through
`job_poll_ui`.
"""

from __future__ import annotations

from collections.abc import Callable, Set
from dataclasses import dataclass

import streamlit as st
import streamlit.components.v1 as components

from core.jobs import Job, JobRunner, JobState
from core.settings import env_number
from ui.controls_view import run_controls_ui
from ui.runs import RunRecord, format_seconds

# Seconds between fragment reruns while a job is live; each rerun costs the server a script run.
POLL_SECONDS = env_number("LTL_POLL_SECONDS", default=2.0, low=0.2, high=60, whole=False)
# Charts redraw once every this many polls (see `live_run_ui`).
CHART_POLLS = 2
# Shown under a running run's status; while it is on the page, the browser asks before leaving it.
LEAVE_WARNING = (
    "Reloading or leaving this page drops this run and its model: save it first (after Stop) to keep it."
)
# Installs, once per browser tab, a handler in the app's own window that asks before unloading while
# the warning above is shown. The handler is added by a script element run in the app's window, not by
# this component's frame: Chromium drops a listener whose registering frame has gone, and the frame
# goes whenever the status block is laid out anew (a Pause button appearing) and when the run ends.
LEAVE_GUARD = f"""<script>
const app = window.parent;
if (!app.ltlLeaveGuard) {{
  app.ltlLeaveGuard = true;
  const guard = app.document.createElement("script");
  guard.textContent = `window.addEventListener("beforeunload", (event) => {{
    if (document.body.innerText.includes({LEAVE_WARNING[:40]!r})) {{
      event.preventDefault();
      event.returnValue = "";
    }}
  }});`;
  app.document.head.appendChild(guard);
}}
</script>"""


def poll_ui(step: Callable[[], bool], *, live: bool, every: float = POLL_SECONDS) -> None:
    """Draw `step` in its own fragment, rerun every `every` s while `live`; True from it ends the job."""

    @st.fragment(run_every=every if live else None)
    def poll() -> None:
        if step():
            # The job just ended: rerun the page once so everything sees it and polling stops.
            st.rerun()

    # Its own container gives each call its own fragment identity (Streamlit derives it from the
    # function and the container it is called in) and holds one fixed place on the page.
    with st.container():
        poll()


@dataclass(frozen=True, slots=True)
class TrackedJob:
    """A job a page follows, and the stored model it works on (its outcome is filed under that)."""

    job_id: str
    model_id: str | None = None  # None for a job on no stored model yet (an upload).


def job_poll_ui(
    state_key: str,
    runner: JobRunner,
    *,
    running: Callable[[Job], None],
    ended: Callable[[Job, TrackedJob], None],
    idle: Callable[[], None],
    every: float = POLL_SECONDS,
) -> None:
    """Follow the job kept under `state_key`: `running` while it runs, `ended` once, then `idle`."""

    def step() -> bool:
        tracked: TrackedJob | None = st.session_state[state_key]
        if tracked is None:
            idle()
            return False
        job = runner.get(tracked.job_id)
        if job is not None and not job.state.done:
            running(job)
            return False
        st.session_state[state_key] = None
        if job is not None:
            ended(job, tracked)
        return True

    poll_ui(step, live=st.session_state[state_key] is not None, every=every)


def sync_runs(runs: list[RunRecord], runner: JobRunner) -> bool:
    """Drain every live run's job into its record; true if one of them has just ended."""
    ended = False
    for run in runs:
        if run.done:
            continue
        job = runner.get(run.job_id)
        if job is None:
            run.state = "cancelled"
            run.stopped_reason = run.stopped_reason or "The job is gone (the server was restarted)."
            ended = True
            continue
        run.apply(job.drain())
        run.state = job.state.value
        if job.state.done:
            run.error = job.error
            result = job.result
            if result is not None:
                run.model = result.model
                run.result = result
                run.stopped_reason = result.stopped_reason or run.stopped_reason
            ended = True
    return ended


def live_run_ui(
    runs: list[RunRecord],
    runner: JobRunner,
    *,
    key: str,
    charts: Callable[[RunRecord], None],
    idle: str | None = None,
) -> None:
    """The status line and the charts of the page's latest run, polled while any of its runs is live.

    Two fragments of the one poller, not one: the status drains the jobs and redraws every poll, the
    charts redraw every `CHART_POLLS` polls from what the status drained. A chart redraw costs the
    browser a Vega re-embed and the server a data frame on the same cores that train, so the cheap
    status line stays current while the charts follow at a lower rate.
    """
    active = runs[-1] if runs else None
    live = any(not run.done for run in runs)
    # Filled after the status has drained the jobs in this page run, so that a job that started
    # before the page drew is not taken for one that starts later.
    waiting: set[str] = set()

    def status() -> bool:
        if active is None:
            if idle:
                st.info(idle)
            return False
        ended = sync_runs(runs, runner)
        status_ui(active, runner, key=key)
        # A run that waited in the queue has started: rerun the page once so its charts poll.
        return ended or started_since(waiting, runs)

    def draw() -> bool:
        # A training run's charts are drawn from its start (those whose axes are known before the first
        # point, see `metric_chart`): the browser builds their views while TensorFlow traces the first
        # steps, not in the middle of the run. Queued, or cancelled before it started: nothing.
        if active is not None and (active.epochs or active.batches or active.training):
            charts(active)
        return False

    poll_ui(status, live=live)
    waiting.update(queued_job_ids(runs))
    # A queued run has nothing to chart, and a class queues most of its runs: their charts poll only
    # once they train, which spares the server a fragment run and the browser a delta per queued page.
    poll_ui(draw, live=charting(runs), every=CHART_POLLS * POLL_SECONDS)


def queued_job_ids(runs: list[RunRecord]) -> frozenset[str]:
    """The jobs of `runs` that wait in the queue."""
    return frozenset(run.job_id for run in runs if run.state == JobState.QUEUED.value)


def started_since(waiting: Set[str], runs: list[RunRecord]) -> bool:
    """True if a run whose job was in `waiting` has left the queue (started, or ended)."""
    return any(run.job_id in waiting and run.state != JobState.QUEUED.value for run in runs)


def charting(runs: list[RunRecord]) -> bool:
    """True while a run of `runs` trains (or is paused), so its charts have points to follow."""
    return any(run.training for run in runs)


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
        if job is not None and job.stop_event.is_set():
            # A large model's batch (or its first, graph-compiling one) can take a minute to end.
            text = "Stopping… the running batch ends first; what it learned so far is kept."
            st.progress(run.fraction_done(), text=text)
            leave_guard_ui()
            return
        st.progress(run.fraction_done(), text=run.progress_text())
        if st.button("Stop", key=key, help="Stop at the next batch, keeping what was learned."):
            if job is not None:
                job.cancel()
            st.rerun()  # Show "Stopping…" at once.
        run_controls_ui(run, job, key=key)  # Pause/Resume and the learning rate (ui/controls_view.py).
        leave_guard_ui()
        return
    unit = run.unit.lower()
    if run.state == JobState.FAILED.value:
        st.error(f"Training failed: {run.error}")
    elif run.reached_goal and run.stopped_reason:
        total = sum(event.seconds for event in run.epochs)
        st.success(
            f"{run.stopped_reason} Trained {len(run.epochs)} {unit}(s) in {format_seconds(total)}."
        )
    elif run.stopped_reason and run.stopped_reason != "Stopped on request.":
        st.warning(run.stopped_reason)
    elif run.state == JobState.CANCELLED.value and not (run.epochs or run.batches):
        st.info("Cancelled before training started; nothing was trained.")
    elif run.state == JobState.CANCELLED.value:
        st.info(run.stopped_text())
    elif run.state == JobState.FINISHED.value:
        total = sum(event.seconds for event in run.epochs)
        st.success(f"Finished {len(run.epochs)} {unit}(s) in {format_seconds(total)}.")


def leave_guard_ui() -> None:
    """Say that leaving drops the running run, and make the browser ask before it does."""
    st.caption(LEAVE_WARNING)
    components.html(LEAVE_GUARD, height=0)
