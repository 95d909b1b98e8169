"""Devices from Home Assistant's /api/states (integrations/ha_devices.py): what is taken, what is not."""

from __future__ import annotations

from edge_voice.core.config import DeviceEntry
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
