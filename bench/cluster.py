"""Seed-CNN jobs through the Dask backend on 1 worker, then 2 workers of one thread each.

Starts and stops its own loopback cluster (core/local_cluster.py) for each size, runs N jobs through the
app's JobRunner (the same admission, events and result rebuild the pages use) and prints JSON: jobs per
second of each size and their ratio; every event's delay, split into its trip from the worker's send to
the server's job (`event_p50_ms`/`event_p99_ms`, the cluster's latency) and its age on arrival, the wait
in its batch included (`event_age_*`, at most 150 ms more by design); the time from submit to the first
curve point; and the CPU seconds each process (this one, the scheduler, the workers) spent on the
measured jobs, to show where the second core's work goes. Beside them, the same jobs in plain
processes with no Dask at all (one process, then two, each with one TensorFlow thread, pulling jobs from
a queue): `bare_ratio` is what two cores give these jobs on this machine, the ceiling for `ratio`, and
`cluster_efficiency` is `ratio / bare_ratio`. Last line: one JSON object.

    MNIST_DIR=/path/to/mnist python bench/cluster.py [--jobs 8] [--epochs 2] [--training-size 6000]
        [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psutil  # noqa: E402

from core.dask_backend import DaskBackend  # noqa: E402 - After the path setup above.
from core.digits import DigitsConfig  # noqa: E402
from core.jobs import JobRunner, JobState  # noqa: E402
from core.local_cluster import LoopbackCluster  # noqa: E402
from core.mnist import cached_mnist  # noqa: E402
from core.runtime import freeze_imported_objects  # noqa: E402
from core.training_spec import TrainingSpec  # noqa: E402
from core.worker_setup import prepare_training_process  # noqa: E402

DEADLINE = 3_600.0


def percentile(values: list[float], fraction: float) -> float:
    """The value below which `fraction` of `values` lie (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


def cpu_seconds(processes: dict[str, psutil.Process]) -> dict[str, float]:
    """User plus system CPU seconds of each process so far, children included."""
    totals = {}
    for name, process in processes.items():
        times = process.cpu_times()
        totals[name] = times.user + times.system + times.children_user + times.children_system
    return totals


def cluster_processes(cluster: LoopbackCluster) -> dict[str, psutil.Process]:
    """This process (the app's job runner), the scheduler and each worker, by name."""
    processes = {"server": psutil.Process(), "scheduler": psutil.Process(cluster.scheduler.pid)}
    worker: subprocess.Popen[str]
    for index, worker in enumerate(cluster.workers):
        processes[f"worker_{index}"] = psutil.Process(worker.pid)
    return processes


def run(workers: int, *, jobs: int, config: DigitsConfig) -> dict[str, object]:
    """N jobs on a fresh loopback cluster of `workers` single-thread workers."""
    cached_mnist()  # Loaded before the clock starts, as in the app.
    freeze_imported_objects()  # As the app's server process does at start (ui/process.py).
    with LoopbackCluster(workers=workers) as cluster:
        runner = JobRunner(max_workers=1, cluster=DaskBackend.connect(cluster.address, timeout=30))
        try:
            # One short job per worker first: each worker copies MNIST once and traces its kernels, as
            # it would for the first student of the day.
            warm = [
                runner.submit(
                    TrainingSpec(task="digits", config=DigitsConfig(epochs=1, training_size=100)),
                    owner=f"warm-{index}",
                    kind="digits",
                )
                for index in range(workers)
            ]
            if not all(job.wait(DEADLINE) and job.state is JobState.FINISHED for job in warm):
                raise RuntimeError(f"warm-up failed: {[job.error for job in warm]}")
            processes = cluster_processes(cluster)
            cpu_before = cpu_seconds(processes)
            started = time.monotonic()
            submitted = [
                runner.submit(
                    TrainingSpec(task="digits", config=config), owner=f"bench-{i}", kind="digits"
                )
                for i in range(jobs)
            ]
            if not all(job.wait(DEADLINE) for job in submitted):
                raise RuntimeError("jobs did not end")
            elapsed = time.monotonic() - started
            cpu_after = cpu_seconds(processes)
            failed = [job.error for job in submitted if job.state is not JobState.FINISHED]
            if failed:
                raise RuntimeError(f"jobs failed: {failed}")
            delays = [delay for job in submitted for delay in job.event_delays]
            # Submit to first curve point of the jobs that started at once (the rest waited in line too).
            first = [
                job.first_event_at - job.created
                for job in submitted[:workers]
                if job.first_event_at is not None
            ]
            return {
                "workers": workers,
                "seconds": round(elapsed, 2),
                "jobs_per_second": jobs / elapsed,
                "delays": delays,
                "first_point_seconds": statistics.median(first),
                "cpu_seconds": {
                    name: round(cpu_after[name] - cpu_before[name], 1) for name in processes
                },
            }
        except Exception:
            sys.stderr.write("".join(cluster.output[-200:]))
            raise
        finally:
            runner.shutdown()


def _bare_process(config: DigitsConfig, jobs: Any, ready: Any, start: Any) -> None:
    """One plain process: TensorFlow as a worker has it, one warm-up job, then jobs until none remain."""
    os.environ["LTL_TF_THREADS"] = "1"  # As LoopbackCluster gives its workers.
    prepare_training_process(threads=1)  # As a worker's preload does.
    data = cached_mnist()
    quiet = threading.Event()
    warm = TrainingSpec(task="digits", config=DigitsConfig(epochs=1, training_size=100))
    warm.run(on_event=None, stop=quiet, data=data)
    ready.put(os.getpid())
    start.wait()
    # Blocking gets up to a None per process: a non-blocking get also fails while the other process
    # holds the queue's lock, which ended one of two processes at once.
    while jobs.get() is not None:
        TrainingSpec(task="digits", config=config).run(on_event=None, stop=quiet, data=data)


def bare(processes: int, *, jobs: int, config: DigitsConfig) -> float:
    """Seconds for `jobs` jobs shared by `processes` plain processes (no Dask), after their warm-up."""
    context = multiprocessing.get_context("spawn")
    waiting, ready, start = context.Queue(), context.Queue(), context.Event()
    for index in range(jobs):
        waiting.put(index)
    for _ in range(processes):
        waiting.put(None)
    started = [
        context.Process(target=_bare_process, args=(config, waiting, ready, start))
        for _ in range(processes)
    ]
    for process in started:
        process.start()
    for _ in started:
        ready.get(timeout=DEADLINE)
    began = time.monotonic()
    start.set()
    for process in started:
        process.join(DEADLINE)
        if process.exitcode != 0:
            raise RuntimeError(f"a bare process ended with exit code {process.exitcode}")
    return time.monotonic() - began


def main() -> None:
    """Run both sizes (alternating, `--repeats` pairs) and print one JSON object."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--training-size", type=int, default=6_000)
    parser.add_argument(
        "--repeats", type=int, default=1, help="Pairs of (1 worker, 2 workers); the median pair counts."
    )
    arguments = parser.parse_args()
    config = DigitsConfig(epochs=arguments.epochs, training_size=arguments.training_size, seed=0)
    # This VM's speed drifts by up to ~20% from minute to minute: each 2-worker run is compared with
    # the 1-worker run just before it, and the median of those pair ratios is reported.
    pairs = [
        (run(1, jobs=arguments.jobs, config=config), run(2, jobs=arguments.jobs, config=config))
        for _ in range(arguments.repeats)
    ]
    ratios = [float(two["jobs_per_second"]) / float(one["jobs_per_second"]) for one, two in pairs]
    bare_pairs = [
        (bare(1, jobs=arguments.jobs, config=config), bare(2, jobs=arguments.jobs, config=config))
        for _ in range(arguments.repeats)
    ]
    bare_ratios = [one / two for one, two in bare_pairs]
    one, two = pairs[ratios.index(statistics.median_low(ratios))]
    delays = [delay for pair in pairs for size in pair for delay in size.pop("delays")]
    transit = [delay.transit for delay in delays]
    age = [delay.total for delay in delays]
    result = {
        "jobs": arguments.jobs,
        "epochs": arguments.epochs,
        "training_size": arguments.training_size,
        "cores": os.cpu_count(),
        "load_average_at_end": os.getloadavg()[0],
        "jobs_per_second_1": round(float(one["jobs_per_second"]), 4),
        "jobs_per_second_2": round(float(two["jobs_per_second"]), 4),
        "ratio": round(statistics.median_low(ratios), 3),
        "pair_ratios": [round(ratio, 3) for ratio in ratios],
        "bare_ratio": round(statistics.median_low(bare_ratios), 3),
        "bare_pair_ratios": [round(ratio, 3) for ratio in bare_ratios],
        "bare_seconds_1": round(statistics.median_low([one for one, _ in bare_pairs]), 2),
        "bare_seconds_2": round(statistics.median_low([two for _, two in bare_pairs]), 2),
        "cluster_efficiency": round(
            statistics.median_low(ratios) / statistics.median_low(bare_ratios), 3
        ),
        "event_p50_ms": round(1000 * percentile(transit, 0.5), 2),
        "event_p99_ms": round(1000 * percentile(transit, 0.99), 2),
        "event_age_p50_ms": round(1000 * percentile(age, 0.5), 2),
        "event_age_p99_ms": round(1000 * percentile(age, 0.99), 2),
        "events": len(delays),
        "first_point_seconds_1": round(float(one["first_point_seconds"]), 2),
        "first_point_seconds_2": round(float(two["first_point_seconds"]), 2),
        "seconds_1": one["seconds"],
        "seconds_2": two["seconds"],
        "cpu_seconds_1": one["cpu_seconds"],
        "cpu_seconds_2": two["cpu_seconds"],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
