"""A real Dask cluster on 127.0.0.1: a scheduler and single-thread workers as subprocesses.

For the cluster tests, `bench/cluster.py` and trying the Dask backend on one machine
(`python -m core.local_cluster --workers 2` prints the address to put in `LTL_DASK_SCHEDULER`). Every
process binds only the loopback address, runs without a dashboard and is stopped by its own PID.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 90.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


WORKER_NICENESS = 10


class LoopbackCluster:
    """A `dask scheduler` and `dask worker` processes on 127.0.0.1 that run this checkout's code."""

    def __init__(self, *, workers: int = 2, threads_per_worker: int = 1) -> None:
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.threads_per_worker = threads_per_worker
        # Workers import `core` from this checkout and give each task one TensorFlow thread, so two
        # workers on two cores do not fight over them.
        self.environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "LTL_TF_THREADS": os.environ.get("LTL_TF_THREADS", str(threads_per_worker)),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "PYTHONUNBUFFERED": "1",
        }
        self.output: list[str] = []
        self.scheduler = self._start(
            "distributed.cli.dask_scheduler",
            ["--host", "127.0.0.1", "--port", str(self.port), "--no-dashboard"],
        )
        self.workers: list[subprocess.Popen[str]] = []
        try:
            for _ in range(workers):
                self.add_worker()
            self.wait_for_workers(workers)
        except BaseException:
            self.stop()
            raise

    def add_worker(self) -> subprocess.Popen[str]:
        """Start one more worker (no nanny: killing its PID really kills the worker)."""
        worker = self._start(
            "distributed.cli.dask_worker",
            [
                self.address,
                "--host",
                "127.0.0.1",
                "--nthreads",
                str(self.threads_per_worker),
                "--nworkers",
                "1",
                "--no-nanny",
                "--no-dashboard",
                "--memory-limit",
                "0",
                "--preload",
                "core.worker_setup",
            ],
            # Below the app and the scheduler, which share these cores: their few milliseconds of
            # work (relaying events, admitting jobs) then never wait behind a training step.
            nice=WORKER_NICENESS,
        )
        self.workers.append(worker)
        return worker

    def wait_for_workers(self, count: int, *, timeout: float = START_TIMEOUT) -> None:
        """Block until the scheduler has `count` workers (it answers once it listens)."""
        from distributed import Client

        with Client(self.address, timeout=timeout, set_as_default=False) as client:
            client.wait_for_workers(count, timeout=timeout)

    def kill_worker(self, index: int) -> None:
        """SIGKILL one worker, as a crash or an out-of-memory kill would."""
        worker = self.workers[index]
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)

    def kill_scheduler(self) -> None:
        """SIGKILL the scheduler, as a crashed or rebooted scheduler host would."""
        self.scheduler.send_signal(signal.SIGKILL)
        self.scheduler.wait(timeout=30)

    def stop(self) -> None:
        """Stop every process by its PID: politely first, then for good; the workers first."""
        # A worker that outlives its scheduler spends its shutdown trying to reach it (20 s measured
        # once workers ran at a lower priority and so took longer to act on SIGTERM).
        for group in (self.workers, [self.scheduler]):
            for process in group:
                if process.poll() is None:
                    process.terminate()
            for process in group:
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def __enter__(self) -> LoopbackCluster:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _start(self, module: str, arguments: list[str], *, nice: int = 0) -> subprocess.Popen[str]:
        # `nice` execs the Python process, so the PID kept here is still the process to kill.
        prefix = ["nice", "-n", str(nice)] if nice else []
        process = subprocess.Popen(
            [*prefix, sys.executable, "-m", module, *arguments],
            cwd=ROOT,
            env=self.environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        # Read the log continuously so a chatty process never blocks on a full pipe.
        threading.Thread(target=self._collect, args=(process.stdout,), daemon=True).start()
        return process

    def _collect(self, stream: IO[str] | None) -> None:
        if stream is None:
            return
        for line in stream:
            self.output.append(line)


def main() -> None:
    """Run a loopback cluster until interrupted, printing its address."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    arguments = parser.parse_args()
    with LoopbackCluster(workers=arguments.workers, threads_per_worker=arguments.threads) as cluster:
        sys.stdout.write(f"LTL_JOB_BACKEND=dask LTL_DASK_SCHEDULER={cluster.address}\n")
        sys.stdout.flush()
        stopped = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stopped.set())
        try:
            stopped.wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
