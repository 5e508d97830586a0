"""A `streamlit run` server on a free loopback port and Chromium's launch settings (tests and bench)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("LTL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT = 90


def free_port() -> int:
    """A loopback port that was free a moment ago (the server binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class Server:
    """A `streamlit run streamlit_app.py` process on a free loopback port."""

    def __init__(
        self,
        *,
        store_dir: Path,
        extra_env: dict[str, str] | None = None,
        extra_args: list[str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "MODEL_STORE_DIR": str(store_dir),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "streamlit_app.py",
                "--server.port",
                str(self.port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                "--browser.gatherUsageStats",
                "false",
                *(extra_args or []),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        ready = threading.Event()
        stream = self.process.stdout
        if stream is None:  # Never with stdout=PIPE; says so to the type checker.
            raise RuntimeError("streamlit's output is not piped")

        def read_output() -> None:
            for line in stream:
                self.output.append(line)
                if "You can now view your Streamlit app" in line:
                    ready.set()
            ready.set()

        threading.Thread(target=read_output, daemon=True).start()
        # Streamlit prints its banner once the server listens; no polling needed.
        if not ready.wait(START_TIMEOUT) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("streamlit did not start:\n" + "".join(self.output))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
