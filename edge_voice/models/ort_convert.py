"""ORT-format model → ONNX, so onnxruntime can fold its weights once at load.

moonshine-cpp ships Moonshine's English models as ``.ort`` files (onnxruntime's flatbuffer format) with
int8-stored weights that a Cast and a Mul turn back into float32 on *every* run: onnxruntime applies no
graph optimization to an ORT-format model, so a decoder step spent ~60 of its ~70 ms re-dequantizing the
32768 × 416 embedding (measured, design note 291). Saved once as ONNX, the same graph is constant-folded
when a session loads it (weights float32 in memory, file still int8: 20 + 42 MB).

onnxruntime writes the ONNX itself (``optimized_model_filepath`` with optimizations off); it leaves the
``If`` node's branch graphs unnamed, which its own ONNX loader then rejects ("Field 'name' of 'graph' is
required"), so the branches are named here by editing the protobuf wire format directly (no ``onnx``
package needed). Deterministic for a given onnxruntime version: the output's sha256 is pinned in the
manifest, so a different onnxruntime that wrote other bytes fails the build loudly instead of loading a
model nobody checked.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# protobuf field numbers (onnx.proto3)
_MODEL_GRAPH = 7
_GRAPH_NODE, _GRAPH_NAME = 1, 2
_NODE_NAME, _NODE_ATTRIBUTE = 3, 5
_ATTR_NAME, _ATTR_G, _ATTR_GRAPHS = 1, 6, 11


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def _enc_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(field number, wire type, the field's whole encoding or, for length-delimited, its payload)."""
    i = 0
    while i < len(buf):
        key, j = _varint(buf, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, k = _varint(buf, j)
            yield field, wire, buf[i:k]
        elif wire == 1:
            yield field, wire, buf[i : j + 8]
            k = j + 8
        elif wire == 5:
            yield field, wire, buf[i : j + 4]
            k = j + 4
        elif wire == 2:
            n, j = _varint(buf, j)
            k = j + n
            yield field, wire, buf[j:k]
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        i = k


def _len_field(field: int, payload: bytes) -> bytes:
    return _enc_varint(field << 3 | 2) + _enc_varint(len(payload)) + payload


def _raw(field: int, wire: int, value: bytes) -> bytes:
    return _len_field(field, value) if wire == 2 else value


def _graph(buf: bytes, name: str) -> bytes:
    """A GraphProto with every subgraph below it named, and itself named ``name`` if it has none."""
    out: list[bytes] = []
    named = False
    for field, wire, value in _fields(buf):
        if field == _GRAPH_NODE and wire == 2:
            out.append(_len_field(field, _node(value, name)))
        elif field == _GRAPH_NAME and wire == 2:
            if value:  # an explicit empty name would win over one added before it
                named = True
                out.append(_raw(field, wire, value))
        else:
            out.append(_raw(field, wire, value))
    if not named:
        out.insert(0, _len_field(_GRAPH_NAME, name.encode()))
    return b"".join(out)


def _node(buf: bytes, graph: str) -> bytes:
    node = next((v.decode() for f, w, v in _fields(buf) if f == _NODE_NAME and w == 2), "node")
    out: list[bytes] = []
    for field, wire, value in _fields(buf):
        if field == _NODE_ATTRIBUTE and wire == 2:
            out.append(_len_field(field, _attribute(value, f"{graph}/{node}")))
        else:
            out.append(_raw(field, wire, value))
    return b"".join(out)


def _attribute(buf: bytes, where: str) -> bytes:
    attr = next((v.decode() for f, w, v in _fields(buf) if f == _ATTR_NAME and w == 2), "attr")
    out: list[bytes] = []
    for k, (field, wire, value) in enumerate(_fields(buf)):
        if field in (_ATTR_G, _ATTR_GRAPHS) and wire == 2:
            out.append(_len_field(field, _graph(value, f"{where}/{attr}{k}")))
        else:
            out.append(_raw(field, wire, value))
    return b"".join(out)


def name_subgraphs(model: bytes) -> bytes:
    """A ModelProto whose unnamed (sub)graphs are given names, everything else byte for byte."""
    out: list[bytes] = []
    for field, wire, value in _fields(model):
        out.append(
            _len_field(field, _graph(value, "main"))
            if field == _MODEL_GRAPH and wire == 2
            else _raw(field, wire, value)
        )
    return b"".join(out)


def convert(src: Path, out: BinaryIO) -> None:
    """Write the ORT-format model ``src`` as an ONNX model onnxruntime can load and optimize."""
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="ort-convert-") as tmp:
        dest = os.path.join(tmp, "model.onnx")
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        so.optimized_model_filepath = dest
        so.add_session_config_entry("session.save_model_format", "ONNX")
        ort.InferenceSession(str(src), so, providers=["CPUExecutionProvider"])
        out.write(name_subgraphs(Path(dest).read_bytes()))
