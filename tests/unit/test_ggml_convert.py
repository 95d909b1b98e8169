"""The numpy parts of the CTranslate2 → whisper.cpp converter: q8_0 blocks, GPT-2 byte map, mel filterbank
and the ggml file layout (written from a tiny synthetic CT2 model and read back field by field)."""

from __future__ import annotations

import io
import struct

import numpy as np
import numpy.typing as npt
import pytest

from edge_voice.models import ggml_convert as gc

# ------------------------------------------------------------------------------------------------- q8_0


def test_q8_0_roundtrip_error_is_within_half_a_step() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((64, 384)) * rng.uniform(0.01, 3.0, (64, 1))).astype(np.float32)
    raw = gc.quantize_q8_0(x)
    assert raw.dtype == np.uint8 and raw.size == x.size // 32 * 34
    y = gc.dequantize_q8_0(raw).reshape(x.shape)
    blocks, back = x.reshape(-1, 32), y.reshape(-1, 32)
    step = np.abs(blocks).max(axis=1) / 127  # the scale d
    err = np.abs(blocks - back).max(axis=1)
    # rounding to the nearest quant (d/2) plus the fp16 rounding of d itself (≤ 2^-11 relative, × 127)
    assert np.all(err <= step * (0.5 + 127 * 2.0**-11 + 1e-5))
    assert float(np.abs(x - y).max()) > 0  # it is lossy: the bound above is not vacuous


def test_q8_0_block_layout_scale_then_int8_and_c_rounding() -> None:
    # amax 127 → d = 1.0 exactly; halves round away from zero like C roundf (numpy rounds to even)
    x = np.zeros(32, np.float32)
    x[:6] = [127.0, 2.5, -2.5, 0.5, -0.5, 3.49]
    raw = gc.quantize_q8_0(x)
    assert raw.size == 34
    assert struct.unpack("<e", raw[:2].tobytes())[0] == 1.0
    q = raw[2:].view(np.int8)
    assert q[:6].tolist() == [127, 3, -3, 1, -1, 3]
    assert not q[6:].any()


def test_q8_0_zero_block_has_zero_scale() -> None:
    raw = gc.quantize_q8_0(np.zeros(64, np.float32))
    assert not raw.any()
    assert not gc.dequantize_q8_0(raw).any()


# ------------------------------------------------------------------------------------ vocabulary bytes


def test_bytes_to_unicode_is_a_bijection_keeping_printables() -> None:
    table = gc.bytes_to_unicode()
    assert sorted(table) == list(range(256))
    assert len(set(table.values())) == 256
    assert table[ord("a")] == "a" and table[ord("!")] == "!"
    assert table[0x20] == "Ġ" and table[0x0A] == "Ċ"  # space and newline as GPT-2 writes them


def test_vocab_bytes_decodes_tokens_and_stops_at_endoftext() -> None:
    tokens = ["hello", "Ġthe", "Ċ", "Ã©", "<|endoftext|>", "<|startoftranscript|>"]
    assert gc.vocab_bytes(tokens) == [b"hello", b" the", b"\n", "é".encode()]


# ------------------------------------------------------------------------------------------ mel filters


def test_mel_filters_match_whisper_librosa_filterbank() -> None:
    f = gc.mel_filters(80, 400, 16000)
    assert f.shape == (80, 201) and f.dtype == np.float32
    # values of whisper's mel_filters.npz (librosa.filters.mel(sr=16000, n_fft=400, n_mels=80))
    reference = [
        (0, 1, 0.02486259490251541),
        (1, 2, 0.022871771827340126),
        (9, 10, 0.006945197004824877),
        (39, 41, 0.011486922390758991),
        (69, 131, 0.00487553421407938),
        (79, 190, 0.0022320549469441175),
        (79, 199, 0.0004487590049393475),
    ]
    for m, k, v in reference:
        assert f[m, k] == np.float32(v), (m, k)
    assert abs(float(f.sum()) - 1.999024) < 1e-5
    assert not np.signbit(f).any()  # no -0.0: the file bytes must not depend on how zeros were reached


# ---------------------------------------------------------------------------------------- file layout

N_STATE, N_HEAD, N_VOCAB, N_MELS, N_AUDIO_CTX, N_TEXT_CTX = 64, 2, 40, 80, 12, 8


def synthetic_ct2() -> dict[str, npt.NDArray[np.generic]]:
    """A 1-layer encoder/decoder with CT2's names; fused matrices hold q=1, k=2, v=3 (and kv = 2, 3)."""
    s = N_STATE
    rng = np.random.default_rng(1)
    h = np.float16

    def mat(rows: int, cols: int) -> npt.NDArray[np.float16]:
        return rng.standard_normal((rows, cols)).astype(h)

    def vec(n: int, value: float = 0.5) -> npt.NDArray[np.float16]:
        return np.full(n, value, h)

    v: dict[str, npt.NDArray[np.generic]] = {
        "encoder/num_heads": np.array(N_HEAD, np.int16),
        "decoder/num_heads": np.array(N_HEAD, np.int16),
        "encoder/conv1/weight": mat(s, N_MELS * 3).reshape(s, N_MELS, 3),
        "encoder/conv1/bias": vec(s),
        "encoder/conv2/weight": mat(s, s * 3).reshape(s, s, 3),
        "encoder/conv2/bias": vec(s),
        "encoder/position_encodings/encodings": mat(N_AUDIO_CTX, s),
        "encoder/layer_norm/gamma": vec(s),
        "encoder/layer_norm/beta": vec(s),
        "decoder/embeddings/weight": mat(N_VOCAB, s),
        "decoder/position_encodings/encodings": mat(N_TEXT_CTX, s),
        "decoder/layer_norm/gamma": vec(s),
        "decoder/layer_norm/beta": vec(s),
    }
    fused_qkv = np.concatenate([np.full((s, s), k, h) for k in (1, 2, 3)])
    bias_qkv = np.concatenate([vec(s, 1), vec(s, 0), vec(s, 3)])
    for side in ("encoder", "decoder"):
        p = f"{side}/layer_0"
        v |= {
            f"{p}/self_attention/linear_0/weight": fused_qkv,
            f"{p}/self_attention/linear_0/bias": bias_qkv,
            f"{p}/self_attention/linear_1/weight": mat(s, s),
            f"{p}/self_attention/linear_1/bias": vec(s),
            f"{p}/self_attention/layer_norm/gamma": vec(s),
            f"{p}/self_attention/layer_norm/beta": vec(s),
            f"{p}/ffn/linear_0/weight": mat(4 * s, s),
            f"{p}/ffn/linear_0/bias": vec(4 * s),
            f"{p}/ffn/linear_1/weight": mat(s, 4 * s),
            f"{p}/ffn/linear_1/bias": vec(s),
            f"{p}/ffn/layer_norm/gamma": vec(s),
            f"{p}/ffn/layer_norm/beta": vec(s),
        }
    p = "decoder/layer_0/attention"
    v |= {
        f"{p}/linear_0/weight": np.full((s, s), 1, h),
        f"{p}/linear_0/bias": vec(s, 1),
        f"{p}/linear_1/weight": np.concatenate([np.full((s, s), k, h) for k in (2, 3)]),
        f"{p}/linear_1/bias": np.concatenate([vec(s, 0), vec(s, 3)]),
        f"{p}/linear_2/weight": mat(s, s),
        f"{p}/linear_2/bias": vec(s),
        f"{p}/layer_norm/gamma": vec(s),
        f"{p}/layer_norm/beta": vec(s),
    }
    return v


def ct2_file(variables: dict[str, npt.NDArray[np.generic]]) -> bytes:
    """Serialise like CTranslate2's model spec (binary version 6)."""
    codes = {np.dtype(np.float32): 0, np.dtype(np.int8): 1, np.dtype(np.int16): 2, np.dtype(np.float16): 4}

    def text(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    out = struct.pack("<I", 6) + text("WhisperSpec") + struct.pack("<II", 3, len(variables))
    for name, arr in variables.items():
        out += text(name) + struct.pack("<B", arr.ndim) + struct.pack(f"<{arr.ndim}I", *arr.shape)
        out += struct.pack("<BI", codes[arr.dtype], arr.nbytes) + arr.tobytes()
    return out + struct.pack("<I", 0)


def read_ggml(
    buf: bytes,
) -> tuple[list[int], npt.NDArray[np.float32], list[bytes], dict[str, tuple[int, tuple[int, ...], bytes]]]:
    """(header ints, mel filters, vocab, {tensor: (ggml type, ne, data)}), read as whisper.cpp does."""
    pos = 0

    def ints(n: int) -> tuple[int, ...]:
        nonlocal pos
        vals = struct.unpack_from(f"<{n}i", buf, pos)
        pos += 4 * n
        return vals

    header = list(ints(12))
    n_mel, n_fft = ints(2)
    filters = np.frombuffer(buf, "<f4", n_mel * n_fft, pos).reshape(n_mel, n_fft)
    pos += 4 * n_mel * n_fft
    vocab = []
    for _ in range(ints(1)[0]):
        (n,) = ints(1)
        vocab.append(buf[pos : pos + n])
        pos += n
    tensors = {}
    while pos < len(buf):
        n_dims, name_len, ttype = ints(3)
        ne = ints(n_dims)
        name = buf[pos : pos + name_len].decode()
        pos += name_len
        count = int(np.prod(ne))
        nbytes = {0: 4 * count, 1: 2 * count, 8: count // 32 * 34}[ttype]
        tensors[name] = (ttype, ne, buf[pos : pos + nbytes])
        pos += nbytes
    return header, filters, vocab, tensors


def whisper_cpp_names(n_audio_layer: int, n_text_layer: int) -> set[str]:
    """The tensor names whisper.cpp's loader requires (src/whisper-arch.h)."""
    attn = [
        "attn_ln.weight",
        "attn_ln.bias",
        "attn.query.weight",
        "attn.query.bias",
        "attn.key.weight",
        "attn.value.weight",
        "attn.value.bias",
        "attn.out.weight",
        "attn.out.bias",
    ]
    mlp = ["mlp_ln.weight", "mlp_ln.bias", "mlp.0.weight", "mlp.0.bias", "mlp.2.weight", "mlp.2.bias"]
    names = {
        "encoder.positional_embedding",
        "encoder.conv1.weight",
        "encoder.conv1.bias",
        "encoder.conv2.weight",
        "encoder.conv2.bias",
        "encoder.ln_post.weight",
        "encoder.ln_post.bias",
        "decoder.positional_embedding",
        "decoder.token_embedding.weight",
        "decoder.ln.weight",
        "decoder.ln.bias",
    }
    for i in range(n_audio_layer):
        names |= {f"encoder.blocks.{i}.{n}" for n in attn + mlp}
    for i in range(n_text_layer):
        names |= {f"decoder.blocks.{i}.{n}" for n in attn + mlp}
        names |= {f"decoder.blocks.{i}.cross_{n}" for n in attn}
    return names


TOKENS = [f"t{i}" for i in range(N_VOCAB - 2)] + ["<|endoftext|>", "<|startoftranscript|>"]


@pytest.fixture(scope="module")
def ct2() -> dict[str, npt.NDArray[np.generic]]:
    return gc.read_ct2(ct2_file(synthetic_ct2()))


def convert(ct2: dict[str, npt.NDArray[np.generic]], quant: gc.Quant) -> bytes:
    out = io.BytesIO()
    gc.write_ggml(out, ct2, TOKENS, quant)
    return out.getvalue()


def test_read_ct2_parses_records(ct2: dict[str, npt.NDArray[np.generic]]) -> None:
    ref = synthetic_ct2()
    assert set(ct2) == set(ref)
    for name, arr in ref.items():
        assert ct2[name].dtype == arr.dtype and ct2[name].shape == arr.shape
        assert np.array_equal(ct2[name], arr), name


def test_header_vocab_and_tensor_names(ct2: dict[str, npt.NDArray[np.generic]]) -> None:
    header, filters, vocab, tensors = read_ggml(convert(ct2, "f16"))
    assert header == [
        gc.GGML_MAGIC,
        N_VOCAB,
        N_AUDIO_CTX,
        N_STATE,
        N_HEAD,
        1,
        N_TEXT_CTX,
        N_STATE,
        N_HEAD,
        1,
        N_MELS,
        1,
    ]
    assert filters.shape == (N_MELS, 201) and np.array_equal(filters, gc.mel_filters(N_MELS))
    assert vocab == [t.encode() for t in TOKENS[:-2]]
    assert set(tensors) == whisper_cpp_names(1, 1)


def test_f16_types_shapes_and_split_attention(ct2: dict[str, npt.NDArray[np.generic]]) -> None:
    _, _, _, t = read_ggml(convert(ct2, "f16"))
    assert t["encoder.conv1.weight"][:2] == (gc.GGML_F16, (3, N_MELS, N_STATE))  # ggml ne = reversed shape
    assert t["encoder.conv1.bias"][:2] == (gc.GGML_F32, (1, N_STATE))
    assert t["encoder.positional_embedding"][:2] == (gc.GGML_F32, (N_STATE, N_AUDIO_CTX))
    assert t["decoder.token_embedding.weight"][:2] == (gc.GGML_F16, (N_STATE, N_VOCAB))
    assert t["decoder.blocks.0.mlp.0.weight"][:2] == (gc.GGML_F16, (N_STATE, 4 * N_STATE))
    assert t["decoder.blocks.0.mlp_ln.bias"][:2] == (gc.GGML_F32, (N_STATE,))

    def values(name: str) -> set[float]:
        ttype, _, data = t[name]
        return set(np.frombuffer(data, "<f2" if ttype == gc.GGML_F16 else "<f4").tolist())

    for block in ("encoder.blocks.0.attn", "decoder.blocks.0.attn", "decoder.blocks.0.cross_attn"):
        assert values(f"{block}.query.weight") == {1.0}
        assert values(f"{block}.key.weight") == {2.0}
        assert values(f"{block}.value.weight") == {3.0}
        assert values(f"{block}.query.bias") == {1.0} and values(f"{block}.value.bias") == {3.0}
        assert f"{block}.key.bias" not in t


def test_q8_0_quantizes_2d_weights_only(ct2: dict[str, npt.NDArray[np.generic]]) -> None:
    header, _, _, t = read_ggml(convert(ct2, "q8_0"))
    assert header[-1] == 2007  # GGML_QNT_VERSION 2 * 1000 + GGML_FTYPE_MOSTLY_Q8_0
    q8 = {name for name, (ttype, _, _) in t.items() if ttype == gc.GGML_Q8_0}
    assert "decoder.token_embedding.weight" in q8 and "encoder.blocks.0.mlp.0.weight" in q8
    assert q8.isdisjoint(
        {
            "encoder.conv1.weight",
            "encoder.conv1.bias",
            "encoder.positional_embedding",
            "decoder.positional_embedding",
            "decoder.ln.weight",
        }
    )
    _, ne, data = t["decoder.token_embedding.weight"]
    back = gc.dequantize_q8_0(np.frombuffer(data, np.uint8)).reshape(ne[1], ne[0])
    emb = synthetic_ct2()["decoder/embeddings/weight"].astype(np.float32)
    assert np.abs(back - emb).max() <= np.abs(emb).max() / 127  # within one quant step


def test_output_is_deterministic(ct2: dict[str, npt.NDArray[np.generic]]) -> None:
    assert convert(ct2, "q8_0") == convert(gc.read_ct2(ct2_file(synthetic_ct2())), "q8_0")


# ------------------------------------------------------------------------------ q5_1, q5_0, q4_1, q4_0


def _dequantize_q4_q5(raw: npt.NDArray[np.uint8], quant: str) -> npt.NDArray[np.float32]:
    """ggml's dequantize_row_q{4,5}_{0,1}, written from its C code (not from our quantizer)."""
    five, offset = quant.startswith("q5"), quant.endswith("_1")
    size = 2 + 2 * offset + 4 * five + 16
    blocks = raw.reshape(-1, size)
    d = blocks[:, :2].copy().view("<f2").astype(np.float32)
    m = blocks[:, 2:4].copy().view("<f2").astype(np.float32) if offset else np.zeros_like(d)
    qs = blocks[:, size - 16 :]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int32)
    if five:
        qh = blocks[:, 2 + 2 * offset : 6 + 2 * offset].copy().view("<u4").astype(np.int64)
        q |= (((qh >> np.arange(32)) & 1) << 4).astype(np.int32)
    centre = 0 if offset else (16 if five else 8)
    return ((q - centre) * d + m).astype(np.float32).reshape(-1)


@pytest.mark.parametrize(
    ("quant", "size", "levels"), [("q5_1", 24, 31), ("q5_0", 22, 31), ("q4_1", 20, 15), ("q4_0", 18, 15)]
)
def test_q4_q5_roundtrip_error_is_within_about_half_a_step(quant: str, size: int, levels: int) -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((16, 384)) * rng.uniform(0.01, 3.0, (16, 1))).astype(np.float32)
    raw = gc.quantize_q4_q5(x, quant)
    assert raw.dtype == np.uint8 and raw.size == x.size // 32 * size
    back = _dequantize_q4_q5(raw, quant).reshape(-1, 32)
    blocks = x.reshape(-1, 32)
    span = blocks.max(axis=1) - blocks.min(axis=1) if quant.endswith("_1") else 2 * np.abs(blocks).max(axis=1)
    step = span / levels if quant.endswith("_1") else span / (levels + 1)
    err = np.abs(blocks - back).max(axis=1)
    # half a step of rounding, plus the clamp of the top level (_0) and the fp16 scale/min (_1)
    assert np.all(err <= step * (1.0 if quant.endswith("_0") else 0.5 + 0.02) + 1e-3 * span)
    assert float(err.max()) > 0


def test_q4_0_block_layout_scale_then_nibbles_j_and_j_plus_16() -> None:
    # the value of largest magnitude is -8 → d = 1.0; value j in the low nibble of byte j, j + 16 high
    x = np.zeros(32, np.float32)
    x[0], x[1], x[16], x[17] = -8.0, 3.0, 7.0, -1.0
    raw = gc.quantize_q4_q5(x, "q4_0")
    assert raw.size == 18
    assert struct.unpack("<e", raw[:2].tobytes())[0] == 1.0
    assert raw[2] == (0 | (15 << 4))  # -8 + 8 = 0 low; min(15, 7 + 8) = 15 high
    assert raw[3] == (11 | (7 << 4))  # 3 + 8 = 11; -1 + 8 = 7
    assert raw[4] == (8 | (8 << 4))  # zeros sit at the centre


def test_quantized_file_marks_its_type_in_the_header_and_tensors() -> None:
    assert gc.FTYPE["q4_0"] == 2002 and gc.FTYPE["q5_1"] == 2009 and gc.FTYPE["q8_0"] == 2007
    assert {k: gc.GGML_TYPE[k] for k in ("q8_0", "q5_1", "q5_0", "q4_1", "q4_0")} == {
        "q8_0": 8,
        "q5_1": 7,
        "q5_0": 6,
        "q4_1": 3,
        "q4_0": 2,
    }
    assert gc.GGML_TYPE["q4_0-fit"] == gc.GGML_TYPE["q4_0-fitw"] == 2  # the q4_0 format, other scales


@pytest.mark.parametrize("weighted", [False, True])
def test_q4_0_fitted_scales_are_q4_0_blocks_with_no_larger_error(weighted: bool) -> None:
    rng = np.random.default_rng(2)
    x = (rng.standard_normal((16, 384)) * rng.uniform(0.01, 3.0, (16, 1))).astype(np.float32)
    plain = _dequantize_q4_q5(gc.quantize_q4_q5(x, "q4_0"), "q4_0").reshape(x.shape)
    raw = gc.quantize_q4_0_fit(x, weighted)
    assert raw.size == x.size // 32 * 18
    fitted = _dequantize_q4_q5(raw, "q4_0").reshape(x.shape)
    w = x * x if weighted else np.ones_like(x)
    assert float((w * (x - fitted) ** 2).sum()) < float((w * (x - plain) ** 2).sum())
