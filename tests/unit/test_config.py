"""Config: every bad key or value fails at start-up naming the dotted key; the CLI exits 78."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_voice.core.config import Config, ConfigError, env_overrides, from_mapping, load
from edge_voice.models import registry


def test_defaults_are_valid_and_frozen() -> None:
    cfg = Config()
    assert cfg.endpoint.silence_end_ms == 500 and cfg.endpoint.pre_roll_ms == 300
    assert cfg.topic_prefix == "edge-voice/edge-voice"
    with pytest.raises(AttributeError):
        cfg.device_id = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("table", "key", "fragment"),
    [
        ({"endpoint": {"silence_endms": 3}}, "endpoint.silence_endms", "unknown key"),
        ({"nonsense": 1}, "nonsense", "unknown key"),
        ({"endpoint": {"silence_end_ms": 50}}, "endpoint.silence_end_ms", "between 100 and 5000"),
        ({"endpoint": {"silence_end_ms": "500"}}, "endpoint.silence_end_ms", "an integer"),
        ({"wake": {"threshold": 1.5}}, "wake.threshold", "between"),
        ({"wake": {"thresholds": {"hey_jarvis": 2}}}, "wake.thresholds.hey_jarvis", "between"),
        ({"wake": {"words": "hey_jarvis"}}, "wake.words", "a list"),
        ({"llm": {"backend": "cloud"}}, "llm.backend", "one of 'local', 'openai'"),
        ({"llm": {"backend": "openai"}}, "llm.base_url", "http"),
        ({"mqtt": {"port": 70000}}, "mqtt.port", "between 1 and 65535"),
        ({"mqtt": {"enabled": "yes"}}, "mqtt.enabled", "true or false"),
        ({"asr": {"bias_device_names": "yes"}}, "asr.bias_device_names", "true or false"),
        ({"mqtt": {"prefix": "home/#"}}, "mqtt.prefix", "topic prefix"),
        ({"intents": {"devices": [{"name": "lamp", "kind": "lava"}]}}, "intents.devices[0].kind", "one of"),
        ({"intents": {"devices": [{"kind": "light"}]}}, "intents.devices", "name"),
        # a name with no word matched every device-less command ("turn off" → "Turning off the .")
        ({"intents": {"devices": [{"name": ""}]}}, "intents.devices[0].name", "a word"),
        ({"intents": {"devices": [{"name": " - "}]}}, "intents.devices[0].name", "a word"),
        (
            {"intents": {"devices": [{"name": "a", "aliases": ["b", "?"]}]}},
            "intents.devices[0].aliases[1]",
            "a word",
        ),
        ({"gpio": {"led_pins": [1, 2]}}, "gpio.led_pins", "0, 1 or 3"),
        ({"device_id": "living room"}, "device_id", "letters"),
        ({"audio": "loud"}, "audio", "a table"),
    ],
)
def test_bad_values_name_the_key(table: dict[str, object], key: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        from_mapping(table)
    assert info.value.key.startswith(key)
    assert fragment in str(info.value)


def test_toml_and_env_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        'device_id = "kitchen"\n[endpoint]\nsilence_end_ms = 600\n[wake]\nwords = ["hey_jarvis", "alexa"]\n'
    )
    env = {"EDGE_VOICE_ENDPOINT__SILENCE_END_MS": "450", "EDGE_VOICE_MQTT__HOST": "broker.local"}
    cfg = load(f, environ=env)
    assert cfg.device_id == "kitchen"
    assert cfg.endpoint.silence_end_ms == 450  # env wins over the file
    assert cfg.wake.words == ("hey_jarvis", "alexa")
    assert cfg.mqtt.host == "broker.local"
    assert cfg.topic_prefix == "edge-voice/kitchen"


def test_env_override_errors_name_the_key() -> None:
    with pytest.raises(ConfigError, match=r"endpoint\.silence_end_ms"):
        from_mapping(env_overrides({"EDGE_VOICE_ENDPOINT__SILENCE_END_MS": "fast"}))


def test_secrets_are_not_config_keys() -> None:
    assert env_overrides({"EDGE_VOICE_MQTT_PASSWORD": "hunter2"}) == {}


def test_manifest_variable_is_not_a_config_key_and_picks_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = tmp_path / "manifest.toml"
    manifest.write_text('[models.mine]\nkind = "derived"\npath = "mine.bin"\n')
    monkeypatch.setenv("EDGE_VOICE_MANIFEST", str(manifest))
    assert env_overrides({"EDGE_VOICE_MANIFEST": str(manifest)}) == {}
    assert list(registry.load_manifest()) == ["mine"]
    monkeypatch.delenv("EDGE_VOICE_MANIFEST")
    assert "silero-vad" in registry.load_manifest()  # the packaged one


def test_missing_explicit_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load(tmp_path / "missing.toml", environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("[endpoint\nsilence_end_ms = 3")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(bad, environ={})


@pytest.mark.parametrize(
    ("toml", "said"),
    [
        ("[vad]\nthreshhold = 0.5\n", ("vad.threshhold", "unknown key")),
        # a wildcard in a topic part would kill paho's network thread at the first publish
        ('[mqtt]\ndiscovery_prefix = "home/#"\n', ("mqtt.discovery_prefix",)),
        # a language home-assistant-intents does not ship: its list is named
        ('[intents]\nlanguage = "klingon"\n', ("intents.language", "de, ")),
    ],
)
def test_cli_exits_78_naming_the_key(tmp_path: Path, toml: str, said: tuple[str, ...]) -> None:
    f = tmp_path / "c.toml"
    f.write_text(toml)
    r = subprocess.run(
        [sys.executable, "-m", "edge_voice", "--config", str(f), "models", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 78
    assert all(s in r.stderr for s in said), r.stderr


def test_a_malformed_home_assistant_token_stops_the_start_naming_the_variable_only(tmp_path: Path) -> None:
    """A token with a space inside (or control/non-ASCII characters): exit 78 before any model loads,
    the variable named, the value nowhere (http.client used to quote it in a traceback)."""
    import os

    f = tmp_path / "c.toml"
    f.write_text('[intents]\nbackend = "home_assistant"\n')
    env = {**os.environ, "EDGE_VOICE_HA_TOKEN": "secret tok3n\n"}
    r = subprocess.run(
        [sys.executable, "-m", "edge_voice", "--config", str(f), "run"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert r.returncode == 78, r.stderr
    assert "EDGE_VOICE_HA_TOKEN" in r.stderr and "tok3n" not in r.stderr + r.stdout
