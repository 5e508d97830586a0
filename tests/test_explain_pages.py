"""AppTest runs of the explain, "My digits" and addition-error views (issue 14)."""

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from core.jobs import JobState

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 60


def page(name: str) -> AppTest:
    return AppTest.from_file(str(ROOT / name), default_timeout=TIMEOUT)


def drawing_script():
    import keras

    from core.canvas import predict_digit
    from core.digits import build_cnn, normalize_images
    from core.mnist import cached_mnist
    from ui.explain_view import drawing_insights_ui

    keras.utils.set_random_seed(0)
    model = build_cnn()
    image = normalize_images(cached_mnist().test_images[:1])[0]
    drawing_insights_ui(model, image, predict_digit(model, image))


def test_a_drawing_gets_saliency_for_the_answer_and_runner_up_and_every_layer(mnist_dir):
    at = AppTest.from_function(drawing_script, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("Why did it say that?" in markdown.value for markdown in at.markdown)
    # Two overlays (the answer and "why not"), then conv_1, conv_2, dense and the filters.
    assert len(at.get("vega_lite_chart")) == 6
    at.selectbox(key="digits_personal_label").set_value(7)
    at.button(key="digits_personal_add").click().run()
    assert not at.exception
    images, labels = at.session_state["digits_personal"].arrays()
    assert labels.tolist() == [7] and images.shape == (1, 28, 28)


def filters_script():
    from core.events import FiltersSnapshot
    from ui.explain_view import filters_live_ui
    from ui.runs import RunRecord

    run = RunRecord(label="#1", job_id="gone", config={}, unit="Epoch")
    kernel = ((0.1, -0.2, 0.3),) * 3
    run.apply([FiltersSnapshot(epoch=epoch, filters=(kernel,) * 8) for epoch in range(3)])
    filters_live_ui(run)


def test_filter_snapshots_are_drawn_while_training():
    at = AppTest.from_function(filters_script, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) == 1
    assert "one snapshot per epoch" in at.expander[0].label


def personal_with(count):
    from core.personal import PersonalDigits

    personal = PersonalDigits()
    rng = np.random.default_rng(0)
    for index in range(count):
        personal.add(rng.random((28, 28)).astype(np.float32), index % 10)
    return personal


def test_my_digits_gallery_deletes_and_fine_tuning_needs_a_model(mnist_dir):
    at = page("app_pages/digits.py")
    at.session_state["digits_personal"] = personal_with(5)
    at.run()
    assert not at.exception
    assert at.button(key="digits_personal_finetune").disabled
    # The .npz uploader states its own 4 MB limit, not the server's 64 MB for model uploads.
    uploaders = [element for element in at.get("file_uploader") if "npz" in element.proto.label]
    assert [element.proto.max_upload_size_mb for element in uploaders] == [4]
    at.button(key="digits_personal_delete_0").click().run()
    assert not at.exception
    assert len(at.session_state["digits_personal"]) == 4
    assert at.session_state["digits_personal"].arrays()[1].tolist() == [1, 2, 3, 4]


def test_fine_tuning_runs_through_the_runner_and_shows_before_and_after(mnist_dir):
    from core.digits import build_cnn
    from ui.resources import get_runner
    from ui.runs import RunRecord

    trained = RunRecord(
        label="#1 seed", job_id="gone", config={"epochs": 1}, unit="Epoch", state="finished"
    )
    trained.model = build_cnn()
    at = page("app_pages/digits.py")
    at.session_state["digits_runs"] = [trained]
    at.session_state["digits_personal"] = personal_with(10)
    at.run()
    assert not at.exception
    at.button(key="digits_personal_finetune").click().run()
    assert not at.exception
    runs = at.session_state["digits_personal_runs"]
    assert len(runs) == 1
    job = get_runner().get(runs[0].job_id)
    assert job is not None and job.wait(TIMEOUT)
    assert job.state is JobState.FINISHED, job.error
    at.run()
    at.run()
    assert not at.exception
    labels = [metric.label for metric in at.metric]
    assert "My held-out digits (3)" in labels and "MNIST test accuracy" in labels
    # The session's trained model is untouched: fine-tuning works on a copy.
    assert at.session_state["digits_personal_runs"][0].model is not trained.model
    assert len(at.get("vega_lite_chart")) >= 2  # Live loss and accuracy of the fine-tune.


def addition_script():
    from core.addition import AdditionConfig
    from core.events import BreakdownRow, DecodedSample, ErrorBreakdown, SamplesDecoded
    from ui.addition_errors_view import breakdown_ui
    from ui.addition_view import samples_ui
    from ui.runs import RunRecord

    run = RunRecord(label="#1", job_id="gone", config=AdditionConfig(iterations=5))
    run.apply(
        [
            SamplesDecoded(
                epoch=2,
                samples=(
                    DecodedSample("12+34", "46", "46", (0.99, 0.7)),
                    DecodedSample("99+9", "108", "107", (0.9, 0.8, 0.2)),
                ),
            ),
            *[
                ErrorBreakdown(
                    epoch=epoch,
                    rows=(
                        BreakdownRow("carries", 0, 10, 9),
                        BreakdownRow("carries", 1, 5, 2),
                        BreakdownRow("length", 2, 15, 11),
                    ),
                    hardest=(("99+9", "108", "107", 0.01),),
                )
                for epoch in (1, 2)
            ],
        ]
    )
    samples_ui(run)
    breakdown_ui(run)


def test_addition_answers_are_coloured_by_confidence_and_errors_broken_down():
    at = AppTest.from_function(addition_script, default_timeout=TIMEOUT).run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table.columns) == ["Question", "Answer", "#1", "#2", "#3", "Right"]
    assert table["#3"].tolist() == [" ", "7"]
    assert len(at.get("vega_lite_chart")) == 2  # By carries and by operand length.
    assert at.dataframe[1].value["Question"].tolist() == ["99+9"]


def test_a_closed_session_drops_its_personal_digits(collections_at_once):
    from ui.resources import SessionHandle, get_runner, release_session

    personal = personal_with(3)
    handle = SessionHandle(owner="test-owner", runner=get_runner())
    handle.personal_sets.append(personal)
    release_session(handle).result(10)
    assert len(personal) == 0 and handle.personal_sets == []
