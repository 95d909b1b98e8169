"""Audio sinks: the speaker (PyAudio) and a WAV file laid on the input clock's timeline.

Both are written by the playback thread only, in small chunks (``audio.output_chunk_ms``) so that an
interruption is heard within one chunk. ``write`` blocks like a device with a short buffer: it returns
when the chunk is queued for playing, so the caller's loop runs at the audio's real rate.
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from edge_voice.audio.sources import AudioDeviceError, InputClock, _find_device
from edge_voice.audio.wavio import write_wav
from edge_voice.core.messages import SAMPLE_RATE, Pcm


class AudioSink(Protocol):
    rate_hz: int

    def begin(self, chime: bool = False) -> int:
        """A reply (or a chime) starts: returns its position on the input clock (samples at 16 kHz)."""
        ...

    def write(self, pcm: Pcm) -> None:
        """Play int16 mono at ``rate_hz``; blocks while the device buffer is full."""
        ...

    def end(self, interrupted: bool) -> None:
        """The reply is over; on interruption drop whatever is still buffered."""
        ...

    def close(self) -> None: ...


class WavSink:
    """Collects reply audio at the exact input-clock positions a speaker would have played it."""

    _BUFFER_S = 0.04  # emulated device buffer: write blocks once this much is queued ahead

    def __init__(self, path: Path | str, clock: InputClock, rate_hz: int = 22050, pace: bool = True) -> None:
        self.path = Path(path)
        self.rate_hz = rate_hz
        self._clock = clock
        self._pace = pace
        self._lock = threading.Lock()
        self._chunks: list[tuple[int, Pcm]] = []  # (start at rate_hz, samples)
        self._cursor = 0
        self._t_start = 0.0
        self._written = 0
        self.replies: list[tuple[int, int]] = []  # (start, end) per reply, at 16 kHz input samples
        self.chimes: list[int] = []  # start of each chime, at 16 kHz input samples
        self._in_chime = False

    def begin(self, chime: bool = False) -> int:
        pos16 = self._clock.now_sample()
        with self._lock:
            self._cursor = max(pos16 * self.rate_hz // SAMPLE_RATE, self._cursor)
            start = self._cursor * SAMPLE_RATE // self.rate_hz
            self._in_chime = chime
            if chime:
                self.chimes.append(start)
            else:
                self.replies.append((start, -1))
        self._t_start = time.monotonic()
        self._written = 0
        return self._cursor * SAMPLE_RATE // self.rate_hz

    def write(self, pcm: Pcm) -> None:
        with self._lock:
            self._chunks.append((self._cursor, np.asarray(pcm, np.int16).copy()))
            self._cursor += len(pcm)
            self._written += len(pcm)
        if self._pace:  # behave like a device: stay at most one buffer ahead of real time
            ahead = self._t_start + self._written / self.rate_hz - self._BUFFER_S - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)

    def end(self, interrupted: bool) -> None:
        with self._lock:
            if self.replies and not self._in_chime:
                start, _ = self.replies[-1]
                self.replies[-1] = (start, self._cursor * SAMPLE_RATE // self.rate_hz)

    def render(self, min_input_samples: int = 0) -> Pcm:
        with self._lock:
            end = max(
                [s + len(c) for s, c in self._chunks] + [min_input_samples * self.rate_hz // SAMPLE_RATE]
            )
            out = np.zeros(end, np.int32)
            for s, c in self._chunks:
                out[s : s + len(c)] += c
        return np.clip(out, -32768, 32767).astype(np.int16)

    def save(self, min_input_samples: int = 0) -> Path:
        write_wav(self.path, self.render(min_input_samples), self.rate_hz)
        return self.path

    def close(self) -> None:
        pass


class SpeakerSink:
    """The default (or named) output device through PyAudio."""

    def __init__(self, device: str, rate_hz: int, chunk_ms: int, clock: InputClock) -> None:
        try:
            import pyaudio
        except ImportError:
            raise AudioDeviceError(
                "speaker mode needs PyAudio (pip install pyaudio==0.2.14); or use --output FILE.wav"
            ) from None
        self.rate_hz = rate_hz
        self._clock = clock
        self._device, self._chunk_ms = device, chunk_ms
        self._pyaudio = pyaudio
        self._broken = False
        self._open()

    def _open(self) -> None:
        pyaudio = self._pyaudio
        self._pa = pyaudio.PyAudio()
        index = _find_device(self._pa, self._device, want_input=False)
        try:
            # a short device buffer (2 chunks) keeps an interruption audible within ~chunk_ms
            self._stream = self._pa.open(
                format=pyaudio.paInt16,
                channels=1,
                rate=self.rate_hz,
                output=True,
                output_device_index=index,
                frames_per_buffer=max(64, self.rate_hz * self._chunk_ms // 1000),
            )
        except OSError as exc:
            self._pa.terminate()
            raise AudioDeviceError(f"cannot open speaker {self._device or '(default)'}: {exc}") from None

    def begin(self, chime: bool = False) -> int:
        if self._broken:  # the last write failed (unplugged USB speaker): reopen for this reply
            with contextlib.suppress(Exception):
                self.close()
            self._open()
            self._broken = False
        return self._clock.now_sample()

    def write(self, pcm: Pcm) -> None:
        try:
            self._stream.write(np.asarray(pcm, "<i2").tobytes())
        except OSError as exc:
            self._broken = True
            raise AudioDeviceError(f"speaker write failed: {exc}") from None

    def end(self, interrupted: bool) -> None:
        pass

    def close(self) -> None:
        try:
            self._stream.stop_stream()
            self._stream.close()
        finally:
            self._pa.terminate()
