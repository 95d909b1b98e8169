"""The one place audio changes rate: libsoxr (``soxr``), whole clips or streams of chunks.

Used for WAV input at other rates (→ 16 kHz), Piper's 22.05 kHz voice → the output device's rate, a
remote voice → the local voice's rate, and reply audio → 16 kHz when our own ASR checks what was said.
Samples go through soxr as float32 (exact for int16 values) and are rounded here, so a stream pushed in
any chunks gives the very samples ``resample`` gives for the whole signal (soxr's int16 mode does not).
"""

from __future__ import annotations

import numpy as np
import soxr

from edge_voice.core.messages import Pcm

QUALITY = "HQ"  # soxr's default: 20-bit precision, far below int16's noise floor; linear phase


def _to_int16(y: np.ndarray) -> Pcm:
    return np.clip(np.round(y), -32768, 32767).astype(np.int16)


def resample(pcm: Pcm, src_hz: int, dst_hz: int) -> Pcm:
    """A whole int16 mono signal → int16 at ``dst_hz``."""
    if src_hz == dst_hz:
        return pcm.astype(np.int16, copy=True)
    if len(pcm) == 0:
        return np.zeros(0, np.int16)
    return _to_int16(soxr.resample(pcm.astype(np.float32), src_hz, dst_hz, quality=QUALITY))


class StreamResampler:
    """``resample`` for one signal arriving in chunks (a reply, a remote voice's stream): the outputs of
    ``push`` and ``flush`` joined are exactly ``resample`` of the joined input. Resampling chunk by chunk
    instead would treat every chunk edge as the signal's end: a click at every join. soxr holds back the
    filter's look-ahead (~30 ms at 22.05 → 16 kHz) until the next chunk or ``flush``."""

    def __init__(self, src_hz: int, dst_hz: int) -> None:
        self.src_hz, self.dst_hz = src_hz, dst_hz
        self._stream = (
            None if src_hz == dst_hz else soxr.ResampleStream(src_hz, dst_hz, 1, np.float32, QUALITY)
        )

    def push(self, pcm: Pcm) -> Pcm:
        if self._stream is None:
            return pcm.astype(np.int16, copy=True)
        return _to_int16(self._stream.resample_chunk(pcm.astype(np.float32)))

    def flush(self) -> Pcm:
        """The held-back rest; the signal has ended and the next ``push`` starts a new one."""
        if self._stream is None:
            return np.zeros(0, np.int16)
        tail = _to_int16(self._stream.resample_chunk(np.zeros(0, np.float32), last=True))
        self._stream.clear()
        return tail

    def reset(self) -> None:
        """Drop whatever is held back (an interrupted reply) and start a new signal."""
        if self._stream is not None:
            self._stream.clear()
