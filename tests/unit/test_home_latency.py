"""Issue 18, Build 4: Home Assistant's "Last latency" sensor takes only the voice-to-voice time of a
spoken turn answered (a fast-path command or an LLM answer) — never a `say` (announcements and a timer's
ring are says too) nor a cancelled or failed reply (those were 75–1203 ms in the issue's HA test)."""

from __future__ import annotations

from typing import Any

import pytest

from edge_voice.core.events import Event, ResponseDoneInfo
from edge_voice.core.vocabulary import Latency
from edge_voice.integrations.home_sinks import MqttEventSink


class Bridge:
    def __init__(self) -> None:
        self.retained: list[dict[str, Any]] = []

    def publish_event(self, event: Event) -> None:
        pass

    def publish_retained_info(self, **info: Any) -> None:
        self.retained.append(info)


@pytest.mark.parametrize(
    ("status", "route", "latency_ms"),
    [
        ("done", "intent", 412.0),
        ("done", "llm", 1210.0),
        ("done", "say", None),
        ("done", "", None),  # a turn that never routed (no transcript)
        ("interrupted", "intent", None),
        ("error", "llm", None),
    ],
)
def test_last_latency_is_only_a_spoken_turn_answered(
    status: str, route: str, latency_ms: float | None
) -> None:
    sink = object.__new__(MqttEventSink)  # the bridge alone: no broker, no daemon
    bridge = Bridge()
    sink.bridge, sink._words, sink._retain_words = bridge, True, True  # type: ignore[assignment]
    done = ResponseDoneInfo(
        status, route, "turn on the fan", "Turning on the fan.", "", False, {Latency.VOICE_TO_VOICE: 412.0}
    )
    if route == "llm":
        done = ResponseDoneInfo(status, route, "why", "Because.", "", False, {Latency.VOICE_TO_VOICE: 1210.0})
    sink.emit(Event.of(done, 7, 0))
    assert bridge.retained[-1]["latency_ms"] == latency_ms
