"""Audio sources (microphone, WAV file) and the capture thread that turns them into ``AudioFrame``s.

The source is the master clock: every frame carries its offset in input samples. A WAV file can be
replayed in real time (``pace="realtime"``), as fast as possible (``"fast"``), or ``"adaptive"``: fast
while nothing is happening, real time from the moment a turn is active, so every latency measured from
the end of the user's speech is the real one while long idle stretches take no time. ``hold_at``: input
positions where the simulated user waits for the device's answer before speaking again (the demo's next
wake word), so a device slower than the file's gaps is not interrupted by its own input.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from edge_voice.audio.wavio import AudioFormatError, read_wav_16k
from edge_voice.core.messages import SAMPLE_RATE, AudioFrame, Pcm

log = logging.getLogger(__name__)

FRAME_SAMPLES = 512  # 32 ms (audio.frame_ms): one VAD frame
Pace = Literal["realtime", "fast", "adaptive"]


class AudioDeviceError(RuntimeError):
    """No usable audio device, or it went away. The message says which and what to check."""


class SourceExhausted(Exception):
    """A file source has no more audio."""


class AudioSource(Protocol):
    """Called from the capture thread only."""

    live: bool  # a microphone (drop audio under overload) vs a file (never drop, apply back-pressure)

    def read(self, n: int) -> Pcm:
        """Block until ``n`` samples of 16 kHz int16 mono are available. Raises SourceExhausted at the
        end of a file and AudioDeviceError when the device fails."""
        ...

    def close(self) -> None: ...


class InputClock:
    """Where the input stream is now, in samples, for placing reply audio on the same timeline.

    The capture thread calls ``advance`` per frame; anyone may call ``now_sample``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sample = 0
        self._ns = time.monotonic_ns()
        self.realtime = threading.Event()  # adaptive pacing: set while a turn is active

    def advance(self, end_sample: int, ns: int) -> None:
        with self._lock:
            self._sample, self._ns = end_sample, ns

    def now_sample(self) -> int:
        """Samples since start, extrapolated from the last frame in real time (never backwards)."""
        with self._lock:
            sample, ns = self._sample, self._ns
        return sample + max(0, (time.monotonic_ns() - ns)) * SAMPLE_RATE // 1_000_000_000


def read_input(path: Path | str) -> Pcm:
    """An input WAV at 16 kHz mono; an empty file is a mistake to report, not a silent no-op run."""
    pcm = read_wav_16k(path)
    if len(pcm) == 0:
        raise AudioFormatError(f"{path}: no audio (0 samples)")
    return pcm


class WavSource:
    live = False

    def __init__(
        self,
        audio: Path | str | Pcm,
        pace: Pace = "realtime",
        clock: InputClock | None = None,
        tail_ms: int = 0,
        hold_at: Sequence[int] = (),
    ) -> None:
        pcm = read_input(audio) if isinstance(audio, Path | str) else np.asarray(audio, np.int16)
        # a user waits for the answer: nothing at or past a hold is read while a turn is live (the turn
        # always ends: its stage deadlines, or the listen stall deadline if it waits for this very audio)
        self._holds = deque(sorted(hold_at))
        self.held_s = 0.0  # wall-clock time spent waiting at holds
        # trailing silence lets a reply that starts near the end of the file finish in the output
        self._pcm = np.concatenate([pcm, np.zeros(SAMPLE_RATE * tail_ms // 1000, np.int16)])
        self._pos = 0
        self._pace = pace
        self._clock = clock
        self._t_ref: float | None = None  # monotonic time of sample 0 while pacing
        self.duration_samples = len(self._pcm)

    def _paced(self) -> bool:
        if self._pace == "realtime":
            return True
        if self._pace == "fast":
            return False
        return self._clock is not None and self._clock.realtime.is_set()

    def read(self, n: int) -> Pcm:
        while self._holds and self._holds[0] < self._pos + n:  # (a hold at the end: before it ends)
            self._holds.popleft()
            t0 = time.monotonic()
            while self._clock is not None and self._clock.realtime.is_set():
                time.sleep(0.05)
            self.held_s += time.monotonic() - t0
        if self._pos >= len(self._pcm):
            raise SourceExhausted
        block = self._pcm[self._pos : self._pos + n]
        if len(block) < n:
            block = np.concatenate([block, np.zeros(n - len(block), np.int16)])
        self._pos += n
        if self._paced():
            if self._t_ref is None:  # (re)start pacing: this block is "now"
                self._t_ref = time.monotonic() - (self._pos - n) / SAMPLE_RATE
            delay = self._t_ref + self._pos / SAMPLE_RATE - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        else:
            self._t_ref = None
        return block

    def close(self) -> None:
        self._pos = len(self._pcm)


class MicSource:
    """The default (or named) microphone through PyAudio at 16 kHz mono int16."""

    live = True

    def __init__(self, device: str = "", frame_samples: int = FRAME_SAMPLES) -> None:
        try:
            import pyaudio
        except ImportError:
            raise AudioDeviceError(
                "microphone mode needs PyAudio (pip install pyaudio==0.2.14 with portaudio19-dev); "
                "or use --input FILE.wav"
            ) from None
        self._pa = pyaudio.PyAudio()
        index = _find_device(self._pa, device, want_input=True)
        try:
            self._stream = self._pa.open(
                format=pyaudio.paInt16,
                channels=1,
                rate=SAMPLE_RATE,
                input=True,
                input_device_index=index,
                frames_per_buffer=frame_samples,
            )
        except OSError as exc:
            self._pa.terminate()
            raise AudioDeviceError(f"cannot open microphone {device or '(default)'}: {exc}") from None

    def read(self, n: int) -> Pcm:
        try:
            data = self._stream.read(n, exception_on_overflow=False)
        except OSError as exc:
            raise AudioDeviceError(f"microphone read failed: {exc}") from None
        return np.frombuffer(data, "<i2").astype(np.int16)

    def close(self) -> None:
        try:
            self._stream.stop_stream()
            self._stream.close()
        finally:
            self._pa.terminate()


def _find_device(pa: Any, wanted: str, want_input: bool) -> int | None:
    """``wanted``: "" = default, a number = index, else a case-insensitive substring of the name."""
    key = "maxInputChannels" if want_input else "maxOutputChannels"
    devices = [pa.get_device_info_by_index(i) for i in range(pa.get_device_count())]
    usable = [d for d in devices if int(d.get(key, 0)) > 0]
    kind = "input" if want_input else "output"
    if not usable:
        raise AudioDeviceError(f"no audio {kind} device found (is a sound card connected? see `arecord -l`)")
    if not wanted:
        return None
    if wanted.isdigit():
        return int(wanted)
    for d in usable:
        if wanted.lower() in str(d["name"]).lower():
            return int(d["index"])
    names = ", ".join(str(d["name"]) for d in usable)
    raise AudioDeviceError(f"no {kind} device matching {wanted!r}; available: {names}")


class FrameQueue:
    """Bounded frame queue. Live sources: overflow drops the OLDEST frame and counts it (keep the present).
    File sources: the producer waits (nothing is lost; the file simply plays slower)."""

    def __init__(self, maxlen: int, drop_oldest: bool) -> None:
        self._q: deque[AudioFrame | None] = deque()
        self._maxlen = maxlen
        self._drop = drop_oldest
        self._cv = threading.Condition()
        self.dropped = 0

    def put(self, frame: AudioFrame | None, stop: threading.Event) -> None:
        with self._cv:
            while len(self._q) >= self._maxlen and frame is not None:
                if self._drop:
                    self._q.popleft()
                    self.dropped += 1
                    break
                if stop.is_set():
                    return
                self._cv.wait(0.05)
            self._q.append(frame)
            self._cv.notify_all()

    def get(self, timeout_s: float) -> AudioFrame | Literal["timeout"] | None:
        with self._cv:
            if not self._q and not self._cv.wait_for(lambda: bool(self._q), timeout_s):
                return "timeout"
            item = self._q.popleft()
            self._cv.notify_all()
            return item


class CaptureThread(threading.Thread):
    """Reads fixed-size blocks from the source, stamps them, and queues them for the listen thread.

    On a device error it reports through ``on_failure`` and retries opening the source with back-off
    (``reopen``), reporting ``on_recovered`` when audio flows again."""

    def __init__(
        self,
        source: AudioSource,
        queue: FrameQueue,
        clock: InputClock,
        on_failure: Callable[[str, bool], None],
        on_end: Callable[[int], None],
        on_recovered: Callable[[int], None],
        reopen: Callable[[], AudioSource] | None = None,
        frame_samples: int = FRAME_SAMPLES,
    ) -> None:
        super().__init__(name="capture", daemon=True)
        self.source = source
        self._queue = queue
        self._clock = clock
        self._on_failure, self._on_end, self._on_recovered = on_failure, on_end, on_recovered
        self._reopen = reopen
        self._n = frame_samples
        self.stop_event = threading.Event()
        self.position = 0

    def run(self) -> None:
        backoff = 0.5
        failing = False
        while not self.stop_event.is_set():
            try:
                block = self.source.read(self._n)
                if len(block) == 0:  # a device that returns nothing is as lost as one that raises
                    raise AudioDeviceError("audio source returned no samples")
            except SourceExhausted:
                self._queue.put(None, self.stop_event)
                self._on_end(self.position)
                return
            except Exception as exc:  # the device failed: report, back off, reopen
                if not failing:
                    log.error("audio source failed: %s", exc)
                    self._on_failure(str(exc), self._reopen is not None)
                failing = True
                if self._reopen is None or self.stop_event.wait(backoff):
                    self._queue.put(None, self.stop_event)
                    return
                backoff = min(backoff * 2, 10.0)
                with contextlib.suppress(Exception):  # the old handle is already broken
                    self.source.close()
                try:
                    self.source = self._reopen()
                except Exception as reopen_exc:
                    log.warning("audio source still unavailable: %s", reopen_exc)
                continue
            now = time.monotonic_ns()
            if failing:
                failing, backoff = False, 0.5
                self._on_recovered(self.position)
            frame = AudioFrame(block, self.position, now)
            self.position += len(block)
            self._clock.advance(self.position, now)
            self._queue.put(frame, self.stop_event)
        self.source.close()
