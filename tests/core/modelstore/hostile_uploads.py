"""Hostile .keras uploads generated from real saved models: each a named mutation of the bytes.

Every case starts from a valid archive of the corpus and changes config.json, metadata.json, the zip
or its layout, so the suite needs no binary fixtures. Cases are grouped by the six classes of issue 11.
"""

from __future__ import annotations

import copy
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Mutation = Callable[[dict[str, bytes]], bytes]
HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Case:
    """One hostile upload: its class (1-6 of the issue), a readable id and how to build it."""

    kind: str
    name: str
    build: Mutation

    @property
    def id(self) -> str:
        return f"{self.kind}:{self.name}"


def members_of(data: bytes) -> list[tuple[str, bytes]]:
    """The (name, content) pairs of a valid archive, in order."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info.filename, archive.read(info)) for info in archive.infolist()]


def zip_of(members: list[tuple[str, bytes]], *, method: int = zipfile.ZIP_STORED) -> bytes:
    """A zip of these members, written by Python's zipfile."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members:
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


def replace_member(data: bytes, name: str, content: bytes) -> bytes:
    """The archive with one member's content replaced."""
    return zip_of([(member, content if member == name else old) for member, old in members_of(data)])


def config_of(data: bytes) -> dict[str, Any]:
    """The parsed config.json of an archive."""
    return dict(json.loads(dict(members_of(data))["config.json"]))


def with_config(data: bytes, edit: Callable[[dict[str, Any]], object]) -> bytes:
    """The archive with config.json edited in place by `edit` (or replaced by what it returns)."""
    config = copy.deepcopy(config_of(data))
    result = edit(config)
    text = json.dumps(config if result is None else result).encode()
    return replace_member(data, "config.json", text)


def layer(config: dict[str, Any], index: int) -> dict[str, Any]:
    """The index-th layer object of a Functional or Sequential config."""
    return dict(config["config"]["layers"][index]) and config["config"]["layers"][index]


def dense_layer(config: dict[str, Any]) -> dict[str, Any]:
    """The last (output) layer, a Dense in every base model used here."""
    return config["config"]["layers"][-1]


def function_reference(module: str, name: str) -> dict[str, Any]:
    """How Keras 3 serializes a function: the form CVE-2025-8747 abused."""
    return {"module": module, "class_name": "function", "config": name, "registered_name": "function"}


# Keras functions and objects that must never be reachable from a config (issue 11, class 1).
FUNCTIONS = [
    ("keras.config", "set_epsilon"),
    ("keras.config", "set_floatx"),
    ("keras.config", "set_max_epochs"),
    ("keras.config", "set_dtype_policy"),
    ("keras.config", "set_backend"),
    ("keras.utils", "set_random_seed"),
    ("keras.datasets.mnist", "load_data"),
    ("keras.callbacks", "CSVLogger"),
    ("keras.callbacks", "TensorBoard"),
    ("keras.callbacks", "ModelCheckpoint"),
    ("keras.utils", "plot_model"),
    ("keras.src.saving.saving_lib", "load_model"),
    ("keras.ops", "eye"),
    ("os", "system"),
    ("builtins", "eval"),
]


def _at_activation(reference: dict[str, Any]) -> Mutation:
    return lambda base: with_config(
        base["digits-seed"], lambda config: dense_layer(config)["config"].update(activation=reference)
    )


def _at_initializer(reference: dict[str, Any]) -> Mutation:
    return lambda base: with_config(
        base["digits-seed"],
        lambda config: dense_layer(config)["config"].update(kernel_initializer=reference),
    )


def _at_regularizer(reference: dict[str, Any]) -> Mutation:
    return lambda base: with_config(
        base["digits-seed"],
        lambda config: dense_layer(config)["config"].update(bias_regularizer=reference),
    )


def _at_constraint(reference: dict[str, Any]) -> Mutation:
    return lambda base: with_config(
        base["digits-seed"],
        lambda config: dense_layer(config)["config"].update(kernel_constraint=reference),
    )


def _at_loss(reference: object) -> Mutation:
    return lambda base: with_config(
        base["digits-seed"], lambda config: config["compile_config"].update(loss=reference)
    )


def _at_metric(reference: object) -> Mutation:
    return lambda base: with_config(
        base["digits-seed"], lambda config: config["compile_config"].update(metrics=[reference])
    )


def _at_optimizer(reference: object) -> Mutation:
    return lambda base: with_config(
        base["digits-seed"], lambda config: config["compile_config"].update(optimizer=reference)
    )


def _at_schedule(reference: object) -> Mutation:
    return lambda base: with_config(
        base["digits-seed"],
        lambda config: config["compile_config"]["optimizer"]["config"].update(learning_rate=reference),
    )


def _at_dtype(reference: object) -> Mutation:
    return lambda base: with_config(
        base["digits-seed"], lambda config: dense_layer(config)["config"].update(dtype=reference)
    )


def _as_layer_class(module: str, name: str) -> Mutation:
    def edit(config: dict[str, Any]) -> None:
        dense_layer(config).update(module=module, class_name=name)

    return lambda base: with_config(base["digits-seed"], edit)


def code_reference_cases() -> list[Case]:
    """Class 1: functions, foreign classes and unknown identifiers anywhere in config.json."""
    cases = []
    positions: dict[str, Callable[[Any], Mutation]] = {
        "activation": _at_activation,
        "initializer": _at_initializer,
        "regularizer": _at_regularizer,
        "constraint": _at_constraint,
        "loss": _at_loss,
        "metric": _at_metric,
        "optimizer": _at_optimizer,
        "schedule": _at_schedule,
        "dtype": _at_dtype,
    }
    for module, name in FUNCTIONS:
        reference = function_reference(module, name)
        for position, place in positions.items():
            cases.append(Case("1-code", f"{module}.{name}@{position}", place(reference)))
        cases.append(Case("1-code", f"{module}.{name}@layer-class", _as_layer_class(module, name)))
        # The same names as plain strings, which Keras resolves through its own lookup tables.
        cases.append(Case("1-code", f"{name}-string@activation", _at_activation(name)))  # type: ignore[arg-type]
        cases.append(Case("1-code", f"{name}-string@loss", _at_loss(name)))
    odd_objects = {
        "lambda-object": {"class_name": "__lambda__", "config": {"code": "ZXZhbA==", "defaults": None}},
        "function-key": {"__function__": "eval"},
        "keras-src-class": {
            "module": "keras.src.activations",
            "class_name": "function",
            "config": "relu",
            "registered_name": "function",
        },
        "custom-registered": {
            "module": "keras.layers",
            "class_name": "Dense",
            "config": {},
            "registered_name": "Custom>Dense",
        },
        "numpy-object": {"class_name": "__numpy__", "config": {"value": [1.0], "dtype": "float32"}},
        "bytes-object": {"class_name": "__bytes__", "config": {"value": "AAAA"}},
        "typespec-object": {"class_name": "__typespec__", "spec_name": "x", "config": {}},
        "tensor-in-config": {"class_name": "__tensor__", "config": {"value": [1.0], "dtype": "float32"}},
    }
    for name, reference in odd_objects.items():
        for position, place in positions.items():
            cases.append(Case("1-code", f"{name}@{position}", place(reference)))
    unknown_strings = ["exec", "__import__", "keras.config.set_epsilon", "Identity", "hard_silu2", ""]
    for text in unknown_strings:
        cases.append(Case("1-code", f"string-{text or 'empty'}@activation", _at_activation(text)))  # type: ignore[arg-type]
        cases.append(Case("1-code", f"string-{text or 'empty'}@optimizer", _at_optimizer(text)))
        cases.append(Case("1-code", f"string-{text or 'empty'}@metric", _at_metric(text)))
    other_layers = [
        ("keras.layers", "Lambda"),
        ("keras.layers", "TFSMLayer"),
        ("keras.layers", "Identity"),
        ("keras.layers", "TorchModuleWrapper"),
        ("keras.layers", "JaxLayer"),
        ("keras.layers", "StringLookup"),
        ("keras.src.layers.core.dense", "Dense"),
        ("keras_hub.layers", "Dense"),
        (None, "Dense"),
    ]
    for module, name in other_layers:
        cases.append(Case("1-code", f"layer-{module}.{name}", _as_layer_class(str(module), name)))

    def extra_argument(config: dict[str, Any]) -> None:
        dense_layer(config)["config"]["call_fn"] = "keras.config.set_epsilon"

    def nested_object_argument(config: dict[str, Any]) -> None:
        dense_layer(config)["config"]["units"] = function_reference("keras.config", "set_floatx")

    def shared_object_key(config: dict[str, Any]) -> None:
        dense_layer(config)["__lambda__"] = True

    def model_class(config: dict[str, Any]) -> None:
        config["module"], config["class_name"] = "keras.src.models.model", "Model"

    def model_registered(config: dict[str, Any]) -> None:
        config["registered_name"] = "my>Model"

    def compile_extra(config: dict[str, Any]) -> None:
        config["compile_config"]["callbacks"] = [function_reference("keras.callbacks", "CSVLogger")]

    def inbound_kwargs(config: dict[str, Any]) -> None:
        dense_layer(config)["inbound_nodes"][0]["kwargs"]["function"] = function_reference(
            "os", "system"
        )

    def build_config_extra(config: dict[str, Any]) -> None:
        dense_layer(config)["build_config"]["function"] = "eval"

    def padding_enum(config: dict[str, Any]) -> None:
        config["config"]["layers"][1]["config"]["padding"] = "keras.config.set_epsilon"

    for edit in (
        extra_argument,
        nested_object_argument,
        shared_object_key,
        model_class,
        model_registered,
        compile_extra,
        inbound_kwargs,
        build_config_extra,
        padding_enum,
    ):
        cases.append(Case("1-code", edit.__name__, _edit("digits-seed", edit)))
    return cases


def _edit(base_name: str, edit: Callable[[dict[str, Any]], object]) -> Mutation:
    return lambda base: with_config(base[base_name], edit)


# Class 2: the archive's structure.


def raw_zip(members: list[tuple[str, bytes]]) -> bytes:
    """A deflated zip written field by field, so names keep every byte (zipfile cuts them at NUL)."""
    return _handmade_zip(
        [(name, zlib_raw(content), len(content), zlib.crc32(content)) for name, content in members],
        declared={},
    )


def _rename(new_name: str, old_name: str = "config.json") -> Mutation:
    def build(base: dict[str, bytes]) -> bytes:
        members = members_of(base["digits-seed"])
        return raw_zip([(new_name if name == old_name else name, content) for name, content in members])

    return build


def _add_member(new_name: str, content: bytes = b"x") -> Mutation:
    return lambda base: raw_zip([*members_of(base["digits-seed"]), (new_name, content)])


def _drop_member(old_name: str) -> Mutation:
    return lambda base: zip_of(
        [(name, content) for name, content in members_of(base["digits-seed"]) if name != old_name]
    )


def _central_entries(data: bytes) -> list[int]:
    """Offsets of the central directory entries of an archive."""
    end = data.rindex(b"PK\x05\x06")
    (cd_offset,) = struct.unpack_from("<I", data, end + 16)
    offsets, position = [], cd_offset
    while data[position : position + 4] == b"PK\x01\x02":
        offsets.append(position)
        lengths = struct.unpack_from("<HHH", data, position + 28)
        position += 46 + sum(lengths)
    return offsets


def _patch_central(field_offset: int, fmt: str, value: int, *, member: int = 1) -> Mutation:
    """Overwrite one field of one central directory entry (0 metadata, 1 config, 2 weights)."""

    def build(base: dict[str, bytes]) -> bytes:
        data = bytearray(base["digits-seed"])
        struct.pack_into(fmt, data, _central_entries(bytes(data))[member] + field_offset, value)
        return bytes(data)

    return build


def _patch_local(field_offset: int, fmt: str, value: int, *, member: int = 1) -> Mutation:
    def build(base: dict[str, bytes]) -> bytes:
        data = bytearray(base["digits-seed"])
        (local,) = struct.unpack_from("<I", data, _central_entries(bytes(data))[member] + 42)
        struct.pack_into(fmt, data, local + field_offset, value)
        return bytes(data)

    return build


def _symlink(member: int) -> Mutation:
    return _patch_central(38, "<I", (0o120777 << 16), member=member)


def _local_name_differs(base: dict[str, bytes]) -> bytes:
    data = bytearray(base["digits-seed"])
    (local,) = struct.unpack_from("<I", data, _central_entries(bytes(data))[1] + 42)
    data[local + 30 : local + 30 + len(b"config.json")] = b"configXjson"
    return bytes(data)


def _deflated(base: dict[str, bytes]) -> list[tuple[str, bytes]]:
    return members_of(base["digits-seed"])


def _corrupt_deflate(base: dict[str, bytes]) -> bytes:
    data = bytearray(zip_of(_deflated(base), method=zipfile.ZIP_DEFLATED))
    offset = _central_entries(bytes(data))[1]
    (local,) = struct.unpack_from("<I", data, offset + 42)
    name_length, extra_length = struct.unpack_from("<HH", data, local + 26)
    start = local + 30 + name_length + extra_length
    for index in range(start + 2, start + 40):
        data[index] ^= 0x5A
    return bytes(data)


def _duplicate(name: str, first: Callable[[bytes], bytes] | None = None) -> Mutation:
    def build(base: dict[str, bytes]) -> bytes:
        members = members_of(base["digits-seed"])
        content = dict(members)[name]
        return zip_of([(name, first(content) if first else content), *members])

    return build


def _lambda_config(content: bytes) -> bytes:
    config = json.loads(content)
    config["config"]["layers"][1]["class_name"] = "Lambda"
    return json.dumps(config).encode()


def _many_members(count: int) -> Mutation:
    return lambda base: zip_of(
        [*members_of(base["digits-seed"]), *((f"assets/{index}", b"") for index in range(count))]
    )


def _truncated(keep: float) -> Mutation:
    return lambda base: base["digits-seed"][: int(len(base["digits-seed"]) * keep)]


def _comment(base: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members_of(base["digits-seed"]):
            archive.writestr(name, content)
        archive.comment = b"hidden"
    return buffer.getvalue()


def _zip64(base: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members_of(base["digits-seed"]):
            with archive.open(name, "w", force_zip64=True) as member:
                member.write(content)
    return buffer.getvalue()


def _directory_member(base: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members_of(base["digits-seed"]):
            archive.writestr(name, content)
        archive.mkdir("assets")
    return buffer.getvalue()


def archive_cases() -> list[Case]:
    """Class 2: names, links, duplicates, headers, methods, encryption, corruption, member counts."""
    cases = []
    for name in [
        "../../x",
        "/tmp/x",
        "..\\x",
        "C:/x",
        "assets/../../x",
        "config.json\x00.txt",
        "./config.json",
        "CONFIG.JSON",
        "config.json/",
        "config.json ",
        "\\config.json",
        "c:\\config.json",
        "config.json\x00",
        "dir/config.json",
        "config.json.keras",
    ]:
        cases.append(Case("2-archive", f"member-named-{name!r}", _rename(name)))
        cases.append(Case("2-archive", f"extra-member-{name!r}", _add_member(name)))
    for name in [
        "assets/vocabulary.txt",
        "saved_model.pb",
        "variables/variables.index",
        "model.h5",
        "keras_metadata.pb",
        "fingerprint.pb",
    ]:
        cases.append(Case("2-archive", f"extra-{name}", _add_member(name)))
    for name in ["config.json", "metadata.json", "model.weights.h5"]:
        cases.append(Case("2-archive", f"missing-{name}", _drop_member(name)))
        cases.append(Case("2-archive", f"duplicate-{name}", _duplicate(name)))
    cases.append(
        Case("2-archive", "duplicate-config-lambda-first", _duplicate("config.json", _lambda_config))
    )
    for member in range(3):
        cases.append(Case("2-archive", f"symlink-member-{member}", _symlink(member)))
        cases.append(
            Case(
                "2-archive",
                f"fifo-member-{member}",
                _patch_central(38, "<I", 0o010644 << 16, member=member),
            )
        )
        cases.append(
            Case(
                "2-archive",
                f"directory-attribute-{member}",
                _patch_central(38, "<I", 0x10, member=member),
            )
        )
        cases.append(
            Case("2-archive", f"encrypted-{member}", _patch_central(8, "<H", 0x1, member=member))
        )
        cases.append(
            Case(
                "2-archive", f"strong-encryption-{member}", _patch_central(8, "<H", 0x41, member=member)
            )
        )
        cases.append(
            Case("2-archive", f"wrong-crc-{member}", _patch_central(16, "<I", 0xDEADBEEF, member=member))
        )
        cases.append(
            Case("2-archive", f"size-lie-{member}", _patch_central(24, "<I", 10, member=member))
        )
        cases.append(
            Case("2-archive", f"offset-lie-{member}", _patch_central(42, "<I", 7, member=member))
        )
        cases.append(
            Case("2-archive", f"local-method-{member}", _patch_local(8, "<H", 8, member=member))
        )
        cases.append(
            Case("2-archive", f"disk-start-{member}", _patch_central(34, "<H", 1, member=member))
        )
    for method in (1, 6, 9, 12, 14, 93, 95, 98, 99):
        cases.append(Case("2-archive", f"compression-method-{method}", _patch_central(10, "<H", method)))
    cases.append(Case("2-archive", "local-name-differs", _local_name_differs))
    cases.append(Case("2-archive", "corrupt-deflate", _corrupt_deflate))
    cases.append(Case("2-archive", "comment", _comment))
    cases.append(Case("2-archive", "zip64", _zip64))
    cases.append(Case("2-archive", "directory-member", _directory_member))
    for count in (1, 100, 20_000):
        cases.append(Case("2-archive", f"{count}-extra-members", _many_members(count)))
    for keep in (0.01, 0.3, 0.6, 0.9, 0.999):
        cases.append(Case("2-archive", f"truncated-{keep}", _truncated(keep)))
    cases.append(Case("2-archive", "empty-file", lambda base: b""))
    cases.append(Case("2-archive", "only-magic", lambda base: b"PK\x03\x04"))
    cases.append(Case("2-archive", "empty-zip", lambda base: zip_of([])))
    return cases


# Class 3: resource bombs.


def _identity_stack(count: int, class_name: str = "Dropout") -> Mutation:
    def edit(config: dict[str, Any]) -> None:
        layers = config["config"]["layers"]
        template = {
            "module": "keras.layers",
            "class_name": class_name,
            "config": {"name": "d", "trainable": True, "rate": 0.0, "seed": None, "noise_shape": None},
            "registered_name": None,
        }
        extra = [copy.deepcopy(template) for _ in range(count)]
        for index, item in enumerate(extra):
            item["config"]["name"] = f"extra_{index}"
        layers[1:1] = extra

    return _edit("plain-sequential-digits", edit)


def _nested(depth: int, opener: str = "[", closer: str = "]") -> Mutation:
    def build(base: dict[str, bytes]) -> bytes:
        config = config_of(base["digits-seed"])
        text = json.dumps(config)
        bomb = opener * depth + closer * depth
        text = text[:-1] + f', "deep": {bomb}' + "}"
        return replace_member(base["digits-seed"], "config.json", text.encode())

    return build


def _deflate_bomb(size: int, *, declared: int | None = None) -> Mutation:
    def build(base: dict[str, bytes]) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        block = b" " * (1024 * 1024)
        compressed = b"".join(compressor.compress(block) for _ in range(size // len(block)))
        compressed += compressor.flush()
        members = members_of(base["digits-seed"])
        data = zip_of(members, method=zipfile.ZIP_DEFLATED)
        # Splice the bomb into config.json's slot by rebuilding the archive by hand.
        return (
            _handmade_zip(
                [
                    (
                        name,
                        compressed if name == "config.json" else zlib_raw(content),
                        size if name == "config.json" else len(content),
                        zlib.crc32(b" " * 0) if name == "config.json" else zlib.crc32(content),
                    )
                    for name, content in members
                ],
                declared={"config.json": declared} if declared is not None else {},
            )
            if data
            else b""
        )

    return build


def zlib_raw(content: bytes) -> bytes:
    """Raw deflate of `content`, as a zip stores it."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(content) + compressor.flush()


def _handmade_zip(entries: list[tuple[str, bytes, int, int]], *, declared: dict[str, int]) -> bytes:
    """A deflated zip written field by field: (name, compressed, size, crc) per member."""
    local_parts, central_parts, offset = [], [], 0
    for name, compressed, size, crc in entries:
        encoded = name.encode("utf-8", "surrogateescape")
        size_field = declared.get(name, size)
        local = (
            struct.pack(
                "<4sHHHHHIIIHH",
                b"PK\x03\x04",
                20,
                0,
                8,
                0,
                0x21,
                crc,
                len(compressed),
                size_field,
                len(encoded),
                0,
            )
            + encoded
            + compressed
        )
        central_parts.append(
            struct.pack(
                "<4sHHHHHHIIIHHHHHII",
                b"PK\x01\x02",
                20,
                20,
                0,
                8,
                0,
                0x21,
                crc,
                len(compressed),
                size_field,
                len(encoded),
                0,
                0,
                0,
                0,
                0o600 << 16,
                offset,
            )
            + encoded
        )
        local_parts.append(local)
        offset += len(local)
    central = b"".join(central_parts)
    end = struct.pack(
        "<4sHHHHIIH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), offset, 0
    )
    return b"".join(local_parts) + central + end


def _huge_dense(units: int, base_name: str = "plain-sequential-digits") -> Mutation:
    def edit(config: dict[str, Any]) -> None:
        layers = config["config"]["layers"]
        layers[-1]["config"]["units"] = units

    return _edit(base_name, edit)


def _set_in_input(shape: list[Any]) -> Mutation:
    def edit(config: dict[str, Any]) -> None:
        config["config"]["layers"][0]["config"]["batch_shape"] = shape

    return _edit("digits-seed", edit)


def _long_string(length: int, key: str = "dtype") -> Mutation:
    def edit(config: dict[str, Any]) -> None:
        if key == "dtype":
            config["compile_config"]["optimizer"]["config"]["name"] = "x" * length
        else:
            dense_layer(config)["config"]["name"] = "n" * length

    return _edit("digits-seed", edit)


def _wide_list(count: int) -> Mutation:
    def edit(config: dict[str, Any]) -> None:
        config["compile_config"]["metrics"] = ["accuracy"] * count

    return _edit("digits-seed", edit)


def _many_nodes(count: int) -> Mutation:
    def edit(config: dict[str, Any]) -> None:
        dense_layer(config)["config"]["noise"] = [[0] * 10 for _ in range(count // 10)]

    return _edit("digits-seed", edit)


def _config_of_size(size: int) -> Mutation:
    def build(base: dict[str, bytes]) -> bytes:
        text = json.dumps(config_of(base["digits-seed"]))
        return replace_member(base["digits-seed"], "config.json", (text + " " * size).encode())

    return build


def _weights_shrunk(base: dict[str, bytes]) -> bytes:
    # The config declares 53,866 weights; the weights file is cut to a valid-looking 1 KB stub.
    return replace_member(base["digits-seed"], "model.weights.h5", HDF5_MAGIC + b"\x00" * 1024)


def _weights_not_hdf5(base: dict[str, bytes]) -> bytes:
    return replace_member(base["digits-seed"], "model.weights.h5", b"PK\x03\x04" + b"\x00" * 300_000)


def _numbers(edit_value: object, path: str) -> Mutation:
    def edit(config: dict[str, Any]) -> None:
        target = (
            dense_layer(config)["config"] if path == "units" else config["config"]["layers"][1]["config"]
        )
        target[path] = edit_value

    return _edit("digits-seed", edit)


def bomb_cases() -> list[Case]:
    """Class 3: layer counts, depth, deflate bombs, declared sizes, long strings, wide trees."""
    cases = [
        Case("3-bomb", "1500-dropout-layers", _identity_stack(1_500)),
        Case("3-bomb", "65-dropout-layers", _identity_stack(65)),
        Case("3-bomb", "1500-identity-layers", _identity_stack(1_500, "Identity")),
    ]
    for depth in (33, 900, 10_000, 100_000):
        cases.append(Case("3-bomb", f"lists-nested-{depth}", _nested(depth)))
        cases.append(Case("3-bomb", f"objects-nested-{depth}", _nested(depth, '{"a":', "}")))
    cases.append(Case("3-bomb", "config-deflate-bomb-512MiB", _deflate_bomb(512 * 1024 * 1024)))
    cases.append(
        Case(
            "3-bomb",
            "config-deflate-bomb-declared-small",
            _deflate_bomb(8 * 1024 * 1024, declared=10_000),
        )
    )
    for units in (4_097, 134_000_000, 2**31, -1, 0):
        cases.append(Case("3-bomb", f"dense-units-{units}", _huge_dense(units)))
    cases.append(Case("3-bomb", "dense-over-5M-weights", _huge_dense(4_000, "digits-seed")))
    for shape in (
        [None, 28, 28, 100_000],
        [None, 2**40, 28, 1],
        [None, 28, 28],
        [None, -1, 28, 1],
        [5, 28, 28, 1],
        [None, 28, 28, 1, 1, 1],
        "28x28",
        [None, 28.5, 28, 1],
    ):
        cases.append(Case("3-bomb", f"input-shape-{shape}", _set_in_input(shape)))  # type: ignore[arg-type]
    for length in (257, 2_000, 500_000):
        cases.append(Case("3-bomb", f"long-optimizer-name-{length}", _long_string(length)))
        cases.append(Case("3-bomb", f"long-layer-name-{length}", _long_string(length, "name")))
    cases.append(Case("3-bomb", "config-over-512KiB", _config_of_size(600 * 1024)))
    cases.append(Case("3-bomb", "wide-metrics-list", _wide_list(50_000)))
    cases.append(Case("3-bomb", "many-json-values", _many_nodes(200_000)))
    cases.append(Case("3-bomb", "weights-smaller-than-declared", _weights_shrunk))
    cases.append(Case("3-bomb", "weights-not-hdf5", _weights_not_hdf5))
    for value in (10**100, 1e308, -0.0, 2**53 + 1, True):
        cases.append(Case("3-bomb", f"units-{value!r}", _numbers(value, "units")))
    for value in ([3, 3, 3], [100, 100], [0, 0], 1_000):
        cases.append(Case("3-bomb", f"kernel-size-{value}", _numbers(value, "kernel_size")))
    cases.append(Case("3-bomb", "filters-4096", _numbers(4_096, "filters")))
    cases.append(Case("3-bomb", "strides-0", _numbers([0, 0], "strides")))
    cases.append(Case("3-bomb", "groups-8", _numbers(8, "groups")))
    return cases


# Class 5: polyglots.


def polyglot_cases() -> list[Case]:
    """Class 5: a .keras file is a zip that starts at byte 0 and ends at its end record."""
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100

    def prepend(prefix_size: int, prefix: bytes | None = None) -> Mutation:
        return lambda base: (prefix or (HDF5_MAGIC + b"\x00" * (prefix_size - 8))) + base["digits-seed"]

    cases = []
    for size in (512, 1_024, 2_048, 4_096):
        cases.append(Case("5-polyglot", f"hdf5-user-block-{size}", prepend(size)))
    cases.append(Case("5-polyglot", "png-then-zip", prepend(0, png)))
    cases.append(Case("5-polyglot", "zip-magic-junk-then-zip", prepend(0, b"PK\x03\x04" + b"\x00" * 60)))
    cases.append(Case("5-polyglot", "script-then-zip", prepend(0, b"#!/bin/sh\nrm -rf ~\nexit\n")))
    cases.append(Case("5-polyglot", "zip-then-junk", lambda base: base["digits-seed"] + b"junk" * 10))
    cases.append(Case("5-polyglot", "zip-then-hdf5", lambda base: base["digits-seed"] + HDF5_MAGIC))
    cases.append(
        Case("5-polyglot", "two-archives", lambda base: base["digits-seed"] + base["digits-seed"])
    )
    cases.append(
        Case("5-polyglot", "zip-inside-zip", lambda base: zip_of([("inner.keras", base["digits-seed"])]))
    )
    cases.append(Case("5-polyglot", "plain-hdf5", lambda base: HDF5_MAGIC + b"\x00" * 4_000))
    cases.append(
        Case(
            "5-polyglot",
            "weights-only-h5",
            lambda base: dict(members_of(base["digits-seed"]))["model.weights.h5"],
        )
    )
    cases.append(
        Case(
            "5-polyglot",
            "config-json-bare",
            lambda base: dict(members_of(base["digits-seed"]))["config.json"],
        )
    )
    cases.append(Case("5-polyglot", "gzip", lambda base: b"\x1f\x8b\x08" + b"\x00" * 100))
    cases.append(Case("5-polyglot", "png", lambda base: png))
    return cases


# Class 6: metadata.json.


def _metadata(content: bytes) -> Mutation:
    return lambda base: replace_member(base["digits-seed"], "metadata.json", content)


def metadata_cases() -> list[Case]:
    """Class 6: metadata.json must be a small JSON object claiming Keras 3."""
    contents = {
        "not-json": b"{not json",
        "a-list": b'["keras_version", "3.15.1"]',
        "empty": b"",
        "empty-object": b"{}",
        "ten-MB": json.dumps({"keras_version": "3.15.1", "pad": "x" * 10_000_000}).encode(),
        "keras-2.15": b'{"keras_version": "2.15.0", "date_saved": "2024-01-01@00:00:00"}',
        "keras-4": b'{"keras_version": "4.0.0"}',
        "version-number": b'{"keras_version": 3.15}',
        "version-short": b'{"keras_version": "3"}',
        "null": b"null",
        "string": b'"3.15.1"',
        "nested": b'{"keras_version": "3.15.1", "extra": {"module": "os"}}',
        "duplicate-version": b'{"keras_version": "2.15.0", "keras_version": "3.15.1"}',
        "not-utf8": b'{"keras_version": "3.15.1\xff"}',
        "nan": b'{"keras_version": "3.15.1", "x": NaN}',
        "deep": b'{"a": ' * 40 + b"1" + b"}" * 40,
        "many-keys": json.dumps(
            {f"k{index}": "v" for index in range(20)} | {"keras_version": "3.1.0"}
        ).encode(),
    }
    cases = [Case("6-metadata", name, _metadata(content)) for name, content in contents.items()]
    cases.append(Case("6-metadata", "missing", _drop_member("metadata.json")))
    return cases


def static_cases() -> list[Case]:
    """Every hostile upload the server refuses from the bytes alone, before any child process."""
    return [
        *code_reference_cases(),
        *archive_cases(),
        *bomb_cases(),
        *polyglot_cases(),
        *metadata_cases(),
    ]
