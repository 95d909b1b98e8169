"""Issue 7 end to end through the real daemon (real engines, a real mosquitto, gpiozero's MockFactory).

A home-automation user subscribed to ``edge-voice/<device>/#`` sees a whole spoken turn; MQTT commands
drive the daemon; the talk button starts a turn and the status LED follows the state. The sinks are
wired exactly as ``edge-voice run`` wires them (``daemon.attach_home``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from edge_voice.audio import clips
from edge_voice.audio.sinks import WavSink
from edge_voice.audio.sources import InputClock, WavSource
from edge_voice.cli.run import attach_home
from edge_voice.core.config import GpioConfig
from edge_voice.integrations.home_sinks import GpioSink, MqttEventSink
from edge_voice.runtime.daemon import Daemon, Engines, StartupError
from tests.conftest import wait_until
from tests.integration.conftest import Broker, Received, Subscriber
from tests.integration.rig import (
    BUTTON_PIN,
    DEVICE,
    LED_PIN,
    PREFIX,
    build,
    home_cfg,
    quiet,
    running,
)

pytestmark = pytest.mark.engines


def texts(messages: list[Received]) -> list[str]:
    return [m.payload.decode() for m in messages]


def events(sub: Subscriber) -> list[Received]:
    return sub.on(f"{PREFIX}/event/")


def index_of(sub: Subscriber, topic: str, payload: bytes | None = None) -> int:
    return next(
        i
        for i, m in enumerate(sub.messages)
        if m.topic == topic and (payload is None or m.payload == payload)
    )


def publish(sub: Subscriber, command: str, payload: str) -> None:
    sub.client.publish(f"{PREFIX}/cmd/{command}", payload.encode(), qos=1).wait_for_publish(10)


# ------------------------------------------------------------------------------------- a spoken turn


TURN = [
    "wake.detected",
    "input_audio.speech_started",
    "input_audio.speech_stopped",
    "transcript.final",
    "intent.recognized",
    "response.started",
    "response.audio.started",
    "response.done",
]


def test_spoken_turn_reaches_a_home_automation_subscriber(
    engines: Engines, mosquitto: Broker, subscriber: Callable[..., Subscriber], tmp_path: Path
) -> None:
    sub = subscriber(mosquitto.port, [f"{PREFIX}/#"])
    # what a previous run that died mid-reply leaves on the broker: the new run must not keep showing it
    sub.client.publish(f"{PREFIX}/state", b"speaking", qos=1, retain=True).wait_for_publish(10)
    clip = clips.compose(
        [
            ("lead", clips.silence(800)),
            ("wake", clips.piper_speech("Hey Jarvis,")),
            ("gap", clips.silence(150)),
            ("cmd", clips.piper_speech("turn on the kitchen light.")),
            ("tail", clips.silence(8000)),
        ]
    )
    cfg = home_cfg(mosquitto.port)
    cfg = replace(cfg, mqtt=replace(cfg.mqtt, retain_transcript=True))  # the HA sensor, opted in
    rig = build(cfg, engines, clip.pcm, "adaptive", tmp_path / "reply.wav")
    bridge = rig.home(MqttEventSink).bridge
    try:
        wait_until(lambda: bridge.connected, 15, "bridge connected")
        sub.wait_for(f"{PREFIX}/availability", 1)
        wait_until(lambda: texts(sub.on(f"{PREFIX}/state"))[-1:] == ["idle"], 15, "state idle at start")
        rig.daemon.run()  # the file ends → the daemon stops once the turn is over
        assert bridge.flush(15), f"bridge did not flush: {bridge.stats()}"
        sub.wait_for(f"{PREFIX}/event/response.done", 1)
        sub.wait_for(f"{PREFIX}/last/transcript", 1)
        wait_until(lambda: len(events(sub)) >= len(rig.memory.events), 15, "every event on MQTT")
        live_before_stop = texts(sub.on(f"{PREFIX}/availability"))
    finally:
        rig.stop_home()
    sub.wait_for(f"{PREFIX}/availability", 2)

    # every event the daemon emitted reached the broker, in the daemon's order, with the envelope
    got = events(sub)
    assert [m.topic for m in got] == [f"{PREFIX}/event/{e.type}" for e in rig.memory.events]
    types = [m.topic.rsplit("/", 1)[1] for m in got]
    assert [t for t in types if t in TURN] == TURN, types
    assert "error" not in types and "turn.cancelled" not in types
    bodies = {t: m.json() for t, m in zip(types, got, strict=True)}
    turn_id = bodies["wake.detected"]["turn_id"]
    assert isinstance(turn_id, int)
    seqs = [m.json()["seq"] for m in got]
    assert seqs == sorted(set(seqs)), "seq strictly increasing"
    for m in got:
        body = m.json()
        assert body["turn_id"] == turn_id and body["device_id"] == DEVICE and body["ts_iso"].endswith("Z")
        assert body["type"] == m.topic.rsplit("/", 1)[1] and not m.retain
    assert bodies["wake.detected"]["word"] == "hey_jarvis" and bodies["wake.detected"]["score"] >= 0.5
    assert bodies["input_audio.speech_stopped"]["reason"] in ("silence", "early_commit")
    assert "kitchen light" in bodies["transcript.final"]["text"].lower()
    assert bodies["intent.recognized"]["name"] == "turn_on"
    assert bodies["intent.recognized"]["slots"]["device"] == ["kitchen light"]
    assert bodies["response.started"]["route"] == "intent"
    assert bodies["response.audio.started"]["output_ms"] > clip.part("cmd").start_sample * 1000 // 16000
    done = bodies["response.done"]
    assert done["status"] == "done" and done["route"] == "intent"
    assert "kitchen light" in done["transcript"].lower() and "kitchen light" in done["reply"].lower()
    assert done["heard"] == done["reply"]
    v2v = done["latency"]["voice_to_voice_ms"]
    assert isinstance(v2v, int | float) and v2v > 0

    # the intent topic a home automation acts on, between the intent event and the reply
    (intent,) = sub.on(f"{PREFIX}/intent/")
    assert intent.topic == f"{PREFIX}/intent/turn_on"
    body = intent.json()
    assert body["intent"] == "turn_on" and body["slots"]["device"] == ["kitchen light"]
    assert body["turn_id"] == turn_id and body["device_id"] == DEVICE
    assert "kitchen light" in body["text"].lower()
    at = index_of(sub, intent.topic)
    assert index_of(sub, f"{PREFIX}/event/intent.recognized") < at
    assert at < index_of(sub, f"{PREFIX}/event/response.started")

    # state: the stale value is replaced at start, then one turn's worth of states
    states = texts(sub.on(f"{PREFIX}/state"))
    # after the reply the follow-up window is open (listening, without a wake word) until it times out
    assert states == ["speaking", "idle", "listening", "thinking", "speaking", "listening", "idle"], states
    assert "kitchen light" in texts(sub.on(f"{PREFIX}/last/transcript"))[-1].lower()
    assert int(texts(sub.on(f"{PREFIX}/last/latency_ms"))[-1]) == round(v2v)

    # availability: online before the first event and still while the turn ran; offline after stop
    assert live_before_stop == ["online"]
    assert texts(sub.on(f"{PREFIX}/availability")) == ["online", "offline"]
    assert index_of(sub, f"{PREFIX}/availability", b"online") < index_of(sub, got[0].topic)
    assert index_of(sub, f"{PREFIX}/availability", b"offline") > index_of(sub, got[-1].topic)

    # what a subscriber that connects later (Home Assistant after a restart) gets: the retained values
    late = subscriber(mosquitto.port, [f"{PREFIX}/#"])
    for topic in ("state", "availability", "last/transcript"):
        late.wait_for(f"{PREFIX}/{topic}", 1)
    retained = {m.topic: m for m in late.messages}
    assert all(m.retain for m in retained.values())
    assert retained[f"{PREFIX}/state"].payload == b"idle"
    assert retained[f"{PREFIX}/availability"].payload == b"offline"
    assert "kitchen light" in retained[f"{PREFIX}/last/transcript"].payload.decode().lower()
    assert not any("/event/" in t or "/intent/" in t for t in retained)  # events are never retained
    assert len(rig.sink.replies) == 1


# -------------------------------------------------------------------------------------- MQTT commands


def test_mqtt_commands_drive_the_daemon(
    engines: Engines, mosquitto: Broker, subscriber: Callable[..., Subscriber], tmp_path: Path
) -> None:
    sub = subscriber(mosquitto.port, [f"{PREFIX}/#"])
    # realtime pacing: an idle room must last until the commands arrive (adaptive pacing races through
    # silence and the file would end first); the test stops the daemon itself
    rig = build(home_cfg(mosquitto.port), engines, quiet(120), "realtime", tmp_path / "reply.wav")
    bridge = rig.home(MqttEventSink).bridge
    try:
        wait_until(lambda: bridge.connected, 15, "bridge connected")
        with running(rig):
            publish(sub, "say", json.dumps({"text": "Dinner is ready."}))
            (first,) = sub.wait_for(f"{PREFIX}/event/response.done", 1, timeout_s=60)

            publish(sub, "say", "not json")
            (error,) = sub.wait_for(f"{PREFIX}/event/error", 1)
            wait_until(lambda: bool(rig.memory.of("error")), 15, "the daemon got the bad command")

            publish(sub, "say", json.dumps({"text": "The laundry is done."}))
            second = sub.wait_for(f"{PREFIX}/event/response.done", 2, timeout_s=60)[1]

            publish(sub, "mute", json.dumps({"on": True}))
            sub.wait_for(f"{PREFIX}/event/mute.changed", 1)
            wait_until(lambda: texts(sub.on(f"{PREFIX}/state"))[-1:] == ["muted"], 15, "state muted")
            assert rig.daemon.orch.muted
            assert bridge.flush(15), f"bridge did not flush: {bridge.stats()}"
        assert rig.daemon.orch.state == "muted"
    finally:
        rig.stop_home()
    sub.wait_for(f"{PREFIX}/availability", 2)

    # say → a turn of its own, spoken and reported
    body = first.json()
    assert body["route"] == "say" and body["status"] == "done"
    assert body["reply"] == "Dinner is ready." and body["heard"] == "Dinner is ready."
    turn_types = [m.topic.rsplit("/", 1)[1] for m in events(sub) if m.json()["turn_id"] == body["turn_id"]]
    assert turn_types == ["response.started", "response.audio.started", "response.done"]
    started = next(m.json() for m in events(sub) if m.topic.endswith("/response.started"))
    assert started["route"] == "say" and started["text"] == "Dinner is ready."

    # a bad payload: one error event naming what was wrong (the daemon's own copy is not republished)
    bad = error.json()
    assert bad["code"] == "bad_command" and bad["command"] == "say" and bad["field"] == "payload"
    assert bad["topic"] == f"{PREFIX}/cmd/say" and "not JSON" in bad["message"]
    assert len(sub.on(f"{PREFIX}/event/error")) == 1
    assert [e.data["code"] for e in rig.memory.of("error")] == ["bad_command"]

    # … and the daemon keeps serving
    body2 = second.json()
    assert body2["route"] == "say" and body2["reply"] == "The laundry is done." and body2["status"] == "done"
    assert body2["turn_id"] != body["turn_id"]

    # mute
    (muted,) = sub.on(f"{PREFIX}/event/mute.changed")
    assert muted.json()["on"] is True
    states = texts(sub.on(f"{PREFIX}/state"))
    assert states == ["idle", *["thinking", "speaking", "idle"] * 2, "muted"], states
    assert texts(sub.on(f"{PREFIX}/availability")) == ["online", "offline"]

    # the replies were really spoken
    assert len(rig.sink.replies) == 2
    assert "dinner" in rig.heard(engines, 0)
    assert "laundry" in rig.heard(engines, 1)


# ----------------------------------------------------------------------------------------------- GPIO


@pytest.fixture
def pin_factories(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Records the MockFactory the daemon's GpioSink builds, so the test can drive its pins."""
    from gpiozero import Device

    from edge_voice.hw import pins

    made: list[Any] = []
    real = pins.make_pin_factory

    def recording(name: str) -> Any:
        factory = real(name)
        made.append(factory)
        return factory

    monkeypatch.setattr(pins, "make_pin_factory", recording)
    yield made
    for factory in made:
        factory.reset()  # pins and reservations back to clean for the next test
    Device.pin_factory = None


def pin_values(pin: Any) -> list[float]:
    return [float(s.state) for s in pin.states]


def test_button_starts_a_turn_and_the_led_follows_the_state(
    engines: Engines, pin_factories: list[Any], tmp_path: Path
) -> None:
    gpio = GpioConfig(
        enabled=True, pin_factory="mock", led_pins=(LED_PIN,), button_pin=BUTTON_PIN, hold_ms=2000
    )
    cfg = home_cfg(gpio=gpio, no_speech_timeout_ms=1500)
    rig = build(cfg, engines, quiet(120), "realtime", tmp_path / "reply.wav")
    (factory,) = pin_factories
    leds = rig.home(GpioSink).leds
    assert leds is not None
    led, button = factory.pin(LED_PIN), factory.pin(BUTTON_PIN)
    memory = rig.memory
    try:
        with running(rig):
            # a short press: push-to-talk opens a turn; nobody speaks, so the no-speech timeout ends it
            led.clear_states()
            button.drive_low()
            button.drive_high()
            wait_until(lambda: memory.states[-2:] == ["listening", "idle"], 30, "listening, then idle")
            listened = pin_values(led)
            assert leds.state == "idle" and float(led.state) == 0.0

            # a hold toggles mute: the LED glows dimly; a second hold unmutes and it goes dark
            led.clear_states()
            button.drive_low()
            wait_until(lambda: memory.states[-1:] == ["muted"], 30, "muted")
            button.drive_high()
            assert leds.state == "muted" and 0.0 < float(led.state) < 0.2
            button.drive_low()
            wait_until(lambda: memory.states[-1:] == ["idle"], 30, "unmuted")
            button.drive_high()
            assert leds.state == "idle" and float(led.state) == 0.0
    finally:
        rig.stop_home()

    assert memory.states == ["listening", "idle", "muted", "idle"]
    (cancelled,) = memory.of("turn.cancelled")
    assert cancelled.data["reason"] == "no_speech" and cancelled.turn_id is not None
    assert not memory.of("wake.detected") and not memory.of("error")
    assert [e.data["on"] for e in memory.of("mute.changed")] == [True, False]
    # listening pulsed the LED through intermediate brightness, then it went dark with the turn's end
    assert len({v for v in listened if 0.0 < v < 1.0}) >= 3, listened
    assert listened[-1] == 0.0
    assert not rig.sink.replies  # nothing was said


def test_unusable_gpio_fails_start_up_and_stops_the_bridge(
    engines: Engines, mosquitto: Broker, pin_factories: list[Any], tmp_path: Path
) -> None:
    def senders() -> int:
        return sum(t.name == "edge-voice-mqtt-send" for t in threading.enumerate())

    before = senders()
    gpio = GpioConfig(enabled=True, pin_factory="mock", led_pins=(LED_PIN,), button_pin=99)
    cfg = replace(home_cfg(mosquitto.port), gpio=gpio)
    clock = InputClock()
    source = WavSource(quiet(1), clock=clock)
    daemon = Daemon(cfg, engines, source, WavSink(tmp_path / "r.wav", clock), [], clock)
    # a StartupError is what the CLI turns into exit 78 (no systemd restart loop)
    with pytest.raises(StartupError, match=r"gpio: .*99"):
        attach_home(cfg, daemon)
    assert senders() == before, "the MQTT bridge started before the GPIO failure is still running"
