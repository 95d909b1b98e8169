"""Hands every outward event and state change to the sinks (JSON lines, MQTT, LEDs, tests). A failing
sink is logged and skipped: an outward sink must never take the daemon down."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from edge_voice.core.events import Event, EventPayload
from edge_voice.core.vocabulary import State

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def emit(self, event: Event) -> None: ...

    def state(self, state: State) -> None: ...


class Publisher:
    def __init__(self, sinks: list[EventSink], now_ns: Callable[[], int]) -> None:
        self.sinks = sinks  # the daemon appends MQTT and GPIO sinks once they are up
        self.now_ns = now_ns

    def event(self, payload: EventPayload, turn_id: int | None) -> None:
        event = Event.of(payload, turn_id, self.now_ns())
        for s in self.sinks:
            try:
                s.emit(event)
            except Exception:
                log.exception("event sink failed for %s", event.type)

    def state(self, state: State) -> None:
        for s in self.sinks:
            try:
                s.state(state)
            except Exception:
                log.exception("state sink failed")
