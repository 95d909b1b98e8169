"""A real Home Assistant core on loopback, for the tests (tests/integration/test_home_assistant.py) and
``bench home``: started from its own venv (tests/home_assistant.sh, ``make home-assistant``) with
``--skip-pip`` (offline), onboarded through its REST API (the first-run wizard's owner account and a token),
its MQTT integration added through the UI's config flow. Nothing here writes YAML a user would write: the
``configuration.yaml`` given stands in for a stock install plus the user's own devices."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edge_voice.cache import tool_venv

BLUEPRINT = Path(__file__).resolve().parents[1] / "data" / "home_assistant" / "edge_voice_intents.yaml"
START_TIMEOUT_S = 180  # a loaded two-core box: HA 2024.3 starts in ~10 s alone


def ha_venv() -> Path:
    return tool_venv("EDGE_VOICE_HA_VENV", "ha-venv")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until(pred: Callable[[], object], timeout_s: float, what: str, poll_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)


@dataclass
class HomeAssistant:
    venv: Path
    config_dir: Path
    config: str  # configuration.yaml; "{port}" is replaced by the HTTP port
    mqtt_port: int = 0  # 0 = no MQTT integration
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
        (self.config_dir / "configuration.yaml").write_text(self.config.replace("{port}", str(self.port)))
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

    def ready(self) -> None:
        """Onboarded, with the MQTT integration when ``mqtt_port`` is given."""
        self.onboard()
        if self.mqtt_port:
            self.add_mqtt()

    def add_mqtt(self) -> None:
        """Settings → Devices & services → Add integration → MQTT, broker and port: the UI's config flow."""
        flow = self.request("POST", "/api/config/config_entries/flow", {"handler": "mqtt"})
        step = self.request(
            "POST",
            f"/api/config/config_entries/flow/{flow['flow_id']}",
            {"broker": "127.0.0.1", "port": self.mqtt_port},
        )
        assert step.get("type") == "create_entry", step

    def add_blueprint_automation(
        self, automation_id: str = "edge_voice_intents", allowed: Sequence[str] = ()
    ) -> None:
        """Automations → Create → from the blueprint: the UI saves this (into automations.yaml).
        ``allowed``: the entities it may switch (empty: any light, switch, fan or media player)."""
        body = {
            "alias": "edge-voice intents",
            "description": "",
            "use_blueprint": {
                "path": f"edge_voice/{BLUEPRINT.name}",
                "input": {"intent_topic": "edge-voice/+/intent/+", "allowed_entities": list(allowed)},
            },
        }
        self.request("POST", f"/api/config/automation/config/{automation_id}", body)
        wait_until(
            lambda: self.state(f"automation.{automation_id}") is not None,
            30,
            "the blueprint automation to load",
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

        wait_until(lambda: now() == value, timeout_s, f"{entity_id} to be {value!r} (is {now()!r})")
        found = self.state(entity_id)
        assert found is not None
        return found
