"""The stop word's judgement: is a short utterance's transcript "stop"? (The window comes from
``listen/stop.py``; the orchestrator asks the ASR and judges here, so core imports nothing of listen.)"""

from __future__ import annotations

import re

STOP_PHRASES = frozenset(
    {"stop", "stop it", "stop that", "stop now", "stop please", "please stop", "okay stop", "ok stop"}
)


def is_stop(text: str) -> bool:
    """Whisper's transcript of the window is one of the stop phrases (case, punctuation ignored)."""
    words = re.sub(r"[^a-z ]", " ", text.lower()).split()
    return " ".join(words) in STOP_PHRASES
