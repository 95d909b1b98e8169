"""Things to say that nobody asked for just now (MQTT ``say``/``announce``, due timers): they wait for the
user's turn to end instead of talking over it, for at most ``conversation.say_max_wait_ms``; then the
oldest is spoken anyway (a turn that long is stuck or a monologue). Bounded: a full queue refuses."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from edge_voice.core import events as ev
from edge_voice.core.jobs import ChimeJob
from edge_voice.core.turns import Trigger
from edge_voice.core.vocabulary import ErrorCode, Stage, State

if TYPE_CHECKING:
    from edge_voice.core.orchestrator import Orchestrator

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


def say(sm: Orchestrator, text: str, trigger: Trigger = "say") -> None:
    """Speak ``text`` as its own turn once the user's turn is over: never over the user (a timer rings at
    once with a short tone while they speak)."""
    if sm.turn is None:
        return sm.speak(text, trigger)
    if not sm.announcements.add(text, trigger):
        msg = f"too many messages waiting: {text[:40]!r}"
        sm.publish(ev.ErrorInfo(Stage.COMMAND, ErrorCode.OVERLOADED, msg), sm.turn)
    elif trigger == "timer" and sm.cfg.conversation.chimes and sm.state == State.LISTENING:
        sm.w.playback.submit_nowait(ChimeJob("timer"))


def speak_due(sm: Orchestrator) -> None:
    """The waiting message whose time has come (the turn ended, or it waited ``say_max_wait_ms``)."""
    due = sm.announcements.next_due(turn_open=sm.turn is not None)
    if due is not None:
        if sm.turn is not None:
            sm.abandon("superseded")  # waited say_max_wait_ms: a stuck turn yields
        sm.speak(due.text, due.trigger)
