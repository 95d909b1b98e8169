"""``check_whisper_ggml`` on small synthetic whisper.cpp files: a whole one passes; one cut anywhere
(header, filterbank, vocabulary, a tensor, or exactly between two tensors), one with a damaged tensor
header or trailing bytes, and one without the magic number fail with a message saying where."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from edge_voice.models.ggml_check import GGML_MAGIC, NotGgml, check_whisper_ggml

N_TENSORS = 7 + 15 + 4 + 24  # one encoder and one decoder layer


def ggml_bytes(n_tensors: int = N_TENSORS) -> tuple[bytes, list[int]]:
    """A structurally whole whisper ggml file (1+1 layers, 3 words, tiny tensors) and each tensor's end."""
    hp = [3, 8, 4, 1, 1, 8, 4, 1, 1, 2, 1]  # n_vocab … n_text_layer, n_mels, ftype
    out = struct.pack("<I11i", GGML_MAGIC, *hp) + struct.pack("<2i", 2, 3) + b"\0" * 4 * 6
    out += struct.pack("<i", 3) + b"".join(struct.pack("<I", len(w)) + w for w in (b"a", b"bc", b""))
    ends = []
    for i in range(n_tensors):
        name = f"t{i}".encode()
        if i % 2:  # q8_0: 32 values in one 34-byte block
            out += struct.pack("<4i", 1, len(name), 8, 32) + name + b"\1" * 34
        else:  # f32 2x3
            out += struct.pack("<5i", 2, len(name), 0, 3, 2) + name + b"\0" * 24
        ends.append(len(out))
    return out, ends


def check(tmp_path: Path, data: bytes) -> int:
    path = tmp_path / "m.bin"
    path.write_bytes(data)
    return check_whisper_ggml(path)


def test_a_whole_file_passes(tmp_path: Path) -> None:
    data, _ = ggml_bytes()
    assert check(tmp_path, data) == N_TENSORS


@pytest.mark.parametrize(
    ("cut", "where"),
    [
        (10, "hyperparameters"),
        (56, "mel filterbank"),
        (90, "vocabulary entry 1"),
        (-5, "tensor 49"),
    ],
)
def test_a_cut_file_fails_naming_where(tmp_path: Path, cut: int, where: str) -> None:
    data, _ = ggml_bytes()
    with pytest.raises(NotGgml, match=f"damaged whisper.cpp ggml file: truncated in .*{where}"):
        check(tmp_path, data[:cut])


def test_a_file_cut_between_tensors_fails_on_the_count(tmp_path: Path) -> None:
    data, ends = ggml_bytes()
    with pytest.raises(NotGgml, match="49 tensors, 50 expected"):
        check(tmp_path, data[: ends[48]])


def test_trailing_bytes_and_damaged_headers_fail(tmp_path: Path) -> None:
    data, ends = ggml_bytes()
    with pytest.raises(NotGgml, match="tensor 50: "):
        check(tmp_path, data + b"\xff" * 20)
    damaged = bytearray(data)
    damaged[ends[9] + 8 : ends[9] + 12] = struct.pack("<i", 99)  # tensor 10's type
    with pytest.raises(NotGgml, match="tensor 10: a damaged header"):
        check(tmp_path, bytes(damaged))


@pytest.mark.parametrize("data", [b"", b"GGUF" + b"\0" * 100, b"not a model" * 10])
def test_no_magic_is_not_ggml(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(NotGgml, match=r"^not a whisper\.cpp ggml file"):
        check(tmp_path, data)
