"""The device's earcons: short tones synthesised once per rate (no sound files to ship or verify)."""

from __future__ import annotations

from functools import cache

import numpy as np

from edge_voice.core.messages import Pcm

# rising notes = "I am listening"; the announce chime adds a third, lower one first; the timer rings
_NOTES_HZ = {
    "listen": (880.0, 1320.0),
    "announce": (660.0, 880.0, 1320.0),
    "timer": (1320.0, 990.0, 1320.0, 990.0),  # a ring: due while the user speaks, spoken after
}
_NOTE_S = 0.07
_LEVEL = 0.25  # well below speech: an acknowledgement, not an alarm


@cache
def chime(kind: str, rate_hz: int) -> Pcm:
    """The ``kind`` chime at ``rate_hz``: sine notes with 10 ms raised-cosine edges (no clicks)."""
    n = int(rate_hz * _NOTE_S)
    t = np.arange(n) / rate_hz
    edge = min(n // 2, int(rate_hz * 0.01))
    env = np.ones(n)
    ramp = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, edge))
    env[:edge], env[n - edge :] = ramp, ramp[::-1]
    notes = [np.sin(2 * np.pi * f * t) * env for f in _NOTES_HZ.get(kind, _NOTES_HZ["listen"])]
    out = (np.concatenate(notes) * _LEVEL * 32767).astype(np.int16)
    out.setflags(write=False)
    return out
