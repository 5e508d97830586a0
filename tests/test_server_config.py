"""The project's `.streamlit/config.toml` as Streamlit reads it at start-up."""

from pathlib import Path

import pytest
from streamlit import config, net_util
from streamlit.web import bootstrap

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project_config(monkeypatch):
    """Streamlit's options parsed from the project's config file, as `streamlit run` there would."""
    monkeypatch.chdir(ROOT)
    # Streamlit reads `./.streamlit/config.toml` from the working directory (and ~/.streamlit).
    config.get_config_options(force_reparse=True, options_from_flags={"server.headless": True})
    yield config
    monkeypatch.undo()
    config.get_config_options(force_reparse=True)


def test_the_start_banner_never_asks_an_outside_service_for_the_public_ip(project_config, monkeypatch):
    lookups = []
    monkeypatch.setattr(net_util, "get_external_ip", lambda: lookups.append("external") or None)
    printed = []
    monkeypatch.setattr(bootstrap.cli_util, "print_to_cli", lambda text, **style: printed.append(text))
    bootstrap._print_url(False)
    assert lookups == []
    assert any("http://localhost:" in line for line in printed), printed


def test_the_server_runs_without_source_watching_and_with_xsrf_protection(project_config):
    assert project_config.get_option("server.fileWatcherType") == "none"
    assert project_config.get_option("server.enableXsrfProtection") is True
    assert project_config.get_option("browser.gatherUsageStats") is False
