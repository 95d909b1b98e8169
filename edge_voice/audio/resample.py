"""The one place audio changes rate: a windowed-sinc resampler in numpy (no scipy on the device).

Used for WAV input at other rates (→ 16 kHz), Piper's 22.05 kHz voice → the output device's rate, and
reply audio → 16 kHz when our own ASR checks what was said.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from edge_voice.core.messages import Pcm

_HALF_TAPS = 16  # kernel half-width in input samples at the lower of the two rates


def resample_float(x: npt.NDArray[np.float32], src_hz: int, dst_hz: int) -> npt.NDArray[np.float32]:
    """Band-limited resampling of a whole mono signal (float32)."""
    if src_hz == dst_hz or len(x) == 0:
        return x.astype(np.float32, copy=True)
    n_out = round(len(x) * dst_hz / src_hz)
    ratio = dst_hz / src_hz
    cutoff = min(1.0, ratio)  # low-pass at the lower Nyquist when downsampling
    half = int(np.ceil(_HALF_TAPS / cutoff))
    out = np.empty(n_out, dtype=np.float32)
    padded = np.concatenate(
        [np.zeros(half, np.float32), x.astype(np.float32), np.zeros(half + 1, np.float32)]
    )
    offsets = np.arange(-half + 1, half + 1)
    block = 4096
    for start in range(0, n_out, block):
        t = np.arange(start, min(start + block, n_out)) / ratio  # positions in input samples
        base = np.floor(t).astype(np.int64)
        frac = t - base
        idx = base[:, None] + offsets[None, :]
        d = frac[:, None] - offsets[None, :]  # distance from each tap
        w = cutoff * np.sinc(cutoff * d) * np.kaiser(2 * half + 1, 8.0)[half + offsets][None, :]
        out[start : start + len(t)] = np.sum(padded[idx + half] * w, axis=1)
    return out


def resample(pcm: Pcm, src_hz: int, dst_hz: int) -> Pcm:
    """int16 → int16 at ``dst_hz``."""
    if src_hz == dst_hz:
        return pcm.astype(np.int16, copy=True)
    y = resample_float(pcm.astype(np.float32), src_hz, dst_hz)
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)
