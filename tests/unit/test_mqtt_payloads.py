"""Pure MQTT payload parsing and building (no broker)."""

from __future__ import annotations

import contextlib
import json
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_voice.core.config import Config, ConfigError, DeviceEntry, MqttConfig
from edge_voice.core.events import Event
from edge_voice.core.intent import INTENT_NAMES
from edge_voice.core.messages import (
    CancelCommand,
    ListenCommand,
    MuteCommand,
    SayCommand,
    VolumeCommand,
)
from edge_voice.core.vocabulary import State
from edge_voice.integrations.mqtt import (
    COMMANDS,
    MAX_SAY_CHARS,
    CommandError,
    Topics,
    discovery_configs,
    event_payload,
    ha_entity_ids,
    hermes_intent_payload,
    intent_payload,
    iso_utc,
    parse_command,
    state_payload,
    wall_ns,
)

MAX = 4096


def test_topics_follow_the_prefix() -> None:
    t = Topics.from_config(Config(device_id="kitchen"))
    assert t.event("transcript.final") == "edge-voice/kitchen/event/transcript.final"
    assert (t.state, t.availability) == ("edge-voice/kitchen/state", "edge-voice/kitchen/availability")
    assert t.cmd_filter == "edge-voice/kitchen/cmd/+"
    assert t.command_name("edge-voice/kitchen/cmd/say") == "say"
    assert t.command_name("edge-voice/other/cmd/say") is None
    assert Topics.hermes_intent("turn_on") == "hermes/intent/turn_on"
    custom = Topics.from_config(Config(device_id="k", mqtt=MqttConfig(prefix="home/voice")))
    assert custom.intent("timer_set") == "home/voice/intent/timer_set"
    assert custom.discovery("switch", "mute") == "homeassistant/switch/k/mute/config"


@pytest.mark.parametrize("bad", ["", "a/b", "#", "x+", "nul\0"])
def test_topic_segments_reject_wildcards(bad: str) -> None:
    with pytest.raises(ValueError, match="must be non-empty"):
        Topics.from_config(Config()).event(bad)


# --------------------------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    ("name", "payload", "expected"),
    [
        ("listen", b"", ListenCommand("mqtt")),
        ("listen", b"  {} ", ListenCommand("mqtt")),
        ("cancel", b"", CancelCommand("mqtt")),
        ("say", b'{"text": "hi there"}', SayCommand("hi there")),
        ("say", '{"text": " caf\u00e9 \u2615 "}'.encode(), SayCommand("caf\u00e9 \u2615")),
        ("announce", b'{"text": "dinner"}', SayCommand("dinner", announce=True)),
        ("mute", b'{"on": true}', MuteCommand(True)),
        ("mute", b'{"on": false}', MuteCommand(False)),
        ("volume", b'{"level": 0}', VolumeCommand(0.0)),
        ("volume", b'{"level": 0.75}', VolumeCommand(0.75)),
        ("volume", b'{"level": 1}', VolumeCommand(1.0)),
    ],
)
def test_valid_commands(name: str, payload: bytes, expected: object) -> None:
    assert parse_command(name, payload, MAX) == expected


@pytest.mark.parametrize(
    ("name", "payload", "field", "reason"),
    [
        ("sing", b"{}", "command", "unknown command 'sing'"),
        ("say", b"", "payload", "empty"),
        ("say", b"hello", "payload", "not JSON"),
        ("say", b'"hello"', "payload", "must be a JSON object (got str)"),
        ("say", b"\xc3\x28", "payload", "not UTF-8"),
        ("say", b"{}", "text", "required"),
        ("say", b'{"text": 5}', "text", "a string"),
        ("say", b'{"text": "   "}', "text", "must not be empty"),
        ("say", json.dumps({"text": "a" * (MAX_SAY_CHARS + 1)}).encode(), "text", f"at most {MAX_SAY_CHARS}"),
        ("say", b'{"text": "x", "voice": "y"}', "voice", "unknown field; allowed: text"),
        ("listen", b'{"now": 1}', "now", "unknown field; allowed: none"),
        ("listen", b"go", "payload", "not JSON"),
        ("mute", b"{}", "on", "required"),
        ("mute", b'{"on": 1}', "on", "true or false"),
        ("mute", b'{"on": "true"}', "on", "true or false"),
        ("volume", b'{"level": "0.5"}', "level", "a number"),
        ("volume", b'{"level": false}', "level", "a number"),
        ("volume", b'{"level": -0.1}', "level", "between 0 and 1"),
        ("volume", b'{"level": 1.01}', "level", "between 0 and 1"),
        ("say", b"x" * (MAX + 1), "payload", f"{MAX + 1} bytes exceeds the limit of {MAX}"),
    ],
)
def test_invalid_commands_name_the_field(name: str, payload: bytes, field: str, reason: str) -> None:
    with pytest.raises(CommandError) as info:
        parse_command(name, payload, MAX)
    assert info.value.field == field
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{field}: ")


def test_size_is_checked_before_parsing() -> None:
    big = json.dumps({"text": "a" * 100}).encode()
    assert parse_command("say", big, len(big)) == SayCommand("a" * 100)
    with pytest.raises(CommandError, match="exceeds"):
        parse_command("say", big, len(big) - 1)


def _check_valid(cmd: object) -> None:
    """Whatever parses must satisfy the command's own invariants."""
    if isinstance(cmd, SayCommand):
        assert cmd.text == cmd.text.strip() and 0 < len(cmd.text) <= MAX_SAY_CHARS
    elif isinstance(cmd, VolumeCommand):
        assert 0.0 <= cmd.level <= 1.0
    elif isinstance(cmd, MuteCommand):
        assert isinstance(cmd.on, bool)
    else:
        assert isinstance(cmd, ListenCommand | CancelCommand)


@settings(deadline=None)  # a property, not a speed test
@given(name=st.sampled_from([*COMMANDS, "other", ""]), payload=st.binary(max_size=200))
def test_any_bytes_parse_or_raise_command_error(name: str, payload: bytes) -> None:
    try:
        cmd = parse_command(name, payload, MAX)
    except CommandError as exc:
        assert exc.field and exc.reason
    else:
        _check_valid(cmd)


@settings(deadline=None)
@given(
    obj=st.dictionaries(
        st.sampled_from(["text", "on", "level", "x"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text()),
    )
)
def test_any_json_object_parses_or_raises_command_error(obj: dict[str, object]) -> None:
    payload = json.dumps(obj).encode()
    for name in COMMANDS:
        try:
            cmd = parse_command(name, payload, MAX)
        except CommandError as exc:
            assert exc.field in ("payload", "text", "on", "level", "x", *obj)
        else:
            _check_valid(cmd)


# --------------------------------------------------------------------------------------------- payloads


def test_event_payload_converts_monotonic_time_to_wall_clock() -> None:
    offset = time.time_ns() - time.monotonic_ns()
    mono = time.monotonic_ns()
    event = Event("transcript.final", 3, mono, {"transcript": "hello", "audio_ms": 1200})
    body = json.loads(event_payload(event, device_id="dev", seq=9, wall_offset_ns=offset))
    assert body == {
        "transcript": "hello",
        "audio_ms": 1200,
        "type": "transcript.final",
        "turn_id": 3,
        "ts": round((mono + offset) / 1e9, 6),
        "ts_iso": iso_utc(mono + offset),
        "seq": 9,
        "device_id": "dev",
    }
    assert body["ts_iso"].endswith("Z") and len(body["ts_iso"]) == len("2026-11-26T10:35:03.123Z")


def test_event_payload_keeps_an_epoch_timestamp_and_envelope_wins() -> None:
    epoch = 1_795_689_171_123_000_000
    event = Event("error", None, epoch, {"type": "spoofed", "seq": -1, "code": "asr_timeout"})
    body = json.loads(event_payload(event, device_id="d", seq=1, wall_offset_ns=12345))
    assert body["ts"] == 1_795_689_171.123
    assert body["ts_iso"] == "2026-11-26T10:32:51.123Z"
    assert (body["type"], body["seq"], body["code"], body["turn_id"]) == ("error", 1, "asr_timeout", None)
    assert wall_ns(5, 10) == 15 and wall_ns(epoch, 10) == epoch


def test_iso_utc_truncates_to_milliseconds_exactly() -> None:
    assert iso_utc(1_999_999_999) == "1970-01-01T00:00:01.999Z"
    assert iso_utc(1_795_689_171_123_999_999) == "2026-11-26T10:32:51.123Z"


def test_event_payload_serialises_numpy_and_tuples() -> None:
    event = Event("response.done", 1, 0, {"score": np.float32(0.5), "n": np.int64(3), "slots": (("a", "b"),)})
    body = json.loads(event_payload(event, device_id="d", seq=1, wall_offset_ns=0))
    assert (body["score"], body["n"], body["slots"]) == (0.5, 3, [["a", "b"]])


def test_state_payload() -> None:
    for state in ("idle", "listening", "thinking", "speaking", "muted", "error"):
        assert state_payload(state) == state.encode()
    with pytest.raises(ValueError, match="not one of"):
        state_payload("busy")


def test_intent_payloads() -> None:
    own = json.loads(
        intent_payload(
            "set_brightness",
            {"device": "lamp", "brightness": "40"},
            "set the lamp to 40 percent",
            2,
            device_id="d",
            epoch_ns=0,
        )
    )
    assert own["slots"] == {"device": ["lamp"], "brightness": "40"}  # device: always a list
    assert (own["intent"], own["turn_id"], own["ts"]) == ("set_brightness", 2, 0.0)
    assert own["ts_iso"] == "1970-01-01T00:00:00.000Z"
    hermes = json.loads(
        hermes_intent_payload(
            "set_brightness",
            [("device", "Lamp"), ("brightness", "40")],
            "set the lamp to 40 percent",
            2,
            site_id="d",
        )
    )
    assert hermes["intent"] == {"intentName": "set_brightness", "confidenceScore": 1.0}
    assert (hermes["input"], hermes["siteId"], hermes["sessionId"]) == (
        "set the lamp to 40 percent",
        "d",
        "d-2",
    )
    lamp, level = hermes["slots"]
    assert lamp["slotName"] == lamp["entity"] == "device"
    assert lamp["value"] == {"kind": "Unknown", "value": "Lamp"} and lamp["rawValue"] == "Lamp"
    assert lamp["range"] == {"start": 8, "end": 12, "rawStart": 8, "rawEnd": 12}  # case-insensitive find
    assert level["range"]["start"] == 16
    nowhere = json.loads(hermes_intent_payload("x", {"k": "zzz"}, "abc", None, site_id="d"))
    assert "range" not in nowhere["slots"][0] and nowhere["sessionId"] is None


TWO_DEVICES = (
    ("device", "kitchen light"),
    ("kind", "light"),
    ("device", "coffee machine"),
    ("kind", "switch"),
)
SAID = "Turn on the kitchen light and the coffee machine."


def test_two_devices_reach_the_intent_topic_both() -> None:
    """Issue 23: dict() over the pairs kept the coffee machine only; a subscriber must get every device."""
    own = json.loads(intent_payload("turn_on", TWO_DEVICES, SAID, 7, device_id="d", epoch_ns=0))
    assert own["slots"] == {"device": ["kitchen light", "coffee machine"], "kind": ["light", "switch"]}
    # a mapping (one value per key) gives the same shape
    one = json.loads(
        intent_payload("turn_on", {"device": "fan", "kind": "fan"}, "x", 1, device_id="d", epoch_ns=0)
    )
    assert one["slots"] == {"device": ["fan"], "kind": ["fan"]}


def test_two_devices_in_hermes_each_with_its_range() -> None:
    hermes = json.loads(hermes_intent_payload("turn_on", TWO_DEVICES, SAID, 7, site_id="d"))
    devices = [s for s in hermes["slots"] if s["slotName"] == "device"]
    assert [s["value"]["value"] for s in devices] == ["kitchen light", "coffee machine"]
    assert [SAID[s["range"]["start"] : s["range"]["end"]] for s in devices] == [
        "kitchen light",
        "coffee machine",
    ]
    twice = json.loads(
        hermes_intent_payload("x", [("k", "fan"), ("k", "fan")], "the fan and the fan", 1, site_id="d")
    )
    assert [s["range"]["start"] for s in twice["slots"]] == [4, 16]  # the second mention, not the first again


def test_intent_event_carries_every_device() -> None:
    from edge_voice.core.events import IntentInfo, slots_json

    info = IntentInfo("turn_on", TWO_DEVICES, SAID, 1.5)
    event = Event.of(info, 3, 0)
    assert event.data["slots"] == {"device": ["kitchen light", "coffee machine"], "kind": ["light", "switch"]}
    assert (event.data["name"], event.data["text"], event.data["intent_ms"]) == ("turn_on", SAID, 1.5)
    body = json.loads(event_payload(event, device_id="d", seq=1, wall_offset_ns=0))
    assert body["slots"]["device"] == ["kitchen light", "coffee machine"]
    # scalar slots stay strings; a question asked back lists its candidates
    assert slots_json([("device", "lamp"), ("brightness", "40")]) == {"device": ["lamp"], "brightness": "40"}
    clarify = [
        ("action", "turn_off"),
        ("heard", "hollow light"),
        ("candidate", "hallway light"),
        ("candidate", "hall lamp"),
    ]
    assert slots_json(clarify) == {
        "action": "turn_off",
        "heard": "hollow light",
        "candidate": ["hallway light", "hall lamp"],
    }


def test_discovery_configs() -> None:
    topics = Topics.from_config(Config(device_id="den"))
    configs = {topic: json.loads(body) for topic, body in discovery_configs(topics, sw_version="1.2.3")}
    assert len(configs) == 9
    assert len({c["unique_id"] for c in configs.values()}) == 9
    assert all(c["unique_id"].startswith("edge_voice_den_") for c in configs.values())
    for c in configs.values():
        assert c["device"] == {
            "identifiers": ["edge_voice_den"],  # namespaced: "den" alone may clash
            "name": "edge-voice den",
            "manufacturer": "edge-voice",
            "model": "offline voice assistant",
            "sw_version": "1.2.3",
        }
        if "availability" in c:  # the next timer: its own availability too (below)
            assert c["availability"][0] == {
                "topic": "edge-voice/den/availability",
                "payload_available": "online",
                "payload_not_available": "offline",
            }
            continue
        assert (c["availability_topic"], c["payload_available"], c["payload_not_available"]) == (
            "edge-voice/den/availability",
            "online",
            "offline",
        )
    mute = configs["homeassistant/switch/den/mute/config"]
    assert parse_command("mute", mute["payload_on"].encode(), MAX) == MuteCommand(True)
    assert parse_command("mute", mute["payload_off"].encode(), MAX) == MuteCommand(False)
    listen = configs["homeassistant/button/den/listen/config"]
    assert parse_command("listen", listen["payload_press"].encode(), MAX) == ListenCommand("mqtt")
    assert configs["homeassistant/sensor/den/last_transcript/config"]["state_topic"] == topics.last_transcript
    # the issue: the switch followed the shared state topic and compared with payload_on: always unknown
    assert (mute["state_topic"], mute["state_on"], mute["state_off"]) == ("edge-voice/den/muted", "ON", "OFF")
    state = configs["homeassistant/sensor/den/state/config"]
    assert state["device_class"] == "enum" and set(state["options"]) == {s.value for s in State}
    latency = configs["homeassistant/sensor/den/last_latency/config"]
    assert latency["entity_category"] == "diagnostic"
    volume = configs["homeassistant/number/den/volume/config"]
    assert (volume["state_topic"], volume["min"], volume["max"]) == ("edge-voice/den/volume", 0, 100)
    intent = configs["homeassistant/event/den/intent/config"]
    assert intent["state_topic"] == "edge-voice/den/intent/+"
    assert set(intent["event_types"]) == set(INTENT_NAMES)
    voice = configs["homeassistant/event/den/voice/config"]
    assert voice["state_topic"] == "edge-voice/den/voice"
    assert voice["event_types"] == ["wake", "transcript", "timer_finished"]
    timer = configs["homeassistant/sensor/den/timer/config"]
    assert (timer["state_topic"], timer["device_class"]) == ("edge-voice/den/timer", "timestamp")


def test_intent_payload_carries_home_assistant_entity_ids() -> None:
    devices = (
        DeviceEntry("Kitchen light", "light"),
        DeviceEntry("coffee machine", "switch", entity_id="switch.espresso"),
        DeviceEntry("Hall lamp", "light"),
        DeviceEntry("TV", "media"),
    )
    ids = ha_entity_ids(TWO_DEVICES, devices)
    assert ids == ["light.kitchen_light", "switch.espresso"]
    assert ha_entity_ids([("device", "all lights")], devices) == ["light.kitchen_light", "light.hall_lamp"]
    assert ha_entity_ids([("device", "tv"), ("device", "unknown thing")], devices) == ["media_player.tv"]
    own = json.loads(
        intent_payload("turn_on", TWO_DEVICES, SAID, 1, device_id="d", epoch_ns=0, entity_ids=ids)
    )
    assert own["entity_ids"] == ids
    with pytest.raises(ConfigError, match=r"intents\.devices\.entity_id"):
        DeviceEntry("x", entity_id="kitchen")


def test_the_next_timer_sensor_is_never_sent_none_and_is_unavailable_without_a_timer() -> None:
    """HA 2024.3 logs "Invalid state message 'None'" for a timestamp sensor: no timer is the sensor's
    own availability instead (with the device's)."""
    import queue

    from edge_voice.integrations.mqtt import MqttBridge

    topics = Topics.from_config(Config(device_id="den"))
    configs = {topic: json.loads(body) for topic, body in discovery_configs(topics, sw_version="1")}
    timer = configs["homeassistant/sensor/den/timer/config"]
    assert "availability_topic" not in timer and timer["availability_mode"] == "all"
    assert [a["topic"] for a in timer["availability"]] == [topics.availability, topics.timer_running]
    bridge = MqttBridge(Config(device_id="den"), lambda _c: None)  # not started: what it would publish
    bridge.publish_timer(None)
    bridge.publish_timer(1_800_000_000.0)
    sent: list[tuple[str, bytes]] = []
    with contextlib.suppress(queue.Empty):
        while True:
            _kind, item = bridge._inbox.get_nowait()
            sent.append(item)
    assert sent == [
        (topics.timer_running, b"OFF"),
        (topics.timer, b"2027-01-15T08:00:00.000Z"),
        (topics.timer_running, b"ON"),
    ]
