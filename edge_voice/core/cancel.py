"""Cancel tokens: one per turn attempt. Engines check ``cancelled`` between chunks (tokens, sentences,
audio blocks); the orchestrator is the only one that calls ``cancel``."""

from __future__ import annotations

import threading


class CancelToken:
    __slots__ = ("_event", "reason")

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def cancel(self, reason: str = "cancelled") -> None:
        if not self._event.is_set():
            self.reason = reason
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``; True if cancelled meanwhile (for paced loops)."""
        return self._event.wait(timeout_s)


NEVER = CancelToken()  # a token nobody cancels (CLI one-shots, benches)
