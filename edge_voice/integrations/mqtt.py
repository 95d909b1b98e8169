"""MQTT bridge: turn events out, commands in, retained state and availability, Home Assistant discovery.

Two halves:

* pure functions (``Topics``, ``parse_command``, ``event_payload``, ``intent_payload``,
  ``hermes_intent_payload``, ``discovery_configs``) that build and validate every payload — unit-tested
  without a broker;
* ``MqttBridge``, a paho-mqtt 2.x client around them.

Threads: paho's loop thread runs the connect/message callbacks and calls ``on_command`` (the caller makes
that thread-safe). One sender thread owns the outgoing queue, so every QoS 1 message goes out in the
order it was produced. ``publish_*`` may be called from any thread and never block: they only enqueue.

Nothing lost: while the broker is away, events wait in a bounded deque (``mqtt.buffer_max``; overflow
drops the oldest and counts it). Messages paho had accepted but the broker never acknowledged are taken
back from paho on reconnect and resent first, so order holds across a broker restart.
"""

from __future__ import annotations

import collections
import datetime as dt
import enum
import json
import logging
import os
import queue
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING, Any

from edge_voice.core.config import HA_DOMAINS, Config, ConfigError, DeviceEntry, MqttConfig
from edge_voice.core.events import ErrorInfo, Event, slots_json
from edge_voice.core.intent import ALL_LIGHTS, INTENT_NAMES
from edge_voice.core.intent import norm_device_name as _norm_name
from edge_voice.core.messages import (
    BadCommand,
    CancelCommand,
    Command,
    ListenCommand,
    MuteCommand,
    SayCommand,
    VolumeCommand,
)
from edge_voice.core.vocabulary import ErrorCode, EventType, Stage, State

if TYPE_CHECKING:
    import paho.mqtt.client as paho

log = logging.getLogger(__name__)

STATES = tuple(State)
COMMANDS = ("listen", "cancel", "say", "announce", "mute", "volume")
MAX_SAY_CHARS = 500  # ~30 s of speech; a longer text is rejected, not silently cut
HA_STATE_MAX_CHARS = 255  # Home Assistant rejects longer sensor states
EPOCH_NS_FLOOR = 10**18  # 2001-09-09 in epoch ns; a monotonic clock (uptime) never gets there
MAX_INFLIGHT = 20  # unacknowledged QoS 1 messages handed to paho at once (paho's own default)
# events the ``voice`` event entity fires, by the name Home Assistant shows
VOICE_EVENTS = {
    EventType.WAKE_DETECTED: "wake",
    EventType.TRANSCRIPT_FINAL: "transcript",
    EventType.TIMER_FINISHED: "timer_finished",
}


# ----------------------------------------------------------------------------------------------- topics


def _segment(name: str, what: str) -> str:
    if not name or any(c in name for c in "/#+\0"):
        raise ValueError(f"{what} {name!r} must be non-empty without '/', '#', '+'")
    return name


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str
    discovery_prefix: str
    device_id: str

    @classmethod
    def from_config(cls, cfg: Config) -> Topics:
        return cls(cfg.topic_prefix, cfg.mqtt.discovery_prefix, cfg.device_id)

    @property
    def state(self) -> str:
        return f"{self.prefix}/state"

    @property
    def availability(self) -> str:
        return f"{self.prefix}/availability"

    @property
    def last_transcript(self) -> str:
        return f"{self.prefix}/last/transcript"

    @property
    def last_latency(self) -> str:
        return f"{self.prefix}/last/latency_ms"

    @property
    def muted(self) -> str:
        """Retained ``ON``/``OFF``: the mute switch's own state (the ``state`` topic says ``speaking`` while
        a ``say`` plays muted)."""
        return f"{self.prefix}/muted"

    @property
    def volume(self) -> str:
        """Retained playback volume, 0–100."""
        return f"{self.prefix}/volume"

    @property
    def voice(self) -> str:
        """``{"event_type": "wake" | "transcript", "text": …}``: the ``voice`` event entity's topic."""
        return f"{self.prefix}/voice"

    @property
    def timer(self) -> str:
        """Retained: when the next timer rings (ISO 8601 UTC); only ever a timestamp (HA 2024.3 logs
        "Invalid state message" for anything else on a timestamp sensor, "None" included)."""
        return f"{self.prefix}/timer"

    @property
    def timer_running(self) -> str:
        """Retained ``ON``/``OFF``: a timer is running. The ``Next timer`` sensor's own availability
        (with the device's): no timer running = unavailable, as HA cannot clear a timestamp sensor."""
        return f"{self.prefix}/timer/running"

    @property
    def intent_filter(self) -> str:
        return f"{self.prefix}/intent/+"

    @property
    def cmd_filter(self) -> str:
        return f"{self.prefix}/cmd/+"

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"

    def event(self, type_: str) -> str:
        return f"{self.prefix}/event/{_segment(type_, 'event type')}"

    def cmd(self, name: str) -> str:
        return f"{self.prefix}/cmd/{_segment(name, 'command')}"

    def intent(self, name: str) -> str:
        return f"{self.prefix}/intent/{_segment(name, 'intent')}"

    @staticmethod
    def hermes_intent(name: str) -> str:
        return f"hermes/intent/{_segment(name, 'intent')}"

    def discovery(self, component: str, object_id: str) -> str:
        return f"{self.discovery_prefix}/{component}/{self.device_id}/{object_id}/config"

    def command_name(self, topic: str) -> str | None:
        """The ``<name>`` of ``…/cmd/<name>`` (may contain '/', then it is unknown), else None."""
        head = f"{self.prefix}/cmd/"
        return topic[len(head) :] if topic.startswith(head) else None


# --------------------------------------------------------------------------------------------- commands


class CommandError(ValueError):
    """A command payload failed validation. ``field`` names what was wrong; ``reason`` says how."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


MAX_FIELD_NAME_CHARS = 64  # an unknown key longer than this (or unprintable) is reported as "payload"
_BRIEF_CHARS = 40  # bad values are quoted up to this length in error messages
# Commands are flat objects. Our own limit, checked before json.loads: the interpreter's differs (3.11's
# C scanner raises RecursionError near 1000 levels, 3.12+ parses far deeper), so the error must not.
MAX_JSON_DEPTH = 32


def _brief(text: str) -> str:
    """``repr`` of a name or string for an error message: one line, bounded, surrogates escaped."""
    return repr(text[:_BRIEF_CHARS] + "…" if len(text) > _BRIEF_CHARS else text)


def _got(value: object) -> str:
    """What a bad value was, for an error message. Never a repr of a large or nested structure (which
    could be huge, or recurse too deeply) and never ``str`` of an integer beyond Python's digit limit."""
    if isinstance(value, dict):
        return "got an object"
    if isinstance(value, list):
        return "got a list"
    if isinstance(value, str):
        return f"got the string {_brief(value)}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**15:
        return "got a very large number"
    return f"got {json.dumps(value)}"  # null, true/false, a short int, a float (NaN, Infinity)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook``: a repeated key is ambiguous (json would silently keep the last one)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise CommandError("payload", f"duplicate field {_brief(key)}")
        obj[key] = value
    return obj


def _json_depth(text: str, limit: int) -> bool:
    """Whether ``text`` nests arrays/objects deeper than ``limit`` (brackets inside strings skipped)."""
    depth, in_string, escaped = 0, False, False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > limit:
                return True
        elif ch in "]}":
            depth -= 1
    return False


def _field_name(key: str) -> bool:
    return 0 < len(key) <= MAX_FIELD_NAME_CHARS and key.isprintable()


def _json_object(payload: bytes, allowed: tuple[str, ...], empty_ok: bool) -> dict[str, Any]:
    if not payload.strip():
        if empty_ok:
            return {}
        raise CommandError("payload", "empty; expected a JSON object")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError("payload", f"not UTF-8 (bad byte at {exc.start})") from None
    if _json_depth(text, MAX_JSON_DEPTH):
        raise CommandError("payload", f"nested too deeply (more than {MAX_JSON_DEPTH} levels)")
    try:
        obj = json.loads(text, object_pairs_hook=_unique_keys)
    except CommandError:
        raise
    except json.JSONDecodeError as exc:
        raise CommandError("payload", f"not JSON ({exc.msg} at char {exc.pos})") from None
    except RecursionError:  # not reached below MAX_JSON_DEPTH; kept so no interpreter can take us down
        raise CommandError("payload", "nested too deeply") from None
    except ValueError:  # an integer literal beyond Python's int digit limit (4300)
        raise CommandError("payload", "a number has too many digits") from None
    if not isinstance(obj, dict):
        raise CommandError("payload", f"must be a JSON object (got {type(obj).__name__})")
    for key in obj:
        if key not in allowed:
            allowed_text = ", ".join(allowed) or "none"
            if _field_name(key):
                raise CommandError(key, f"unknown field; allowed: {allowed_text}")
            # an empty, huge or unprintable key would make an unreadable (or unencodable) field name
            raise CommandError("payload", f"unknown field {_brief(key)}; allowed: {allowed_text}")
    return obj


def _say_text(value: object) -> str:
    if not isinstance(value, str):
        raise CommandError("text", f"required, a string ({_got(value)})")
    text = value.strip()
    if not text:
        raise CommandError("text", "must not be empty")
    if len(text) > MAX_SAY_CHARS:
        raise CommandError("text", f"{len(text)} characters; at most {MAX_SAY_CHARS}")
    if "\0" in text:  # C libraries (espeak-ng inside Piper) would silently stop reading there
        raise CommandError("text", "must not contain NUL (\\u0000) characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:  # a JSON escape like \ud800: not speakable, not publishable
        raise CommandError(
            "text", f"not valid Unicode (unpaired surrogate at character {exc.start})"
        ) from None
    return text


def parse_command(name: str, payload: bytes, max_bytes: int) -> Command:
    """Validate one ``…/cmd/<name>`` payload. Raises ``CommandError`` naming the bad field — and nothing
    else, whatever the bytes (a payload must never take the MQTT thread down)."""
    if len(payload) > max_bytes:
        raise CommandError("payload", f"{len(payload)} bytes exceeds the limit of {max_bytes}")
    if name not in COMMANDS:
        raise CommandError("command", f"unknown command {_brief(name)}; known: {', '.join(COMMANDS)}")
    if name in ("listen", "cancel"):
        _json_object(payload, (), empty_ok=True)
        return ListenCommand("mqtt") if name == "listen" else CancelCommand("mqtt")
    if name in ("say", "announce"):
        text = _say_text(_json_object(payload, ("text",), empty_ok=False).get("text"))
        return SayCommand(text, announce=name == "announce")
    if name == "mute":
        on = _json_object(payload, ("on",), empty_ok=False).get("on")
        if not isinstance(on, bool):
            raise CommandError("on", f"required, true or false ({_got(on)})")
        return MuteCommand(on)
    level = _json_object(payload, ("level",), empty_ok=False).get("level")
    if isinstance(level, bool) or not isinstance(level, int | float):
        raise CommandError("level", f"required, a number from 0 to 1 ({_got(level)})")
    # compared before float(): float() of a huge JSON integer raises OverflowError; NaN fails here too
    if not 0 <= level <= 1:
        raise CommandError("level", f"must be between 0 and 1 ({_got(level)})")
    return VolumeCommand(float(level))


# --------------------------------------------------------------------------------------------- payloads


def _json_default(obj: object) -> object:
    item = getattr(obj, "item", None)  # numpy scalars
    if callable(item):
        return item()
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    return str(obj)


def _dumps(obj: object) -> bytes:
    return json.dumps(obj, default=_json_default, ensure_ascii=False, separators=(",", ":")).encode()


def wall_ns(ts_ns: int, wall_offset_ns: int) -> int:
    """Epoch ns of a timestamp that is either ``monotonic_ns`` (below ``EPOCH_NS_FLOOR``) or epoch ns."""
    return ts_ns if ts_ns >= EPOCH_NS_FLOOR else ts_ns + wall_offset_ns


def iso_utc(epoch_ns: int) -> str:
    # integer arithmetic: a float of epoch seconds cannot hold nanoseconds and may round .123 down
    t = dt.datetime.fromtimestamp(epoch_ns // 1_000_000_000, tz=dt.UTC)
    t = t.replace(microsecond=epoch_ns // 1000 % 1_000_000)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_payload(event: Event, *, device_id: str, seq: int, wall_offset_ns: int) -> bytes:
    """JSON of an ``Event``: its data fields plus type, turn_id, ts (wall-clock epoch seconds, as in
    ``events.event_dict``), ts_iso (the same, ISO 8601 UTC), seq and device_id.

    The envelope keys win over data keys of the same name. ``seq`` counts events per bridge process so
    a subscriber can spot gaps and QoS 1 duplicates.
    """
    epoch = wall_ns(event.ts_ns, wall_offset_ns)
    body: dict[str, object] = dict(event.data)
    body.update(
        type=event.type,
        turn_id=event.turn_id,
        ts=round(epoch / 1e9, 6),
        ts_iso=iso_utc(epoch),
        seq=seq,
        device_id=device_id,
    )
    return _dumps(body)


def state_payload(state: str) -> bytes:
    if state not in STATES:
        raise ValueError(f"state {state!r} is not one of {', '.join(STATES)}")
    return state.encode()


SlotsArg = Mapping[str, str] | Iterable[tuple[str, str]]


def _slot_pairs(slots: SlotsArg) -> list[tuple[str, str]]:
    items = slots.items() if isinstance(slots, Mapping) else slots
    return [(str(k), str(v)) for k, v in items]


def intent_payload(
    name: str,
    slots: SlotsArg,
    text: str,
    turn_id: int | None,
    *,
    device_id: str,
    epoch_ns: int,
    entity_ids: Sequence[str] = (),
    ha: Mapping[str, Any] | None = None,
) -> bytes:
    """``entity_ids``: the Home Assistant entities of the ``device`` slots, for the shipped blueprint.
    ``ha``: the same intent in Home Assistant's language (``ha_intent``)."""
    return _dumps(
        {
            "intent": name,
            "text": text,
            "slots": slots_json(_slot_pairs(slots)),  # several devices: every one of them
            "entity_ids": list(entity_ids),
            "ha": dict(ha) if ha is not None else ha_intent(name, slots, ()),
            "turn_id": turn_id,
            "ts": round(epoch_ns / 1e9, 6),
            "ts_iso": iso_utc(epoch_ns),
            "device_id": device_id,
        }
    )


def ha_entity_ids(slots: SlotsArg, devices: Sequence[DeviceEntry]) -> list[str]:
    """The Home Assistant entity ids of an intent's ``device`` slots, in the order said: a configured
    device's ``entity_id`` (or the one derived from its name); "all lights" → every configured light."""
    by_name = {_norm_name(d.name): d for d in devices}
    out: list[str] = []
    for key, value in _slot_pairs(slots):
        if key != "device":
            continue
        if value == ALL_LIGHTS:
            out += [d.ha_entity_id for d in devices if d.kind == "light"]
        elif (entry := by_name.get(value)) is not None:
            out.append(entry.ha_entity_id)
    return list(dict.fromkeys(out))


# Our intent → Home Assistant's intent name (home-assistant-intents; ``EdgeVoice…`` where HA has none)
HA_INTENTS = {
    "turn_on": "HassTurnOn",
    "turn_off": "HassTurnOff",
    "set_brightness": "HassLightSet",
    "set_color": "HassLightSet",
    "step_brightness": "EdgeVoiceStepBrightness",
    "timer_set": "HassStartTimer",
    "timer_status": "HassTimerStatus",
    "time": "HassGetCurrentTime",
    "date": "HassGetCurrentDate",
    "stop": "HassNevermind",
    "volume_set": "HassSetVolume",
    "volume_up": "EdgeVoiceVolumeUp",
    "volume_down": "EdgeVoiceVolumeDown",
    "repeat": "EdgeVoiceRepeat",
}


def ha_intent(name: str, slots: SlotsArg, devices: Sequence[DeviceEntry]) -> dict[str, Any]:
    """The intent in Home Assistant's language: ``{"intent": "HassTurnOn", "slots": {...}}`` with HA's
    slot names: ``name`` (the device's name; a list when several), ``area``, ``domain``, ``brightness``
    (0–100), ``color``, ``hours``/``minutes``/``seconds`` (a timer), ``volume_level`` (0–100); ``step``
    for ours. Devices named by an area ("the lights in the kitchen") give ``area`` + ``domain``."""
    pairs = _slot_pairs(slots)
    get = dict(pairs).get
    intent = HA_INTENTS.get(name) or "EdgeVoice" + "".join(w.capitalize() for w in name.split("_"))
    if name == "timer_cancel":
        intent = "HassCancelTimer" if get("seconds") else "HassCancelAllTimers"
    out: dict[str, Any] = {}
    named = [v for k, v in pairs if k == "device"]
    by_name = {_norm_name(d.name): d for d in devices}
    entries = [by_name[n] for n in named if n in by_name]
    areas = {e.area for e in entries}
    if named == [ALL_LIGHTS]:
        out["domain"] = "light"
    elif len(entries) > 1 and len(areas) == 1 and "" not in areas and all(e.kind == "light" for e in entries):
        out["area"], out["domain"] = areas.pop(), "light"
    elif named:
        out["name"] = named[0] if len(named) == 1 else named
        if len(entries) == 1:
            out["domain"] = HA_DOMAINS[entries[0].kind]
    for ours, theirs in (("brightness", "brightness"), ("color", "color"), ("step", "step")):
        if (v := get(ours)) is not None:
            out[theirs] = v
    if name == "volume_set" and (level := get("level")) is not None:
        out["volume_level"] = level
    if name in ("timer_set", "timer_cancel") and (sec := get("seconds")) and sec.isdigit():
        h, m, s = int(sec) // 3600, int(sec) % 3600 // 60, int(sec) % 60
        prefix = "start_" if name == "timer_cancel" else ""  # HassCancelTimer names a timer by its start
        out |= {f"{prefix}{k}": v for k, v in (("hours", h), ("minutes", m), ("seconds", s)) if v}
    return {"intent": intent, "slots": out}


def hermes_intent_payload(
    name: str, slots: SlotsArg, text: str, turn_id: int | None, *, site_id: str, confidence: float = 1.0
) -> bytes:
    """Rhasspy/Hermes ``hermes/intent/<name>`` (NluIntent) shape."""
    hermes_slots: list[dict[str, object]] = []
    lower = text.lower()
    after: dict[str, int] = {}  # a value said twice: its second slot points at the second mention
    for slot, value in _slot_pairs(slots):
        entry: dict[str, object] = {
            "entity": slot,
            "slotName": slot,
            "rawValue": value,
            "value": {"kind": "Unknown", "value": value},
            "confidence": confidence,
        }
        start = lower.find(value.lower(), after.get(value.lower(), 0))
        if start >= 0:
            end = start + len(value)
            after[value.lower()] = end
            entry["range"] = {"start": start, "end": end, "rawStart": start, "rawEnd": end}
        hermes_slots.append(entry)
    return _dumps(
        {
            "input": text,
            "rawInput": text,
            "intent": {"intentName": name, "confidenceScore": confidence},
            "slots": hermes_slots,
            "siteId": site_id,
            "sessionId": f"{site_id}-{turn_id}" if turn_id is not None else None,
            "id": None,
            "customData": None,
            "asrTokens": [],
            "asrConfidence": None,
            "wakewordId": None,
            "lang": None,
        }
    )


def _version() -> str:
    try:
        return metadata.version("edge-voice")
    except metadata.PackageNotFoundError:
        return "0"


def command_permission(command: Command) -> str:
    """The ``mqtt.allow_commands`` name a parsed command needs (``mute`` off is ``unmute``)."""
    match command:
        case ListenCommand():
            return "listen"
        case MuteCommand(on=on):
            return "mute" if on else "unmute"
        case SayCommand(announce=announce):
            return "announce" if announce else "say"
        case CancelCommand():
            return "cancel"
        case VolumeCommand():
            return "volume"
        case _:
            return "bad"


def discovery_configs(
    topics: Topics, sw_version: str | None = None, *, listen: bool = True, transcript: bool = True
) -> list[tuple[str, bytes]]:
    """Home Assistant MQTT discovery: (config topic, JSON) for every entity; publish retained. An entity
    switched off (the listen button when remote ``listen`` is not allowed, the last transcript when it is
    not retained) gets an empty payload: Home Assistant removes it.

    Identifiers are namespaced (``edge_voice_<device_id>``): a device id like ``kitchen`` must not clash
    with another integration's. The ``intent`` event entity fires on every intent (a UI automation
    triggers on it, no YAML); the ``voice`` one on the wake word and each final transcript."""
    dev_id = topics.device_id
    uid = f"edge_voice_{dev_id}"
    device = {
        "identifiers": [uid],
        "name": f"edge-voice {dev_id}",
        "manufacturer": "edge-voice",
        "model": "offline voice assistant",
        "sw_version": sw_version or _version(),
    }
    common = {
        "availability_topic": topics.availability,
        "payload_available": "online",
        "payload_not_available": "offline",
        "device": device,
    }
    entities: list[tuple[str, str, dict[str, object]]] = [
        (
            "sensor",
            "state",
            {
                "name": "State",
                "state_topic": topics.state,
                "device_class": "enum",
                "options": list(STATES),
                "icon": "mdi:microphone-message",
            },
        ),
        (
            "sensor",
            "last_transcript",
            {"name": "Last transcript", "state_topic": topics.last_transcript, "icon": "mdi:text-box"},
        ),
        (
            "sensor",
            "last_latency",
            {
                "name": "Last latency",
                "state_topic": topics.last_latency,
                "unit_of_measurement": "ms",
                "device_class": "duration",
                "state_class": "measurement",
                "entity_category": "diagnostic",
            },
        ),
        (
            "sensor",
            "timer",
            {
                "name": "Next timer",  # a timestamp: HA shows it counting down ("in 4 minutes")
                "state_topic": topics.timer,
                "device_class": "timestamp",
                "icon": "mdi:timer-outline",
                # available while the device is and a timer runs (HA 2024.3 has no "no value" payload
                # for a timestamp sensor)
                "availability": [
                    {
                        "topic": topics.availability,
                        "payload_available": "online",
                        "payload_not_available": "offline",
                    },
                    {
                        "topic": topics.timer_running,
                        "payload_available": "ON",
                        "payload_not_available": "OFF",
                    },
                ],
                "availability_mode": "all",
            },
        ),
        (
            "switch",
            "mute",
            {
                "name": "Mute",
                "command_topic": topics.cmd("mute"),
                "payload_on": '{"on": true}',
                "payload_off": '{"on": false}',
                "state_topic": topics.muted,
                "state_on": "ON",  # else HA compares the state with payload_on and it stays unknown
                "state_off": "OFF",
                "icon": "mdi:microphone-off",
            },
        ),
        (
            "number",
            "volume",
            {
                "name": "Volume",
                "command_topic": topics.cmd("volume"),
                "command_template": '{"level": {{ (value | float(0) / 100) | round(2) }}}',
                "state_topic": topics.volume,
                "min": 0,
                "max": 100,
                "step": 1,
                "unit_of_measurement": "%",
                "mode": "slider",
                "icon": "mdi:volume-high",
            },
        ),
        (
            "button",
            "listen",
            {
                "name": "Listen",
                "command_topic": topics.cmd("listen"),
                "payload_press": "{}",  # HA's default "PRESS" is not a JSON object
                "icon": "mdi:microphone",
            },
        ),
        (
            "event",
            "intent",
            {
                "name": "Intent",
                "state_topic": topics.intent_filter,
                "event_types": list(INTENT_NAMES),
                # HA wants {"event_type": …}; the rest of the object become the event's attributes
                "value_template": (
                    "{{ {'event_type': value_json.intent, 'slots': value_json.slots, "
                    "'entity_ids': value_json.entity_ids, 'text': value_json.text, "
                    "'ha': value_json.ha} | tojson }}"
                ),
                "icon": "mdi:account-voice",
            },
        ),
        (
            "event",
            "voice",
            {
                "name": "Voice",
                "state_topic": topics.voice,
                "event_types": list(VOICE_EVENTS.values()),
                "icon": "mdi:waveform",
            },
        ),
    ]
    off = {"listen"} if not listen else set()
    off |= {"last_transcript"} if not transcript else set()
    out = []
    for component, object_id, extra in entities:
        own = common if "availability" not in extra else {"device": device}  # (exclusive in HA)
        cfg = {**extra, "unique_id": f"{uid}_{object_id}", **own}
        body = b"" if object_id in off else _dumps(cfg)
        out.append((topics.discovery(component, object_id), body))
    return out


def bad_command_event(exc: CommandError, command: str, topic: str) -> Event:
    """The ``error`` event of a refused command payload, naming the command, the field and why."""
    info = ErrorInfo(
        Stage.COMMAND,
        ErrorCode.BAD_COMMAND,
        str(exc),
        command=command,
        field=exc.field,
        reason=exc.reason,
        topic=topic,
    )
    return Event.of(info, None, time.monotonic_ns())


# ----------------------------------------------------------------------------------------------- bridge


@dataclass(frozen=True, slots=True)
class BridgeStats:
    sent: int  # QoS 1 messages acknowledged by the broker (events and intents)
    buffered: int  # produced while disconnected (cumulative)
    dropped: int  # oldest discarded because the buffer was full
    pending: int  # waiting in the buffer or unacknowledged now (retained values included)
    bad_commands: int
    connected: bool
    refused: int = 0  # commands not allowed (mqtt.allow_commands) or beyond mqtt.commands_per_s
    expired: int = 0  # intents older than mqtt.intent_max_age_ms when the broker came back: not sent
    discovery_bursts: int = 0  # discovery publications (one per Home Assistant birth burst)


class _Kind(enum.Enum):
    MESSAGE = 1  # (topic, Event | bytes): QoS 1 not retained, buffered
    RETAINED = 2  # (topic, bytes): latest value kept and republished on every connect
    ACK = 3  # mid
    REQUEUE = 4  # paho's unacknowledged messages were dropped on reconnect: resend ours
    CONNECTED = 5  # connection epoch
    BAD_COMMAND = 6
    STOP = 7
    INTENT = 8  # (topic, bytes, expires at monotonic ns): QoS 1, buffered, dropped once stale


@dataclass(slots=True)
class _Record:
    seq: int
    topic: str
    payload: bytes
    expires_ns: int = 0  # intents: not sent after this (monotonic ns); 0 = never expires


class _Bucket:
    """Token bucket for incoming commands (paho's thread only). ``take`` is False beyond the rate."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate, self.burst = rate_per_s, float(burst)
        self.tokens, self.at = float(burst), time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def tls_context(m: MqttConfig) -> ssl.SSLContext:
    """The TLS settings as one context: the broker verified against ``ca_file`` (or the system store), host
    name checked; with ``cert_file``/``key_file``, the client certificate the broker may require. A file
    that cannot be read or used is a ConfigError naming its key (exit 78 at start-up, a doctor line)."""
    try:
        context = ssl.create_default_context(cafile=m.ca_file or None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError("mqtt.ca_file", f"cannot use {m.ca_file!r}: {exc}") from None
    if m.cert_file:
        try:
            context.load_cert_chain(m.cert_file, m.key_file, password=_no_passphrase)
        except (OSError, ssl.SSLError) as exc:  # missing, unreadable, not PEM, key not the cert's
            raise ConfigError(
                "mqtt.cert_file", f"cannot use {m.cert_file!r} with mqtt.key_file {m.key_file!r}: {exc}"
            ) from None
    return context


def _no_passphrase() -> str:
    # an encrypted key would otherwise make OpenSSL prompt on the terminal (and hang under systemd)
    raise ssl.SSLError("the key is encrypted: mqtt.key_file must be an unencrypted PEM key (mode 0640)")


class MqttBridge:
    """paho-mqtt 2.x client for one device.

    ``on_command`` is called on paho's thread with a parsed ``Command`` (``BadCommand`` for a payload
    that failed validation, after an ``error`` event was published).
    """

    def __init__(self, cfg: Config, on_command: Callable[[Command], None]) -> None:
        self._cfg = cfg
        self._mcfg = cfg.mqtt
        self._on_command = on_command
        self.topics = Topics.from_config(cfg)
        # A Queue, not a SimpleQueue: its unfinished-task count lets flush() see an item the sender has
        # taken but not yet accounted for in _pending.
        self._inbox: queue.Queue[tuple[_Kind, Any]] = queue.Queue()
        self._client: paho.Client | None = None
        self._sender: threading.Thread | None = None
        # Connection epoch: bumped by every connect/disconnect callback. The sender only publishes when
        # the epoch it last acknowledged is current, so nothing new overtakes requeued messages.
        self._epoch = 0
        self._online = threading.Event()
        self._subscribed = threading.Event()  # the broker acknowledged the command subscription
        self._cmd_sub_mid: int | None = None
        self._stopping = False
        self._idle = threading.Condition()
        # counters are written by the sender thread only
        self._sent = self._buffered = self._dropped = self._pending = self._bad = self._expired = 0
        # paho's thread (commands, Home Assistant births) and timers: under _lock
        self._lock = threading.Lock()
        self._bucket = _Bucket(self._mcfg.commands_per_s, self._mcfg.command_burst)
        self._refused = self._refused_unreported = self._discoveries = 0
        self._refused_names: collections.Counter[str] = collections.Counter()
        self._timers: dict[str, threading.Timer] = {}  # "refused" report, "discovery" debounce
        self.client_id = self._mcfg.client_id or f"edge-voice-{cfg.device_id}-{secrets.token_hex(6)}"

    # ------------------------------------------------------------------------------------ public API

    def start(self) -> None:
        """Connect in the background (retrying until the broker answers) and start the sender thread."""
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        m = self._mcfg
        if m.client_id:
            log.warning(
                "mqtt: fixed client id %r: any broker client using it takes the session over", m.client_id
            )
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        client.will_set(self.topics.availability, b"offline", qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        if m.tls:
            client.tls_set_context(tls_context(m))
        if m.username:
            password = os.environ.get(m.password_env)
            if password is None:
                log.warning("mqtt: user %s has no password: $%s is not set", m.username, m.password_env)
            client.username_pw_set(m.username, password)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        client.on_publish = self._on_publish
        self._client = client
        self._sender = threading.Thread(target=self._run_sender, name="edge-voice-mqtt-send", daemon=True)
        self._sender.start()
        log.info(
            "mqtt: connecting to %s:%d%s%s, prefix %s",
            m.host,
            m.port,
            (" (TLS, client certificate)" if m.cert_file else " (TLS)") if m.tls else "",
            f" as {m.username}" if m.username else "",
            self.topics.prefix,
        )
        client.connect_async(m.host, m.port, keepalive=m.keepalive_s)
        client.loop_start()

    def stop(self, flush_timeout_s: float = 2.0) -> None:
        """Send what is pending (up to ``flush_timeout_s``), publish ``offline``, disconnect cleanly."""
        client = self._client
        if client is None:
            return
        if self._online.is_set():
            self.flush(flush_timeout_s)
            info = client.publish(self.topics.availability, b"offline", qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=flush_timeout_s)
            except (RuntimeError, ValueError) as exc:  # lost the connection meanwhile
                log.warning("mqtt: could not publish offline: %s", exc)
        self._stopping = True
        with self._lock:
            timers, self._timers = list(self._timers.values()), {}
        for timer in timers:
            timer.cancel()
        client.disconnect()
        client.loop_stop()
        self._inbox.put((_Kind.STOP, None))
        if self._sender is not None:
            self._sender.join(timeout=5)
        self._client = None
        s = self.stats()
        log.info(
            "mqtt: stopped (sent %d, buffered %d, dropped %d, unsent %d)",
            s.sent,
            s.buffered,
            s.dropped,
            s.pending,
        )
        if s.pending:  # the broker is away (or too slow) at shutdown: say what is lost, loudly
            log.warning("mqtt: %d buffered events were never sent and are lost at shutdown", s.pending)

    def publish_event(self, event: Event) -> None:
        """``…/event/<type>``, QoS 1, not retained. Buffered while disconnected. Any thread."""
        self._inbox.put((_Kind.MESSAGE, (self.topics.event(event.type), event)))

    def publish_state(self, state: str) -> None:
        """Retained ``…/state`` (idle | listening | thinking | speaking | muted | error). Any thread."""
        self._inbox.put((_Kind.RETAINED, (self.topics.state, state_payload(state))))

    def publish_voice(self, event_type: str, text: str = "") -> None:
        """``…/voice``: the ``voice`` event entity (``event_type`` one of ``VOICE_EVENTS``' values)."""
        body = _dumps({"event_type": event_type, "text": text[:HA_STATE_MAX_CHARS]})
        self._inbox.put((_Kind.MESSAGE, (self.topics.voice, body)))

    def publish_switches(self, *, muted: bool | None = None, volume: float | None = None) -> None:
        """Retained mute switch state (``ON``/``OFF``) and volume (0–100): Home Assistant's switch and
        number follow them."""
        if muted is not None:
            self._inbox.put((_Kind.RETAINED, (self.topics.muted, b"ON" if muted else b"OFF")))
        if volume is not None:
            level = f"{max(0.0, min(1.0, volume)) * 100:.0f}".encode()
            self._inbox.put((_Kind.RETAINED, (self.topics.volume, level)))

    def publish_timer(self, due_epoch_s: float | None) -> None:
        """Retained next timer (the ``Next timer`` sensor); None = no timer running: the sensor becomes
        unavailable, its topic keeps the last timestamp (never "None": see ``Topics.timer``)."""
        if due_epoch_s is not None:
            body = iso_utc(int(due_epoch_s * 1e9)).encode()
            self._inbox.put((_Kind.RETAINED, (self.topics.timer, body)))
        running = b"OFF" if due_epoch_s is None else b"ON"
        self._inbox.put((_Kind.RETAINED, (self.topics.timer_running, running)))

    def publish_intent(self, name: str, slots: SlotsArg, text: str, turn_id: int | None) -> None:
        """``…/intent/<name>`` and, if ``mqtt.hermes``, ``hermes/intent/<name>``. QoS 1, buffered."""
        pairs = _slot_pairs(slots)
        epoch = time.time_ns()
        entities = ha_entity_ids(pairs, self._cfg.intents.devices)
        payload = intent_payload(
            name,
            pairs,
            text,
            turn_id,
            device_id=self._cfg.device_id,
            epoch_ns=epoch,
            entity_ids=entities,
            ha=ha_intent(name, pairs, self._cfg.intents.devices),
        )
        # an automation must not switch a light on long after it was asked (the broker was away)
        expires = time.monotonic_ns() + self._mcfg.intent_max_age_ms * 1_000_000
        self._inbox.put((_Kind.INTENT, (self.topics.intent(name), payload, expires)))
        if self._mcfg.hermes:
            hermes = hermes_intent_payload(name, pairs, text, turn_id, site_id=self._cfg.device_id)
            self._inbox.put((_Kind.INTENT, (Topics.hermes_intent(name), hermes, expires)))

    def publish_retained_info(self, transcript: str | None = None, latency_ms: float | None = None) -> None:
        """Retained last transcript / last voice-to-voice latency (the Home Assistant sensors)."""
        if transcript is not None:
            text = transcript[:HA_STATE_MAX_CHARS].encode()
            self._inbox.put((_Kind.RETAINED, (self.topics.last_transcript, text)))
        if latency_ms is not None:
            self._inbox.put((_Kind.RETAINED, (self.topics.last_latency, f"{latency_ms:.0f}".encode())))

    def flush(self, timeout_s: float) -> bool:
        """Wait until nothing is buffered or unacknowledged. True if that happened in time."""
        deadline = time.monotonic() + timeout_s
        with self._idle:
            while self._pending or self._inbox.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(min(left, 0.1))
        return True

    @property
    def connected(self) -> bool:
        return self._online.is_set()

    @property
    def subscribed(self) -> bool:
        """Commands published from now on reach the daemon (connected only says the session is up)."""
        return self._online.is_set() and self._subscribed.is_set()

    def stats(self) -> BridgeStats:
        return BridgeStats(
            self._sent,
            self._buffered,
            self._dropped,
            self._pending,
            self._bad,
            self.connected,
            self._refused,
            self._expired,
            self._discoveries,
        )

    # -------------------------------------------------------------------------- paho thread callbacks

    def _on_connect(self, client: paho.Client, _u: object, _f: object, reason: Any, _p: object) -> None:
        if reason.is_failure:
            auth = reason.value in (4, 5, 134, 135)  # bad user name or password / not authorised
            hint = f" (check mqtt.username and ${self._mcfg.password_env})" if auth else ""
            log.error("mqtt: broker refused the connection: %s%s", reason, hint)
            return
        # Take back what paho still holds unacknowledged: the sender resends it in order, before anything
        # newer (paho would otherwise resend it itself, racing the sender's new messages).
        client.drop_out_messages()
        self._inbox.put((_Kind.REQUEUE, None))
        self._subscribed.clear()
        self._cmd_sub_mid = client.subscribe(self.topics.cmd_filter, qos=1)[1]
        if self._mcfg.discovery:
            client.subscribe(self.topics.ha_status, qos=1)
        client.publish(self.topics.availability, b"online", qos=1, retain=True)
        if not (self._mcfg.retain_transcript and self._mcfg.publish_transcripts):
            client.publish(self.topics.last_transcript, b"", qos=1, retain=True)  # clear a retained one
        self._publish_discovery(client)
        self._epoch += 1
        self._online.set()
        self._inbox.put((_Kind.CONNECTED, self._epoch))
        log.info("mqtt: connected to %s:%d", self._mcfg.host, self._mcfg.port)

    def _on_subscribe(self, _c: object, _u: object, mid: int, _codes: object, _p: object) -> None:
        if mid == self._cmd_sub_mid:
            self._subscribed.set()

    def _on_disconnect(self, _c: object, _u: object, _f: object, reason: Any, _p: object) -> None:
        self._epoch += 1
        self._online.clear()
        if not self._stopping:
            log.warning("mqtt: disconnected (%s); buffering events until the broker is back", reason)

    def _on_publish(self, _c: object, _u: object, mid: int, _r: object, _p: object) -> None:
        # Called with paho's message lock held: only hand the ack over, never take another lock here.
        self._inbox.put((_Kind.ACK, mid))

    def _on_message(self, client: paho.Client, _u: object, msg: paho.MQTTMessage) -> None:
        if msg.topic == self.topics.ha_status:
            if msg.payload == b"online":  # Home Assistant restarted: announce ourselves again, once a burst
                self._later("discovery", self._mcfg.discovery_debounce_ms / 1000, self._discovery_due)
            return
        name = self.topics.command_name(msg.topic)
        if name is None:
            return
        with self._lock:
            allowed_now = self._bucket.take()
        if not allowed_now:  # a flood: refused, counted, and reported in one event per second
            self._refuse(name, None)
            return
        try:
            if msg.retain:
                raise CommandError("retain", "retained commands are ignored (they replay on every connect)")
            command = parse_command(name, bytes(msg.payload), self._mcfg.max_payload_bytes)
        except CommandError as exc:
            log.warning("mqtt: bad command %r: %s", name, exc)
            self.publish_event(bad_command_event(exc, name, msg.topic))
            self._inbox.put((_Kind.BAD_COMMAND, None))  # counted on the sender thread
            command = BadCommand(name, str(exc))
        else:
            need = command_permission(command)
            if need not in self._mcfg.allow_commands:
                self._refuse(need, msg.topic)
                return
        log.debug("mqtt: command %s", type(command).__name__)
        try:
            self._on_command(command)
        except Exception:  # the bridge keeps serving whatever the handler does
            log.exception("mqtt: on_command raised for %r", name)

    def _publish_discovery(self, client: paho.Client) -> None:
        if self._mcfg.discovery:
            m = self._mcfg
            configs = discovery_configs(
                self.topics,
                listen="listen" in m.allow_commands,
                transcript=m.retain_transcript and m.publish_transcripts,
            )
            for topic, payload in configs:
                client.publish(topic, payload, qos=1, retain=True)
            with self._lock:
                self._discoveries += 1

    def _discovery_due(self) -> None:
        client = self._client
        if client is not None and self._online.is_set():
            self._publish_discovery(client)

    def _later(self, name: str, delay_s: float, action: Callable[[], None]) -> None:
        """``action`` once, ``delay_s`` from the first call of a burst; calls meanwhile join it."""

        def run() -> None:
            with self._lock:
                self._timers.pop(name, None)
            try:
                action()
            except Exception:  # a timer thread must not die silently
                log.exception("mqtt: %s failed", name)

        with self._lock:
            if name in self._timers or self._stopping:
                return
            timer = self._timers[name] = threading.Timer(delay_s, run)
            timer.daemon = True
        timer.start()

    def _refuse(self, command: str, topic: str | None) -> None:
        """A command not allowed (``topic`` given: reported at once) or over the rate (``topic`` None:
        counted, reported in one ``error`` event a second). The daemon keeps serving either way."""
        with self._lock:
            self._refused += 1
            if topic is None:
                self._refused_unreported += 1
                self._refused_names[command[:_BRIEF_CHARS]] += 1
        if topic is not None:
            log.warning("mqtt: command %r refused: not in mqtt.allow_commands", command)
            info = ErrorInfo(
                Stage.COMMAND,
                ErrorCode.REFUSED,
                f"command {command!r} is not allowed over MQTT (mqtt.allow_commands)",
                command=command,
                topic=topic,
            )
            self.publish_event(Event.of(info, None, time.monotonic_ns()))
            return
        self._later("refused", 1.0, self._report_refused)

    def _report_refused(self) -> None:
        with self._lock:
            count, self._refused_unreported = self._refused_unreported, 0
            names, self._refused_names = self._refused_names, collections.Counter()
        if count:
            log.warning("mqtt: %d commands refused over mqtt.commands_per_s: %s", count, dict(names))
            text = f"{count} commands refused: more than {self._mcfg.commands_per_s:g} a second"
            info = ErrorInfo(Stage.COMMAND, ErrorCode.RATE_LIMITED, text)
            data = {**info.as_dict(), "refused": count, "commands": dict(names)}
            self.publish_event(Event(info.TYPE, None, time.monotonic_ns(), data, info))

    # ------------------------------------------------------------------------------------ sender thread

    def _run_sender(self) -> None:
        """Events in order; retained values coalesced: per topic at most one in flight and the latest
        waiting, all counted against ``MAX_INFLIGHT`` (a state flood cannot grow paho's queue)."""
        buffer: collections.deque[_Record] = collections.deque()
        inflight: dict[int, _Record] = {}
        retained: dict[str, bytes] = {}  # latest value per topic, republished on every connect
        retained_due: dict[str, None] = {}  # topics whose latest value is not sent yet (ordered set)
        retained_inflight: dict[int, str] = {}  # mid → topic, so flush() also waits for them
        seq = 0
        acked_epoch = -1  # the connection epoch whose CONNECTED this thread has handled
        wall_offset = time.time_ns() - time.monotonic_ns()
        cap = self._mcfg.buffer_max
        lost = 0  # dropped or expired since the last report
        reported_ns = 0  # when the last loss report was queued: at most one a second
        while True:
            kind, value = self._inbox.get()
            if kind is _Kind.STOP:
                break
            if kind is _Kind.MESSAGE or kind is _Kind.INTENT:
                topic, body, *rest = value
                seq += 1
                if isinstance(body, Event):
                    try:
                        body = event_payload(
                            body, device_id=self._cfg.device_id, seq=seq, wall_offset_ns=wall_offset
                        )
                    except (TypeError, ValueError) as exc:  # e.g. a circular structure in data
                        log.error("mqtt: cannot encode event %s: %s", topic, exc)
                        body = None
                if body is not None:
                    if len(buffer) >= cap:
                        buffer.popleft()
                        self._dropped += 1
                        lost += 1
                    buffer.append(_Record(seq, topic, body, rest[0] if rest else 0))
                    if acked_epoch != self._epoch:
                        self._buffered += 1
            elif kind is _Kind.RETAINED:
                topic, body = value
                retained[topic] = body
                retained_due[topic] = None
            elif kind is _Kind.ACK:
                if inflight.pop(value, None) is not None:
                    self._sent += 1
                retained_inflight.pop(value, None)
            elif kind is _Kind.BAD_COMMAND:
                self._bad += 1
            elif kind is _Kind.REQUEUE:
                # paho's queue was emptied on reconnect: everything unacknowledged goes back, oldest first
                buffer.extendleft(sorted(inflight.values(), key=lambda r: r.seq, reverse=True))
                inflight.clear()
                retained_inflight.clear()  # not resent as such: CONNECTED republishes the latest values
                while len(buffer) > cap:
                    buffer.popleft()
                    self._dropped += 1
                    lost += 1
            elif kind is _Kind.CONNECTED and value == self._epoch:  # else already stale
                acked_epoch = value
                retained_due.update(dict.fromkeys(retained))
            wall_offset = time.time_ns() - time.monotonic_ns()
            now = time.monotonic_ns()
            while buffer and buffer[0].expires_ns and buffer[0].expires_ns < now:
                stale = buffer.popleft()  # an intent too old to act on: never sent
                self._expired += 1
                lost += 1
                log.warning("mqtt: intent %s expired (mqtt.intent_max_age_ms) while waiting", stale.topic)
            if lost and acked_epoch == self._epoch and now - reported_ns >= 1_000_000_000:
                seq += 1
                buffer.append(self._loss_record(seq, lost, wall_offset))
                lost, reported_ns = 0, now
            while acked_epoch == self._epoch and len(inflight) + len(retained_inflight) < MAX_INFLIGHT:
                busy = set(retained_inflight.values())
                topic = next((t for t in retained_due if t not in busy), None)
                if topic is not None:
                    del retained_due[topic]
                    self._publish_retained(topic, retained[topic], retained_inflight)
                    continue
                if not buffer:
                    break
                record = buffer[0]
                if record.expires_ns and record.expires_ns < now:
                    buffer.popleft()
                    self._expired += 1
                    log.warning("mqtt: intent %s expired (mqtt.intent_max_age_ms)", record.topic)
                    continue
                try:
                    mid = self._publish(record.topic, record.payload, retain=False)
                except Exception:  # never let the one sender thread die; the record stays first in line
                    log.exception("mqtt: publish to %s failed", record.topic)
                    break
                buffer.popleft()
                # Even on NO_CONN paho keeps a QoS 1 message; REQUEUE takes it back on reconnect.
                inflight[mid] = record
            with self._idle:
                self._pending = len(buffer) + len(inflight) + len(retained_inflight) + len(retained_due)
                self._inbox.task_done()  # after _pending is set, so flush() never sees neither
                self._idle.notify_all()

    def _loss_record(self, seq: int, lost: int, wall_offset: int) -> _Record:
        """An ``error`` event saying how many events were dropped (buffer full) or intents expired."""
        text = (
            f"{lost} events lost: buffer full (mqtt.buffer_max) or intents expired (mqtt.intent_max_age_ms)"
        )
        info = ErrorInfo(Stage.MQTT, ErrorCode.EVENTS_DROPPED, text)
        data = {**info.as_dict(), "lost": lost, "dropped": self._dropped, "expired": self._expired}
        event = Event(info.TYPE, None, time.monotonic_ns(), data, info)
        payload = event_payload(event, device_id=self._cfg.device_id, seq=seq, wall_offset_ns=wall_offset)
        log.warning("mqtt: %s", text)
        return _Record(seq, self.topics.event(info.TYPE), payload)

    def _publish_retained(self, topic: str, payload: bytes, inflight: dict[int, str]) -> None:
        try:  # the latest value is republished on the next connect anyway
            inflight[self._publish(topic, payload, retain=True)] = topic
        except Exception:
            log.exception("mqtt: publish to %s failed", topic)

    def _publish(self, topic: str, payload: bytes, *, retain: bool) -> int:
        assert self._client is not None
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        return info.mid
