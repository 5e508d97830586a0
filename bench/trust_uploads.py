"""Hostile upload timings: seconds and server peak-memory growth per refusal, and a valid upload.

Builds a few of the worst cases of issue 11 from a freshly saved seed CNN (a deflate bomb, 1,500 layers,
deep nesting, a 134-million-weight Dense, a NaN weight that only the child sees) and sends each through
`ModelStore.upload_keras`. Prints one JSON object. Run: `python bench/trust_uploads.py`.
"""

from __future__ import annotations

import io
import json
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import psutil

from core.digits import build_cnn
from core.modelstore.store import ModelStore


def members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info) for info in archive.infolist()}


def rezip(contents: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in contents.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def with_config(data: bytes, edit: Callable[[dict], object]) -> bytes:
    contents = members(data)
    config = json.loads(contents["config.json"])
    edit(config)
    return rezip({**contents, "config.json": json.dumps(config).encode()})


def measured(store: ModelStore, data: bytes, name: str) -> dict[str, object]:
    process = psutil.Process()
    before = process.memory_info().rss
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    try:
        store.upload_keras(data, name=name)
        outcome = "accepted"
    except ValueError as error:
        outcome = f"refused: {str(error)[:90]}"
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {"seconds": round(seconds, 3), "peak_growth_mb": round((peak[0] - before) / 2**20, 1),
            "outcome": outcome}  # fmt: skip


def deflate_bomb(contents: dict[str, bytes], mebibytes: int) -> bytes:
    """The archive with config.json replaced by `mebibytes` MiB of spaces, deflated chunk by chunk."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, content in contents.items():
            if name != "config.json":
                archive.writestr(name, content)
                continue
            with archive.open(name, "w", force_zip64=False) as member:
                for _ in range(mebibytes):
                    member.write(b" " * 2**20)
    return buffer.getvalue()


def add_layers(config: dict) -> None:
    """1,500 more Dropout-like copies of the layer before the output, in the middle of the model."""
    layers = config["config"]["layers"]
    template = layers[-2]
    extra = [{**template, "name": f"extra_{index}"} for index in range(1_500)]
    layers[1:1] = extra


def main() -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "seed.keras"
        build_cnn().save(path)
        base = path.read_bytes()
        bomb = members(base)
        cases: dict[str, bytes] = {
            "deflate-bomb-512MiB": deflate_bomb(bomb, 512),
            "1500-layers": with_config(base, add_layers),
            "nested-100000": rezip({**bomb, "config.json": b"[" * 100_000 + b"]" * 100_000}),
            "dense-1.6G-weights": with_config(
                base, lambda config: config["config"]["layers"][-2]["config"].update(units=4_000_000)
            ),
        }
        weights = Path(directory) / "weights.h5"
        weights.write_bytes(bomb["model.weights.h5"])
        import h5py
        import numpy as np

        with h5py.File(weights, "r+") as file:
            bias = file["layers/dense_1/vars/1"]
            values = np.array(bias[()])
            values[0] = np.nan
            bias[...] = values
        cases["one-nan-bias (child)"] = rezip({**bomb, "model.weights.h5": weights.read_bytes()})
        results = {}
        with ModelStore(Path(directory) / "store") as store:
            for index, (name, data) in enumerate(cases.items()):
                results[name] = measured(store, data, f"case {index}")
            results["valid seed CNN (child)"] = measured(store, base, "valid")
    refusals = [value for key, value in results.items() if not key.startswith("valid")]
    print(json.dumps({
        "cases": results,
        "slowest_refusal_seconds": max(value["seconds"] for value in refusals),  # type: ignore[type-var]
        "peak_growth_mb": max(value["peak_growth_mb"] for value in refusals),  # type: ignore[type-var]
    }))  # fmt: skip


if __name__ == "__main__":
    main()
