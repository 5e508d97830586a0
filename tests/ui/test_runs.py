"""The run view-model: progress and status text from the events a page drains, checked against sums."""

import pytest

from core.addition import AdditionConfig
from core.digits import DigitsConfig
from core.events import BatchEnded, EpochEnded, TrainingStopped
from ui.runs import RunRecord, format_seconds


def epoch(number: int, of: int, seconds: float = 1.0) -> EpochEnded:
    return EpochEnded(
        epoch=number, epochs=of, loss=1.0, accuracy=0.5, val_loss=1.0, val_accuracy=0.5, seconds=seconds
    )


def batch(epoch_number: int, number: int, of: int) -> BatchEnded:
    return BatchEnded(epoch=epoch_number, batch=number, batches=of, step=number, loss=1.0, accuracy=0.5)


def test_addition_progress_counts_the_planned_iterations_before_the_first_one_ends():
    run = RunRecord(label="#1", job_id="job-1", config=AdditionConfig(iterations=100))
    run.apply([batch(1, 5, 6)])
    # Five sixths of the first of 100 iterations, not five sixths of the run.
    assert run.fraction_done() == pytest.approx((5 / 6) / 100)


def test_digits_status_moves_on_with_the_batches_of_the_next_epoch():
    run = RunRecord(label="#1", job_id="job-1", config=DigitsConfig(epochs=3), unit="Epoch")
    run.apply([epoch(1, 3, seconds=7.4), batch(2, 95, 190)])
    text = run.progress_text()
    assert text.startswith("Epoch 2 of 3 — batch 95 of 190")
    # One and a half epochs of 7.4 s remain.
    assert f"ETA {format_seconds(1.5 * 7.4)}" in text
    assert run.fraction_done() == pytest.approx(1.5 / 3)


def eta_seconds(run: RunRecord) -> float:
    """The ETA the status line shows, read back from its text ('1 h 2 min', '3 min 5 s', '42 s')."""
    shown = run.progress_text().split("ETA ")[1]
    units = {"h": 3600, "min": 60, "s": 1}
    words = shown.split()
    return float(
        sum(int(number) * units[unit] for number, unit in zip(words[::2], words[1::2], strict=True))
    )


def test_one_slow_iteration_barely_moves_the_addition_eta():
    steady = [epoch(number, 100, seconds=1.0) for number in range(1, 11)]
    run = RunRecord(label="#1", job_id="job-1", config=AdditionConfig(iterations=100))
    run.apply(steady)
    before = eta_seconds(run)
    run.apply([epoch(11, 100, seconds=3.0)])  # A garbage collection or a busy server.
    after = eta_seconds(run)
    assert before == pytest.approx(90.0)
    # One iteration less to go; the slow one must not raise the estimate by much.
    assert after <= before and after == pytest.approx(89.0, rel=0.1)


def test_the_first_iteration_with_its_graph_tracing_does_not_set_the_eta():
    run = RunRecord(label="#1", job_id="job-1", config=AdditionConfig(iterations=100))
    run.apply([epoch(1, 100, seconds=20.0), epoch(2, 100, seconds=1.0), epoch(3, 100, seconds=1.0)])
    assert eta_seconds(run) == pytest.approx(97.0, rel=0.1)


def test_planned_length_comes_from_the_typed_config():
    assert RunRecord(label="a", job_id="j", config=AdditionConfig(iterations=7)).planned_epochs == 7
    assert RunRecord(label="d", job_id="j", config=DigitsConfig(epochs=4)).planned_epochs == 4


def test_before_the_first_batch_the_status_says_the_model_is_being_prepared():
    run = RunRecord(label="#1", job_id="job-1", config=AdditionConfig(iterations=3))
    run.state = "running"
    assert run.progress_text().startswith("Preparing the model")
    assert "compiles the graph" in run.progress_text()


def test_one_slow_iteration_early_in_the_run_does_not_double_the_eta():
    # Tracing, then two timed iterations of which one was slowed down by the busy server.
    run = RunRecord(label="#1", job_id="job-1", config=AdditionConfig(iterations=100))
    run.apply([epoch(1, 100, seconds=20.0), epoch(2, 100, seconds=1.0), epoch(3, 100, seconds=3.0)])
    # A shared core only ever adds time, so the faster of the two is the better guess (it showed 2x).
    assert eta_seconds(run) == pytest.approx(97.0, rel=0.1)


@pytest.mark.parametrize("new_seconds", [2.0, 0.5])
def test_a_lasting_change_of_speed_is_followed_slower_or_faster(new_seconds):
    run = RunRecord(label="#1", job_id="job-1", config=AdditionConfig(iterations=100))
    run.apply([epoch(number, 100, seconds=1.0) for number in range(1, 11)])
    run.apply([epoch(number, 100, seconds=new_seconds) for number in range(11, 17)])
    # Six iterations at the new speed: the ETA now counts the 84 left at that speed.
    assert eta_seconds(run) == pytest.approx(84 * new_seconds, rel=0.05)


def test_between_epochs_the_status_says_the_last_one_is_done_not_that_it_is_running():
    run = RunRecord(label="#1", job_id="job-1", config=DigitsConfig(epochs=3), unit="Epoch")
    run.apply([epoch(1, 3, seconds=7.4)])
    # Read during epoch 2 before its first batch event, "Epoch 1 of 3" looked frozen at epoch 1.
    assert run.progress_text().startswith("Epoch 1 of 3 done")


def test_a_run_that_reached_its_goal_says_so_and_a_problem_stop_does_not():
    goal = RunRecord(label="#1", job_id="job-1", config=AdditionConfig(iterations=25, recipe="fast"))
    goal.apply([TrainingStopped(epoch=10, reason="Reached 99.2% exact match", reached_goal=True)])
    assert goal.reached_goal and goal.stopped_reason == "Reached 99.2% exact match"
    problem = RunRecord(label="#2", job_id="job-2", config=AdditionConfig(iterations=25))
    problem.apply([TrainingStopped(epoch=3, reason="The loss became nan")])
    assert not problem.reached_goal and problem.stopped_reason == "The loss became nan"
