"""Whether an utterance heard while the device plays is the user or what the canceller left of the device.

The canceller removes most of the device's own voice, not all: what leaks through (a reverberant room,
a canceller still adapting) can be voiced enough for the VAD, and whisper makes words of it ("Very
normal." of "Turning off the fan."). The listener hears only the cancelled microphone, so it cannot tell
a leak from a quiet user. The raw microphone can: the canceller takes ~20 dB or more off its own echo,
while the user's voice goes through it almost whole (a double-talk check). ``NearLevels`` records the raw
microphone's level per 10 ms window (a tap in front of the canceller); ``own_echo`` compares, window by
window, the cancelled level with the raw one over an utterance's voiced span.

A window is the user's when it is loud and either nothing played up to ``PLAYBACK_HOLD`` before it, or
the canceller kept most of it (output within ``KEPT_DB`` of its input). An utterance heard while the
device played with fewer than ``MIN_USER_MS`` of such windows is the device's own voice.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from edge_voice.audio.sources import AudioSource
from edge_voice.core.messages import SAMPLE_RATE, Pcm

log = logging.getLogger(__name__)

WIN = 160  # 10 ms: the canceller's frame, and the listener's level windows
CANCEL_DELAY = WIN  # the cancelled stream is the raw one one frame (10 ms) later (``CancelledSource``)
KEPT_DB = 10.0  # output at most this far under its input: the canceller let the window through (the user)
LOUD_DB = 30.0  # a window this far under the utterance's loud windows is the quiet between words
MIN_USER_MS = 150  # this much of the user's voice makes the utterance the user's
ADDED_DB = 6.0  # output this far over its input: the canceller added sound (its own wrong estimate)
ADDED_SHARE = 0.25  # this share of an utterance's playing windows added: the canceller's doing
_EMPTY = -200.0


def window_db(windows: np.ndarray) -> np.ndarray:
    """dB (of int16 full scale squared, +1 so silence is 0 dB) of each row of ``windows`` (k × samples)."""
    x = windows.astype(np.float64)
    return np.asarray(10 * np.log10(np.mean(x * x, axis=1) + 1.0))


class NearLevels:
    """The raw microphone's dB per 10 ms window, by absolute input sample (window ``k`` is samples
    ``[k*WIN, (k+1)*WIN)``); the last ``seconds`` of them. Written by the capture thread, read by the
    listen thread."""

    def __init__(self, seconds: float = 40.0) -> None:
        self._n = int(seconds * SAMPLE_RATE) // WIN
        self._db = np.full(self._n, _EMPTY)
        self._end = 0  # absolute sample after the last one recorded
        self._rest: Pcm = np.zeros(0, np.int16)  # samples of an unfinished window
        self._lock = threading.Lock()

    def record(self, start: int, pcm: Pcm) -> None:
        with self._lock:
            if start != self._end:  # a gap or a restart: windows start again at ``start``'s grid
                self._rest = np.zeros(start % WIN, np.int16)
                self._end = start
            x = np.concatenate([self._rest, pcm])
            k = len(x) // WIN
            first = (self._end - len(self._rest)) // WIN
            if k:
                idx = np.arange(first, first + k) % self._n
                self._db[idx] = window_db(x[: k * WIN].reshape(k, WIN))
            self._rest = pcm[len(pcm) - (len(x) - k * WIN) :] if len(x) > k * WIN else pcm[:0]
            self._end = start + len(pcm)

    def levels(self, first: int, last: int) -> np.ndarray:
        """dB of windows ``first .. last - 1`` (window indices); windows not recorded (too old, not yet)
        are ``-200``."""
        with self._lock:
            k = np.arange(first, last)
            out = self._db[k % self._n].copy()
            done = self._end // WIN
            out[(k >= done) | (k < done - self._n)] = _EMPTY
            return out


class NearTap:
    """A source wrapper recording the raw microphone's levels, in front of the canceller."""

    def __init__(self, inner: AudioSource, levels: NearLevels) -> None:
        self.inner = inner
        self.live = inner.live
        self.levels = levels
        self._pos = 0

    def __getattr__(self, name: str) -> Any:  # duration_samples of a WavSource, …
        return getattr(self.inner, name)

    def read(self, n: int) -> Pcm:
        pcm = self.inner.read(n)
        self.levels.record(self._pos, pcm)
        self._pos += len(pcm)
        return pcm

    def close(self) -> None:
        self.inner.close()


def own_echo(out_db: np.ndarray, in_db: np.ndarray, playing: np.ndarray) -> tuple[bool, int]:
    """Per 10 ms window of an utterance's voiced span: the cancelled level, the raw level of the same
    sound, whether the device played then. Returns (the device's own voice, the user's windows).

    A window the canceller made louder than its input (``ADDED_DB``) is not the user's: the canceller
    subtracted a wrong estimate of the echo and so *added* the device's voice. That is what AEC3 does
    for a while after a barge-in (the user's double talk over the reply misleads it, note 331); when
    ``ADDED_SHARE`` of the utterance's loud playing windows are such, the utterance is the device's."""
    if len(out_db) == 0 or not bool(np.any(playing)):
        return False, len(out_db)
    loud = out_db > float(np.max(out_db)) - LOUD_DB
    d = out_db - in_db
    added = loud & playing & (d > ADDED_DB)
    user = loud & (~playing | ((d > -KEPT_DB) & (d <= ADDED_DB)))
    n = int(np.count_nonzero(user))
    heard = int(np.count_nonzero(loud & playing))
    injected = heard > 0 and np.count_nonzero(added) >= ADDED_SHARE * heard
    return bool(injected) or n * WIN < MIN_USER_MS * SAMPLE_RATE // 1000, n


def utterance_is_echo(
    levels: NearLevels,
    cancelled_db: Callable[[int, int], np.ndarray],
    playing: Callable[[int, int], bool],
    hold: int,
    start: int,
    end: int,
) -> tuple[bool, int]:
    """``own_echo`` over the cancelled stream's samples ``[start, end)``: ``cancelled_db(first, last)``
    gives its windows' dB (listener's ring), ``playing(a, b)`` whether the device played in that span,
    ``hold`` how long an echo may ring after playing."""
    first, last = start // WIN, max(start // WIN + 1, end // WIN)
    out_db = cancelled_db(first, last)
    # the cancelled window k holds the raw window k - 1 (one frame of delay); the louder of it and its
    # neighbour, so a misalignment of a few ms never makes a leak look kept
    raw = levels.levels(first - 2, last)
    in_db = np.maximum(raw[1:-1], raw[:-2])
    on = np.array([playing(k * WIN - hold, (k + 1) * WIN) for k in range(first, last)], dtype=bool)
    if log.isEnabledFor(logging.DEBUG):
        d = out_db - in_db
        log.debug(
            "double talk %d-%d: %d windows, %d playing, out-in dB p10/50/90 %.1f/%.1f/%.1f",
            start,
            end,
            len(d),
            int(on.sum()),
            *np.percentile(d, [10, 50, 90]),
        )
    return own_echo(out_db, in_db, on)
