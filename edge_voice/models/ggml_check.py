"""Is a file a complete whisper.cpp ggml model? Checked before whisper.cpp opens it.

whisper.cpp's loader trusts the file: a truncated or damaged custom ``asr.model`` (a half-copied download)
loads "successfully" through pywhispercpp and the process dies with SIGSEGV at the first decode, which
systemd answers with a restart loop. This walks the legacy ggml layout (``ggml_convert.write_ggml`` writes
the same: magic, 11 hparams, mel filterbank, vocabulary, then each tensor's header and data) by seeking,
without reading the weights, and checks that every tensor is whole, that the file ends exactly after the
last one, and that the count is the one the hparams' layer counts give. Milliseconds for any model size.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path
from typing import BinaryIO

GGML_MAGIC = 0x67676D6C
# ggml_type id → (elements per block, bytes per block): the types a whisper.cpp model file may hold
TYPE_SIZES: dict[int, tuple[int, int]] = {
    0: (1, 4),  # f32
    1: (1, 2),  # f16
    2: (32, 18),  # q4_0
    3: (32, 20),  # q4_1
    6: (32, 22),  # q5_0
    7: (32, 24),  # q5_1
    8: (32, 34),  # q8_0
    10: (256, 84),  # q2_K
    11: (256, 110),  # q3_K
    12: (256, 144),  # q4_K
    13: (256, 176),  # q5_K
    14: (256, 210),  # q6_K
    30: (1, 2),  # bf16
}
MAX_DIMS = 4
MAX_NAME = 256
MAX_VOCAB = 1 << 20
MAX_MEL_VALUES = 1 << 20
# tensors per model and per layer (whisper.cpp's whisper_model_load): conv1/conv2 weight+bias, the
# encoder's positional embedding, ln_post weight+bias; 15 per encoder layer (mlp_ln, mlp.0, mlp.2, attn_ln:
# weight+bias; query, value, out: weight+bias; key: weight); the decoder's two embeddings and ln
# weight+bias; 24 per decoder layer (the same 15, and cross-attention's 9: its ln and query, value, out
# weight+bias, key weight)
ENCODER_FIXED, PER_ENCODER_LAYER = 7, 15
DECODER_FIXED, PER_DECODER_LAYER = 4, 24


class NotGgml(ValueError):
    """The file is not a usable whisper.cpp ggml model; the message says where it stops making sense."""


def check_whisper_ggml(path: Path) -> int:
    """The number of tensors in a complete whisper.cpp ggml file at ``path``; NotGgml otherwise."""
    with path.open("rb") as f:
        head = f.read(4)
    if len(head) < 4 or struct.unpack("<I", head)[0] != GGML_MAGIC:
        raise NotGgml("not a whisper.cpp ggml file (no ggml magic number)")
    try:
        return _walk(path)
    except NotGgml as exc:
        raise NotGgml(f"a damaged whisper.cpp ggml file: {exc}") from None


def _walk(path: Path) -> int:
    size = os.path.getsize(path)
    with path.open("rb") as f:
        f.seek(4)
        hp = _ints(f, "<11i", "the hyperparameters")
        n_vocab, n_audio_layer, n_text_layer = hp[0], hp[4], hp[8]
        if not (0 < n_vocab <= MAX_VOCAB and 0 < n_audio_layer <= 64 and 0 < n_text_layer <= 64):
            raise NotGgml(f"implausible hyperparameters {hp}")
        n_mel, n_fft = _ints(f, "<2i", "the mel filterbank size")
        if not (0 < n_mel * n_fft <= MAX_MEL_VALUES and n_mel > 0):
            raise NotGgml(f"implausible mel filterbank {n_mel}x{n_fft}")
        _skip(f, 4 * n_mel * n_fft, size, "the mel filterbank")
        (n_words,) = _ints(f, "<i", "the vocabulary size")
        if not 0 < n_words <= MAX_VOCAB:
            raise NotGgml(f"implausible vocabulary size {n_words}")
        for i in range(n_words):
            (length,) = _ints(f, "<I", f"vocabulary entry {i}")
            _skip(f, length, size, f"vocabulary entry {i}")
        count = 0
        while f.tell() < size:
            where = f"tensor {count}"
            n_dims, name_len, ttype = _ints(f, "<3i", f"the header of {where}")
            if not (1 <= n_dims <= MAX_DIMS and 0 < name_len <= MAX_NAME) or ttype not in TYPE_SIZES:
                raise NotGgml(
                    f"{where}: a damaged header (dims {n_dims}, name {name_len} bytes, type {ttype})"
                )
            dims = _ints(f, f"<{n_dims}i", f"the shape of {where}")
            name = f.read(name_len)
            if len(name) < name_len:
                raise NotGgml(f"truncated in the name of {where}")
            per_block, block_bytes = TYPE_SIZES[ttype]
            elements = 1
            for d in dims:
                if d <= 0:
                    raise NotGgml(f"{where} ({name.decode(errors='replace')}): shape {dims}")
                elements *= d
            if elements % per_block:
                raise NotGgml(
                    f"{where} ({name.decode(errors='replace')}): {elements} values for type {ttype}"
                )
            _skip(f, elements // per_block * block_bytes, size, f"{where} ({name.decode(errors='replace')})")
            count += 1
    expected = (
        ENCODER_FIXED + PER_ENCODER_LAYER * n_audio_layer + DECODER_FIXED + PER_DECODER_LAYER * n_text_layer
    )
    if count != expected:
        raise NotGgml(
            f"{count} tensors, {expected} expected for {n_audio_layer}+{n_text_layer} layers (truncated?)"
        )
    return count


def _ints(f: BinaryIO, fmt: str, what: str) -> tuple[int, ...]:
    need = struct.calcsize(fmt)
    raw = f.read(need)
    if len(raw) < need:
        raise NotGgml(f"truncated in {what}")
    return struct.unpack(fmt, raw)


def _skip(f: BinaryIO, n: int, size: int, what: str) -> None:
    end = f.tell() + n
    if end > size:
        raise NotGgml(f"truncated in {what}: {end - size} bytes missing")
    f.seek(end)
