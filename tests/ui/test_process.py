"""The process setup step: run once by the entry point, it keeps Keras state and freezes the heap."""

import ast
import gc
from pathlib import Path

import keras
from streamlit.runtime.scriptrunner import script_runner

from ui import process

ROOT = Path(__file__).resolve().parents[2]


def test_prepare_process_replaces_the_cleanup_freezes_the_heap_and_runs_once(monkeypatch):
    monkeypatch.setattr(script_runner, "_clean_problem_modules", script_runner._clean_problem_modules)
    monkeypatch.setattr(process, "_done", False)
    cleared = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: cleared.append(1))

    process.prepare_process()
    replaced = script_runner._clean_problem_modules
    script_runner._clean_problem_modules()
    assert cleared == []  # Streamlit's cleanup no longer clears the Keras session.
    assert gc.get_freeze_count() > 0  # The import-time objects are out of every collection.

    # A second call (every rerun of the entry point makes one) changes nothing.
    monkeypatch.setattr(script_runner, "_clean_problem_modules", lambda: None)
    process.prepare_process()
    assert script_runner._clean_problem_modules is not replaced


def test_the_entry_point_prepares_the_process_before_routing():
    tree = ast.parse((ROOT / "streamlit_app.py").read_text())
    called = [
        node.value.func.id
        for node in tree.body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Name)
    ]
    assert called[:1] == ["prepare_process"]
