"""The stop word: while the device speaks or a timer rings, a short utterance that is "stop" ends it.

No "stop" wake-word model ships on PyPI (pyopen-wakeword and pymicro-wakeword carry none), so the check
is the ASR on a short VAD-gated window: ``ShortUtterances`` watches the VAD decisions (sample counts
only) and yields a window when a voiced run of ``min``–``max`` samples is bounded by silence on both
sides — a one- or two-word utterance, not a sentence; ``is_stop`` then judges the transcript. Measured
by ``bench stop`` (detection during replies, false stops per hour on the wake bench's negatives).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge_voice.core.messages import SAMPLE_RATE
from edge_voice.core.stop_word import STOP_PHRASES, is_stop

__all__ = ["STOP_PAD", "STOP_PHRASES", "ShortUtterances", "StopWindow", "is_stop"]

STOP_PAD = 3200  # 200 ms each side of the voiced run go to the ASR (onsets and releases; bench stop)


@dataclass(frozen=True, slots=True)
class StopWindow:
    start: int  # first voiced sample (absolute)
    end: int  # after the last voiced sample


class ShortUtterances:
    """Voiced runs of ``min_ms``–``max_ms`` with ``gap_ms`` of silence before and after, from per-frame
    VAD decisions; a longer run (a sentence, the device's own voice without echo cancellation) yields
    nothing until silence comes again."""

    # min 100 ms (was 200): a fast espeak-ng "Stop." is 160 ms of Silero frames (bench stop, session 13)
    def __init__(self, min_ms: int = 100, max_ms: int = 1200, gap_ms: int = 250) -> None:
        self.min = min_ms * SAMPLE_RATE // 1000
        self.max = max_ms * SAMPLE_RATE // 1000
        self.gap = gap_ms * SAMPLE_RATE // 1000
        self.reset(0)

    def reset(self, position: int, voiced: bool = False) -> None:
        """A fresh stream counts as quiet; ``voiced``: a voice is running at ``position`` (not bounded)."""
        self._silent_since: int | None = None if voiced else position - self.gap
        self._run_start: int | None = position if voiced else None
        self._clear_before = False
        self._last_voiced = position

    def feed(self, voiced: bool, end: int, n: int) -> StopWindow | None:
        """One VAD frame of ``n`` samples ending at sample ``end``."""
        start = end - n
        if voiced:
            if self._run_start is None:
                quiet = self._silent_since is not None and start - self._silent_since >= self.gap
                self._run_start, self._clear_before = start, quiet
            self._last_voiced = end
            self._silent_since = None
            return None
        if self._silent_since is None:
            self._silent_since = start
        if self._run_start is not None and end - self._last_voiced >= self.gap:
            a, b, clear = self._run_start, self._last_voiced, self._clear_before
            self._run_start = None
            if clear and self.min <= b - a <= self.max:
                return StopWindow(a, b)
        return None
