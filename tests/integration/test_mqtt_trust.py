"""Issue 19 against a real mosquitto: the attacks of the review (a LAN client on the broker), replayed.

Each loop is bounded and stops by itself; RSS is read from /proc/self/status.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from edge_voice.core.events import Event, IntentInfo, ResponseDoneInfo, TranscriptInfo
from edge_voice.core.messages import Command, MuteCommand, SayCommand
from edge_voice.core.vocabulary import State
from edge_voice.integrations.home_sinks import MqttEventSink
from edge_voice.integrations.mqtt import MqttBridge
from tests.conftest import wait_until
from tests.integration import test_mqtt
from tests.integration.conftest import Broker, Subscriber
from tests.integration.test_mqtt import DEVICE, PREFIX, Commands, ev, make_cfg
from tests.integration.test_security_remote_llm import rss_mb  # strict: no VmRSS is an error

log = logging.getLogger(__name__)
Bridges = Callable[..., tuple[MqttBridge, Commands]]
bridges = test_mqtt.bridges  # the fixture: bridges started and connected, stopped after the test


def errors(sub: Subscriber) -> list[dict[str, Any]]:
    return [m.json() for m in sub.on(f"{PREFIX}/event/error")]


# ----------------------------------------------------------------------------------- 1. who controls


def test_remote_listen_and_unmute_are_refused_by_default_and_named(
    mosquitto: Broker, subscriber: Callable[..., Subscriber], bridges: Bridges
) -> None:
    """Before: ``mute {"on": false}`` then ``listen`` reached the daemon: the mic opened, no wake word."""
    sub = subscriber(mosquitto.port, [f"{PREFIX}/event/#"])
    bridge, commands = bridges(make_cfg(mosquitto.port))
    for name, payload in [("mute", b'{"on": false}'), ("listen", b"{}"), ("say", b'{"text": "Hi."}')]:
        sub.client.publish(f"{PREFIX}/cmd/{name}", payload, qos=1).wait_for_publish(5)
    assert commands.wait(1) == [SayCommand("Hi.")]  # the daemon keeps serving what is allowed
    wait_until(lambda: len(errors(sub)) >= 2, 10, "two refusals")
    refused = errors(sub)
    assert [(e["code"], e["command"]) for e in refused] == [("refused", "unmute"), ("refused", "listen")]
    assert "mqtt.allow_commands" in refused[0]["message"]
    assert bridge.stats().refused == 2


def test_allowed_remote_listen_reaches_the_daemon(
    mosquitto: Broker, subscriber: Callable[..., Subscriber], bridges: Bridges
) -> None:
    sub = subscriber(mosquitto.port, ["unused/#"])
    _, commands = bridges(make_cfg(mosquitto.port, allow_commands=("listen", "unmute")))
    sub.client.publish(f"{PREFIX}/cmd/mute", b'{"on": false}', qos=1).wait_for_publish(5)
    sub.client.publish(f"{PREFIX}/cmd/listen", b"", qos=1).wait_for_publish(5)
    assert len(commands.wait(2)) == 2  # and the orchestrator chimes (tests/unit/test_privacy.py)


class _Daemon:
    def __init__(self) -> None:
        self.turn_loop = SimpleNamespace(post=lambda _c: None)
        self.orch = SimpleNamespace(state=State.IDLE, muted=False)
        self.playback = SimpleNamespace(volume=1.0)
        self.engines = SimpleNamespace(intents=None)


def _said(sink: MqttEventSink) -> None:
    pin = "My bank PIN is 4 4 7 1"
    now = time.monotonic_ns()
    sink.emit(Event.of(TranscriptInfo(pin, 1800, 120.0, False), 1, now))
    sink.emit(Event.of(IntentInfo("turn_on", (("device", "kitchen light"),), pin, 1.0), 1, now))
    sink.emit(Event.of(ResponseDoneInfo("done", "llm", pin, "Noted.", "Noted.", False, {}), 1, now))


@pytest.mark.parametrize("publish_transcripts", [True, False])
def test_transcripts_on_mqtt_are_a_choice_and_never_retained_by_default(
    mosquitto: Broker, subscriber: Callable[..., Subscriber], publish_transcripts: bool
) -> None:
    """Before: the PIN stayed retained in ``last/transcript`` for any later subscriber to read."""
    planted = subscriber(mosquitto.port, ["unused/#"])  # what a previous version left on the broker
    planted.client.publish(f"{PREFIX}/last/transcript", b"old secret", qos=1, retain=True).wait_for_publish(5)
    cfg = make_cfg(mosquitto.port, publish_transcripts=publish_transcripts)
    sink = MqttEventSink(cfg, _Daemon())  # type: ignore[arg-type]
    try:
        wait_until(lambda: sink.bridge.connected, 15, "bridge connected")
        sub = subscriber(mosquitto.port, [f"{PREFIX}/#"])
        _said(sink)
        assert sink.bridge.flush(10)
        wait_until(lambda: sub.on(f"{PREFIX}/event/response.done"), 10, "response.done")
        late = subscriber(mosquitto.port, [f"{PREFIX}/last/#"])  # a subscriber that comes later
        time.sleep(0.5)
        assert not [m for m in late.on(f"{PREFIX}/last/transcript") if m.payload]  # nothing retained
        words = json.dumps(
            [m.json() for m in sub.on(f"{PREFIX}/event/")] + [m.json() for m in sub.on(f"{PREFIX}/intent/")]
        )
        words += json.dumps([m.json() for m in sub.on(f"{PREFIX}/voice")])  # Home Assistant's voice event
        assert ("4 4 7 1" in words) is publish_transcripts
        assert bool(sub.on(f"{PREFIX}/event/transcript.final")) is publish_transcripts
    finally:
        sink.stop()


def test_a_hardware_mute_command_source_survives_the_wire() -> None:
    assert MuteCommand(True).source == "mqtt"  # what the bridge builds: never a physical source


# ------------------------------------------------------------------------------ 3. stays up, delivers


def test_a_client_id_takeover_does_not_keep_the_daemon_offline(mosquitto: Broker, bridges: Bridges) -> None:
    """Before: connecting as ``edge-voice-<device_id>`` every 1.5 s kept the daemon offline 20 of 23 s."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    bridge, _ = bridges(make_cfg(mosquitto.port))
    assert bridge.client_id.startswith(f"edge-voice-{DEVICE}-") and len(bridge.client_id) > 24
    offline = 0
    stop_at = time.monotonic() + 6
    while time.monotonic() < stop_at:  # the attacker, with the id the daemon used to have
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"edge-voice-{DEVICE}")
        c.connect("127.0.0.1", mosquitto.port, keepalive=5)
        c.loop(0.1)
        c.disconnect()
        for _ in range(5):
            offline += not bridge.connected
            time.sleep(0.1)
    log.info("takeover: offline in %d of 60 samples", offline)
    assert offline == 0


def test_a_home_assistant_birth_flood_republishes_discovery_once_per_burst(
    mosquitto: Broker, subscriber: Callable[..., Subscriber], bridges: Bridges
) -> None:
    """Before: 10,000 births → 50,005 retained publishes queued in paho, +117 MB."""
    bridge, _ = bridges(make_cfg(mosquitto.port, discovery_debounce_ms=1000))
    sub = subscriber(mosquitto.port, ["homeassistant/+/+/+/config"])
    wait_until(lambda: len(sub.on("homeassistant/")) >= 3, 10, "retained discovery")  # 3 entities on
    before_rss, before = rss_mb(), bridge.stats().discovery_bursts
    for _ in range(10_000):
        sub.client.publish("homeassistant/status", b"online", qos=0)
    time.sleep(2.5)  # the burst's one republication is due after the debounce
    bursts = bridge.stats().discovery_bursts - before
    grew = rss_mb() - before_rss
    log.info("birth flood: %d discovery publications, RSS %+.1f MB", bursts, grew)
    assert 1 <= bursts <= 5 and grew < 40
    assert bridge.connected


def test_a_command_flood_is_rate_limited_and_counted_and_no_event_is_lost_silently(
    mosquitto: Broker, subscriber: Callable[..., Subscriber], bridges: Bridges
) -> None:
    """Before: 10,000 ``say`` in 10 s dropped 32,035 of 33,946 events (94 %), silently."""
    sub = subscriber(mosquitto.port, [f"{PREFIX}/event/#", f"{PREFIX}/state"])
    handled = threading.Event()
    bridge_box: list[MqttBridge] = []

    def daemon(cmd: Command) -> None:  # what the daemon does per say: states flip, events go out
        b = bridge_box[0]
        for state in ("thinking", "speaking", "idle"):
            b.publish_state(state)
        b.publish_event(ev("response.started", 1, route="say"))
        b.publish_event(ev("response.done", 1, status="done"))
        handled.set()

    bridge = MqttBridge(make_cfg(mosquitto.port), daemon)
    bridge_box.append(bridge)
    bridge.start()
    try:
        wait_until(lambda: bridge.connected, 15, "bridge connected")
        before_rss = rss_mb()
        for _ in range(10_000):
            sub.client.publish(f"{PREFIX}/cmd/say", b'{"text": "hi"}', qos=0)
        wait_until(lambda: bridge.stats().refused > 0, 15, "a refusal")
        time.sleep(1.5)
        assert bridge.flush(30)
        s = bridge.stats()
        accepted = 10_000 - s.refused
        limited = [e for e in errors(sub) if e["code"] == "rate_limited"]
        wait_until(
            lambda: sum(e["refused"] for e in errors(sub) if e["code"] == "rate_limited") == s.refused,
            10,
            "refusals counted in events",
        )
        events = sub.on(f"{PREFIX}/event/response.")
        log.info(
            "command flood: %d accepted, %d refused (%d events), %d events delivered, dropped %d, "
            "RSS %+.1f MB",
            accepted,
            s.refused,
            len(limited),
            len(events),
            s.dropped,
            rss_mb() - before_rss,
        )
        assert accepted <= 200 and s.dropped == 0
        assert len(events) == 2 * accepted  # every event of every accepted command arrived
        assert handled.is_set()
    finally:
        bridge.stop(flush_timeout_s=1)


def test_intents_buffered_during_an_outage_expire(
    mosquitto: Broker, subscriber: Callable[..., Subscriber], bridges: Bridges
) -> None:
    """Before: a ``turn_on`` spoken during an outage executed 15 s late."""
    sub = subscriber(mosquitto.port, [f"{PREFIX}/#"], client_id="expiry-sub", persistent=True)
    bridge, _ = bridges(make_cfg(mosquitto.port, intent_max_age_ms=300))
    mosquitto.stop()
    wait_until(lambda: not bridge.connected, 10, "bridge disconnected")
    bridge.publish_intent("turn_on", {"device": "kitchen light"}, "turn on the kitchen light", 1)
    bridge.publish_event(ev("response.done", 1, status="done"))
    time.sleep(0.6)
    mosquitto.start()
    wait_until(lambda: bridge.connected, 30, "bridge reconnected")
    assert bridge.flush(20)
    wait_until(lambda: sub.on(f"{PREFIX}/event/error"), 10, "the loss event")
    assert not sub.on(f"{PREFIX}/intent/")
    assert sub.on(f"{PREFIX}/event/response.done")  # events still arrive: only intents go stale
    loss = errors(sub)[-1]
    assert loss["code"] == "events_dropped" and loss["expired"] == 1 and bridge.stats().expired == 1
    bridge.publish_intent("turn_on", {"device": "kitchen light"}, "turn on the kitchen light", 2)
    sub.wait_for(f"{PREFIX}/intent/turn_on", 1)  # a fresh one is delivered


def test_shutdown_during_an_outage_warns_with_the_count(
    mosquitto: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    """Before: SIGTERM during an outage dropped 10 buffered events, logged at INFO."""
    bridge = MqttBridge(make_cfg(mosquitto.port), lambda _c: None)
    bridge.start()
    wait_until(lambda: bridge.connected, 15, "bridge connected")
    mosquitto.stop()
    wait_until(lambda: not bridge.connected, 10, "bridge disconnected")
    for i in range(10):
        bridge.publish_event(ev("response.done", i, status="done"))
    wait_until(lambda: bridge.stats().pending >= 10, 5, "10 buffered")
    with caplog.at_level(logging.WARNING, logger="edge_voice.integrations.mqtt"):
        bridge.stop(flush_timeout_s=0.2)
    lost = [r for r in caplog.records if r.levelno == logging.WARNING and "lost at shutdown" in r.message]
    assert lost and "10 buffered events" in lost[0].message
