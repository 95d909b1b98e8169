"""The device's own voice in its microphone: the played reference, a simulated room, echo cancellation.

* ``PlaybackReference`` holds what the device played, at 16 kHz on the input clock (the capture's sample
  positions). ``ReferencedSink`` wraps the real sink, so every sound (replies, confirmations, chimes)
  goes into it at the position the sink itself reports — no sound is played unreferenced.
* ``RoomSource`` (``edge-voice run --room ROOM.toml``, the echo bench) adds that reference back into a
  WAV input: delay (optionally drifting), a synthetic room impulse response, gain and noise, seeded, so
  every echo scenario replays deterministically from WAV files.
* ``CancelledSource`` runs an ``EchoCanceller`` (the two-path linear filter, or WebRTC AEC3) in the capture
  thread with the same reference block as far end, before wake word, VAD and ASR see the audio.

Capture reads the reference block by block and so *commits* it: a sound written later for a position
the capture has already passed (a late TTS chunk: on a speaker it would play late) is moved to the
first uncommitted sample, so the room and the canceller always see one and the same reference.
"""

from __future__ import annotations

import logging
import math
import threading
import time
import tomllib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from edge_voice.audio.resample import StreamResampler
from edge_voice.audio.sinks import AudioSink
from edge_voice.audio.sources import AudioSource
from edge_voice.core.config import ConfigError
from edge_voice.core.messages import SAMPLE_RATE, EchoPathChanged, Pcm

log = logging.getLogger(__name__)

F64 = npt.NDArray[np.float64]

AEC_FRAME = SAMPLE_RATE // 100  # WebRTC works on 10 ms frames
HISTORY = 2 * SAMPLE_RATE  # reference kept behind the capture: room delay + impulse response + a block
SPAN_GAP = SAMPLE_RATE // 4  # sounds closer than this are one stretch of playback (a reply's chunks)


class PlaybackReference:
    """What the device played, addressed by input-clock sample (16 kHz float32 ring).

    ``write`` is called from the playback thread, ``read`` from the capture thread."""

    def __init__(self, capacity_s: float = 8.0) -> None:
        self._cap = int(capacity_s * SAMPLE_RATE)
        self._buf = np.zeros(self._cap, np.float32)
        self._lock = threading.Lock()
        self.committed = 0  # capture has read up to here: earlier positions are fixed
        self.moved = 0  # samples written late and moved to the present (counted, not lost)
        self.dropped = 0  # samples written too far ahead of the capture (should never happen)
        self.last_written = -1  # end position of the newest write (-1: nothing played yet)
        # where sound was played, as merged [start, end) input-clock spans: the listener asks whether the
        # device was talking at a hop (``playing``), after the capture read it, so lag does not matter
        self._spans: deque[tuple[int, int]] = deque(maxlen=64)

    def _slots(self, start: int, n: int) -> np.ndarray:
        return (np.arange(start, start + n) % self._cap).astype(np.intp)

    def write(self, start: int, pcm: Pcm) -> int:
        """Add ``pcm`` (16 kHz) played from ``start``; returns where it really went."""
        if len(pcm) == 0:
            return start
        with self._lock:
            if start < self.committed:
                self.moved += self.committed - start
                start = self.committed
            room = self.committed + self._cap - HISTORY - start
            x = np.asarray(pcm, np.float32)[: max(0, room)]
            self.dropped += len(pcm) - len(x)
            self._buf[self._slots(start, len(x))] += x
            self.last_written = max(self.last_written, start + len(x))
            end = start + len(x)
            if self._spans and start <= self._spans[-1][1] + SPAN_GAP:
                first, last = self._spans[-1]
                self._spans[-1] = (min(first, start), max(last, end))
            elif len(x):
                self._spans.append((start, end))
            return start

    def playing(self, start: int, end: int) -> bool:
        """Whether anything was played in ``[start, end)`` (any thread). Spans older than the last 64
        stretches of playback are forgotten (minutes of replies)."""
        with self._lock:
            return any(a < end and start < b for a, b in reversed(self._spans))

    def read(self, start: int, n: int) -> Pcm:
        """The reference for ``[start, start + n)`` (zeros where nothing played, or before 0). Reading up
        to a position commits it. Positions older than ``HISTORY`` behind it read as zeros."""
        with self._lock:
            end = start + n
            if end > self.committed:
                # positions entering the writable window share their slots with positions now older
                # than HISTORY: clear those
                lo = max(self.committed, end - self._cap) + self._cap - HISTORY
                hi = end + self._cap - HISTORY
                if hi > lo:
                    self._buf[self._slots(lo, hi - lo)] = 0.0
                self.committed = end
            out = np.zeros(n, np.float32)
            lo = max(start, 0, self.committed - HISTORY)
            if lo < end:
                out[lo - start :] = self._buf[self._slots(lo, end - lo)]
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)


class ReferencedSink:
    """An ``AudioSink`` that also writes everything it plays into a ``PlaybackReference``.

    The position comes from the inner sink's ``begin`` (the input-clock sample the sound starts at) and
    advances with the samples written, resampled to 16 kHz as one stream per sound."""

    def __init__(self, inner: AudioSink, reference: PlaybackReference) -> None:
        self.inner = inner
        self.reference = reference
        self.rate_hz = inner.rate_hz
        self._resampler = StreamResampler(inner.rate_hz, SAMPLE_RATE)
        self._pos = 0

    def __getattr__(self, name: str) -> Any:  # WavSink.save/render/replies for the CLI and the benches
        return getattr(self.inner, name)

    def begin(self, chime: bool = False) -> int:
        start = self.inner.begin(chime)
        self._resampler.reset()
        self._pos = start
        return start

    def _put(self, pcm16: Pcm) -> None:
        self._pos = self.reference.write(self._pos, pcm16) + len(pcm16)

    def write(self, pcm: Pcm) -> None:
        # referenced before it is played: the reference must never lag the echo
        self._put(self._resampler.push(pcm))
        self.inner.write(pcm)

    def end(self, interrupted: bool) -> None:
        if interrupted:
            self._resampler.reset()  # the device drops its buffer: the held-back tail is not played
        else:
            self._put(self._resampler.flush())
        self.inner.end(interrupted)

    def close(self) -> None:
        self.inner.close()


# ---------------------------------------------------------------------------------------------------
# The simulated room


@dataclass(frozen=True, slots=True)
class Room:
    """A deterministic acoustic path from the speaker back to the microphone. TOML: a ``[room]`` table."""

    delay_ms: float = 40.0  # speaker → microphone, including the device buffers (10–150)
    drift_ms_per_min: float = 0.0  # the delay changes by this much per minute (clock drift), within 10–150
    echo_gain_db: float = 0.0  # level of the echo relative to the played signal (−40…+20 dB)
    rt60_ms: float = 250.0  # reverberation time of the synthetic impulse response (0 = direct path only)
    rir_ms: int = 120  # length of the impulse response
    direct_to_reverb_db: float = 6.0  # direct path vs the reverberant tail (a speaker inches from the mic)
    noise_dbfs: float = -65.0  # background noise floor (white, seeded); -120 = none
    seed: int = 0

    def __post_init__(self) -> None:
        def check(name: str, lo: float, hi: float) -> None:
            v = getattr(self, name)
            if not (isinstance(v, int | float) and lo <= v <= hi):
                raise ConfigError(f"room.{name}", f"must be {lo}–{hi} (got {v!r})")

        check("delay_ms", 10, 150)
        check("drift_ms_per_min", -60, 60)
        check("echo_gain_db", -40, 20)
        check("rt60_ms", 0, 2000)
        check("rir_ms", 1, 250)
        check("direct_to_reverb_db", -20, 40)
        check("noise_dbfs", -120, -20)
        check("seed", 0, 2**31 - 1)

    def impulse_response(self) -> F64:
        """Direct path (1.0) + exponentially decaying seeded noise (the reverberant tail) at
        ``direct_to_reverb_db`` below it; unit energy, then scaled by ``echo_gain_db``."""
        n = max(1, self.rir_ms * SAMPLE_RATE // 1000)
        h = np.zeros(n, np.float64)
        h[0] = 1.0
        if self.rt60_ms > 0 and n > 16:
            rng = np.random.default_rng(self.seed)
            t = np.arange(n) / SAMPLE_RATE
            tail = rng.standard_normal(n) * 10 ** (-3 * t / (self.rt60_ms / 1000))
            tail[:16] = 0.0  # the first reflection arrives ~1 ms after the direct sound
            h += tail * math.sqrt(10 ** (-self.direct_to_reverb_db / 10) / float(np.sum(tail * tail)))
        h /= math.sqrt(float(np.sum(h * h)))
        return h * 10 ** (self.echo_gain_db / 20)

    def delay_samples(self, at_sample: int) -> int:
        ms = self.delay_ms + self.drift_ms_per_min * at_sample / SAMPLE_RATE / 60
        return round(min(150.0, max(10.0, ms)) * SAMPLE_RATE / 1000)


def load_room(path: Path | str) -> Room:
    """A room file (TOML, ``[room]`` table). Unknown keys and bad values raise ``ConfigError``."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError("room", f"cannot read {path}: {exc}") from None
    table = data.get("room", {})
    if not isinstance(table, dict) or set(data) - {"room"}:
        raise ConfigError("room", "the file must hold one [room] table")
    known = {f.name for f in fields(Room)}
    for key in table:
        if key not in known:
            raise ConfigError(f"room.{key}", f"unknown key (known: {', '.join(sorted(known))})")
    return Room(**table)


class RoomEcho:
    """The echo the room adds for ``[start, start + n)``, from the reference: a pure function of the
    reference and the position (deterministic for any block sizes)."""

    def __init__(self, room: Room) -> None:
        self.room = room
        self._h = room.impulse_response()
        self._noise_amp = 32768 * 10 ** (room.noise_dbfs / 20) if room.noise_dbfs > -120 else 0.0

    def echo(self, reference: Callable[[int, int], Pcm], start: int, n: int) -> F64:
        d = self.room.delay_samples(start)
        m = len(self._h)
        far = reference(start - d - m + 1, n + m - 1).astype(np.float64)
        out: F64 = np.convolve(far, self._h, mode="valid")
        return out

    def noise(self, start: int, n: int) -> F64:
        if self._noise_amp == 0.0:
            return np.zeros(n)
        # seeded per 1 s block, so the noise at a position does not depend on how the stream is cut
        first, last = start // SAMPLE_RATE, (start + n - 1) // SAMPLE_RATE
        parts = [
            np.random.default_rng((self.room.seed, b)).standard_normal(SAMPLE_RATE)
            for b in range(first, last + 1)
        ]
        block: F64 = np.concatenate(parts)[start - first * SAMPLE_RATE :][:n] * self._noise_amp
        return block


def _int16(x: F64) -> Pcm:
    out: Pcm = np.clip(np.round(x), -32768, 32767).astype(np.int16)
    return out


def add_room(near: Pcm, far: Pcm, room: Room) -> Pcm:
    """Offline: ``near`` (the user) plus ``far`` (what was played, 16 kHz, same timeline) through ``room``."""
    ref = np.asarray(far, np.int16)

    def reference(s: int, n: int) -> Pcm:
        out = np.zeros(n, np.int16)
        lo, hi = max(0, s), min(len(ref), s + n)
        if hi > lo:
            out[lo - s : hi - s] = ref[lo:hi]
        return out

    sim = RoomEcho(room)
    mix = near.astype(np.float64) + sim.echo(reference, 0, len(near)) + sim.noise(0, len(near))
    return _int16(mix)


class RoomSource:
    """A source with the room's echo of the device's own playback added, block by block."""

    def __init__(self, inner: AudioSource, reference: PlaybackReference, room: Room) -> None:
        self.inner = inner
        self.live = inner.live
        self._ref = reference
        self._sim = RoomEcho(room)
        self._pos = 0

    def __getattr__(self, name: str) -> Any:  # duration_samples of a WavSource
        return getattr(self.inner, name)

    def read(self, n: int) -> Pcm:
        near = self.inner.read(n)
        s = self._pos
        self._pos += len(near)
        mix = near.astype(np.float64) + self._sim.echo(self._ref.read, s, len(near))
        mix += self._sim.noise(s, len(near))
        return _int16(mix)

    def close(self) -> None:
        self.inner.close()


# ---------------------------------------------------------------------------------------------------
# Echo cancellation


class EchoCanceller(Protocol):
    """Removes the far end (what was played) from the near end (the microphone). Capture thread only;
    both 16 kHz int16, ``AEC_FRAME`` (10 ms) samples per call."""

    def process(self, near: Pcm, far: Pcm) -> Pcm: ...


class WebRtcCanceller:
    """WebRTC's AEC3 (with its high-pass filter; no noise suppression or gain control: the wake word,
    VAD and ASR models were trained on unprocessed speech) through ``pywebrtc-audio``."""

    def __init__(self, delay_hint_ms: int = 0, noise_suppression: bool = False) -> None:
        from pywebrtc_audio import AudioProcessor  # lazy: only when cancellation is on

        self._ap = AudioProcessor(
            sample_rate=SAMPLE_RATE,
            echo_cancellation=True,
            noise_suppression=noise_suppression,
            stream_delay_ms=delay_hint_ms,
        )

    def process(self, near: Pcm, far: Pcm) -> Pcm:
        return np.asarray(self._ap.process(near, far), np.int16)


class LinearCanceller:
    """A partitioned-block frequency-domain NLMS filter (overlap-save, 10 ms blocks) in numpy: it only
    subtracts its estimate of the echo, it never suppresses. AEC3 (``WebRtcCanceller``) removes far more
    echo, but its residual-echo suppressor also removes the user's own voice while the device talks
    (design note 102); this filter keeps the user whole and leaves the leaking wake words to the guard.

    ``taps_ms``: the longest echo path it models (delay + reverberation).

    ``two_path`` (design note 141): a *background* filter adapts on every audible frame; the output comes
    from a *foreground* copy, replaced by the background only while the background's error is clearly
    lower. A user talking over the reply drives the background astray (its error then grows, so it is not
    copied, and it is reset from the foreground when it has diverged), while the foreground keeps
    cancelling: double talk can no longer wreck the filter at the moment the wake word is spoken.
    ``proportionate``: each partition's step is proportional to its weights' size (Speex MDF's
    ``prop``), so the few partitions that hold the direct path and the early reflections converge first.
    Both off is the session-10 filter (the bench's baseline, ``"nlms"``)."""

    COPY = 0.7  # the background replaces the foreground when its smoothed error is this much lower (1.5 dB)
    RESET = 4.0  # the background has diverged (double talk) when its error is 6 dB over the foreground's
    SMOOTH = 0.9  # error energy smoothing per 10 ms frame (~100 ms)

    def __init__(
        self, taps_ms: int = 300, step: float = 1.0, two_path: bool = True, proportionate: bool = True
    ) -> None:
        n = AEC_FRAME
        self._parts = -(-taps_ms * SAMPLE_RATE // 1000 // n)
        self._w = np.zeros((self._parts, n + 1), np.complex128)  # the adapting (background) filter
        self._wf = np.zeros_like(self._w) if two_path else None  # the foreground (output) filter
        self._x = np.zeros((self._parts, n + 1), np.complex128)
        self._prev = np.zeros(n)
        self._power = np.zeros(n + 1)
        self._step = step
        self._prop = proportionate
        self._sb = self._sf = 0.0

    def process(self, near: Pcm, far: Pcm) -> Pcm:
        n = AEC_FRAME
        x = far.astype(np.float64)
        d = near.astype(np.float64)
        spec = np.fft.rfft(np.concatenate([self._prev, x]))
        self._prev = x
        self._x[1:] = self._x[:-1]
        self._x[0] = spec
        e = d - np.fft.irfft((self._x * self._w).sum(axis=0))[n:]
        active = float(np.dot(x, x)) > 1e4 * n  # adapt only while something plays
        out = e
        if self._wf is not None:
            ef = d - np.fft.irfft((self._x * self._wf).sum(axis=0))[n:]
            a = self.SMOOTH
            self._sb = a * self._sb + (1 - a) * float(np.dot(e, e))
            self._sf = a * self._sf + (1 - a) * float(np.dot(ef, ef))
            if active and self._sb < self.COPY * self._sf:
                self._wf[:] = self._w
                self._sf = self._sb
                out = e
            else:
                out = ef
                if self._sb > self.RESET * self._sf > 0:
                    self._w[:] = self._wf
                    self._sb = self._sf
        self._power = 0.95 * self._power + 0.05 * np.abs(spec) ** 2
        if active:
            err = np.fft.rfft(np.concatenate([np.zeros(n), e]))
            if self._prop:
                p = np.sqrt(1.0 + (np.abs(self._w) ** 2).sum(axis=1))
                p += 0.1 * p.max()  # a floor: empty partitions still learn (a changed room)
                share = (0.99 * p / p.sum())[:, None]
            else:
                share = np.full((self._parts, 1), 1.0 / self._parts)
            grad = self._step * share * np.conj(self._x) * err / (self._power + 1e8 / self._parts)
            g = np.fft.irfft(grad, axis=1)
            g[:, n:] = 0.0  # the gradient constraint: a linear, not circular, convolution
            self._w += np.fft.rfft(g, axis=1)
        return _int16(out)


CANCELLERS = ("webrtc", "linear")


def make_canceller(kind: str, delay_hint_ms: int = 0) -> EchoCanceller:
    """``audio.echo_canceller``: "webrtc" (AEC3, pywebrtc-audio) or "linear" (numpy NLMS, two-path,
    proportionate). "nlms" is the session-10 linear filter, kept for the bench's baseline only."""
    if kind == "linear":
        return LinearCanceller()
    if kind == "nlms":
        return LinearCanceller(two_path=False, proportionate=False)
    return WebRtcCanceller(delay_hint_ms)


def canceller_available() -> str | None:
    """None if the canceller can be loaded, else why not."""
    try:
        import pywebrtc_audio  # noqa: F401
    except ImportError as exc:
        return f"pywebrtc-audio is not installed ({exc}); pip install pywebrtc-audio==0.2.0"
    return None


class CancelledSource:
    """Echo cancellation between the source and everything that listens.

    Audio is cut into 10 ms frames; the output is the input delayed by one frame (10 ms, constant), so
    every read returns exactly ``n`` samples. Degrades, never crashes: a canceller that raises is switched
    off (raw audio flows on) and reported; while the reference is playing, the echo return loss
    enhancement (ERLE) is tracked, and a reference that removes almost nothing (missing, misaligned,
    wrong level) is reported as ``EchoPathChanged(cancelling=False, ...)``, and as restored when it
    recovers."""

    CHECK_S = 3.0  # seconds of audible reference per ERLE verdict
    LOW_ERLE_DB = 3.0  # below this the reference is not doing its job
    ACTIVE_DBFS = -50.0  # a reference frame louder than this counts as "playing"
    BLOCK_FRAMES = 10  # ERLE is measured per 100 ms block of audible reference ...
    # ... and the verdict is the upper quartile of the window's blocks: a user talking over the reply (their
    # voice is kept, as it must be) reads as 0 dB in their blocks, and one energy ratio over the whole
    # window called that "echo not reduced" (session 15's trial: ERLE 1.6-2.6 dB at a barge-in)
    VERDICT_QUANTILE = 0.75

    def __init__(
        self,
        inner: AudioSource,
        reference: PlaybackReference,
        canceller: EchoCanceller | None,
        on_status: Callable[[EchoPathChanged], None] = lambda _s: None,
        tap: Callable[[int, Pcm], None] | None = None,
    ) -> None:
        self.inner = inner
        self.live = inner.live
        self._ref = reference
        self._aec: EchoCanceller | None = canceller
        self.on_status = on_status
        self._tap = tap  # the self-wake guard hears the reference block by block
        self._pos = 0
        self._near: Pcm = np.zeros(0, np.int16)
        self._far: Pcm = np.zeros(0, np.int16)
        self._out: Pcm = np.zeros(AEC_FRAME, np.int16)  # the one-frame delay
        self._e_in = self._e_out = 0.0  # the current block's energies
        self._active = 0  # audible reference frames in the current block
        self._blocks: list[float] = []  # ERLE of each block in the current verdict window
        self._ok = True
        self.frames = 0
        self.cpu_ns = 0  # thread CPU time spent in the canceller (for the bench and doctor)
        self.erle_db: float | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def read(self, n: int) -> Pcm:
        near = self.inner.read(n)
        far = self._ref.read(self._pos, len(near))
        if self._tap is not None:
            self._tap(self._pos, far)
        self._pos += len(near)
        self._near = np.concatenate([self._near, near])
        self._far = np.concatenate([self._far, far])
        k = len(self._near) // AEC_FRAME * AEC_FRAME
        if k:
            done = [
                self._frame(self._near[i : i + AEC_FRAME], self._far[i : i + AEC_FRAME])
                for i in range(0, k, AEC_FRAME)
            ]
            self._out = np.concatenate([self._out, *done])
            self._near, self._far = self._near[k:], self._far[k:]
        out, self._out = self._out[: len(near)], self._out[len(near) :]
        return out

    def _frame(self, near: Pcm, far: Pcm) -> Pcm:
        if self._aec is None:
            return near
        t = time.thread_time_ns()
        try:
            out = self._aec.process(near, far)
        except Exception as exc:  # a broken canceller must not take the microphone with it
            log.error("echo canceller failed, passing raw audio on: %s", exc)
            self._aec = None
            self._report(False, f"canceller failed: {exc}")
            return near
        self.cpu_ns += time.thread_time_ns() - t
        self.frames += 1
        self._track(near, far, out)
        return out

    def _track(self, near: Pcm, far: Pcm, out: Pcm) -> None:
        f = far.astype(np.float64)
        if 10 * math.log10(float(np.mean(f * f)) / 32768**2 + 1e-12) < self.ACTIVE_DBFS:
            return
        a, b = near.astype(np.float64), out.astype(np.float64)
        self._e_in += float(np.sum(a * a))
        self._e_out += float(np.sum(b * b))
        self._active += 1
        if self._active < self.BLOCK_FRAMES:
            return
        self._blocks.append(10 * math.log10((self._e_in + 1.0) / (self._e_out + 1.0)))
        self._e_in = self._e_out = 0.0
        self._active = 0
        if len(self._blocks) * self.BLOCK_FRAMES * AEC_FRAME < self.CHECK_S * SAMPLE_RATE:
            return
        self.erle_db = round(float(np.quantile(self._blocks, self.VERDICT_QUANTILE)), 1)
        self._blocks = []
        ok = self.erle_db >= self.LOW_ERLE_DB
        if ok != self._ok:
            why = (
                "echo reduced again" if ok else "echo not reduced: reference missing, misaligned or too quiet"
            )
            self._report(ok, why)

    def _report(self, ok: bool, reason: str) -> None:
        self._ok = ok
        if not ok:
            log.warning("echo path: %s (ERLE %s dB)", reason, self.erle_db)
        self.on_status(EchoPathChanged(ok, reason, self.erle_db))

    def close(self) -> None:
        self.inner.close()
