"""Checks on foreign model files that need no Keras: the zip, its JSON, an allowlist, declared sizes.

Everything here reads the uploaded bytes with the standard library only and bounded reads, so it runs in
the server process in milliseconds and refuses most hostile files before any weights are loaded. What
passes is then opened in a short-lived child process (`core.modelstore.importer`). A `.keras` file is
accepted only as exactly what Keras 3 writes: a zip starting at byte 0 with the three members
`metadata.json`, `config.json` and `model.weights.h5`, whose config names only the layer classes and
identifiers the two tasks can use, with their known arguments.
"""

from __future__ import annotations

import json
import re
import stat
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
# Keras 3.15 writes ~7-20 KB of config for the app's models; 512 KiB leaves room for deep stacks.
MAX_CONFIG_BYTES = 512 * 1024
MAX_METADATA_BYTES = 16 * 1024  # Keras writes 64 bytes.
# Keras stores the weights file uncompressed, so a 20 MB upload holds about 5 million float32 weights.
MAX_WEIGHTS_BYTES = 64 * 1024 * 1024
MAX_PARAMETERS = 5_000_000
MAX_JSON_DEPTH = 32  # The app's configs nest 7 to 13 deep.
MAX_JSON_NODES = 100_000
MAX_STRING_LENGTH = 256
MAX_LAYERS = 64  # The largest app model has 12 layers.
MAX_UNITS = 4_096
MAX_ACTIVATIONS_PER_SAMPLE = 4_000_000  # Elements in one layer's output for one sample.
# The addition models' one-hot alphabet is the 12 characters of "0123456789+ ".
ADDITION_ALPHABET_SIZE = 12
MAX_ADDITION_DIGITS = 5
DIGITS_INPUT_SHAPE = (None, 28, 28, 1)
DIGITS_OUTPUT_SHAPE = (None, 10)
KERAS_MEMBERS = ("metadata.json", "config.json", "model.weights.h5")
MAX_MEMBERS = 16  # Past this, the directory is not even read.
_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_CENTRAL_HEADER = struct.Struct("<4sHHHHHHIIIHHHHHII")
_END_RECORD = struct.Struct("<4sHHHHIIH")
_CHUNK = 256 * 1024


class UploadRefused(ValueError):
    """An uploaded model file was refused; the message says what was wrong with it."""


@dataclass(frozen=True, slots=True)
class ArchiveReport:
    """What the static checks learnt from an accepted archive."""

    task: str  # "addition" or "digits".
    details: dict[str, int]  # {"digits": D} for addition models.
    parameters: int  # Weights counted from the config.
    layers: int


def detect_task(model: keras.Model) -> tuple[str, dict[str, int]]:
    """The task whose shapes a model fits: ("digits", {}) or ("addition", {"digits": D})."""
    try:
        input_shape, output_shape = model.input_shape, model.output_shape
    except (AttributeError, ValueError) as error:
        raise ValueError(f"the model has no defined input and output shapes ({error}).") from error
    return task_for_shapes(input_shape, output_shape)


def task_for_shapes(input_shape: object, output_shape: object) -> tuple[str, dict[str, int]]:
    """The task of a model with these input and output shapes, else ValueError."""
    if input_shape == DIGITS_INPUT_SHAPE and output_shape == DIGITS_OUTPUT_SHAPE:
        return "digits", {}
    for digits in range(1, MAX_ADDITION_DIGITS + 1):
        if input_shape == (None, 2 * digits + 1, ADDITION_ALPHABET_SIZE) and output_shape == (
            None,
            digits + 1,
            ADDITION_ALPHABET_SIZE,
        ):
            return "addition", {"digits": digits}
    raise UploadRefused(
        f"the model's input shape {input_shape} and output shape {output_shape} fit neither task: "
        f"digits needs {DIGITS_INPUT_SHAPE} -> {DIGITS_OUTPUT_SHAPE}; "
        f"addition needs (None, 2D+1, 12) -> (None, D+1, 12) for D from 1 to {MAX_ADDITION_DIGITS}."
    )


# The archive.


@dataclass(frozen=True, slots=True)
class _Member:
    name: str
    method: int
    crc: int
    compressed_size: int
    size: int
    data_start: int


def _parse_archive(data: bytes) -> dict[str, _Member]:
    """The three members of a Keras zip, after checking its whole layout byte by byte."""
    if len(data) < _END_RECORD.size or not data.startswith(_ZIP_MAGIC):
        raise UploadRefused(
            "this is not a .keras file (a .keras file is a zip archive saved by model.save)."
        )
    # Keras writes no archive comment, so the end record is the last 22 bytes; anything else means
    # data appended after the archive or a second archive inside the file.
    end_offset = len(data) - _END_RECORD.size
    signature, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, comment_length = (
        _END_RECORD.unpack_from(data, end_offset)
    )
    if signature != b"PK\x05\x06" or comment_length != 0:
        raise UploadRefused(
            "this zip archive does not end where a .keras file ends (it has a comment, trailing data "
            "or is truncated)."
        )
    if disk != 0 or cd_disk != 0 or disk_entries != entries:
        raise UploadRefused("this zip archive spans several disks, which a .keras file never does.")
    if entries > MAX_MEMBERS:
        raise UploadRefused(
            f"this archive has {entries:,} members; a .keras file has exactly {len(KERAS_MEMBERS)}: "
            f"{', '.join(KERAS_MEMBERS)}."
        )
    if cd_offset + cd_size != end_offset:
        raise UploadRefused(
            "this zip archive's directory is not where its end record says (data was inserted or "
            "the archive is a ZIP64 or polyglot file)."
        )
    members: dict[str, _Member] = {}
    position = cd_offset
    expected_local = 0
    for _ in range(entries):
        if position + _CENTRAL_HEADER.size > end_offset:
            raise UploadRefused("this zip archive's directory is truncated.")
        (
            signature,
            _made_by,
            _needed,
            flags,
            method,
            _time,
            _date,
            crc,
            compressed_size,
            size,
            name_length,
            extra_length,
            comment_length,
            disk_start,
            _internal,
            external,
            local_offset,
        ) = _CENTRAL_HEADER.unpack_from(data, position)
        if signature != b"PK\x01\x02":
            raise UploadRefused("this zip archive's directory is corrupt.")
        raw_name = data[position + 46 : position + 46 + name_length]
        position += 46 + name_length + extra_length + comment_length
        if position > end_offset:
            raise UploadRefused("this zip archive's directory is truncated.")
        name = _check_name(raw_name)
        if name in members:
            raise UploadRefused(f"this archive holds {name!r} twice; a .keras file holds it once.")
        if flags & 0x1 or flags & 0x40:
            raise UploadRefused(f"the member {name!r} is encrypted; .keras files are never encrypted.")
        if method not in (0, 8):
            raise UploadRefused(
                f"the member {name!r} uses zip compression method {method}; only stored (0) and "
                "deflated (8) members are accepted."
            )
        if disk_start != 0 or comment_length != 0:
            raise UploadRefused(f"the member {name!r} has a zip layout Keras never writes.")
        mode = external >> 16
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG):
            raise UploadRefused(
                f"the member {name!r} is a symbolic link or special file, not a plain file."
            )
        if external & 0x10:
            raise UploadRefused(f"the member {name!r} is a directory, not a file.")
        if 0xFFFFFFFF in (compressed_size, size, local_offset):
            raise UploadRefused(
                f"the member {name!r} uses ZIP64 sizes, which a .keras upload never needs."
            )
        limit = {"config.json": MAX_CONFIG_BYTES, "metadata.json": MAX_METADATA_BYTES}.get(
            name, MAX_WEIGHTS_BYTES
        )
        if size > limit:
            raise UploadRefused(
                f"the member {name!r} expands to {size:,} bytes; the limit is {limit:,} bytes."
            )
        # Members must follow one another from byte 0 with no gap: no data hides between them.
        if local_offset != expected_local:
            raise UploadRefused(
                f"the member {name!r} is not where a .keras file would put it (prepended data, a gap "
                "or overlapping members)."
            )
        data_start = _check_local_header(
            data, local_offset, raw_name, method=method, flags=flags, sizes=(crc, compressed_size, size)
        )
        expected_local = data_start + compressed_size
        if flags & 0x8:
            # A data descriptor follows the data: optional signature, then crc and two sizes.
            descriptor = 16 if data[expected_local : expected_local + 4] == b"PK\x07\x08" else 12
            expected_local += descriptor
        if expected_local > cd_offset:
            raise UploadRefused(f"the member {name!r} runs past the end of the archive's data.")
        members[name] = _Member(name, method, crc, compressed_size, size, data_start)
    if expected_local != cd_offset or position != end_offset:
        raise UploadRefused("this zip archive holds data that belongs to no member.")
    missing = [name for name in KERAS_MEMBERS if name not in members]
    if missing:
        raise UploadRefused(
            f"this archive lacks {', '.join(missing)}, so it is not a Keras 3 .keras model file."
        )
    return members


def _check_name(raw_name: bytes) -> str:
    # Only the three exact names are accepted, so '../x', '/x', 'C:/x', backslashes and NUL all fail.
    try:
        name = raw_name.decode("ascii")
    except UnicodeDecodeError:
        name = raw_name.decode("latin-1")
    if name not in KERAS_MEMBERS:
        if any(name.endswith(suffix) for suffix in ("saved_model.pb", "saved_model.pbtxt")):
            raise UploadRefused(
                "this is a TensorFlow SavedModel, which is not accepted; "
                "load it in Keras and save it with model.save('name.keras')."
            )
        raise UploadRefused(
            f"this archive holds a member named {name[:80]!r}; a .keras file holds only "
            f"{', '.join(KERAS_MEMBERS)}."
        )
    return name


def _check_local_header(
    data: bytes, offset: int, raw_name: bytes, *, method: int, flags: int, sizes: tuple[int, int, int]
) -> int:
    if offset + _LOCAL_HEADER.size > len(data):
        raise UploadRefused("this zip archive is truncated.")
    (
        signature,
        _needed,
        local_flags,
        local_method,
        _t,
        _d,
        crc,
        compressed,
        size,
        name_length,
        extra_length,
    ) = _LOCAL_HEADER.unpack_from(data, offset)
    local_name = data[offset + 30 : offset + 30 + name_length]
    if signature != _ZIP_MAGIC or local_name != raw_name:
        raise UploadRefused(
            f"a member's local header does not match the archive's directory "
            f"({local_name[:80]!r} against {raw_name[:80]!r}); the file was tampered with."
        )
    if local_method != method or (local_flags & 0x49) != (flags & 0x49):
        raise UploadRefused(f"the member {raw_name.decode('latin-1')!r} has mismatched zip headers.")
    # With a data descriptor the local sizes may be zero; otherwise both headers must agree.
    if not flags & 0x8 and (crc, compressed, size) != sizes:
        raise UploadRefused(
            f"the member {raw_name.decode('latin-1')!r} has sizes or a checksum in its local header "
            "that differ from the archive's directory (ZIP64 or a tampered file)."
        )
    return int(offset + 30 + name_length + extra_length)


def iter_member(data: bytes, member: _Member) -> Iterator[bytes]:
    """A member's bytes in chunks, never more than its declared size, with CRC and size checked."""
    raw = memoryview(data)[member.data_start : member.data_start + member.compressed_size]
    produced = 0
    crc = 0
    if member.method == 0:
        if member.compressed_size != member.size:
            raise UploadRefused(f"the stored member {member.name!r} has inconsistent sizes.")
        chunks: Iterator[bytes] = (
            bytes(raw[start : start + _CHUNK]) for start in range(0, len(raw), _CHUNK)
        )
    else:
        chunks = _inflate(raw, member)
    for chunk in chunks:
        produced += len(chunk)
        if produced > member.size:
            raise UploadRefused(
                f"the member {member.name!r} expands past its declared {member.size:,} bytes."
            )
        crc = zlib.crc32(chunk, crc)
        yield chunk
    if produced != member.size or crc != member.crc:
        raise UploadRefused(
            f"the member {member.name!r} is corrupt (its size or checksum does not match)."
        )


def _inflate(raw: memoryview, member: _Member) -> Iterator[bytes]:
    inflater = zlib.decompressobj(-15)
    try:
        for start in range(0, len(raw), _CHUNK):
            pending = bytes(raw[start : start + _CHUNK])
            while pending:
                # At most one byte more than declared is ever produced: enough to notice a bomb.
                chunk = inflater.decompress(pending, _CHUNK)
                pending = inflater.unconsumed_tail
                if chunk:
                    yield chunk
                elif pending:
                    break
        tail = inflater.flush()
        if tail:
            yield tail[: member.size + 1]
    except zlib.error as error:
        raise UploadRefused(
            f"the member {member.name!r} has corrupt compressed data ({error})."
        ) from error
    if not inflater.eof or inflater.unused_data:
        raise UploadRefused(f"the member {member.name!r} has corrupt or trailing compressed data.")


def read_member(data: bytes, member: _Member) -> bytes:
    """A small member's whole content (its declared size is already capped)."""
    return b"".join(iter_member(data, member))


# JSON.

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def parse_json(text: bytes, *, what: str) -> Any:
    """Parse bounded JSON after checking its nesting depth without recursion; duplicate keys refused."""
    try:
        decoded = text.decode("utf-8")
    except UnicodeDecodeError as error:
        raise UploadRefused(f"{what} is not UTF-8 text ({error}).") from error
    depth = 0
    for match in _BRACKETS.finditer(_STRING.sub('""', decoded)):
        depth += 1 if match.group() in "[{" else -1
        if depth > MAX_JSON_DEPTH:
            raise UploadRefused(f"{what} nests deeper than {MAX_JSON_DEPTH} levels.")

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(pairs)
        if len(result) != len(pairs):
            raise UploadRefused(f"{what} repeats a key, so readers could disagree on its value.")
        return result

    def no_constants(name: str) -> Any:
        raise UploadRefused(f"{what} holds {name}, which is not valid JSON.")

    try:
        return json.loads(decoded, object_pairs_hook=no_duplicates, parse_constant=no_constants)
    except UploadRefused:
        raise
    except (ValueError, RecursionError) as error:
        raise UploadRefused(f"{what} is not valid JSON ({error}).") from error


def check_metadata(metadata: object) -> None:
    """metadata.json must be an object of short strings that names a Keras 3 version."""
    if not isinstance(metadata, dict):
        raise UploadRefused(
            f"metadata.json holds a {type(metadata).__name__}, not the object Keras 3 writes."
        )
    if len(metadata) > 16 or not all(
        isinstance(value, str) and len(value) <= MAX_STRING_LENGTH for value in metadata.values()
    ):
        raise UploadRefused("metadata.json holds values Keras never writes there.")
    version = metadata.get("keras_version")
    if version is None:
        raise UploadRefused("metadata.json does not say which Keras version saved the file.")
    if not isinstance(version, str) or not re.fullmatch(r"3\.\d{1,3}\.\d{1,3}([.\w+-]{0,32})", version):
        raise UploadRefused(
            f"metadata.json says the file was saved by Keras {version!r}; only Keras 3 .keras files "
            "are accepted (re-save it with Keras 3: model.save('name.keras'))."
        )


# The config allowlist.

_COMMON = {"name", "trainable", "dtype"}
_RNN = _COMMON | {
    "activation",
    "activity_regularizer",
    "bias_constraint",
    "bias_initializer",
    "bias_regularizer",
    "dropout",
    "go_backwards",
    "kernel_constraint",
    "kernel_initializer",
    "kernel_regularizer",
    "recurrent_constraint",
    "recurrent_dropout",
    "recurrent_initializer",
    "recurrent_regularizer",
    "return_sequences",
    "return_state",
    "seed",
    "stateful",
    "units",
    "unroll",
    "use_bias",
    "zero_output_for_mask",
}
_IMAGE_AUGMENTATION = _COMMON | {"data_format", "fill_mode", "fill_value", "interpolation", "seed"}
# Each allowed layer class and the configuration arguments Keras 3.15 writes for it.
LAYER_ARGUMENTS: dict[str, frozenset[str]] = {
    "InputLayer": frozenset({"batch_shape", "dtype", "name", "optional", "ragged", "sparse"}),
    "Dense": frozenset(
        _COMMON
        | {
            "activation",
            "bias_constraint",
            "bias_initializer",
            "bias_regularizer",
            "kernel_constraint",
            "kernel_initializer",
            "kernel_regularizer",
            "quantization_config",
            "units",
            "use_bias",
            "activity_regularizer",
            "lora_rank",
            "lora_alpha",
        }
    ),
    "SimpleRNN": frozenset(_RNN),
    "GRU": frozenset(_RNN | {"recurrent_activation", "reset_after"}),
    "LSTM": frozenset(_RNN | {"recurrent_activation", "unit_forget_bias"}),
    "RepeatVector": frozenset(_COMMON | {"n"}),
    "Conv2D": frozenset(
        _COMMON
        | {
            "activation",
            "activity_regularizer",
            "bias_constraint",
            "bias_initializer",
            "bias_regularizer",
            "data_format",
            "dilation_rate",
            "filters",
            "groups",
            "kernel_constraint",
            "kernel_initializer",
            "kernel_regularizer",
            "kernel_size",
            "padding",
            "strides",
            "use_bias",
        }
    ),
    "MaxPooling2D": frozenset(_COMMON | {"data_format", "padding", "pool_size", "strides"}),
    "AveragePooling2D": frozenset(_COMMON | {"data_format", "padding", "pool_size", "strides"}),
    "Flatten": frozenset(_COMMON | {"data_format"}),
    "Dropout": frozenset(_COMMON | {"noise_shape", "rate", "seed"}),
    "BatchNormalization": frozenset(
        _COMMON
        | {
            "axis",
            "beta_constraint",
            "beta_initializer",
            "beta_regularizer",
            "center",
            "epsilon",
            "gamma_constraint",
            "gamma_initializer",
            "gamma_regularizer",
            "momentum",
            "moving_mean_initializer",
            "moving_variance_initializer",
            "renorm",
            "renorm_clipping",
            "renorm_momentum",
            "scale",
            "synchronized",
        }
    ),
    "Reshape": frozenset(_COMMON | {"target_shape"}),
    "Activation": frozenset(_COMMON | {"activation"}),
    "Softmax": frozenset(_COMMON | {"axis"}),
    "RandomTranslation": frozenset(_IMAGE_AUGMENTATION | {"height_factor", "width_factor"}),
    "RandomRotation": frozenset(_IMAGE_AUGMENTATION | {"factor"}),
    "RandomZoom": frozenset(_IMAGE_AUGMENTATION | {"height_factor", "width_factor"}),
}
_MODEL_ARGUMENTS = {
    "Functional": frozenset({"name", "trainable", "layers", "input_layers", "output_layers"}),
    "Sequential": frozenset({"name", "trainable", "dtype", "layers", "build_input_shape"}),
}
_MODEL_MODULES = {
    ("keras.src.models.functional", "Functional"): "Functional",
    ("keras", "Functional"): "Functional",
    ("keras", "Sequential"): "Sequential",
    ("keras.src.models.sequential", "Sequential"): "Sequential",
}
ACTIVATIONS = frozenset(
    {
        "linear",
        "relu",
        "sigmoid",
        "softmax",
        "tanh",
        "elu",
        "selu",
        "gelu",
        "softplus",
        "softsign",
        "swish",
        "silu",
        "hard_sigmoid",
        "leaky_relu",
        "relu6",
        "exponential",
        "log_softmax",
    }
)
INITIALIZERS: dict[str, frozenset[str]] = {
    "GlorotUniform": frozenset({"seed", "input_axes", "output_axes"}),
    "GlorotNormal": frozenset({"seed", "input_axes", "output_axes"}),
    "HeUniform": frozenset({"seed", "input_axes", "output_axes"}),
    "HeNormal": frozenset({"seed", "input_axes", "output_axes"}),
    "LecunUniform": frozenset({"seed", "input_axes", "output_axes"}),
    "LecunNormal": frozenset({"seed", "input_axes", "output_axes"}),
    "Orthogonal": frozenset({"seed", "gain"}),
    "Zeros": frozenset(),
    "Ones": frozenset(),
    "RandomNormal": frozenset({"seed", "mean", "stddev"}),
    "RandomUniform": frozenset({"seed", "minval", "maxval"}),
    "TruncatedNormal": frozenset({"seed", "mean", "stddev"}),
}
INITIALIZER_NAMES = frozenset(
    {
        "glorot_uniform",
        "glorot_normal",
        "he_uniform",
        "he_normal",
        "lecun_uniform",
        "lecun_normal",
        "orthogonal",
        "zeros",
        "ones",
        "random_normal",
        "random_uniform",
        "truncated_normal",
    }
)
REGULARIZERS: dict[str, frozenset[str]] = {
    "L1": frozenset({"l1"}),
    "L2": frozenset({"l2"}),
    "L1L2": frozenset({"l1", "l2"}),
}
CONSTRAINTS: dict[str, frozenset[str]] = {
    "MaxNorm": frozenset({"max_value", "axis"}),
    "NonNeg": frozenset(),
    "UnitNorm": frozenset({"axis"}),
    "MinMaxNorm": frozenset({"min_value", "max_value", "rate", "axis"}),
}
_OPTIMIZER_COMMON = frozenset(
    {
        "name",
        "learning_rate",
        "weight_decay",
        "clipnorm",
        "global_clipnorm",
        "clipvalue",
        "use_ema",
        "ema_momentum",
        "ema_overwrite_frequency",
        "loss_scale_factor",
        "gradient_accumulation_steps",
    }
)
OPTIMIZERS: dict[str, frozenset[str]] = {
    "Adam": _OPTIMIZER_COMMON | {"beta_1", "beta_2", "epsilon", "amsgrad"},
    "AdamW": _OPTIMIZER_COMMON | {"beta_1", "beta_2", "epsilon", "amsgrad"},
    "SGD": _OPTIMIZER_COMMON | {"momentum", "nesterov"},
    "RMSprop": _OPTIMIZER_COMMON | {"rho", "momentum", "epsilon", "centered"},
}
OPTIMIZER_NAMES = frozenset({"adam", "adamw", "sgd", "rmsprop"})
SCHEDULES: dict[str, frozenset[str]] = {
    "CosineDecay": frozenset(
        {"initial_learning_rate", "decay_steps", "alpha", "name", "warmup_target", "warmup_steps"}
    ),
    "ExponentialDecay": frozenset(
        {"initial_learning_rate", "decay_steps", "decay_rate", "staircase", "name"}
    ),
}
LOSS_NAMES = frozenset(
    {"categorical_crossentropy", "sparse_categorical_crossentropy", "mean_squared_error", "mse"}
)
LOSSES: dict[str, frozenset[str]] = {
    "CategoricalCrossentropy": frozenset(
        {"name", "reduction", "from_logits", "label_smoothing", "axis", "dtype"}
    ),
    "SparseCategoricalCrossentropy": frozenset(
        {"name", "reduction", "from_logits", "ignore_class", "axis", "dtype"}
    ),
}
METRIC_NAMES = frozenset({"accuracy", "acc", "categorical_accuracy", "sparse_categorical_accuracy"})
DTYPES = frozenset({"float32", "float16", "bfloat16", "mixed_float16", "mixed_bfloat16"})
_COMPILE_KEYS = frozenset(
    {
        "optimizer",
        "loss",
        "loss_weights",
        "metrics",
        "weighted_metrics",
        "run_eagerly",
        "steps_per_execution",
        "jit_compile",
        "auto_scale_loss",
    }
)
_OBJECT_KEYS = frozenset({"module", "class_name", "config", "registered_name", "shared_object_id"})
_LAYER_KEYS = _OBJECT_KEYS | {"build_config", "name", "inbound_nodes", "compile_config"}
_ENUMS: dict[str, frozenset[object]] = {
    "padding": frozenset({"valid", "same"}),
    "data_format": frozenset({None, "channels_last"}),
    "fill_mode": frozenset({"constant", "reflect", "wrap", "nearest"}),
    "interpolation": frozenset({"bilinear", "nearest"}),
    "reduction": frozenset({None, "sum_over_batch_size", "sum", "mean", "none", "auto"}),
    "jit_compile": frozenset({True, False, "auto"}),
}
_INITIALIZER_KEYS = frozenset(
    {
        "kernel_initializer",
        "bias_initializer",
        "recurrent_initializer",
        "beta_initializer",
        "gamma_initializer",
        "moving_mean_initializer",
        "moving_variance_initializer",
    }
)
_REGULARIZER_KEYS = frozenset(
    {
        "kernel_regularizer",
        "bias_regularizer",
        "recurrent_regularizer",
        "activity_regularizer",
        "beta_regularizer",
        "gamma_regularizer",
    }
)
_CONSTRAINT_KEYS = frozenset(
    {
        "kernel_constraint",
        "bias_constraint",
        "recurrent_constraint",
        "beta_constraint",
        "gamma_constraint",
    }
)


def _refuse(where: str, what: str) -> UploadRefused:
    return UploadRefused(
        f"config.json {where}: {what}; only the built-in Keras pieces the two tasks use are accepted."
    )


def _check_scalars(root: object) -> None:
    """Every value is a short string, finite number, bool or None, in a bounded tree (no recursion)."""
    stack: list[object] = [root]
    nodes = 0
    while stack:
        node = stack.pop()
        nodes += 1
        if nodes > MAX_JSON_NODES:
            raise UploadRefused(f"config.json holds more than {MAX_JSON_NODES:,} values.")
        if isinstance(node, dict):
            _check_code_reference(node)
            for key, value in node.items():
                if len(key) > MAX_STRING_LENGTH:
                    raise UploadRefused("config.json holds a key longer than any Keras writes.")
                if key.startswith("__") and key != "__keras_tensor__":
                    raise _refuse(f"key {key[:40]!r}", "serialized code or tensors are not accepted")
                stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            if len(node) > MAX_STRING_LENGTH:
                raise UploadRefused(
                    f"config.json holds a text value of {len(node):,} characters; the limit is "
                    f"{MAX_STRING_LENGTH}."
                )
        elif isinstance(node, float):
            if node != node or node in (float("inf"), float("-inf")):
                raise UploadRefused("config.json holds a value that is not a finite number.")
        elif isinstance(node, int) and not isinstance(node, bool):
            if abs(node) > 2**53:
                raise UploadRefused("config.json holds a number too large for any Keras setting.")
        elif node is not None and not isinstance(node, bool):
            raise UploadRefused("config.json holds a value of an unknown kind.")


def _check_code_reference(node: dict[str, Any]) -> None:
    # The two commonest ways to smuggle code get their own message.
    if node.get("class_name") in ("Lambda", "__lambda__") or "__lambda__" in node:
        raise UploadRefused(
            "this model contains a Lambda layer, which can run arbitrary code; it was refused."
        )
    module = node.get("module")
    if isinstance(module, str) and module != "keras" and not module.startswith("keras."):
        raise UploadRefused(
            f"this model uses code from {module[:80]!r}, which is not part of Keras; "
            "only built-in Keras layers are accepted."
        )


def _check_object(
    value: object, *, where: str, module: str, classes: dict[str, frozenset[str]]
) -> dict[str, Any]:
    """A serialized built-in object: the module, a class of `classes`, only its known arguments."""
    if not isinstance(value, dict) or not set(value) <= _OBJECT_KEYS:
        raise _refuse(where, f"{_short(value)} is not a serialized built-in object")
    class_name = value.get("class_name")
    if value.get("module") != module or class_name not in classes:
        raise _refuse(where, f"{value.get('module')!r}.{_short(class_name)} is not allowed here")
    if value.get("registered_name") is not None:
        raise _refuse(where, f"registered name {_short(value.get('registered_name'))} is not allowed")
    config = value.get("config", {})
    if not isinstance(config, dict) or not set(config) <= classes[str(class_name)]:
        unknown = sorted(set(config) - classes[str(class_name)]) if isinstance(config, dict) else config
        raise _refuse(where, f"{class_name} has arguments Keras does not write: {_short(unknown)}")
    for key, argument in config.items():
        _check_plain(argument, where=f"{where}.{key}")
    return config


def _check_plain(value: object, *, where: str) -> None:
    """A plain argument value: numbers, strings, bools, None or lists of them; never an object."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            raise _refuse(where, "a nested object is not allowed in this argument")
        if isinstance(node, list):
            stack.extend(node)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _check_choice(value: object, choices: frozenset[Any], *, where: str) -> None:
    if isinstance(value, list | dict) or value not in choices:
        raise _refuse(where, f"{_short(value)} is not one of the accepted values")


def _check_dtype(value: object, *, where: str) -> None:
    if isinstance(value, str):
        _check_choice(value, DTYPES, where=where)
        return
    config = _check_object(
        value, where=where, module="keras", classes={"DTypePolicy": frozenset({"name"})}
    )
    _check_choice(config.get("name"), DTYPES, where=where)


def _check_layer_arguments(class_name: str, config: dict[str, Any], *, where: str) -> None:
    """Each argument of an allowed layer: identifiers from the allowlist, plain values otherwise."""
    allowed = LAYER_ARGUMENTS[class_name]
    unknown = sorted(set(config) - allowed)
    if unknown:
        raise _refuse(where, f"{class_name} has arguments Keras does not write: {_short(unknown)}")
    for key, value in config.items():
        here = f"{where}.{key}"
        if key == "dtype":
            _check_dtype(value, where=here)
        elif key in ("activation", "recurrent_activation"):
            _check_choice(value, ACTIVATIONS, where=here)
        elif key in _INITIALIZER_KEYS:
            if isinstance(value, str):
                _check_choice(value, INITIALIZER_NAMES, where=here)
            else:
                _check_object(value, where=here, module="keras.initializers", classes=INITIALIZERS)
        elif key in _REGULARIZER_KEYS:
            if value is not None:
                _check_object(value, where=here, module="keras.regularizers", classes=REGULARIZERS)
        elif key in _CONSTRAINT_KEYS:
            if value is not None:
                _check_object(value, where=here, module="keras.constraints", classes=CONSTRAINTS)
        elif key == "quantization_config" or key == "renorm_clipping":
            if value is not None:
                raise _refuse(here, "quantized or renormalised layers are not accepted")
        elif key in _ENUMS:
            _check_choice(value, _ENUMS[key], where=here)
        else:
            _check_plain(value, where=here)


def _check_compile(compile_config: object) -> None:
    """compile_config: an allowed optimizer, loss and metrics, nothing else."""
    if compile_config is None or compile_config == {}:
        return
    if not isinstance(compile_config, dict) or not set(compile_config) <= _COMPILE_KEYS:
        raise _refuse(
            "compile_config",
            f"keys {_short(sorted(compile_config))} are not accepted"
            if isinstance(compile_config, dict)
            else "it is not an object",
        )
    for key, value in compile_config.items():
        where = f"compile_config.{key}"
        if key == "optimizer":
            if isinstance(value, str):
                _check_choice(value, OPTIMIZER_NAMES, where=where)
                continue
            if not isinstance(value, dict):
                raise _refuse(where, "the optimizer is neither a name nor a built-in optimizer")
            learning_rate = (
                value.get("config", {}).get("learning_rate")
                if isinstance(value.get("config"), dict)
                else None
            )
            if isinstance(learning_rate, dict):
                _check_object(
                    learning_rate,
                    where=f"{where}.learning_rate",
                    module="keras.optimizers.schedules",
                    classes=SCHEDULES,
                )
                value = {**value, "config": {**value["config"], "learning_rate": 0.001}}
            _check_object(value, where=where, module="keras.optimizers", classes=OPTIMIZERS)
        elif key == "loss":
            if isinstance(value, str):
                _check_choice(value, LOSS_NAMES, where=where)
            elif value is not None:
                _check_object(value, where=where, module="keras.losses", classes=LOSSES)
        elif key in ("metrics", "weighted_metrics"):
            if value is None:
                continue
            if not isinstance(value, list) or len(value) > 8:
                raise _refuse(where, "metrics must be a short list of names")
            for metric in value:
                _check_choice(metric, METRIC_NAMES, where=where)
        elif key == "jit_compile":
            _check_choice(value, _ENUMS["jit_compile"], where=where)
        elif key == "loss_weights":
            if value is not None:
                raise _refuse(where, "loss weights are not used by the two tasks")
        else:
            _check_plain(value, where=where)
            if isinstance(value, list):
                raise _refuse(where, "a list is not accepted here")


# Shapes and parameter counts, computed from the config for the allowed layers only.

Shape = tuple[int | None, ...]


def _whole(value: object, *, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise _refuse(where, f"{_short(value)} is not a whole number from {low} to {high}")
    return value


def _pair(value: object, *, where: str, low: int, high: int) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value, value]
    if not isinstance(value, list) or len(value) != 2:
        raise _refuse(where, f"{_short(value)} is not a pair of whole numbers")
    return (
        _whole(value[0], where=where, low=low, high=high),
        _whole(value[1], where=where, low=low, high=high),
    )


def _batch_shape(value: object, *, where: str) -> Shape:
    if not isinstance(value, list) or not 2 <= len(value) <= 5 or value[0] is not None:
        raise _refuse(where, f"{_short(value)} is not a batch shape")
    return (None, *(_whole(size, where=where, low=1, high=1024) for size in value[1:]))


def _pooled(size: int, window: int, stride: int, padding: str) -> int:
    return -(-size // stride) if padding == "same" else (size - window) // stride + 1


def _layer_output(
    class_name: str, config: dict[str, Any], shape: Shape, *, where: str
) -> tuple[Shape, int]:
    """The output shape and parameter count of one allowed layer given its input shape."""
    features = shape[-1] or 0
    if class_name == "Dense":
        units = _whole(config.get("units"), where=f"{where}.units", low=1, high=MAX_UNITS)
        bias = units if config.get("use_bias", True) else 0
        return (*shape[:-1], units), features * units + bias
    if class_name in ("SimpleRNN", "GRU", "LSTM"):
        if len(shape) != 3:
            raise _refuse(where, f"{class_name} needs a sequence input, not {shape}")
        if config.get("return_state") or config.get("stateful"):
            raise _refuse(where, "stateful RNNs and returned states are not used by the tasks")
        units = _whole(config.get("units"), where=f"{where}.units", low=1, high=MAX_UNITS)
        gates = {"SimpleRNN": 1, "GRU": 3, "LSTM": 4}[class_name]
        bias = gates * units if config.get("use_bias", True) else 0
        if class_name == "GRU" and config.get("reset_after", True):
            bias *= 2
        parameters = gates * (features * units + units * units) + bias
        output: Shape = (None, shape[1], units) if config.get("return_sequences") else (None, units)
        return output, parameters
    if class_name == "RepeatVector":
        if len(shape) != 2:
            raise _refuse(where, f"RepeatVector needs a flat input, not {shape}")
        return (None, _whole(config.get("n"), where=f"{where}.n", low=1, high=64), shape[1]), 0
    if class_name == "Conv2D":
        if len(shape) != 4:
            raise _refuse(where, f"Conv2D needs an image input, not {shape}")
        filters = _whole(config.get("filters"), where=f"{where}.filters", low=1, high=1_024)
        kernel = _pair(config.get("kernel_size"), where=f"{where}.kernel_size", low=1, high=11)
        strides = _pair(config.get("strides", 1), where=f"{where}.strides", low=1, high=8)
        dilation = _pair(config.get("dilation_rate", 1), where=f"{where}.dilation_rate", low=1, high=1)
        _whole(config.get("groups", 1), where=f"{where}.groups", low=1, high=1)
        del dilation
        padding = str(config.get("padding", "valid"))
        height, width = (
            _pooled(int(side or 0), k, s, padding)
            for side, k, s in zip(shape[1:3], kernel, strides, strict=True)
        )
        if height < 1 or width < 1:
            raise _refuse(where, "the convolution's window is larger than its input")
        bias = filters if config.get("use_bias", True) else 0
        return (None, height, width, filters), kernel[0] * kernel[1] * features * filters + bias
    if class_name in ("MaxPooling2D", "AveragePooling2D"):
        if len(shape) != 4:
            raise _refuse(where, f"{class_name} needs an image input, not {shape}")
        pool = _pair(config.get("pool_size", 2), where=f"{where}.pool_size", low=1, high=28)
        strides_value = config.get("strides")
        strides = (
            pool
            if strides_value is None
            else _pair(strides_value, where=f"{where}.strides", low=1, high=28)
        )
        padding = str(config.get("padding", "valid"))
        height, width = (
            _pooled(int(side or 0), k, s, padding)
            for side, k, s in zip(shape[1:3], pool, strides, strict=True)
        )
        if height < 1 or width < 1:
            raise _refuse(where, "the pooling window is larger than its input")
        return (None, height, width, shape[3]), 0
    if class_name == "Flatten":
        size = 1
        for side in shape[1:]:
            size *= side or 0
        return (None, size), 0
    if class_name == "BatchNormalization":
        if config.get("axis", -1) not in (-1, [-1], len(shape) - 1, [len(shape) - 1]):
            raise _refuse(where, "batch normalisation must act on the last axis")
        return shape, 4 * features
    if class_name == "Reshape":
        target = config.get("target_shape")
        if not isinstance(target, list) or not 1 <= len(target) <= 4:
            raise _refuse(where, f"{_short(target)} is not a target shape")
        sides = tuple(
            _whole(side, where=f"{where}.target_shape", low=1, high=1_000_000) for side in target
        )
        if _elements((None, *sides)) != _elements(shape):
            raise _refuse(where, f"cannot reshape {shape} to {sides}")
        return (None, *sides), 0
    if class_name in ("RandomTranslation", "RandomRotation", "RandomZoom") and len(shape) != 4:
        raise _refuse(where, f"{class_name} needs an image input, not {shape}")
    if class_name == "Softmax" and config.get("axis", -1) not in (-1, [-1]):
        raise _refuse(where, "softmax must act on the last axis")
    # Dropout, Activation, Softmax and the augmentation layers keep their input's shape.
    return shape, 0


def _elements(shape: Shape) -> int:
    size = 1
    for side in shape[1:]:
        size *= side or 0
    return size


@dataclass
class _Count:
    layers: int = 0
    parameters: int = 0


def _check_model(
    node: object, *, where: str, count: _Count, input_shape: Shape | None
) -> tuple[Shape, Shape]:
    """Check a Functional or Sequential model config; its (input shape, output shape)."""
    if not isinstance(node, dict) or not set(node) <= _LAYER_KEYS:
        raise _refuse(where, "the model is not a serialized Keras model")
    kind = _MODEL_MODULES.get((node.get("module"), node.get("class_name")))  # type: ignore[arg-type]
    if kind is None and "class_name" not in node:
        raise _refuse(where, "it does not name a Keras model class")
    if kind is None:
        raise _refuse(
            where, f"model class {_short(node.get('module'))}.{_short(node.get('class_name'))}"
        )
    if node.get("registered_name") not in (None, kind):
        raise _refuse(where, f"registered name {_short(node.get('registered_name'))}")
    config = node.get("config")
    if not isinstance(config, dict) or not set(config) <= _MODEL_ARGUMENTS[kind]:
        raise _refuse(where, f"the {kind} model has arguments Keras does not write")
    if "dtype" in config:
        _check_dtype(config["dtype"], where=f"{where}.dtype")
    layers = config.get("layers")
    if not isinstance(layers, list) or not layers:
        raise _refuse(where, "the model has no layer list")
    if kind == "Sequential":
        return _check_sequential(layers, config, where=where, count=count, input_shape=input_shape)
    return _check_functional(layers, config, where=where, count=count, input_shape=input_shape)


def _check_layer(layer: object, *, where: str, count: _Count, shape: Shape | None) -> Shape:
    """One layer of a model (a nested model included); its output shape."""
    count.layers += 1
    if count.layers > MAX_LAYERS:
        raise UploadRefused(f"the model has more than {MAX_LAYERS} layers; the tasks need far fewer.")
    if not isinstance(layer, dict):
        raise _refuse(where, "a layer is not an object")
    if (layer.get("module"), layer.get("class_name")) in _MODEL_MODULES:
        inner_input, inner_output = _check_model(layer, where=where, count=count, input_shape=shape)
        return inner_output
    if not set(layer) <= _LAYER_KEYS or "compile_config" in layer:
        raise _refuse(where, f"keys {_short(sorted(set(layer) - _LAYER_KEYS))} are not accepted")
    class_name = layer.get("class_name")
    if layer.get("module") != "keras.layers" or class_name not in LAYER_ARGUMENTS:
        raise _refuse(where, f"layer class {_short(layer.get('module'))}.{_short(class_name)}")
    if layer.get("registered_name") is not None:
        raise _refuse(where, f"registered name {_short(layer.get('registered_name'))}")
    config = layer.get("config")
    if not isinstance(config, dict):
        raise _refuse(where, "the layer has no config object")
    here = f"{where}[{_short(config.get('name'))}]"
    _check_layer_arguments(str(class_name), config, where=here)
    build_config = layer.get("build_config")
    if build_config is not None and (
        not isinstance(build_config, dict) or set(build_config) - {"input_shape"}
    ):
        raise _refuse(here, "build_config holds more than an input shape")
    if class_name == "InputLayer":
        return _batch_shape(config.get("batch_shape"), where=f"{here}.batch_shape")
    if shape is None:
        raise _refuse(here, "the first layer has no input shape")
    if build_config is not None and build_config.get("input_shape") is not None:
        # Keras builds the layer's weights from this shape; it must be the one the graph feeds it.
        declared = build_config["input_shape"]
        if not isinstance(declared, list) or tuple(declared) != shape:
            raise _refuse(here, f"build_config input shape {_short(declared)} is not the input {shape}")
    output, parameters = _layer_output(str(class_name), config, shape, where=here)
    count.parameters += parameters
    if count.parameters > MAX_PARAMETERS:
        raise UploadRefused(
            f"the model declares more than {MAX_PARAMETERS:,} weights; an upload may have at most "
            "that many."
        )
    if _elements(output) > MAX_ACTIVATIONS_PER_SAMPLE:
        raise _refuse(here, f"its output {output} is far larger than either task needs")
    return output


def _check_sequential(
    layers: list[Any], config: dict[str, Any], *, where: str, count: _Count, input_shape: Shape | None
) -> tuple[Shape, Shape]:
    shape = input_shape
    declared = config.get("build_input_shape")
    if declared is not None:
        declared_shape = _batch_shape(declared, where=f"{where}.build_input_shape")
        if shape is not None and shape != declared_shape:
            raise _refuse(where, f"the nested model expects {declared_shape}, not {shape}")
        shape = declared_shape
    first: Shape | None = shape
    for index, layer in enumerate(layers):
        if isinstance(layer, dict) and layer.get("inbound_nodes"):
            raise _refuse(f"{where}.layers[{index}]", "a Sequential layer has graph connections")
        if index > 0 and isinstance(layer, dict) and layer.get("class_name") == "InputLayer":
            raise _refuse(f"{where}.layers[{index}]", "an input layer in the middle of the model")
        output = _check_layer(layer, where=f"{where}.layers[{index}]", count=count, shape=shape)
        if index == 0 and isinstance(layer, dict) and layer.get("class_name") == "InputLayer":
            if first is not None and first != output:
                raise _refuse(where, f"the input layer {output} does not match {first}")
            first = output
        shape = output
    if first is None or shape is None:
        raise _refuse(where, "the model has no input shape")
    return first, shape


def _history(value: object, *, where: str) -> str:
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not isinstance(value[0], str)
        or value[1:] != [0, 0]
    ):
        raise _refuse(where, f"{_short(value)} is not a reference to a single layer output")
    return value[0]


def _check_functional(
    layers: list[Any], config: dict[str, Any], *, where: str, count: _Count, input_shape: Shape | None
) -> tuple[Shape, Shape]:
    outputs: dict[str, Shape] = {}
    inputs = config.get("input_layers")
    output_layers = config.get("output_layers")
    # Keras writes one reference (or a list of one) for single-input, single-output models.
    if isinstance(inputs, list) and len(inputs) == 1 and isinstance(inputs[0], list):
        inputs = inputs[0]
    if (
        isinstance(output_layers, list)
        and len(output_layers) == 1
        and isinstance(output_layers[0], list)
    ):
        output_layers = output_layers[0]
    input_name = _history(inputs, where=f"{where}.input_layers")
    output_name = _history(output_layers, where=f"{where}.output_layers")
    for index, layer in enumerate(layers):
        here = f"{where}.layers[{index}]"
        if not isinstance(layer, dict) or not isinstance(layer.get("name"), str):
            raise _refuse(here, "a layer has no name")
        name = layer["name"]
        if name in outputs:
            raise _refuse(here, f"two layers are named {_short(name)}")
        nodes = layer.get("inbound_nodes")
        if layer.get("class_name") == "InputLayer":
            if nodes:
                raise _refuse(here, "an input layer has inbound connections")
            shape = _check_layer(layer, where=here, count=count, shape=None)
            if input_shape is not None and shape != input_shape:
                raise _refuse(here, f"the nested model expects {shape}, not {input_shape}")
            outputs[name] = shape
            continue
        if not isinstance(nodes, list) or len(nodes) != 1 or not isinstance(nodes[0], dict):
            raise _refuse(here, "each layer must be called exactly once, on one input")
        node = nodes[0]
        if set(node) - {"args", "kwargs"}:
            raise _refuse(here, "a connection holds keys Keras does not write")
        kwargs = node.get("kwargs", {})
        if (
            not isinstance(kwargs, dict)
            or set(kwargs) - {"training", "mask"}
            or any(value not in (None, True, False) for value in kwargs.values())
        ):
            raise _refuse(here, "a connection passes arguments other than training and mask")
        args = node.get("args")
        if not isinstance(args, list) or len(args) != 1 or not isinstance(args[0], dict):
            raise _refuse(here, "a layer must take exactly one input tensor")
        tensor = args[0]
        tensor_config = tensor.get("config")
        if (
            set(tensor) != {"class_name", "config"}
            or tensor.get("class_name") != "__keras_tensor__"
            or not isinstance(tensor_config, dict)
            or set(tensor_config) - {"shape", "dtype", "keras_history"}
        ):
            raise _refuse(here, "a connection is not a plain Keras tensor")
        source = _history(tensor_config.get("keras_history"), where=here)
        if source not in outputs:
            raise _refuse(
                here, f"it reads the output of {_short(source)}, which comes later or not at all"
            )
        if "dtype" in tensor_config:
            _check_dtype(tensor_config["dtype"], where=f"{here}.dtype")
        declared = tensor_config.get("shape")
        if declared is not None and (
            not isinstance(declared, list) or tuple(declared) != outputs[source]
        ):
            raise _refuse(here, f"its input is declared as {_short(declared)}, not {outputs[source]}")
        outputs[name] = _check_layer(layer, where=here, count=count, shape=outputs[source])
    if input_name not in outputs or output_name not in outputs:
        raise _refuse(where, "the model's input or output layer is missing")
    first = next(iter(outputs.values()))
    if (
        outputs[input_name] != first
        or sum(
            1 for layer in layers if isinstance(layer, dict) and layer.get("class_name") == "InputLayer"
        )
        != 1
    ):
        raise _refuse(where, "the model must have exactly one input layer")
    return outputs[input_name], outputs[output_name]


def check_config(config: object) -> ArchiveReport:
    """Refuse any config.json that is not an allowlisted model of one task; what it declares."""
    _check_scalars(config)
    if not isinstance(config, dict):
        raise UploadRefused("config.json does not describe a Keras model.")
    count = _Count()
    _check_compile(config.get("compile_config"))
    top = {key: value for key, value in config.items() if key != "compile_config"}
    if top.get("build_config") is not None:
        build = top["build_config"]
        if not isinstance(build, dict) or set(build) - {"input_shape"}:
            raise _refuse("build_config", "it holds more than an input shape")
    input_shape, output_shape = _check_model(top, where="model", count=count, input_shape=None)
    task, details = task_for_shapes(input_shape, output_shape)
    return ArchiveReport(task=task, details=details, parameters=count.parameters, layers=count.layers)


def check_keras_archive(data: bytes, *, max_bytes: int = MAX_UPLOAD_BYTES) -> ArchiveReport:
    """Every check that needs only the bytes: size, zip layout, JSON, allowlist, declared sizes."""
    if not isinstance(data, bytes | bytearray):
        raise UploadRefused("the upload must be the bytes of a .keras file.")
    data = bytes(data)
    if len(data) > max_bytes:
        raise UploadRefused(f"the file is {len(data):,} bytes; the limit is {max_bytes:,} bytes.")
    if data.startswith(_HDF5_MAGIC):
        raise UploadRefused(
            "this is an HDF5 (.h5) file, the legacy Keras format, which is not accepted; "
            "load it in Keras 3 and re-save it with model.save('name.keras')."
        )
    members = _parse_archive(data)
    metadata = parse_json(read_member(data, members["metadata.json"]), what="metadata.json")
    check_metadata(metadata)
    config = parse_json(read_member(data, members["config.json"]), what="config.json")
    report = check_config(config)
    weights = members["model.weights.h5"]
    # Stream the weights once to prove the compressed data is sound; nothing is kept.
    first = True
    for chunk in iter_member(data, weights):
        if first and not chunk.startswith(_HDF5_MAGIC):
            raise UploadRefused("model.weights.h5 is not an HDF5 file.")
        first = False
    if first:
        raise UploadRefused("model.weights.h5 is empty.")
    # Each weight needs at least 4 bytes (float32) unless the file was saved in half precision.
    if weights.size < 2 * report.parameters:
        raise UploadRefused(
            f"model.weights.h5 holds {weights.size:,} bytes, too few for the {report.parameters:,} "
            "weights the config declares."
        )
    return report


def member_reader(data: bytes, name: str) -> Callable[[], Iterator[bytes]]:
    """A function streaming one checked member of an archive that passed `check_keras_archive`."""
    members = _parse_archive(data)
    return lambda: iter_member(data, members[name])


def load_keras_bytes(data: bytes) -> keras.Model:
    """Load .keras bytes written by this app in safe mode (Lambda layers and custom code refused)."""
    import tempfile
    from pathlib import Path

    import keras

    # Keras loads only from a path ending in .keras; a private temp directory keeps it out of the store.
    with tempfile.TemporaryDirectory(prefix="live-training-lab-") as temporary:
        path = Path(temporary) / "model.keras"
        path.write_bytes(data)
        model = keras.saving.load_model(path, safe_mode=True)
    if not isinstance(model, keras.Model):
        raise ValueError(f"the file holds a {type(model).__name__}, not a Keras model.")
    return model
