"""Wiring the daemon into the home: the MQTT bridge and the GPIO LEDs/button as event sinks.

Both receive every event and state change from the orchestrator (on its loop: they must not block —
the bridge queues, gpiozero patterns run on their own threads) and hand commands back through
``orchestrator.post`` (thread-safe).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING

from edge_voice.core.config import Config
from edge_voice.core.events import (
    ErrorInfo,
    Event,
    IntentInfo,
    MuteInfo,
    ResponseDoneInfo,
    ResponseStartedInfo,
    TimerFinishedInfo,
    TranscriptInfo,
    VolumeInfo,
    WakeInfo,
)
from edge_voice.core.messages import ListenCommand, MuteCommand
from edge_voice.core.vocabulary import ErrorCode, Latency

if TYPE_CHECKING:
    from edge_voice.runtime.daemon import Daemon

log = logging.getLogger(__name__)


class MqttEventSink:
    """``mqtt.publish_transcripts = false``: what the user said never goes to the broker (no
    ``transcript.final``, empty ``text``/``transcript`` in intents and ``response.done``); the retained last
    transcript only with ``mqtt.retain_transcript``."""

    def __init__(self, cfg: Config, daemon: Daemon) -> None:
        from edge_voice.integrations.mqtt import MqttBridge

        self._words = cfg.mqtt.publish_transcripts
        self._retain_words = cfg.mqtt.publish_transcripts and cfg.mqtt.retain_transcript
        self.bridge = MqttBridge(cfg, daemon.turn_loop.post)
        self.bridge.start()
        # the orchestrator reports changes only: publish the starting state, else the retained state
        # stays unknown (or whatever a previous run left, e.g. "speaking") until the first turn
        self.bridge.publish_state(daemon.orch.state)
        self.bridge.publish_switches(muted=daemon.orch.muted, volume=daemon.playback.volume)
        self._daemon = daemon
        self._timer_due: float | None = None
        self._publish_timer(force=True)

    def emit(self, event: Event) -> None:
        match event.payload:
            case ErrorInfo(code=ErrorCode.BAD_COMMAND):
                return  # the bridge published it already, with the offending topic and field
            case WakeInfo():
                self.bridge.publish_event(event)
                self.bridge.publish_voice("wake")
            case TranscriptInfo() as heard:
                if self._words:
                    self.bridge.publish_event(event)
                self.bridge.publish_voice("transcript", heard.text if self._words else "")
            case TimerFinishedInfo(name=name):
                self.bridge.publish_event(event)
                self.bridge.publish_voice("timer_finished", name)
                self._publish_timer()
            case ResponseStartedInfo():  # a timer set or cancelled is applied by now
                self.bridge.publish_event(event)
                self._publish_timer()
            case MuteInfo(on=on):
                self.bridge.publish_event(event)
                self.bridge.publish_switches(muted=on)
            case VolumeInfo(level=level):
                self.bridge.publish_event(event)
                self.bridge.publish_switches(volume=level)
            case IntentInfo() as intent:
                self.bridge.publish_event(self._private(event, "text"))
                text = intent.text if self._words else ""
                self.bridge.publish_intent(intent.name, intent.slots, text, event.turn_id)
            case ResponseDoneInfo() as done:
                self.bridge.publish_event(self._private(event, "transcript"))
                # the "Last latency" sensor is the voice-to-voice time of a spoken turn answered: never
                # a say, an announcement, a timer or a cancelled reply
                spoken = done.status == "done" and done.route in ("intent", "llm")
                v2v = done.latency.get(Latency.VOICE_TO_VOICE) if spoken else None
                said = done.transcript if self._retain_words else ""
                self.bridge.publish_retained_info(transcript=said or None, latency_ms=v2v)
            case _:
                self.bridge.publish_event(event)

    def _publish_timer(self, force: bool = False) -> None:
        """The next timer's wall-clock due time, when it changed (timers live in the fast path)."""
        intents = self._daemon.engines.intents
        next_due = intents.timers.next_due_s() if intents is not None else None
        if next_due == self._timer_due and not force:
            return
        self._timer_due = next_due
        wall = None if next_due is None else time.time() + next_due - time.monotonic()
        self.bridge.publish_timer(wall)

    def _private(self, event: Event, key: str) -> Event:
        """``event`` with what the user said blanked, unless transcripts are published."""
        if self._words or key not in event.data:
            return event
        return dataclasses.replace(event, data={**event.data, key: ""})

    def state(self, state: str) -> None:
        self.bridge.publish_state(state)

    def stop(self) -> None:
        self.bridge.stop()


class GpioSink:
    """LEDs follow the state; the button talks (press) or toggles mute (hold); a mute switch mutes."""

    def __init__(self, cfg: Config, daemon: Daemon) -> None:
        from edge_voice.hw.button import MuteSwitch, TalkButton
        from edge_voice.hw.leds import StatusLeds
        from edge_voice.hw.pins import make_pin_factory

        self._daemon = daemon
        factory = make_pin_factory(cfg.gpio.pin_factory)
        self.leds = StatusLeds(cfg.gpio, factory) if cfg.gpio.led_pins else None
        self.button = (
            TalkButton(cfg.gpio, factory, on_press=self._press, on_hold=self._hold)
            if cfg.gpio.button_pin >= 0
            else None
        )
        self.switch = (
            MuteSwitch(cfg.gpio, factory, on_change=self._switched) if cfg.gpio.mute_switch_pin >= 0 else None
        )

    def _press(self) -> None:
        """Push-to-talk; while a reply plays this is a barge-in (the orchestrator cancels it first)."""
        self._daemon.turn_loop.post(ListenCommand("button"))

    def _hold(self) -> None:
        orch = self._daemon.orch
        self._daemon.turn_loop.post(MuteCommand(not orch.muted, "button"))

    def _switched(self, muted: bool) -> None:
        self._daemon.turn_loop.post(MuteCommand(muted, "switch"))

    def emit(self, event: Event) -> None:
        pass

    def state(self, state: str) -> None:
        if self.leds is not None:
            self.leds.show(state)

    def stop(self) -> None:
        if self.leds is not None:
            self.leds.close()
        if self.button is not None:
            self.button.close()
        if self.switch is not None:
            self.switch.close()
