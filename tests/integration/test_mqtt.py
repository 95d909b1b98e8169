"""The MQTT bridge against a real mosquitto: events, retained state, LWT, commands, errors, restarts, auth."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge_voice.audio import clips
from edge_voice.audio.wavio import write_wav
from edge_voice.cli.doctor import run_doctor
from edge_voice.core.config import DEFAULT_MQTT_COMMANDS, MQTT_COMMAND_NAMES, Config, ConfigError, MqttConfig
from edge_voice.core.events import Event
from edge_voice.core.messages import (
    BadCommand,
    CancelCommand,
    Command,
    ListenCommand,
    MuteCommand,
    SayCommand,
    VolumeCommand,
)
from edge_voice.integrations.mqtt import MqttBridge, tls_context
from tests.conftest import wait_until
from tests.integration.conftest import Broker, Subscriber

REPO = Path(__file__).resolve().parents[2]
DEVICE = "testdev"
PREFIX = f"edge-voice/{DEVICE}"


def make_cfg(port: int, **mqtt: object) -> Config:
    return Config(
        device_id=DEVICE,
        mqtt=MqttConfig(enabled=True, host="127.0.0.1", port=port, keepalive_s=5, **mqtt),  # type: ignore[arg-type]
    )


class Commands:
    """Thread-safe record of what on_command got (it runs on paho's thread)."""

    def __init__(self) -> None:
        self.items: list[Command] = []
        self._lock = threading.Lock()

    def __call__(self, cmd: Command) -> None:
        with self._lock:
            self.items.append(cmd)

    def wait(self, count: int) -> list[Command]:
        wait_until(lambda: len(self.items) >= count, 15, f"{count} commands (have {self.items})")
        with self._lock:
            return list(self.items)


@pytest.fixture
def bridges() -> Iterator[Callable[..., tuple[MqttBridge, Commands]]]:
    made: list[MqttBridge] = []

    def make(cfg: Config, wait_connected: bool = True) -> tuple[MqttBridge, Commands]:
        commands = Commands()
        bridge = MqttBridge(cfg, commands)
        bridge.start()
        made.append(bridge)
        if wait_connected:
            # subscribed, not just connected: a command published before the SUBACK is lost (a flaky race)
            wait_until(lambda: bridge.subscribed, 15, "bridge subscribed")
        return bridge, commands

    yield make
    for bridge in made:
        bridge.stop(flush_timeout_s=0.5)


def ev(type_: str, turn_id: int | None, **data: object) -> Event:
    return Event(type_, turn_id, time.monotonic_ns(), dict(data))


# ------------------------------------------------------------------------------------------------ events


def test_events_arrive_in_order_with_payloads(
    mosquitto: Broker,
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    sub = subscriber(mosquitto.port, [f"{PREFIX}/event/#"])
    bridge, _ = bridges(make_cfg(mosquitto.port))
    turn = [
        ev("wake.detected", 1, word="hey_jarvis", score=0.98),
        ev("input_audio.speech_started", 1),
        ev("input_audio.speech_stopped", 1, audio_ms=1800),
        ev("transcript.final", 1, transcript="turn on the kitchen light"),
        ev("intent.recognized", 1, intent="turn_on", slots={"device": "kitchen light"}),
        ev("response.started", 1),
        ev("response.audio.started", 1),
        ev("response.done", 1, reply="Turning on the kitchen light.", latency={"voice_to_voice_ms": 312.5}),
    ]
    before_ms = time.time_ns() // 1_000_000
    for e in turn * 5:
        bridge.publish_event(e)
    got = sub.wait_for(f"{PREFIX}/event/", len(turn) * 5)
    assert bridge.flush(10)

    assert [m.topic for m in got] == [f"{PREFIX}/event/{e.type}" for e in turn * 5]
    bodies = [m.json() for m in got]
    assert [b["seq"] for b in bodies] == list(range(1, len(turn) * 5 + 1))
    assert not any(m.retain for m in got)
    for body, e in zip(bodies, turn * 5, strict=True):
        assert body["type"] == e.type
        assert body["turn_id"] == 1
        assert body["device_id"] == DEVICE
        for key, value in e.data.items():
            assert body[key] == value
        ts = dt.datetime.fromisoformat(body["ts_iso"].replace("Z", "+00:00"))
        assert abs(ts.timestamp() - body["ts"]) < 0.001
        assert abs(body["ts"] * 1000 - before_ms) < 60_000  # a wall-clock time, not the monotonic clock
    assert bodies[3]["transcript"] == "turn on the kitchen light"
    assert bodies[7]["latency"] == {"voice_to_voice_ms": 312.5}
    stats = bridge.stats()
    assert stats.sent == len(turn) * 5 and stats.dropped == 0 and stats.pending == 0


def test_retained_state_availability_and_info(
    mosquitto: Broker,
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    bridge, _ = bridges(make_cfg(mosquitto.port))
    bridge.publish_state("listening")
    bridge.publish_state("thinking")
    bridge.publish_retained_info(transcript="what time is it", latency_ms=287.4)
    assert bridge.flush(10)
    # a subscriber arriving later sees the retained values
    late = subscriber(mosquitto.port, [f"{PREFIX}/state", f"{PREFIX}/availability", f"{PREFIX}/last/#"])
    assert late.last(f"{PREFIX}/state").payload == b"thinking"
    assert late.last(f"{PREFIX}/state").retain
    assert late.last(f"{PREFIX}/availability").payload == b"online"
    assert late.last(f"{PREFIX}/last/transcript").payload == b"what time is it"
    assert late.last(f"{PREFIX}/last/latency_ms").payload == b"287"
    with pytest.raises(ValueError, match="not one of"):
        bridge.publish_state("sleeping")

    bridge.stop()  # clean stop publishes offline
    wait_until(lambda: late.on(f"{PREFIX}/availability")[-1].payload == b"offline", 10, "offline")
    later = subscriber(mosquitto.port, [f"{PREFIX}/availability"])
    assert later.last(f"{PREFIX}/availability").payload == b"offline"


def test_last_will_when_the_process_is_killed(
    mosquitto: Broker, subscriber: Callable[..., Subscriber]
) -> None:
    code = textwrap.dedent(f"""
        import time
        from edge_voice.core.config import Config, MqttConfig
        from edge_voice.integrations.mqtt import MqttBridge, tls_context
        mqtt = MqttConfig(enabled=True, host="127.0.0.1", port={mosquitto.port}, keepalive_s=5)
        cfg = Config(device_id="lwtdev", mqtt=mqtt)
        bridge = MqttBridge(cfg, lambda cmd: None)
        bridge.start()
        while not bridge.connected:
            time.sleep(0.01)
        print("connected", flush=True)
        time.sleep(120)
    """)
    sub = subscriber(mosquitto.port, ["edge-voice/lwtdev/availability"])
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"connected"
        wait_until(lambda: [m.payload for m in sub.on("edge-voice/lwtdev/")] == [b"online"], 10, "online")
        proc.send_signal(signal.SIGKILL)  # no clean disconnect: only the broker's last will can say offline
        proc.wait(10)
        wait_until(lambda: sub.on("edge-voice/lwtdev/")[-1].payload == b"offline", 15, "last will")
    finally:
        proc.kill()
        proc.wait()
    assert [m.payload for m in sub.on("edge-voice/lwtdev/")] == [b"online", b"offline"]


# ---------------------------------------------------------------------------------------------- commands


def test_every_command_reaches_on_command(
    mosquitto: Broker,
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    bridge, commands = bridges(make_cfg(mosquitto.port, allow_commands=MQTT_COMMAND_NAMES))
    pub = subscriber(mosquitto.port, ["unused/#"])
    sent = [
        ("listen", b""),
        ("cancel", b"{}"),
        ("say", json.dumps({"text": "  Hello there.  "}).encode()),
        ("announce", json.dumps({"text": "Dinner is ready"}).encode()),
        ("mute", b'{"on": true}'),
        ("mute", b'{"on": false}'),
        ("volume", b'{"level": 0.3}'),
        ("volume", b'{"level": 1}'),
    ]
    for name, payload in sent:
        pub.client.publish(f"{PREFIX}/cmd/{name}", payload, qos=1).wait_for_publish(5)
    assert commands.wait(len(sent)) == [
        ListenCommand("mqtt"),
        CancelCommand("mqtt"),
        SayCommand("Hello there.", announce=False),
        SayCommand("Dinner is ready", announce=True),
        MuteCommand(True),
        MuteCommand(False),
        VolumeCommand(0.3),
        VolumeCommand(1.0),
    ]
    assert bridge.stats().bad_commands == 0


def test_bad_payloads_give_error_events_and_the_bridge_keeps_serving(
    mosquitto: Broker,
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    bridge, commands = bridges(make_cfg(mosquitto.port))
    sub = subscriber(mosquitto.port, [f"{PREFIX}/event/error"])
    bad = [
        ("say", b"hello, not json", "payload", "not JSON"),
        ("mute", b'{"on": "yes"}', "on", "true or false"),
        ("volume", b'{"level": 7}', "level", "between 0 and 1"),
        ("volume", b'{"level": true}', "level", "a number"),
        ("dance", b"{}", "command", "unknown command"),
        ("say", json.dumps({"text": "x" * 100_000}).encode(), "payload", "exceeds the limit of 4096"),
        ("say", b'{"txt": "typo"}', "txt", "unknown field"),
        ("say", b"[1, 2]", "payload", "JSON object"),
        ("mute", b"\xff\xfe", "payload", "not UTF-8"),
    ]
    for name, payload, _, _ in bad:
        sub.client.publish(f"{PREFIX}/cmd/{name}", payload, qos=1).wait_for_publish(5)
    sub.client.publish(f"{PREFIX}/cmd/say", b'{"text": "still here"}', qos=1).wait_for_publish(5)

    got = commands.wait(len(bad) + 1)
    assert got[-1] == SayCommand("still here")
    assert all(isinstance(c, BadCommand) for c in got[:-1])
    assert [c.name for c in got[:-1] if isinstance(c, BadCommand)] == [b[0] for b in bad]
    errors = [m.json() for m in sub.wait_for(f"{PREFIX}/event/error", len(bad))]
    for body, (name, _, field, reason) in zip(errors, bad, strict=True):
        assert body["type"] == "error"
        assert body["code"] == "bad_command"
        assert body["command"] == name
        assert body["field"] == field, body
        assert reason in body["message"], body
        assert body["turn_id"] is None
    assert bridge.stats().bad_commands == len(bad)
    assert bridge.connected


def test_retained_commands_are_refused(
    mosquitto: Broker,
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    pub = subscriber(mosquitto.port, ["unused/#"])
    pub.client.publish(f"{PREFIX}/cmd/say", b'{"text": "replayed"}', qos=1, retain=True).wait_for_publish(5)
    _, commands = bridges(make_cfg(mosquitto.port))
    got = commands.wait(1)
    assert isinstance(got[0], BadCommand) and "retain" in got[0].message
    pub.client.publish(f"{PREFIX}/cmd/say", b"", qos=1, retain=True).wait_for_publish(5)  # clear it


# ------------------------------------------------------------------------------------- nothing is lost


def test_broker_restart_mid_stream_loses_no_qos1_event(
    mosquitto: Broker,
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    sub = subscriber(mosquitto.port, [f"{PREFIX}/event/#"], client_id="restart-sub", persistent=True)
    bridge, _ = bridges(make_cfg(mosquitto.port))
    total = 400
    published = [0]

    def produce() -> None:
        for i in range(1, total + 1):
            bridge.publish_event(ev("response.text.delta", 7, index=i))
            published[0] = i
            time.sleep(0.002)

    producer = threading.Thread(target=produce)
    producer.start()
    wait_until(lambda: published[0] >= 100, 20, "100 events published")
    mosquitto.stop()  # mid-stream: events are in flight while the broker goes away
    wait_until(lambda: not bridge.connected, 10, "bridge noticed the broker is gone")
    wait_until(lambda: published[0] >= 250, 20, "more events published while the broker is down")
    mosquitto.start()
    producer.join()
    wait_until(lambda: bridge.connected, 30, "bridge reconnected")
    assert bridge.flush(30)

    got = [m.json() for m in sub.wait_for(f"{PREFIX}/event/", total, timeout_s=30)]
    indexes = [b["index"] for b in got]
    first_seen = list(dict.fromkeys(indexes))
    assert sorted(first_seen) == list(range(1, total + 1)), "QoS 1 events lost across the restart"
    assert first_seen == sorted(first_seen), "events out of order"
    stats = bridge.stats()
    assert stats.dropped == 0
    assert stats.buffered > 0  # some really waited for the broker
    assert stats.sent >= total
    logging.getLogger(__name__).info(
        "restart: %d received, %d duplicates, stats %s", len(indexes), len(indexes) - len(first_seen), stats
    )


def test_full_buffer_drops_the_oldest_and_counts_them(
    mosquitto: Broker,
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    sub = subscriber(mosquitto.port, [f"{PREFIX}/event/#"], client_id="overflow-sub", persistent=True)
    bridge, _ = bridges(make_cfg(mosquitto.port, buffer_max=10))
    mosquitto.stop()
    wait_until(lambda: not bridge.connected, 10, "bridge disconnected")
    for i in range(1, 26):
        bridge.publish_event(ev("transcript.final", i, transcript=f"utterance {i}"))
    wait_until(lambda: bridge.stats().buffered == 25, 10, "25 events buffered")
    stats = bridge.stats()
    assert (stats.dropped, stats.pending) == (15, 10)
    mosquitto.start()
    wait_until(lambda: bridge.connected, 30, "bridge reconnected")
    assert bridge.flush(20)
    got = [m.json() for m in sub.wait_for(f"{PREFIX}/event/", 11)]
    assert [b["turn_id"] for b in got[:10]] == list(range(16, 26))  # the newest ten, in order
    # and the loss is said, not silent
    assert got[10]["type"] == "error" and got[10]["code"] == "events_dropped" and got[10]["lost"] == 15


# ------------------------------------------------------------------------------ intents and discovery


def test_intents_on_own_and_hermes_topics(
    mosquitto: Broker,
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    sub = subscriber(mosquitto.port, [f"{PREFIX}/intent/#", "hermes/intent/#"])
    bridge, _ = bridges(make_cfg(mosquitto.port, hermes=True))
    bridge.publish_intent("turn_on", (("device", "kitchen light"),), "turn on the kitchen light", 4)
    own = sub.last(f"{PREFIX}/intent/turn_on").json()
    assert (
        own["intent"] == "turn_on" and own["slots"] == {"device": ["kitchen light"]} and own["turn_id"] == 4
    )
    hermes = sub.last("hermes/intent/turn_on").json()
    assert hermes["input"] == "turn on the kitchen light"
    assert hermes["intent"] == {"intentName": "turn_on", "confidenceScore": 1.0}
    assert hermes["siteId"] == DEVICE
    (slot,) = hermes["slots"]
    assert slot["slotName"] == "device" and slot["value"] == {"kind": "Unknown", "value": "kitchen light"}
    assert slot["range"] == {"start": 12, "end": 25, "rawStart": 12, "rawEnd": 25}


def test_home_assistant_discovery(
    mosquitto: Broker,
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    sub = subscriber(mosquitto.port, ["homeassistant/#"])
    allow = (*DEFAULT_MQTT_COMMANDS, "listen")
    _, commands = bridges(make_cfg(mosquitto.port, allow_commands=allow, retain_transcript=True))
    configs = {m.topic: m.json() for m in sub.wait_for("homeassistant/", 9)}
    assert set(configs) == {
        f"homeassistant/sensor/{DEVICE}/state/config",
        f"homeassistant/sensor/{DEVICE}/last_transcript/config",
        f"homeassistant/sensor/{DEVICE}/last_latency/config",
        f"homeassistant/sensor/{DEVICE}/timer/config",
        f"homeassistant/switch/{DEVICE}/mute/config",
        f"homeassistant/number/{DEVICE}/volume/config",
        f"homeassistant/button/{DEVICE}/listen/config",
        f"homeassistant/event/{DEVICE}/intent/config",
        f"homeassistant/event/{DEVICE}/voice/config",
    }
    for body in configs.values():
        assert body["device"]["identifiers"] == [f"edge_voice_{DEVICE}"]  # namespaced (issue 18)
        # the timer sensor has its own availability beside the device's (HA cannot clear a timestamp)
        topics = [a["topic"] for a in body.get("availability", [])] or [body["availability_topic"]]
        assert f"{PREFIX}/availability" in topics
        assert body["unique_id"].startswith(f"edge_voice_{DEVICE}_")
    assert configs[f"homeassistant/sensor/{DEVICE}/state/config"]["state_topic"] == f"{PREFIX}/state"
    assert configs[f"homeassistant/sensor/{DEVICE}/last_latency/config"]["unit_of_measurement"] == "ms"
    switch = configs[f"homeassistant/switch/{DEVICE}/mute/config"]
    assert switch["command_topic"] == f"{PREFIX}/cmd/mute"
    # what Home Assistant sends when the switch is flipped is a valid command
    sub.client.publish(switch["command_topic"], switch["payload_on"], qos=1).wait_for_publish(5)
    button = configs[f"homeassistant/button/{DEVICE}/listen/config"]
    sub.client.publish(button["command_topic"], button["payload_press"], qos=1).wait_for_publish(5)
    assert commands.wait(2) == [MuteCommand(True), ListenCommand("mqtt")]
    # Home Assistant restarting (homeassistant/status = online) makes the bridge announce itself again
    before = len(sub.on("homeassistant/"))
    sub.client.publish("homeassistant/status", b"online", qos=1).wait_for_publish(5)
    sub.wait_for("homeassistant/", before + 9)


# ---------------------------------------------------------------------------------------------- auth


def test_username_and_password(
    broker_factory: Callable[..., Broker],
    subscriber: Callable[..., Subscriber],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    broker = broker_factory(users={"edge": "s3cret-Pa55", "watcher": "w4tch"})
    sub = subscriber(broker.port, [f"{PREFIX}/event/#"], username="watcher", password="w4tch")
    monkeypatch.setenv("TEST_MQTT_PW", "s3cret-Pa55")
    bridge, _ = bridges(make_cfg(broker.port, username="edge", password_env="TEST_MQTT_PW"))
    bridge.publish_event(ev("wake.detected", 1, word="hey_jarvis"))
    assert sub.last(f"{PREFIX}/event/wake.detected").json()["word"] == "hey_jarvis"

    monkeypatch.setenv("TEST_MQTT_PW", "wrong-Pa55")
    wrong, _ = bridges(
        make_cfg(broker.port, username="edge", password_env="TEST_MQTT_PW", client_id="edge-voice-wrong"),
        wait_connected=False,
    )
    wait_until(lambda: "refused" in caplog.text, 15, "the refusal to be logged")
    assert not wrong.connected
    assert "s3cret-Pa55" not in caplog.text and "wrong-Pa55" not in caplog.text

    lines = {
        line.name: line
        for line in run_doctor(
            make_cfg(broker.port, username="edge", password_env="TEST_MQTT_PW"), verify_models=False
        )
    }
    assert lines["mqtt broker"].ok is False and "refused" in lines["mqtt broker"].detail
    monkeypatch.setenv("TEST_MQTT_PW", "s3cret-Pa55")
    lines = {
        line.name: line
        for line in run_doctor(
            make_cfg(broker.port, username="edge", password_env="TEST_MQTT_PW"), verify_models=False
        )
    }
    assert lines["mqtt broker"].ok is True


def test_tls_with_a_private_ca(
    broker_factory: Callable[..., Broker],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = broker_factory(tls=True)
    bridge, _ = bridges(make_cfg(broker.port, tls=True, ca_file=str(broker.ca_file)))
    bridge.publish_event(ev("wake.detected", 1, word="hey_jarvis"))
    assert bridge.flush(10)
    assert bridge.stats().sent == 1  # acknowledged by the broker over TLS
    lines = {
        line.name: line
        for line in run_doctor(
            make_cfg(broker.port, tls=True, ca_file=str(broker.ca_file)), verify_models=False
        )
    }
    assert lines["mqtt broker"].ok is True

    # trusting only the system CAs, the private certificate is rejected
    caplog.set_level(logging.DEBUG)
    untrusted, _ = bridges(
        make_cfg(broker.port, tls=True, client_id="edge-voice-untrusted"), wait_connected=False
    )
    lines = {line.name: line for line in run_doctor(make_cfg(broker.port, tls=True), verify_models=False)}
    assert lines["mqtt broker"].ok is False and "CERTIFICATE_VERIFY_FAILED" in lines["mqtt broker"].detail
    assert not untrusted.connected


def test_tls_with_a_client_certificate(
    broker_factory: Callable[..., Broker],
    bridges: Callable[..., tuple[MqttBridge, Commands]],
) -> None:
    """A broker with ``require_certificate``: the daemon's certificate signed by the broker's CA is let in
    (its CN is the user name, for the ACL); no certificate, or one from another CA, is not."""
    broker = broker_factory(client_certs=True)
    cert, key = broker.client_cert("edge-voice")
    tls = {"tls": True, "ca_file": str(broker.ca_file)}
    bridge, _ = bridges(make_cfg(broker.port, cert_file=str(cert), key_file=str(key), **tls))
    bridge.publish_event(ev("wake.detected", 1, word="hey_jarvis"))
    assert bridge.flush(10)
    assert bridge.stats().sent == 1  # acknowledged over mutually authenticated TLS
    log = broker.workdir / "mosquitto.log"
    wait_until(lambda: "u'edge-voice')" in log.read_text(errors="replace"), 5, "the CN as the user name")
    doctor = {line.name: line for line in run_doctor(
        make_cfg(broker.port, cert_file=str(cert), key_file=str(key), **tls), verify_models=False
    )}  # fmt: skip
    assert doctor["mqtt broker"].ok is True, doctor["mqtt broker"].detail

    rogue_cert, rogue_key = broker.client_cert("intruder", ca="rogue-ca")
    for extra in ({}, {"cert_file": str(rogue_cert), "key_file": str(rogue_key)}):
        refused, _ = bridges(make_cfg(broker.port, client_id=f"edge-voice-x{len(extra)}", **tls, **extra),
                             wait_connected=False)  # fmt: skip
        lines = {
            line.name: line for line in run_doctor(make_cfg(broker.port, **tls, **extra), verify_models=False)
        }
        assert lines["mqtt broker"].ok is False, (extra, lines["mqtt broker"].detail)
        time.sleep(1.0)  # a few connection attempts
        assert not refused.connected


def test_an_unusable_client_certificate_exits_78_naming_the_key(tmp_path: Path) -> None:
    """A missing key, a key that is not the certificate's, an encrypted key (which would make OpenSSL
    prompt on a terminal systemd does not have): exit 78 at start-up with one line naming the key."""
    broker = Broker(tmp_path, 1)  # only its certificate helpers: nothing is started
    broker.make_certificates()
    cert, _ = broker.client_cert("edge-voice")
    _, other_key = broker.client_cert("someone-else")
    encrypted = tmp_path / "encrypted.key"
    subprocess.run(
        ["openssl", "ec", "-in", str(other_key), "-out", str(encrypted), "-aes256", "-passout", "pass:x"],
        check=True, capture_output=True,
    )  # fmt: skip
    wav = tmp_path / "in.wav"
    write_wav(wav, clips.silence(500))
    for key in (tmp_path / "missing.key", other_key, encrypted):
        env = {k: v for k, v in os.environ.items() if not k.startswith("EDGE_VOICE_")}
        env |= {
            "EDGE_VOICE_MQTT__ENABLED": "true",
            "EDGE_VOICE_MQTT__PORT": "1",
            "EDGE_VOICE_MQTT__TLS": "true",
            "EDGE_VOICE_MQTT__CA_FILE": str(broker.ca_file),
            "EDGE_VOICE_MQTT__CERT_FILE": str(cert),
            "EDGE_VOICE_MQTT__KEY_FILE": str(key),
        }
        argv = ["run", "--input", str(wav), "--output", str(tmp_path / "o.wav")]
        r = subprocess.run(
            [sys.executable, "-m", "edge_voice", *argv],
            env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        assert r.returncode == 78, r.stderr[-2000:]
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("edge-voice: config: mqtt.cert_file: cannot use ") and str(key) in last, last
        assert "Traceback" not in r.stderr
    with pytest.raises(ConfigError, match=r"mqtt\.cert_file"):
        tls_context(MqttConfig(tls=True, cert_file=str(cert), key_file=str(other_key)))
    with pytest.raises(ConfigError, match=r"mqtt\.cert_file: must be set together"):
        MqttConfig(tls=True, cert_file=str(cert))
    with pytest.raises(ConfigError, match=r"mqtt\.cert_file: must be used only with mqtt\.tls"):
        MqttConfig(cert_file=str(cert), key_file=str(other_key))


def test_doctor_reports_an_unreachable_broker(mosquitto: Broker) -> None:
    port = mosquitto.port
    mosquitto.stop()
    lines = {line.name: line for line in run_doctor(make_cfg(port), verify_models=False)}
    assert lines["mqtt broker"].ok is False and "unreachable" in lines["mqtt broker"].detail
