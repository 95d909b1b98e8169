"""The listen thread: frames from the capture queue → Listener (wake + VAD + endpointer) → orchestrator.

Open/close requests from the orchestrator are queued by the Listener and applied between frames.
Every frame also kicks the systemd watchdog: a stalled audio path stops the kicks and systemd restarts
the service.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from edge_voice.audio.sources import FrameQueue
from edge_voice.core.messages import AudioFrame, ListenEvent, Message, SourceEnded, StageFailed
from edge_voice.core.vocabulary import ErrorCode, Stage

log = logging.getLogger(__name__)


class FrameListener(Protocol):
    def feed(self, frame: AudioFrame) -> list[ListenEvent]: ...

    def open(self, timeout_ms: int | None = None) -> None: ...

    def carry_on(self, after_sample: int, timeout_ms: int | None = None) -> None: ...

    def close(self) -> None: ...

    def arm_stop(self, on: bool) -> None: ...


class ListenThread(threading.Thread):
    def __init__(
        self,
        listener: FrameListener,
        frames: FrameQueue,
        post: Callable[[Message], None],
        on_frame: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name="listen", daemon=True)
        self.listener = listener
        self._frames = frames
        self._post = post
        self._on_frame = on_frame
        self.stop_event = threading.Event()
        self.frames_seen = 0
        self.position = 0
        self.heard = 0  # input samples listened to (after feed): the supervisor's listen deadline counts them
        self._failed = False

    # ListenControl: the Listener queues these itself and applies them before its next frame
    def open(self, timeout_ms: int | None = None) -> None:
        self.listener.open(timeout_ms)

    def carry_on(self, after_sample: int, timeout_ms: int | None = None) -> None:
        self.listener.carry_on(after_sample, timeout_ms)

    def close(self) -> None:
        self.listener.close()

    def arm_stop(self, on: bool) -> None:
        self.listener.arm_stop(on)

    def run(self) -> None:
        while not self.stop_event.is_set():
            item = self._frames.get(0.2)
            if item == "timeout":
                continue
            if item is None:  # end of a file source: reported after its last frame was listened to
                self._post(SourceEnded(self.position))
                return
            self.frames_seen += 1
            self.position = item.end_sample
            if self._on_frame is not None:
                self._on_frame()
            try:
                events = self.listener.feed(item)
            except Exception as exc:  # a failing detector is reported once, and listening goes on
                if not self._failed:
                    log.exception("listener failed")
                    self._post(StageFailed(0, Stage.WAKE, ErrorCode.LISTENER_FAILED, str(exc)))
                self._failed = True
                continue
            finally:
                self.heard = item.end_sample
            self._failed = False
            for ev in events:
                self._post(ev)
