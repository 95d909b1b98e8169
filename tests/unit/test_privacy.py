"""Issue 19 (trust): the microphone answers only to its owner.

Every way the microphone opens for a turn sounds a tone and lights the listening LED (state
``listening``); a physical mute (button hold, mute switch) is undone only physically; MQTT topic
prefixes follow MQTT's rules at config load (exit 78 naming the key).
"""

from __future__ import annotations

import pytest

from edge_voice.core.config import ConfigError, MqttConfig
from edge_voice.core.jobs import ChimeJob
from edge_voice.core.messages import ListenCommand, MuteCommand, NoSpeech
from edge_voice.core.vocabulary import State
from tests.unit.test_orchestrator import Rig, cfg, started, stopped, wake


@pytest.mark.parametrize(
    "opened_by",
    ["wake", "button", "mqtt"],
)
def test_every_way_the_mic_opens_sounds_a_tone_and_lights_the_led(opened_by: str) -> None:
    r = Rig(cfg())
    if opened_by == "wake":
        r.send(wake(r.clock))
    else:
        r.send(ListenCommand("button" if opened_by == "button" else "mqtt"))
        assert r.listen.calls[-1][0] == "open"
    assert r.playback.of(ChimeJob) == [ChimeJob("listen")]
    assert r.memory.states == [State.LISTENING]  # the LED follows the state: pulsing = listening


def test_the_follow_up_window_lights_the_led_and_only_follows_a_turn_the_user_opened() -> None:
    """The window opens only after a reply to a turn opened by wake, button or an allowed listen
    (a remote ``say`` never opens it); the LED shows it. No second tone: it would be heard by the
    window's own VAD (no echo canceller) right after the reply."""
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock))
    r.clock.advance(2000)
    r.send(stopped(r.clock))
    c = r.decode("turn on the kitchen light")
    r.synthesize(c, ["Turning on the kitchen light."])
    r.play(c, "Turning on the kitchen light.")
    assert r.listen.calls[-1] == ("open", 3000) and r.memory.states[-1] == State.LISTENING
    r.send(NoSpeech(200000))
    assert r.memory.states[-1] == State.IDLE


def test_a_remote_say_never_opens_the_follow_up_window() -> None:
    from edge_voice.core.messages import SayCommand

    r = Rig(cfg())
    r.send(SayCommand("What is your bank PIN?"))
    (speak, _end) = r.tts.jobs
    r.synthesize(speak.ctx, ["What is your bank PIN?"])  # type: ignore[attr-defined]
    r.play(speak.ctx, "What is your bank PIN?")  # type: ignore[attr-defined]
    assert ("open", 3000) not in r.listen.calls and State.LISTENING not in r.memory.states


def _errors(r: Rig) -> list[dict[str, object]]:
    return [e.data for e in r.memory.of("error")]


def test_a_button_mute_cannot_be_undone_over_mqtt() -> None:
    r = Rig(cfg())
    r.send(MuteCommand(True, "button"))
    assert r.orch.muted and r.orch.state == State.MUTED
    r.send(MuteCommand(False), ListenCommand("mqtt"), wake(r.clock))  # the attack: unmute, then listen
    assert r.orch.muted and r.orch.state == State.MUTED
    assert not r.playback.of(ChimeJob) and ("open", None) not in r.listen.calls
    codes = [(e["code"], e.get("command")) for e in _errors(r)]
    assert ("refused", "unmute") in codes and ("muted", None) in codes
    r.send(MuteCommand(True))  # a remote mute on top does not weaken the button's
    r.send(MuteCommand(False))
    assert r.orch.muted
    r.send(MuteCommand(False, "button"))  # the owner's hold unmutes
    assert not r.orch.muted and r.orch.state == State.IDLE


def test_a_remote_mute_is_undone_by_the_button_or_remotely() -> None:
    r = Rig(cfg())
    r.send(MuteCommand(True), MuteCommand(False))
    assert not r.orch.muted
    r.send(MuteCommand(True), MuteCommand(False, "button"))
    assert not r.orch.muted


def test_the_mute_switch_holds_against_the_button_and_mqtt() -> None:
    r = Rig(cfg())
    r.send(MuteCommand(True, "switch"), MuteCommand(False, "button"), MuteCommand(False))
    assert r.orch.muted and len([e for e in _errors(r) if e["code"] == "refused"]) == 2
    r.send(MuteCommand(False, "switch"))
    assert not r.orch.muted


# --------------------------------------------------------------------------------------- topic rules


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("discovery_prefix", "home/+"),
        ("discovery_prefix", "#"),
        ("discovery_prefix", "ha\0"),
        ("discovery_prefix", ""),
        ("discovery_prefix", "$SYS"),
        ("discovery_prefix", "homeassistant/"),
        ("prefix", "x" * 2000),
        ("prefix", "a/+/b"),
        ("client_id", "a\0b"),
    ],
)
def test_topic_parts_follow_mqtt_rules(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as err:
        MqttConfig(**{key: value})  # type: ignore[arg-type]
    assert err.value.key == f"mqtt.{key}"


def test_unknown_allowed_command_is_named() -> None:
    with pytest.raises(ConfigError, match="'open_mic'") as err:
        MqttConfig(allow_commands=("say", "open_mic"))
    assert err.value.key == "mqtt.allow_commands"
