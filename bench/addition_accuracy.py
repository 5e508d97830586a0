"""How fast does the Addition RNN learn to add? The fast preset against the Keras example's setting.

Both train 3-digit sums on 50,000 examples with an LSTM of 128 and are scored after every iteration on
1,000 held-out sums (exact match, the run's own ErrorBreakdown). The fast preset (`fast_config`) runs
once per seed and its time to the target is the median over seeds; the Keras setting (batch 128, Adam
0.001) runs in the same process, so the ratio compares like with like.

    python bench/addition_accuracy.py [--digits 3] [--seeds 3] [--keras-iterations 60] [--no-keras]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.addition import FAST_GOAL_EXACT_MATCH, AdditionConfig, fast_config, train_addition  # noqa: E402
from core.events import EpochEnded, ErrorBreakdown  # noqa: E402
from core.jobs import default_workers  # noqa: E402
from core.runtime import configure_tensorflow  # noqa: E402


def time_to_target(config: AdditionConfig, *, target: float, label: str) -> dict[str, Any]:
    """Train `config` until `target` exact match on the held-out sums (or its last iteration)."""
    stop = threading.Event()
    started = time.perf_counter()
    curve: list[dict[str, float]] = []
    seconds: dict[int, float] = {}

    def on_event(event: object) -> None:
        if isinstance(event, EpochEnded):
            seconds[event.epoch] = event.seconds
        if not isinstance(event, ErrorBreakdown):
            return
        point = {
            "iteration": event.epoch,
            "exact_match": round(event.exact_match or 0.0, 4),
            # Training time only: seconds of the iterations so far (scoring happens after each).
            "training_seconds": round(sum(seconds.values()), 1),
            "elapsed": round(time.perf_counter() - started, 1),
        }
        curve.append(point)
        print(json.dumps({"run": label, **point}), file=sys.stderr, flush=True)
        if point["exact_match"] >= target:
            stop.set()

    result = train_addition(config, on_event=on_event, stop=stop)
    reached = next((point for point in curve if point["exact_match"] >= target), None)
    return {
        "run": label,
        "batch_size": config.batch_size,
        "recipe": config.recipe,
        "seed": config.seed,
        "reached_at_iteration": reached["iteration"] if reached else None,
        "training_seconds_to_target": reached["training_seconds"] if reached else None,
        "elapsed_seconds_to_target": reached["elapsed"] if reached else None,
        "best_exact_match": max((point["exact_match"] for point in curve), default=0.0),
        "iterations_run": len(result.history),
        "total_seconds": round(result.seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--digits", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--keras-iterations", type=int, default=60)
    parser.add_argument("--no-keras", action="store_true", help="Time only the fast preset.")
    arguments = parser.parse_args()
    configure_tensorflow(workers=default_workers())
    target = FAST_GOAL_EXACT_MATCH
    preset = fast_config(arguments.digits)
    fast_runs = [
        time_to_target(
            dataclasses.replace(preset, test_examples=0, seed=seed), target=target, label="fast"
        )
        for seed in range(1, arguments.seeds + 1)
    ]
    report: dict[str, Any] = {
        "digits": arguments.digits,
        "training_size": preset.training_size,
        "rnn": f"{preset.rnn_type} {preset.hidden_size}",
        "target_exact_match": target,
        "held_out_sums_scored": min(1_000, preset.validation_size),
        "fast": fast_runs,
    }
    times = [run["elapsed_seconds_to_target"] for run in fast_runs]
    report["fast_median_seconds_to_target"] = (
        statistics.median(times) if all(time is not None for time in times) else None
    )
    if not arguments.no_keras:
        plain = AdditionConfig(
            digits=arguments.digits,
            training_size=preset.training_size,
            rnn_type="LSTM",
            hidden_size=128,
            batch_size=128,
            iterations=arguments.keras_iterations,
            test_examples=0,
            seed=1,
        )
        keras_run = time_to_target(plain, target=target, label="keras")
        report["keras"] = keras_run
        median = report["fast_median_seconds_to_target"]
        keras_time = keras_run["elapsed_seconds_to_target"]
        report["speedup"] = round(keras_time / median, 2) if median and keras_time else None
    print(json.dumps(report))


if __name__ == "__main__":
    main()
