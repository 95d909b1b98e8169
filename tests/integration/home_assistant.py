"""A real Home Assistant core (tests/home_assistant.sh installs it in its own venv) on loopback, set up as a
user would: onboarding through its REST API, then the MQTT integration through the UI's config flow — no
YAML written by the "user". The test config holds only what a stock install has (``automation: !include
automations.yaml``) plus one MQTT light standing in for the user's kitchen light."""

from __future__ import annotations

import time
from pathlib import Path

from edge_voice.bench.ha_server import HomeAssistant, ha_venv
from tests.conftest import install_venv, wait_until

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "tests" / "home_assistant.sh"
KITCHEN_SET = "test/kitchen/set"  # the MQTT light's command topic: what HA sends when it switches it
CONFIG = """\
homeassistant:
  name: edge-voice test
  latitude: 0
  longitude: 0
  elevation: 0
  unit_system: metric
  time_zone: UTC
  currency: EUR
  country: US
  language: en
http:
  server_host: 127.0.0.1
  server_port: {port}
frontend:
config:
onboarding:
conversation:
logger:
  default: warning
automation: !include automations.yaml
mqtt:
  light:
    - name: Kitchen light
      unique_id: test_kitchen_light
      command_topic: {kitchen_set}
      # no state topic: the light is optimistic, its state is what HA last commanded
"""


def install() -> Path:
    return install_venv(INSTALL_SCRIPT, ha_venv())


def start_home_assistant(root: Path, mqtt_port: int) -> HomeAssistant:
    config = CONFIG.replace("{kitchen_set}", KITCHEN_SET)
    ha = HomeAssistant(install(), root / "ha-config", config, mqtt_port)
    started = time.monotonic()
    ha.start()
    try:
        ha.onboard()
        ha.add_mqtt()
        wait_until(
            lambda: ha.state("light.kitchen_light") is not None, 60, "the MQTT entry to load the light", 0.2
        )
    except BaseException:
        ha.stop()
        raise
    print(f"home assistant ready in {time.monotonic() - started:.1f} s")
    return ha
