"""The format table: every model format the app writes or measures, with its label, suffix and runtime.

Kept free of Keras and TensorFlow imports, so the cold-load child can read it before its clock starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.settings import check_choice

# File signatures, checked before a file is trusted to be what its format says.
ZIP_MAGIC = b"PK\x03\x04"  # A .keras file is a zip archive starting at byte 0.
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"  # The legacy Keras .h5 format.
TFLITE_IDENTIFIER = b"TFL3"  # FlatBuffers file identifier, at bytes 4..8 of every .tflite file.


@dataclass(frozen=True, slots=True)
class ModelFormat:
    """One format: how it is labelled, named on disk, loaded and quantized."""

    name: str
    label: str
    suffix: str  # A SavedModel is a directory, so it gets no suffix.
    runtime: str  # The loader in a fresh process: "keras", "savedmodel" or "tflite".
    quantization: str | None  # TFLite weights: "float32", "float16" or "int8"; None otherwise.
    stored: bool  # Whether the model store keeps files of this format.


FORMATS: dict[str, ModelFormat] = {
    model_format.name: model_format
    for model_format in (
        ModelFormat("keras", "Keras (.keras zip)", ".keras", "keras", None, stored=True),
        ModelFormat(
            "savedmodel", "TensorFlow SavedModel (directory)", "", "savedmodel", None, stored=False
        ),
        ModelFormat("tflite-float32", "TFLite float32", ".tflite", "tflite", "float32", stored=True),
        ModelFormat(
            "tflite-float16", "TFLite float16 weights", ".tflite", "tflite", "float16", stored=True
        ),
        ModelFormat(
            "tflite-int8",
            "TFLite int8 weights (dynamic range)",
            ".tflite",
            "tflite",
            "int8",
            stored=True,
        ),
    )
}
STORED_FORMATS = tuple(name for name, model_format in FORMATS.items() if model_format.stored)
QUANTIZATIONS = tuple(
    model_format.quantization for model_format in FORMATS.values() if model_format.quantization
)
RUNTIMES = tuple(dict.fromkeys(model_format.runtime for model_format in FORMATS.values()))


def check_quantization(quantization: object) -> str:
    """`quantization` as a plain str if it is one of QUANTIZATIONS, else ValueError with the choices."""
    return check_choice("quantization", quantization, QUANTIZATIONS)


def tflite_format(quantization: object) -> str:
    """The format name of a TFLite file with `quantization` weights."""
    return f"tflite-{check_quantization(quantization)}"


def check_format(name: object, *, stored: bool = False) -> ModelFormat:
    """The table row for format `name` (a stored one if `stored`), else ValueError."""
    return FORMATS[check_choice("format", name, STORED_FORMATS if stored else tuple(FORMATS))]
