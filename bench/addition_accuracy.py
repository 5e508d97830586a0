"""How well does the Addition RNN learn? digits=3, 50,000 examples, LSTM 128 (the Keras example's setup):
trains iteration by iteration and reports the exact-match rate of `solve` on the held-out problems.

    python bench/addition_accuracy.py [--iterations 40] [--target 0.99]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.addition import AdditionConfig, train_addition  # noqa: E402
from core.events import EpochEnded, SamplesDecoded  # noqa: E402
from core.jobs import default_workers  # noqa: E402
from core.runtime import configure_tensorflow  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--rnn-type", default="LSTM")
    arguments = parser.parse_args()
    configure_tensorflow(workers=default_workers())
    config = AdditionConfig(
        digits=3,
        training_size=50_000,
        rnn_type=arguments.rnn_type,
        hidden_size=128,
        batch_size=128,
        iterations=arguments.iterations,
        test_examples=1_000,
        seed=7,
    )
    stop = threading.Event()
    curve: list[dict[str, float]] = []
    started = time.perf_counter()
    last_epoch: dict[str, EpochEnded] = {}

    def on_event(event: object) -> None:
        # train_addition decodes its test examples (drawn from the held-out 10%) with solve() after
        # every iteration; with 1,000 of them that is the exact-match rate on unseen problems.
        if isinstance(event, EpochEnded):
            last_epoch["event"] = event
        if not isinstance(event, SamplesDecoded):
            return
        epoch = last_epoch["event"]
        curve.append(
            {
                "iteration": event.epoch,
                "val_accuracy": round(epoch.val_accuracy, 4),
                "exact_match": round(event.exact_match, 4),
                "seconds": round(epoch.seconds, 2),
                "elapsed": round(time.perf_counter() - started, 1),
            }
        )
        print(json.dumps(curve[-1]), file=sys.stderr, flush=True)
        if event.exact_match >= arguments.target:
            stop.set()

    result = train_addition(config, on_event=on_event, stop=stop)
    reached = next((point for point in curve if point["exact_match"] >= arguments.target), None)
    print(
        json.dumps(
            {
                "config": {
                    "digits": 3,
                    "training_size": 50_000,
                    "rnn_type": arguments.rnn_type,
                    "hidden_size": 128,
                },
                "held_out_problems_scored": config.test_examples,
                "target_exact_match": arguments.target,
                "reached_at_iteration": reached["iteration"] if reached else None,
                "seconds_to_target": reached["elapsed"] if reached else None,
                "final_exact_match": curve[-1]["exact_match"] if curve else None,
                "iterations_run": len(result.history),
                "seconds_per_iteration": round(
                    sum(e.seconds for e in result.history) / len(result.history), 2
                ),
                "total_seconds": round(result.seconds, 1),
                "curve": curve,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
