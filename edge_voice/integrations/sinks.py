"""Outward events: JSON shapes for the CLI and MQTT, and the simple sinks (JSON lines, in-memory)."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

from edge_voice.core.events import Event

_WALL_OFFSET_NS = time.time_ns() - time.monotonic_ns()  # monotonic → wall clock for readers


def event_dict(ev: Event) -> dict[str, Any]:
    """``{"type", "turn_id", "ts", "ts_mono_ns", ...data}``; ``ts`` is wall-clock epoch seconds."""
    out: dict[str, Any] = {
        "type": ev.type,
        "turn_id": ev.turn_id,
        "ts": round((ev.ts_ns + _WALL_OFFSET_NS) / 1e9, 6),
        "ts_mono_ns": ev.ts_ns,
    }
    out.update(ev.data)
    return out


def event_json(ev: Event) -> str:
    return json.dumps(event_dict(ev), ensure_ascii=False, default=str)


class JsonlSink:
    """One JSON object per line to a file or stdout; state changes become ``state`` lines."""

    def __init__(self, target: Path | str | None = None, include_deltas: bool = True) -> None:
        self._own = target is not None and str(target) != "-"
        self._f: IO[str] = sys.stdout
        if target is not None and self._own:
            self._f = open(target, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
        self._lock = threading.Lock()
        self._deltas = include_deltas

    def emit(self, event: Event) -> None:
        if not self._deltas and event.type == "response.text.delta":
            return
        with self._lock:
            self._f.write(event_json(event) + "\n")
            self._f.flush()

    def state(self, state: str) -> None:
        with self._lock:
            self._f.write(json.dumps({"type": "state", "state": state}) + "\n")
            self._f.flush()

    def close(self) -> None:
        if self._own:
            self._f.close()


class MemorySink:
    """Keeps events and states (tests, benchmarks, the demo's summary). ``only`` restricts it to some
    event types (a long-running daemon keeps just its turn summaries)."""

    def __init__(self, only: tuple[str, ...] = ()) -> None:
        self.events: list[Event] = []
        self.states: list[str] = []
        self._only = only
        self._lock = threading.Lock()

    def emit(self, event: Event) -> None:
        if self._only and event.type not in self._only:
            return
        with self._lock:
            self.events.append(event)
            if self._only and len(self.events) > 1000:
                del self.events[:500]

    def state(self, state: str) -> None:
        with self._lock:
            self.states.append(state)

    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]
