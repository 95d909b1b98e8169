"""Devices from Home Assistant's /api/states (integrations/ha_devices.py): what is taken, what is not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edge_voice.core.config import Config, DeviceEntry, HomeAssistantConfig
from edge_voice.integrations.ha_devices import MAX_DEVICES, devices_from_states, merge


def test_devices_from_states() -> None:
    states = [
        {"entity_id": "light.kitchen", "attributes": {"friendly_name": "Kitchen Light"}},
        {"entity_id": "switch.coffee", "attributes": {"friendly_name": "Coffee-machine"}},
        {"entity_id": "fan.ceiling", "attributes": {}},  # no name: the object id
        {"entity_id": "media_player.tv", "attributes": {"friendly_name": "TV"}},
        {"entity_id": "sensor.temperature", "attributes": {"friendly_name": "Temperature"}},  # not a device
        {"entity_id": "switch.edge_voice_den_mute", "attributes": {"friendly_name": "edge-voice den Mute"}},
        {"entity_id": "light.kitchen_2", "attributes": {"friendly_name": "kitchen light"}},  # same name
        {"entity_id": "light.x", "attributes": {"friendly_name": "x" * 200}},  # too long to say
        {"entity_id": 3},
        "junk",
    ]
    got = [(d.name, d.kind, d.entity_id) for d in devices_from_states(states)]
    assert got == [
        ("kitchen light", "light", "light.kitchen"),
        ("coffee machine", "switch", "switch.coffee"),
        ("ceiling", "fan", "fan.ceiling"),
        ("tv", "media", "media_player.tv"),
    ]
    many = [{"entity_id": f"light.l{i}", "attributes": {"friendly_name": f"lamp {i}"}} for i in range(500)]
    assert len(devices_from_states(many)) == MAX_DEVICES


def test_configured_devices_win() -> None:
    configured = (DeviceEntry("kitchen light", "light", ("kitchen lamp",), "light.main"),)
    learned = (DeviceEntry("kitchen light", "light", (), "light.kitchen"), DeviceEntry("kitchen lamp"))
    learned += (DeviceEntry("fan", "fan", (), "fan.fan"),)
    assert [d.entity_id for d in merge(configured, learned)] == ["light.main", "fan.fan"]


def test_a_read_only_cache_does_not_stop_the_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from edge_voice.integrations import ha_devices

    cfg = replace(
        Config(models_dir=str(tmp_path / "models")),
        home_assistant=HomeAssistantConfig(learn_devices=True),
    )
    states = [{"entity_id": "light.porch", "attributes": {"friendly_name": "Porch light"}}]
    monkeypatch.setattr(ha_devices, "fetch_states", lambda _cfg: states)

    def read_only(_path: Path, _devices: object) -> None:
        raise PermissionError(13, "Read-only file system")

    monkeypatch.setattr(ha_devices, "_save", read_only)
    got = ha_devices.with_learned_devices(cfg)
    assert "porch light" in [d.name for d in got.intents.devices]
    assert "not cached" in caplog.text


def test_learned_names_never_crowd_the_configured_ones_out_of_whispers_prompt() -> None:
    from edge_voice.engines.asr import MAX_PROMPT_CHARS, device_prompt

    configured = (DeviceEntry("kitchen light"), DeviceEntry("fan", "fan"))
    learned = tuple(DeviceEntry(f"lamp number {i}") for i in range(200))
    prompt = device_prompt(merge(configured, learned))
    assert prompt.startswith("Kitchen light, fan, lamp number 0")
    assert len(prompt) <= MAX_PROMPT_CHARS + 1
