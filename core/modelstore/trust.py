"""Checks on model files before they are trusted: archive format, safe-mode loading, task shapes."""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import keras

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# An uploaded archive may expand to at most this multiple of the upload limit, which stops zip bombs.
MAX_EXPANSION = 10
# The addition models' one-hot alphabet is the 12 characters of "0123456789+ ".
ADDITION_ALPHABET_SIZE = 12
MAX_ADDITION_DIGITS = 5
DIGITS_INPUT_SHAPE = (None, 28, 28, 1)
DIGITS_OUTPUT_SHAPE = (None, 10)
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


def detect_task(model: keras.Model) -> tuple[str, dict[str, int]]:
    """The task whose shapes a model fits: ("digits", {}) or ("addition", {"digits": D})."""
    try:
        input_shape, output_shape = model.input_shape, model.output_shape
    except (AttributeError, ValueError) as error:
        raise ValueError(f"the model has no defined input and output shapes ({error}).") from error
    if input_shape == DIGITS_INPUT_SHAPE and output_shape == DIGITS_OUTPUT_SHAPE:
        return "digits", {}
    for digits in range(1, MAX_ADDITION_DIGITS + 1):
        if input_shape == (None, 2 * digits + 1, ADDITION_ALPHABET_SIZE) and output_shape == (
            None,
            digits + 1,
            ADDITION_ALPHABET_SIZE,
        ):
            return "addition", {"digits": digits}
    raise ValueError(
        f"the model's input shape {input_shape} and output shape {output_shape} fit neither task: "
        f"digits needs {DIGITS_INPUT_SHAPE} -> {DIGITS_OUTPUT_SHAPE}; "
        f"addition needs (None, 2D+1, 12) -> (None, D+1, 12) for D from 1 to {MAX_ADDITION_DIGITS}."
    )


def refusal_reason(config: object) -> str | None:
    """Why a .keras config.json must not be loaded (Lambda layers, non-Keras code), or None."""
    # Keras's safe mode already blocks these; checking first gives a clearer message and a second guard.
    if isinstance(config, dict):
        if config.get("class_name") in ("Lambda", "__lambda__"):
            return "this model contains a Lambda layer, which can run arbitrary code; it was refused."
        module = config.get("module")
        if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
            return (
                f"this model uses code from {module!r}, which is not part of Keras; "
                "only built-in Keras layers are accepted."
            )
        values: list[object] = list(config.values())
    elif isinstance(config, list):
        values = config
    else:
        return None
    return next((reason for value in values if (reason := refusal_reason(value))), None)


def check_keras_archive(data: bytes, *, max_bytes: int) -> None:
    """Refuse anything but a .keras zip within the size limits, with a message saying what it is."""
    if len(data) > max_bytes:
        raise ValueError(f"the file is {len(data):,} bytes; the limit is {max_bytes:,} bytes.")
    if data.startswith(_HDF5_MAGIC):
        raise ValueError(
            "this is an HDF5 (.h5) file, the legacy Keras format, which is not accepted; "
            "load it in Keras 3 and re-save it with model.save('name.keras')."
        )
    if not data.startswith(_ZIP_MAGIC):
        raise ValueError(
            "this is not a .keras file (a .keras file is a zip archive saved by model.save)."
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            config_text = archive.read("config.json") if "config.json" in archive.namelist() else None
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"this .keras file is not a readable zip archive ({error}).") from error
    names = [member.filename for member in members]
    if any(name.endswith("saved_model.pb") for name in names):
        raise ValueError(
            "this is a TensorFlow SavedModel, which is not accepted; "
            "load it in Keras and save it with model.save('name.keras')."
        )
    if config_text is None:
        raise ValueError("this zip archive has no config.json, so it is not a .keras model file.")
    expanded = sum(member.file_size for member in members)
    if expanded > MAX_EXPANSION * max_bytes:
        raise ValueError(f"this archive expands to {expanded:,} bytes, which is too large to load.")
    try:
        config = json.loads(config_text)
    except ValueError as error:
        raise ValueError(f"this .keras file's config.json is not valid JSON ({error}).") from error
    reason = refusal_reason(config)
    if reason is not None:
        raise ValueError(reason)


def load_keras_bytes(data: bytes) -> keras.Model:
    """Load .keras bytes in safe mode (Lambda layers and custom code refused)."""
    # Keras loads only from a path ending in .keras; a private temp directory keeps it out of the store.
    with tempfile.TemporaryDirectory(prefix="live-training-lab-") as temporary:
        path = Path(temporary) / "model.keras"
        path.write_bytes(data)
        model = keras.saving.load_model(path, safe_mode=True)
    if not isinstance(model, keras.Model):
        raise ValueError(f"the file holds a {type(model).__name__}, not a Keras model.")
    return model
