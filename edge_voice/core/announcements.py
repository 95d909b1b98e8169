"""Things to say that nobody asked for just now (MQTT ``say``/``announce``, due timers): they wait for the
user's turn to end instead of talking over it, for at most ``conversation.say_max_wait_ms``; then the
oldest is spoken anyway (a turn that long is stuck or a monologue). Bounded: a full queue refuses."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from edge_voice.core.turns import Trigger

MAX_PENDING = 4


@dataclass(frozen=True, slots=True)
class Announcement:
    text: str
    trigger: Trigger
    queued_ns: int


class Announcements:
    def __init__(self, max_wait_ms: int, now_ns: Callable[[], int]) -> None:
        self.max_wait_ms = max_wait_ms
        self.now_ns = now_ns
        self._queue: deque[Announcement] = deque()

    def add(self, text: str, trigger: Trigger) -> bool:
        """False if the queue is full (the caller reports it)."""
        if len(self._queue) >= MAX_PENDING:
            return False
        self._queue.append(Announcement(text, trigger, self.now_ns()))
        return True

    def next_due(self, turn_open: bool) -> Announcement | None:
        """The one to speak now: the oldest, once no turn is open or it has waited too long."""
        if not self._queue:
            return None
        waited_ms = (self.now_ns() - self._queue[0].queued_ns) / 1e6
        if turn_open and waited_ms < self.max_wait_ms:
            return None
        return self._queue.popleft()
