"""House rules checked from the code: import boundaries, safe loads, escaped HTML, Keras state kept."""

import ast
from pathlib import Path

import keras
from streamlit.runtime.scriptrunner import script_runner

ROOT = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> list[str]:
    """Every module `path` imports, at the top or inside functions, as written (`a.b` for `from a.b`)."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
    return names


def importers_of(package: str, *folders: str) -> list[str]:
    """`file: module` for each import of `package` (or a submodule) in the folders' Python files."""
    paths = [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]
    assert paths, f"no Python files in {folders}: the check would prove nothing"
    return [
        f"{path.relative_to(ROOT)}: {name}"
        for path in paths
        for name in imported_modules(path)
        if name.split(".")[0] == package
    ]


def test_core_never_imports_streamlit():
    assert importers_of("streamlit", "core") == []


def test_bench_and_harness_never_import_tests():
    # Benchmarks and the shared server harness must run from a checkout without the test suite.
    assert importers_of("tests", "bench", "harness") == []


def test_streamlit_reruns_no_longer_clear_the_keras_session(monkeypatch):
    from ui.process import keep_keras_state_between_runs

    calls = []
    monkeypatch.setattr(keras.backend, "clear_session", lambda *args, **kwargs: calls.append(1))
    # Streamlit's own cleanup does call it (the reason for the replacement).
    assert ".backend.clear_session()" in Path(script_runner.__file__).read_text()
    monkeypatch.setattr(script_runner, "_clean_problem_modules", script_runner._clean_problem_modules)
    keep_keras_state_between_runs()
    script_runner._clean_problem_modules()
    assert calls == []


def python_files(*folders: str) -> list[Path]:
    return [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))] + [
        ROOT / "streamlit_app.py"
    ]


def calls(path: Path) -> list[ast.Call]:
    tree = ast.parse(path.read_text(), filename=str(path))
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)]


def called_name(call: ast.Call) -> str:
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def test_no_html_is_ever_rendered_unescaped():
    offenders = [
        f"{path.name}:{call.lineno}"
        for path in python_files("app_pages", "ui", "core")
        for call in calls(path)
        for keyword in call.keywords
        if keyword.arg in ("unsafe_allow_html", "unsafe_allow_javascript")
    ] + [
        f"{path.name}:{call.lineno}"
        for path in python_files("app_pages", "ui")
        for call in calls(path)
        if called_name(call) == "html" and not is_fixed_script(path, call)
    ]
    assert offenders == []


# The one script a page may embed: a module constant built from literals only, never from input
# (the leave warning's beforeunload guard in ui/live.py, which only a script can install).
FIXED_SCRIPTS = {("live.py", "LEAVE_GUARD")}


def is_fixed_script(path: Path, call: ast.Call) -> bool:
    argument = call.args[0] if call.args else None
    return isinstance(argument, ast.Name) and (path.name, argument.id) in FIXED_SCRIPTS


def test_every_model_load_is_in_safe_mode():
    loads = [
        (path.name, call)
        for path in python_files("core", "ui", "app_pages")
        for call in calls(path)
        if called_name(call) == "load_model"
    ]
    assert loads, "no load_model call found: the check would prove nothing"
    unsafe = [
        f"{name}:{call.lineno}"
        for name, call in loads
        if not any(
            keyword.arg == "safe_mode"
            and isinstance(keyword.value, ast.Constant)
            and keyword.value.value is True
            for keyword in call.keywords
        )
    ]
    assert unsafe == []


def test_pages_never_touch_the_filesystem_themselves():
    # Paths only come from settings (core/); nothing a visitor types or uploads names a file.
    touching = {"open", "Path", "unlink", "remove", "rmtree", "write_bytes", "write_text"}
    offenders = [
        f"{path.name}:{call.lineno} {called_name(call)}"
        for path in python_files("app_pages", "ui")
        for call in calls(path)
        if called_name(call) in touching
    ]
    assert offenders == []


def test_the_served_config_keeps_xsrf_on_caps_uploads_and_watches_no_sources(monkeypatch):
    from streamlit import config

    # Streamlit reads .streamlit/config.toml from the directory it is started in: the repository.
    monkeypatch.chdir(ROOT)
    config.get_config_options(force_reparse=True)
    try:
        assert config.get_option("server.enableXsrfProtection") is True
        assert config.get_option("server.maxUploadSize") == 64
        # Source watching resolves every imported module after each script run (see the config's note).
        assert config.get_option("server.fileWatcherType") == "none"
        assert config.get_option("runner.postScriptGC") is False
    finally:
        monkeypatch.undo()
        config.get_config_options(force_reparse=True)


def test_every_browser_test_module_is_marked_e2e():
    # `pytest -m "not e2e"` is the fast suite only if no browser test slips past the marker.
    unmarked = [
        path.name
        for path in sorted((ROOT / "tests" / "e2e").glob("test_*.py"))
        if "pytestmark = pytest.mark.e2e" not in path.read_text()
    ]
    assert unmarked == []
