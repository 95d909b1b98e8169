"""The self-wake guard: a wake word the device itself is playing is not a user.

Echo cancellation removes most of the device's own voice, but what leaks through (a loud reply, a room
that changed, a reference that slipped) may still hold the wake word — a reply that *says* "Hey Jarvis"
woke the device at 0.94. The guard runs a second wake detector on the reference (what the device plays,
fed from the capture thread as the capture reads it) and remembers where each word scored. A detection
in the microphone of the same word within ``window_ms`` after it was played is the device's own voice.

The reference reaches the guard before the microphone frame holding its echo reaches the listener (the
capture thread feeds both, the listen thread runs later), so the check never waits.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

import numpy as np

from edge_voice.core.messages import SAMPLE_RATE, Pcm, WakeDetected
from edge_voice.engines.base import WakeDetector
from edge_voice.listen.wake import HOP_SAMPLES

log = logging.getLogger(__name__)

LEAD_HOPS = 3  # patience (3 hops) of lead allowed, see ``_lead``
SILENT_PEAK = 64  # a reference block whose peak is below this is silence: the detector rests


class EchoGuard:
    def __init__(self, wake: WakeDetector, threshold: float, window_ms: int = 1500) -> None:
        self._wake = wake
        self._threshold = threshold  # a played word scoring this high would wake the device
        self._window = window_ms * SAMPLE_RATE // 1000
        # A detection's sample is the word's first hop over the threshold (the listener moves it back by
        # its patience), and the cancelled microphone may cross a hop before the reference's detector
        # does: a word up to this far *before* the reference's hit is still the device's own.
        self._lead = LEAD_HOPS * HOP_SAMPLES
        self._lock = threading.Lock()
        self._hits: deque[tuple[str, int]] = deque(maxlen=64)  # (word, end sample of the hop)
        self._quiet = 0  # samples of silent reference in a row
        self._end = 0
        self.suppressed = 0

    def hear(self, start: int, far: Pcm) -> None:
        """The reference for ``[start, start + len(far))`` (capture thread)."""
        self._end = start + len(far)
        if len(far) == 0 or int(np.max(np.abs(far.astype(np.int32)))) < SILENT_PEAK:
            self._quiet += len(far)
            if self._quiet >= self._window:  # a long silence: the next sound starts from a clean state
                if self._quiet - len(far) < self._window:
                    self._wake.reset()
                return
        else:
            self._quiet = 0
        for word, score in self._wake.process(far).items():
            if score >= self._threshold * 0.5:  # half the threshold: the echo scores lower than the original
                with self._lock:
                    self._hits.append((word, self._end))

    def is_echo(self, msg: WakeDetected) -> bool:
        """True if ``msg`` (listen thread) is the device hearing a word it played itself."""
        with self._lock:
            own = any(
                w == msg.word and -self._lead <= msg.at_sample - at <= self._window for w, at in self._hits
            )
        if own:
            self.suppressed += 1
            log.info("wake %s at sample %d is the device's own voice: ignored", msg.word, msg.at_sample)
        return own
