"""Devices learned from Home Assistant (``home_assistant.learn_devices``): the entities a user already
named there become the fast path's devices, with their entity ids — no second list to keep in sync.

At start-up ``GET /api/states`` (the long-lived token from ``home_assistant.token_env``; bounded in time and
size) gives every light, switch, fan and media player with its friendly name. They are cached on disk, so
the device keeps knowing them when HA is away at the next start; a config reload reads the cache only (no
network on the orchestrator's thread). The configured ``[[intents.devices]]`` stay, first: a name in both
keeps the configured entry (its aliases, its entity id).

REST, not the websocket registry: ``/api/states`` carries names but not HA's aliases or areas; a name
like "Kitchen light" still gives the room ("kitchen") to the matcher's word lists.
"""

from __future__ import annotations

import dataclasses
import http.client
import json
import logging
import os
import tempfile
import time
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge_voice.core.config import Config, DeviceEntry, HomeAssistantConfig
from edge_voice.core.intent import norm_device_name
from edge_voice.core.redact import redact_url
from edge_voice.engines.base import RemoteError

log = logging.getLogger(__name__)

MAX_STATES_BYTES = 8 * 1024 * 1024  # a big home's /api/states is ~1-2 MB
MAX_DEVICES = 200  # the matcher's fuzzy names compare against every device
MAX_NAME_CHARS = 64
KINDS = {"light": "light", "switch": "switch", "fan": "fan", "media_player": "media"}


def cache_path(cfg: Config) -> Path:
    return cfg.models_path.parent / f"ha-devices-{cfg.device_id}.json"


def fetch_states(cfg: HomeAssistantConfig) -> list[Any]:
    from edge_voice.engines.remote.home_assistant import bounded_request, read_token

    token = read_token(cfg.token_env)
    u = urllib.parse.urlsplit(cfg.url)
    https = u.scheme == "https"
    cls = http.client.HTTPSConnection if https else http.client.HTTPConnection
    conn = cls(u.hostname or "", u.port or (443 if https else 80), timeout=cfg.timeout_ms / 1000)
    deadline = time.monotonic() + cfg.timeout_ms / 1000
    path = u.path.rstrip("/") + "/api/states"
    try:
        status, body = bounded_request(
            conn, "GET", path, None, {"Authorization": f"Bearer {token}"}, deadline, MAX_STATES_BYTES
        )
    except TimeoutError:
        raise RemoteError(f"home assistant: /api/states not within {cfg.timeout_ms} ms") from None
    except (OSError, http.client.HTTPException) as exc:
        raise RemoteError(f"home assistant {redact_url(cfg.url)}: {type(exc).__name__}: {exc}") from None
    except ValueError:  # http.client refusing a header value would echo it (the token): never the message
        raise RemoteError("home assistant: the request could not be sent (a header value)") from None
    finally:
        conn.close()
    if status != 200:
        raise RemoteError(f"home assistant: GET /api/states: HTTP {status}")
    if len(body) > MAX_STATES_BYTES:
        raise RemoteError(f"home assistant: /api/states larger than {MAX_STATES_BYTES} bytes")
    try:
        states = json.loads(body)
    except ValueError:
        raise RemoteError("home assistant: /api/states is not JSON") from None
    if not isinstance(states, list):
        raise RemoteError("home assistant: /api/states is not a list")
    return states


def devices_from_states(states: Sequence[Any]) -> tuple[DeviceEntry, ...]:
    """Lights, switches, fans and media players, by friendly name (else the entity's object id)."""
    out: dict[str, DeviceEntry] = {}
    for s in states:
        if not isinstance(s, dict) or not isinstance(s.get("entity_id"), str):
            continue
        entity_id: str = s["entity_id"]
        domain, _, object_id = entity_id.partition(".")
        kind = KINDS.get(domain)
        attrs = s.get("attributes")
        raw = attrs.get("friendly_name") if isinstance(attrs, dict) else None
        raw = raw if isinstance(raw, str) else ""
        name = norm_device_name(raw or object_id.replace("_", " "))
        if kind is None or not name or len(name) > MAX_NAME_CHARS or name in out:
            continue
        if object_id.startswith("edge_voice_"):  # our own entities (the mute switch) are not devices
            continue
        try:
            out[name] = DeviceEntry(name, kind, (), entity_id)  # type: ignore[arg-type]
        except ValueError:  # an entity id the config would refuse
            continue
        if len(out) >= MAX_DEVICES:
            break
    return tuple(out.values())


def merge(configured: Sequence[DeviceEntry], learned: Sequence[DeviceEntry]) -> tuple[DeviceEntry, ...]:
    known = {norm_device_name(n) for d in configured for n in (d.name, *d.aliases)}
    return (*configured, *(d for d in learned if norm_device_name(d.name) not in known))


def _save(path: Path, devices: Sequence[DeviceEntry]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [{"name": d.name, "kind": d.kind, "entity_id": d.entity_id} for d in devices]
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(rows, f)
    os.replace(f.name, path)  # atomic: a crash never leaves half a cache


def _load(path: Path) -> tuple[DeviceEntry, ...]:
    try:
        rows = json.loads(path.read_text(encoding="utf-8")[:MAX_STATES_BYTES])
        states = [{"entity_id": r["entity_id"], "attributes": {"friendly_name": r["name"]}} for r in rows]
    except (OSError, ValueError, KeyError, TypeError):
        return ()
    return devices_from_states(states)


def with_learned_devices(cfg: Config, *, network: bool = True) -> Config:
    """``cfg`` with the devices learned from Home Assistant after the configured ones (unchanged when
    ``home_assistant.learn_devices`` is off). ``network`` False: the cache only."""
    if not cfg.home_assistant.learn_devices:
        return cfg
    path = cache_path(cfg)
    learned: tuple[DeviceEntry, ...] = ()
    if network:
        try:
            learned = devices_from_states(fetch_states(cfg.home_assistant))
        except RemoteError as exc:
            log.warning("home assistant: devices not learned (%s); using the cache", exc)
        else:
            try:
                _save(path, learned)
                log.info("home assistant: learned %d devices (cached in %s)", len(learned), path)
            except OSError as exc:  # a read-only cache: the devices still serve this run
                log.warning("home assistant: learned %d devices, not cached (%s)", len(learned), exc)
    if not learned:
        learned = _load(path)
    devices = merge(cfg.intents.devices, learned)
    return dataclasses.replace(cfg, intents=dataclasses.replace(cfg.intents, devices=devices))
