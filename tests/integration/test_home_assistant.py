"""Issue 18 against a real Home Assistant core 2024.3.3 (tests/home_assistant.sh), a real mosquitto and
the real daemon: the discovered entities appear with valid states and follow the device, and a spoken
"turn on the kitchen light" switches a Home Assistant light through the shipped blueprint — with no YAML
written by the user (onboarding, the MQTT integration and the automation all go through HA's own API, as
the UI does them)."""

from __future__ import annotations

import copy
import json
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from edge_voice.audio import clips
from edge_voice.core.config import MQTT_COMMAND_NAMES, Config
from edge_voice.core.messages import Command, MuteCommand, VolumeCommand
from edge_voice.integrations.home_sinks import MqttEventSink
from edge_voice.integrations.mqtt import MqttBridge
from edge_voice.runtime.daemon import Engines
from tests.conftest import wait_until
from tests.integration.conftest import Broker, Subscriber, start_broker
from tests.integration.home_assistant import KITCHEN_SET, HomeAssistant, start_home_assistant
from tests.integration.rig import DEVICE, build, home_cfg, mqtt_turn
from tests.integration.test_names import spoken

ENTITY = f"edge_voice_{DEVICE.replace('-', '_')}"  # HA's entity ids: <domain>.<device name>_<entity name>


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    b = start_broker(tmp_path_factory.mktemp("ha-broker"))
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture(scope="module")
def home_assistant(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HomeAssistant]:
    ha = start_home_assistant(tmp_path_factory.mktemp("ha"), broker.port)
    try:
        yield ha
    finally:
        ha.stop()


def ha_cfg(port: int) -> Config:
    cfg = home_cfg(port)
    return replace(cfg, mqtt=replace(cfg.mqtt, allow_commands=MQTT_COMMAND_NAMES))


def event_type(ha: HomeAssistant, entity_id: str) -> str | None:
    s = ha.state(entity_id)
    return None if s is None else s["attributes"].get("event_type")


def test_discovered_entities_have_valid_states_and_follow_the_device(home_assistant: HomeAssistant) -> None:
    """A bridge whose command handler does what the daemon does with mute and volume (report them back):
    HA's switch, number, enum sensor and event entities follow, and HA logs no error about them."""
    ha = home_assistant
    commands: list[Command] = []
    lock = threading.Lock()
    bridge: MqttBridge

    def on_command(cmd: Command) -> None:
        with lock:
            commands.append(cmd)
        if isinstance(cmd, MuteCommand):
            bridge.publish_switches(muted=cmd.on)
        elif isinstance(cmd, VolumeCommand):
            bridge.publish_switches(volume=cmd.level)

    bridge = MqttBridge(ha_cfg(ha.mqtt_port), on_command)
    bridge.start()
    try:
        bridge.publish_state("idle")
        bridge.publish_switches(muted=False, volume=0.8)
        state = ha.wait_state(f"sensor.{ENTITY}_state", "idle", 60)
        assert state["attributes"]["device_class"] == "enum"  # its options live in the entity registry
        ha.wait_state(f"switch.{ENTITY}_mute", "off")
        ha.wait_state(f"number.{ENTITY}_volume", "80")
        assert ha.state(f"button.{ENTITY}_listen") is not None

        ha.call("switch", "turn_on", {"entity_id": f"switch.{ENTITY}_mute"})
        ha.wait_state(f"switch.{ENTITY}_mute", "on")
        bridge.publish_state("speaking")  # a say while muted: the switch must stay on (the issue's bug)
        ha.wait_state(f"sensor.{ENTITY}_state", "speaking")
        assert ha.wait_state(f"switch.{ENTITY}_mute", "on")["state"] == "on"
        ha.call("switch", "turn_off", {"entity_id": f"switch.{ENTITY}_mute"})
        ha.wait_state(f"switch.{ENTITY}_mute", "off")

        ha.call("number", "set_value", {"entity_id": f"number.{ENTITY}_volume", "value": 40})
        ha.wait_state(f"number.{ENTITY}_volume", "40")
        with lock:
            assert [MuteCommand(True), MuteCommand(False), VolumeCommand(0.4)] == [
                c for c in commands if isinstance(c, MuteCommand | VolumeCommand)
            ]

        bridge.publish_intent("time", (), "what time is it", 7)
        wait_until(lambda: event_type(ha, f"event.{ENTITY}_intent") == "time", 30, "the intent event", 0.2)
        bridge.publish_voice("wake")
        wait_until(lambda: event_type(ha, f"event.{ENTITY}_voice") == "wake", 30, "the wake event", 0.2)
        bridge.publish_timer(None)  # no timer: the sensor is unavailable (never "None": HA logs it)
        timer = ha.wait_state(f"sensor.{ENTITY}_next_timer", "unavailable")
        assert timer["attributes"]["device_class"] == "timestamp"
    finally:
        bridge.stop()
    ha.wait_state(f"sensor.{ENTITY}_state", "unavailable")  # the bridge said offline


@pytest.mark.engines
def test_a_spoken_timer_is_an_entity_and_its_end_an_event(
    home_assistant: HomeAssistant, broker: Broker, engines: Engines, tmp_path: Path
) -> None:
    """ "Set a timer for three seconds": the Next timer sensor shows when it rings; when it rings the
    voice event entity fires ``timer_finished`` and the sensor is unavailable again (no timer)."""
    ha = home_assistant
    clip = clips.compose(
        [
            ("lead", clips.silence(800)),
            ("wake", clips.piper_speech("Hey Jarvis,")),
            ("gap", clips.silence(150)),
            ("cmd", clips.piper_speech("Set a timer for three seconds.")),
            ("tail", clips.silence(9000)),  # the timer rings while the file still plays
        ]
    )
    # real time throughout: "adaptive" plays the silence after the turn as fast as it can, and the daemon
    # ended with the file before the 3 s timer could ring
    rig = build(ha_cfg(broker.port), engines, clip.pcm, "realtime", tmp_path / "r.wav")
    bridge = rig.home(MqttEventSink).bridge
    seen: list[str] = []
    try:
        wait_until(lambda: bridge.connected, 15, "bridge connected")
        runner = threading.Thread(target=rig.daemon.run, daemon=True)
        runner.start()

        def timer_shown() -> bool:
            s = ha.state(f"sensor.{ENTITY}_next_timer")
            if s is not None and s["state"] not in ("unknown", "unavailable"):
                seen.append(s["state"])
            return bool(seen) or not runner.is_alive()

        wait_until(timer_shown, 120, "the timer sensor", 0.1)
        wait_until(lambda: event_type(ha, f"event.{ENTITY}_voice") == "timer_finished", 60, "ring", 0.2)
        ha.wait_state(f"sensor.{ENTITY}_next_timer", "unavailable")  # no timer running
        runner.join(120)
    finally:
        rig.stop_home()
    assert seen and seen[0].endswith("+00:00"), seen  # an ISO timestamp HA counts down to
    (finished,) = rig.memory.of("timer.finished")
    assert finished.data["duration_s"] == 3


@pytest.mark.engines
def test_a_spoken_command_switches_a_home_assistant_light_through_the_blueprint(
    home_assistant: HomeAssistant,
    broker: Broker,
    engines: Engines,
    subscriber: Callable[..., Subscriber],
    tmp_path: Path,
) -> None:
    """The issue's "Done means": a WAV of "Hey Jarvis, turn on the kitchen light" through the real daemon
    (wake word, VAD, whisper.cpp, the fast path) → MQTT intent with light.kitchen_light → the blueprint's
    automation → HA commands its MQTT light. Nothing per-intent, no YAML."""
    ha = home_assistant
    ha.add_blueprint_automation(allowed=["light.kitchen_light"])
    # any client of the broker may publish an intent: one naming the automation itself must not switch
    # it off (before the entity filter it did, and the spoken command below then switched nothing)
    forged = {"intent": "turn_off", "entity_ids": ["automation.edge_voice_intents"]}
    ha.call("mqtt", "publish", {"topic": "edge-voice/forged/intent/turn_off", "payload": json.dumps(forged)})
    ha.call("light", "turn_off", {"entity_id": "light.kitchen_light"})
    ha.wait_state("light.kitchen_light", "off")
    sub = subscriber(broker.port, [KITCHEN_SET])
    pcm = spoken("Turn on the kitchen light.").pcm
    with mqtt_turn(ha_cfg(broker.port), engines, pcm, tmp_path / "reply.wav") as rig:
        ha.wait_state("light.kitchen_light", "on")
        # the UI's triggers (before the daemon goes offline: then the entities are unavailable)
        intent_event = ha.state(f"event.{ENTITY}_intent")
        voice_event = ha.state(f"event.{ENTITY}_voice")
    (intent,) = rig.memory.of("intent.recognized")
    assert intent.data["name"] == "turn_on", intent.data
    assert sub.last(KITCHEN_SET).payload == b"ON"  # HA itself switched the light, over MQTT
    assert intent_event is not None and voice_event is not None
    assert intent_event["attributes"]["event_type"] == "turn_on", intent_event
    assert intent_event["attributes"]["entity_ids"] == ["light.kitchen_light"], intent_event
    assert voice_event["attributes"]["event_type"] == "transcript", voice_event
    assert ha.wait_state("automation.edge_voice_intents", "on")["state"] == "on"
    assert "kitchen light" in voice_event["attributes"]["text"].lower(), voice_event


def agent_cfg(url: str, timeout_ms: int = 5000) -> Config:
    """No MQTT at all: only Home Assistant's conversation agent can switch the light."""
    cfg = home_cfg()
    return replace(
        cfg,
        intents=replace(cfg.intents, backend="home_assistant"),
        home_assistant=replace(cfg.home_assistant, url=url, timeout_ms=timeout_ms),
    )


@pytest.mark.engines
def test_the_conversation_backend_lets_home_assistant_act_and_speaks_its_reply(
    home_assistant: HomeAssistant,
    engines: Engines,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ha = home_assistant
    # as `echo "$TOKEN" > file` leaves it: stripped (http.client refused it, quoting it, in the logs)
    monkeypatch.setenv("EDGE_VOICE_HA_TOKEN", ha.token + "\n")
    caplog.set_level(logging.DEBUG)
    ha.call("light", "turn_off", {"entity_id": "light.kitchen_light"})
    ha.wait_state("light.kitchen_light", "off")
    rig = build(
        agent_cfg(ha.url), engines, spoken("Turn on the kitchen light.").pcm, "adaptive", tmp_path / "r.wav"
    )
    try:
        rig.daemon.run()
    finally:
        rig.stop_home()
    ha.wait_state("light.kitchen_light", "on")
    assert not rig.memory.of("intent.recognized")  # HA acted: the fast path published nothing
    assert not rig.memory.of("engine.fallback")
    done = rig.memory.of("response.done")[-1].data
    assert done["status"] == "done", done
    assert "kitchen light" in done["transcript"].lower(), done
    assert done["reply"].lower().startswith("turned on"), done  # HA's own answer, said by our Piper
    assert "turned on" in rig.heard(engines, 0), rig.heard(engines, 0)
    # the token is ours to keep: never in the daemon's log nor in an event it published
    assert ha.token not in caplog.text
    assert all(ha.token not in json.dumps(e.data, default=str) for e in rig.memory.events)


@pytest.mark.engines
def test_devices_are_learned_from_home_assistant_and_kept_when_it_is_away(
    home_assistant: HomeAssistant,
    broker: Broker,
    engines: Engines,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Names, entity ids, HA's aliases and areas (its registries, over the websocket API) become the fast
    path's devices; a command naming the alias or the area acts on the HA entity, through our rules and
    through HA's own sentence templates (hassil); a spoken "turn off the lights in the study" (an area
    only HA knows) switches the light through the blueprint; with HA away the cache gives the same."""
    from edge_voice.engines.intents import RuleIntentMatcher, ha_sentences
    from edge_voice.integrations.ha_devices import cache_path, with_learned_devices
    from edge_voice.integrations.ha_ws import commands
    from edge_voice.integrations.mqtt import ha_entity_ids, ha_intent

    ha = home_assistant
    # what a user does in HA's UI: an area "Study" for the light, and an alias for it
    (area,) = commands(
        ha.url, ha.token, [{"type": "config/area_registry/create", "name": "Study"}], 10000, 1 << 20
    )
    commands(
        ha.url,
        ha.token,
        [
            {
                "type": "config/entity_registry/update",
                "entity_id": "light.kitchen_light",
                "aliases": ["big lamp"],
                "area_id": area["area_id"],
            }
        ],
        10000,
        1 << 20,
    )
    monkeypatch.setenv("EDGE_VOICE_HA_TOKEN", ha.token)
    base = home_cfg()
    cfg = replace(
        base,
        models_dir=str(tmp_path / "models"),
        intents=replace(base.intents, devices=()),  # no configured devices at all
        home_assistant=replace(base.home_assistant, url=ha.url, learn_devices=True),
    )
    learned = with_learned_devices(cfg)
    assert [(d.name, d.kind, d.entity_id, d.aliases, d.area) for d in learned.intents.devices] == [
        # HA's own name, alias and area; edge-voice's entities left out
        ("kitchen light", "light", "light.kitchen_light", ("big lamp",), "study")
    ]
    assert cache_path(cfg).exists()
    matcher = RuleIntentMatcher(learned.intents, sentences=ha_sentences(learned.intents))
    for said, name in (
        ("Turn on the kitchen light.", "turn_on"),
        ("Switch off the big lamp.", "turn_off"),  # HA's alias
        ("Turn on the lights in the study.", "turn_on"),  # HA's area
        ("Deactivate the big lamp.", "turn_off"),  # HA's sentence template (hassil), not our rules
    ):
        result = matcher.match(said)
        assert result is not None and result.name == name, (said, result)
        assert ha_entity_ids(result.slots, learned.intents.devices) == ["light.kitchen_light"], said
    assert RuleIntentMatcher(learned.intents).match("Deactivate the big lamp.") is None  # rules alone
    said = matcher.match("Turn off the lights in the study.")
    assert said is not None
    assert ha_intent(said.name, said.slots, learned.intents.devices) == {
        "intent": "HassTurnOff",
        "slots": {"name": "kitchen light", "domain": "light"},
    }
    away = replace(cfg, home_assistant=replace(cfg.home_assistant, url="http://127.0.0.1:9"))
    assert with_learned_devices(away).intents.devices == learned.intents.devices  # from the cache

    # spoken, through the daemon with the learned devices, to the blueprint's automation (created by the
    # blueprint test above, allowed light.kitchen_light)
    ha.call("light", "turn_on", {"entity_id": "light.kitchen_light"})
    ha.wait_state("light.kitchen_light", "on")
    daemon_cfg = replace(ha_cfg(broker.port), intents=learned.intents)
    with_learned = copy.copy(engines)  # the session's engines, with a matcher of the learned devices
    with_learned.intents = RuleIntentMatcher(learned.intents, sentences=ha_sentences(learned.intents))
    pcm = spoken("Turn off the lights in the study.").pcm
    with mqtt_turn(daemon_cfg, with_learned, pcm, tmp_path / "r.wav") as rig:
        ha.wait_state("light.kitchen_light", "off")
        intent_event = ha.state(f"event.{ENTITY}_intent")
    (intent,) = rig.memory.of("intent.recognized")
    assert intent.data["name"] == "turn_off", intent.data
    assert intent_event is not None, "no intent event"
    assert intent_event["attributes"]["entity_ids"] == ["light.kitchen_light"], intent_event
    assert intent_event["attributes"]["ha"]["intent"] == "HassTurnOff", intent_event  # HA's language


def test_home_assistant_logged_no_error_about_our_entities(home_assistant: HomeAssistant) -> None:
    """After the daemon-driven tests (timers set and rung, intents, the conversation agent): HA's log has
    no error or warning from MQTT or about our entities ("Invalid state message 'None'" was one)."""
    errors = [
        line
        for line in home_assistant.log_text().splitlines()
        if ("ERROR" in line or "WARNING" in line) and ("mqtt" in line.lower() or "edge_voice" in line)
    ]
    assert not errors, "\n".join(errors[-20:])


@pytest.mark.engines
def test_with_home_assistant_stopped_the_device_falls_back_to_the_fast_path(
    home_assistant: HomeAssistant, engines: Engines, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Last in the module: stops Home Assistant. The command is still understood and confirmed on the
    device, its intent applied locally, and the switch is reported once as ``engine.fallback``."""
    ha = home_assistant
    monkeypatch.setenv("EDGE_VOICE_HA_TOKEN", ha.token)
    url = ha.url
    ha.stop()
    rig = build(
        agent_cfg(url), engines, spoken("Turn on the kitchen light.").pcm, "adaptive", tmp_path / "r.wav"
    )
    try:
        rig.daemon.run()
    finally:
        rig.stop_home()
    (fallback,) = rig.memory.of("engine.fallback")
    assert (fallback.data["stage"], fallback.data["using"]) == ("intent", "local"), fallback.data
    assert "refused" in fallback.data["reason"], fallback.data
    (intent,) = rig.memory.of("intent.recognized")
    assert intent.data["name"] == "turn_on" and intent.data["slots"]["device"] == ["kitchen light"]
    done = rig.memory.of("response.done")[-1].data
    assert done["status"] == "done" and done["reply"] == "Turning on the kitchen light.", done
