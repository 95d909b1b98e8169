"""SIGHUP config reload: which keys changed, which of them can take effect in a running daemon.

Only settings read by the orchestrator's own thread are applied live (conversation behaviour, the
intent grammar's devices, the LLM prompt and memory, volume, log level). Everything an engine or a
thread captured at start-up (models, threads, audio devices, MQTT connection, GPIO pins, listening
thresholds) is reported as needing a restart instead of being half-applied.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from edge_voice.core.config import Config

LIVE_KEYS = (
    "conversation.",
    "intents.",
    "llm.system_prompt",
    "llm.examples",
    "llm.history_turns",
    "llm.history_window_s",
    "llm.prime",
    "audio.volume",
    "service.log_level",
)


def _leaves(obj: Any, prefix: str = "") -> dict[str, Any]:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type) and prefix.count(".") < 2:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            out.update(_leaves(getattr(obj, f.name), f"{prefix}{f.name}."))
        return out
    return {prefix.rstrip("."): obj}


def changed_keys(old: Config, new: Config) -> list[str]:
    """Dotted keys (``section.key``) whose values differ."""
    a, b = _leaves(old), _leaves(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))


# under a live prefix, but built once at start-up (the Home Assistant agent and its phrases)
RESTART_KEYS = ("intents.backend", "intents.ha_sentences", "intents.language")


def is_live(key: str) -> bool:
    if key in RESTART_KEYS:
        return False
    return any(key == k or (k.endswith(".") and key.startswith(k)) for k in LIVE_KEYS)


def apply_live(old: Config, new: Config) -> Config:
    """``old`` with every live key taken from ``new`` (the rest waits for a restart)."""
    return dataclasses.replace(
        old,
        conversation=new.conversation,
        intents=dataclasses.replace(
            new.intents,
            backend=old.intents.backend,
            ha_sentences=old.intents.ha_sentences,
            language=old.intents.language,
        ),
        llm=dataclasses.replace(
            old.llm,
            system_prompt=new.llm.system_prompt,
            examples=new.llm.examples,
            history_turns=new.llm.history_turns,
            history_window_s=new.llm.history_window_s,
            prime=new.llm.prime,
        ),
        audio=dataclasses.replace(old.audio, volume=new.audio.volume),
        service=dataclasses.replace(old.service, log_level=new.service.log_level),
    )
