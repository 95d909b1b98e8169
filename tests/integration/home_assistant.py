"""A real Home Assistant core (tests/home_assistant.sh installs it in its own venv) on loopback, set up as a
user would: onboarding through its REST API, then the MQTT integration through the UI's config flow — no
YAML written by the "user". The test config holds only what a stock install has (``automation: !include
automations.yaml``) plus one MQTT light standing in for the user's kitchen light."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_until
from tests.integration.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "tests" / "home_assistant.sh"
BLUEPRINT = REPO / "edge_voice" / "data" / "home_assistant" / "edge_voice_intents.yaml"
START_TIMEOUT_S = 180  # a loaded two-core box: HA 2024.3 starts in ~15 s alone
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


def ha_venv() -> Path:
    env = os.environ.get("EDGE_VOICE_HA_VENV")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "edge-voice" / "ha-venv"


def install() -> Path:
    venv = ha_venv()
    r = subprocess.run(
        ["sh", str(INSTALL_SCRIPT), str(venv)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHON": sys.executable},
    )
    if r.returncode != 0:
        pytest.fail(f"tests/home_assistant.sh failed (needs the package index once):\n{r.stderr[-3000:]}")
    return venv


@dataclass
class HomeAssistant:
    venv: Path
    config_dir: Path
    mqtt_port: int
    port: int = field(default_factory=free_port)
    token: str = ""
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.config_dir / "home-assistant.log"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def write_config(self) -> None:
        self.config_dir.mkdir(parents=True, exist_ok=True)
        text = CONFIG.format(port=self.port, kitchen_set=KITCHEN_SET)
        (self.config_dir / "configuration.yaml").write_text(text)
        (self.config_dir / "automations.yaml").write_text("[]\n")
        # what the UI's "Import blueprint" does: the file under blueprints/automation/<author>/
        target = self.config_dir / "blueprints" / "automation" / "edge_voice"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(BLUEPRINT, target / BLUEPRINT.name)

    def start(self) -> None:
        assert self.proc is None
        if not (self.config_dir / "configuration.yaml").exists():
            self.write_config()
        self.proc = subprocess.Popen(
            [str(self.venv / "bin" / "hass"), "-c", str(self.config_dir), "--skip-pip", "--log-no-color"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        proc = self.proc

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"hass exited with {proc.returncode}: {self.log_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/manifest.json", timeout=2) as r:
                    return bool(r.status == 200)
            except (OSError, urllib.error.URLError):
                return False

        wait_until(up, START_TIMEOUT_S, "Home Assistant to answer HTTP", poll_s=0.25)

    def stop(self) -> None:
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
            self.proc = None

    # ------------------------------------------------------------------------------------------ REST

    def request(self, method: str, path: str, body: Any = None, *, form: bool = False) -> Any:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        data = None
        if body is not None:
            if form:
                data = urllib.parse.urlencode(body).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        req = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                raw = r.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise AssertionError(f"{method} {path}: HTTP {exc.code}: {detail}") from None
        return json.loads(raw) if raw else None

    def onboard(self) -> None:
        """The first-run wizard's owner account, then a token for it (``/auth/token``)."""
        client_id = f"{self.url}/"
        user = {
            "client_id": client_id,
            "name": "Test",
            "username": "test",
            "password": "test-password-1",
            "language": "en",
        }
        code = self.request("POST", "/api/onboarding/users", user)["auth_code"]
        grant = {"grant_type": "authorization_code", "code": code, "client_id": client_id}
        self.token = self.request("POST", "/auth/token", grant, form=True)["access_token"]

    def add_mqtt(self) -> None:
        """Settings → Devices & services → Add integration → MQTT, broker and port: the UI's config flow."""
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        step = self.request(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"broker": "127.0.0.1", "port": self.mqtt_port},
        )
        assert step.get("type") == "create_entry", step

    def add_blueprint_automation(self, automation_id: str = "edge_voice_intents") -> None:
        """Automations → Create → from the blueprint: the UI saves this (into automations.yaml)."""
        body = {
            "alias": "edge-voice intents",
            "description": "",
            "use_blueprint": {
                "path": f"edge_voice/{BLUEPRINT.name}",
                "input": {"intent_topic": "edge-voice/+/intent/+"},
            },
        }
        self.request("POST", f"/api/config/automation/config/{automation_id}", body)
        wait_until(
            lambda: self.state(f"automation.{automation_id}") is not None,
            30,
            "the blueprint automation to load",
            poll_s=0.2,
        )

    def states(self) -> dict[str, dict[str, Any]]:
        return {s["entity_id"]: s for s in self.request("GET", "/api/states")}

    def state(self, entity_id: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = self.request("GET", f"/api/states/{entity_id}")
        except AssertionError as exc:
            if "HTTP 404" in str(exc):
                return None
            raise
        return result

    def call(self, domain: str, service: str, data: dict[str, Any]) -> None:
        self.request("POST", f"/api/services/{domain}/{service}", data)

    def wait_state(self, entity_id: str, value: str, timeout_s: float = 30) -> dict[str, Any]:
        def now() -> str | None:
            s = self.state(entity_id)
            return None if s is None else str(s["state"])

        wait_until(lambda: now() == value, timeout_s, f"{entity_id} to be {value!r} (is {now()!r})", 0.2)
        found = self.state(entity_id)
        assert found is not None
        return found


def start_home_assistant(root: Path, mqtt_port: int) -> HomeAssistant:
    ha = HomeAssistant(install(), root / "ha-config", mqtt_port)
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
