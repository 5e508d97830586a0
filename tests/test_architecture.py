"""House rules checked from the code: core/ stays UI-free; the app keeps Keras state between reruns."""

import ast
from pathlib import Path

import keras
from streamlit.runtime.scriptrunner import script_runner

ROOT = Path(__file__).resolve().parents[1]


def test_core_never_imports_streamlit():
    offenders = []
    for path in sorted((ROOT / "core").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {name}" for name in names if name.split(".")[0] == "streamlit"]
    assert offenders == []


def test_streamlit_reruns_no_longer_clear_the_keras_session(monkeypatch):
    from ui.resources import keep_keras_state_between_runs

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: calls.append(1))
    # Streamlit's own cleanup does call it (the reason for the replacement).
    assert ".backend.clear_session()" in Path(script_runner.__file__).read_text()
    monkeypatch.setattr(script_runner, "_clean_problem_modules", script_runner._clean_problem_modules)
    keep_keras_state_between_runs()
    script_runner._clean_problem_modules()
    assert calls == []
