"""The class board's table: what a teacher reads first on a narrow screen."""

from core.classboard import Board, BoardRun
from ui.class_view import BOARD_COLUMNS, board_table


def queued_run(run_id: int) -> BoardRun:
    return BoardRun(
        id=run_id,
        job_id=f"job-{run_id}",
        name=f"Student {run_id}",
        page="addition",
        config={"digits": 1, "training_size": 55, "rnn_type": "SimpleRNN", "iterations": 30},
        state="queued",
        queue_position=run_id,
        created=1_800_000_000.0 + run_id,
        started=None,
        ended=None,
        score=None,
        error=None,
        curve=(),
    )


def test_the_state_and_score_come_before_the_long_configuration():
    board = Board(code="abc123", created=1_800_000_000.0, anonymous=False, runs=(queued_run(1),))
    table = board_table(board, {1: "Student 1"})
    columns = list(table.columns)
    # The configuration runs to 100+ characters: last, so it cannot push the state out of view.
    assert columns[-1] == "Configuration"
    assert columns.index("State") < columns.index("Score") < columns.index("Configuration")
    assert table["State"][0].startswith("queued")


def test_the_state_column_is_wide_enough_for_a_queue_position():
    # At 1280 px the state column was cut to "queued (p" while 19 runs waited.
    width = BOARD_COLUMNS["State"]["width"]
    assert isinstance(width, int) and width >= 200
    assert set(BOARD_COLUMNS) <= {
        "Run",
        "Who",
        "Page",
        "State",
        "Score",
        "Time",
        "Started (UTC)",
        "Configuration",
    }
