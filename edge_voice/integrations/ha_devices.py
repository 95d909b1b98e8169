"""Devices learned from Home Assistant (``home_assistant.learn_devices``): the entities a user already
named there become the fast path's devices, with their entity ids — no second list to keep in sync.

At start-up ``GET /api/states`` (the long-lived token from ``home_assistant.token_env``; bounded in time and
size) gives every light, switch, fan and media player with its friendly name; then HA's websocket API
(``integrations/ha_ws``, same token, same bounds) gives their aliases and areas from HA's registries:
``config/entity_registry/get_entries`` (an entity's aliases and area), ``config/device_registry/list``
(the area of its device, when the entity has none of its own) and ``config/area_registry/list`` (area
names and aliases). Without the websocket (an old HA, a proxy that refuses upgrades) the names and entity
ids still serve, without aliases and areas. They are cached on disk, so
the device keeps knowing them when HA is away at the next start; a config reload reads the cache only (no
network on the orchestrator's thread). The configured ``[[intents.devices]]`` stay, first: a name in both
keeps the configured entry (its aliases, its entity id).

HA's area aliases are not learned (a device has one ``area``); HA's conversation backend still uses them.
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
from dataclasses import dataclass
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


MAX_ALIASES = 8  # per entity, and per area
MAX_WS_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Registry:
    """What HA's registries add to an entity: its aliases and its area's name."""

    aliases: dict[str, tuple[str, ...]]  # entity id → its aliases
    areas: dict[str, str]  # entity id → its area's name


def _names(raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list):
        return ()
    names = (norm_device_name(a) for a in raw if isinstance(a, str))
    return tuple(dict.fromkeys(n for n in names if n and len(n) <= MAX_NAME_CHARS))[:MAX_ALIASES]


def fetch_registry(cfg: HomeAssistantConfig, entity_ids: Sequence[str]) -> Registry:
    """Aliases and areas of ``entity_ids`` from HA's registries, over the websocket API."""
    from edge_voice.engines.remote.home_assistant import read_token
    from edge_voice.integrations.ha_ws import commands

    entries, devices, areas = commands(
        cfg.url,
        read_token(cfg.token_env),
        [
            {"type": "config/entity_registry/get_entries", "entity_ids": list(entity_ids)},
            {"type": "config/device_registry/list"},
            {"type": "config/area_registry/list"},
        ],
        cfg.timeout_ms,
        MAX_WS_BYTES,
    )
    return registry_from(entries, devices, areas)


def registry_from(entries: Any, devices: Any, areas: Any) -> Registry:
    """Pure: the three registry answers → ``Registry`` (anything malformed is skipped)."""
    area_name: dict[str, str] = {}
    for a in areas if isinstance(areas, list) else ():
        if isinstance(a, dict) and isinstance(a.get("area_id"), str) and isinstance(a.get("name"), str):
            name = norm_device_name(a["name"])
            if name and len(name) <= MAX_NAME_CHARS:
                area_name[a["area_id"]] = name
    device_area = {
        d["id"]: d["area_id"]
        for d in (devices if isinstance(devices, list) else ())
        if isinstance(d, dict) and isinstance(d.get("id"), str) and isinstance(d.get("area_id"), str)
    }
    aliases: dict[str, tuple[str, ...]] = {}
    where: dict[str, str] = {}
    for entity_id, e in entries.items() if isinstance(entries, dict) else ():
        if not isinstance(entity_id, str) or not isinstance(e, dict):
            continue  # an entity without a registry entry (YAML-only) comes back as null
        aliases[entity_id] = _names(e.get("aliases"))
        area_id = e.get("area_id") or device_area.get(e.get("device_id") or "")
        if isinstance(area_id, str) and area_id in area_name:
            where[entity_id] = area_name[area_id]
    return Registry(aliases, where)


def devices_from_states(states: Sequence[Any], registry: Registry | None = None) -> tuple[DeviceEntry, ...]:
    """Lights, switches, fans and media players, by friendly name (else the entity's object id), with
    their aliases and area from ``registry``."""
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
        aliases = registry.aliases.get(entity_id, ()) if registry is not None else ()
        area = registry.areas.get(entity_id, "") if registry is not None else ""
        try:
            out[name] = DeviceEntry(
                name,
                kind,  # type: ignore[arg-type]
                tuple(a for a in aliases if a != name),
                entity_id,
                area,
            )
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
    rows = [
        {"name": d.name, "kind": d.kind, "entity_id": d.entity_id, "aliases": list(d.aliases), "area": d.area}
        for d in devices
    ]
    doc = {"devices": rows}
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as f:
        json.dump(doc, f)
    os.replace(f.name, path)  # atomic: a crash never leaves half a cache


def _load(path: Path) -> tuple[DeviceEntry, ...]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8")[:MAX_STATES_BYTES])
        rows = doc["devices"] if isinstance(doc, dict) else doc  # a session-10 cache is a bare list
        states = [{"entity_id": r["entity_id"], "attributes": {"friendly_name": r["name"]}} for r in rows]
        registry = Registry(
            {r["entity_id"]: _names(r.get("aliases")) for r in rows},
            {r["entity_id"]: r["area"] for r in rows if isinstance(r.get("area"), str) and r["area"]},
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return ()
    return devices_from_states(states, registry)


def with_learned_devices(cfg: Config, *, network: bool = True) -> Config:
    """``cfg`` with the devices learned from Home Assistant after the configured ones (unchanged when
    ``home_assistant.learn_devices`` is off). ``network`` False: the cache only."""
    if not cfg.home_assistant.learn_devices:
        return cfg
    path = cache_path(cfg)
    learned: tuple[DeviceEntry, ...] = ()
    if network:
        try:
            states = fetch_states(cfg.home_assistant)
        except RemoteError as exc:
            log.warning("home assistant: devices not learned (%s); using the cache", exc)
        else:
            registry: Registry | None = None
            ids = [d.entity_id for d in devices_from_states(states)]
            try:
                registry = fetch_registry(cfg.home_assistant, ids) if ids else None
            except RemoteError as exc:  # names and entity ids still serve, without aliases and areas
                log.warning("home assistant: no aliases or areas (%s)", exc)
            learned = devices_from_states(states, registry)
            try:
                _save(path, learned)
                log.info("home assistant: learned %d devices (cached in %s)", len(learned), path)
            except OSError as exc:  # a read-only cache: the devices still serve this run
                log.warning("home assistant: learned %d devices, not cached (%s)", len(learned), exc)
    if not learned:
        learned = _load(path)
    devices = merge(cfg.intents.devices, learned)
    return dataclasses.replace(cfg, intents=dataclasses.replace(cfg.intents, devices=devices))
