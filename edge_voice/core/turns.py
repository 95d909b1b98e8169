"""The Turn record (one per user interaction) and its latency breakdown.

t0 is the end of the user's speech: the monotonic time the last voiced sample was captured. Every mark is
``time.monotonic_ns()``; the breakdown is computed from marks, never from log text. Only the orchestrator
writes a Turn.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from edge_voice.core.cancel import CancelToken

Trigger = Literal["wake", "button", "mqtt", "cli", "follow_up", "say", "timer"]

_ids = itertools.count(1)


def next_turn_id() -> int:
    return next(_ids)


def _ms(a: int | None, b: int | None) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a) / 1e6, 1)


@dataclass(slots=True)
class Attempt:
    """One try at answering a turn: a speculative one (started in the end-of-speech silence, playback
    held until the endpoint is confirmed) or a final one. Cancelling it stops every engine working on it."""

    number: int
    last_voiced_sample: int
    cancel: CancelToken = field(default_factory=CancelToken)
    committed: bool = False
    settled: bool = False  # the pause it started in reached endpoint.commit_silence_ms
    transcript: str | None = None
    asr_ms: float | None = None
    audio_ms: int = 0
    reply_started: bool = False  # intent/LLM work handed out
    reply_text: str = ""  # a fast-path reply, the turn's once this attempt is committed
    prompt_user: str = ""  # the user message sent to the LLM (facts included), for prefix-stable history
    generated: str = ""  # GenerationDone.text: the LLM's text exactly as generated, for prefix-stable history
    stopped: str = ""  # why generation stopped (GenerationDone.stopped)
    applied: bool = False  # committed side effects (intent events, routing) done
    intent: Any = None  # the fast-path match, if any (orchestrator.IntentOutcome)
    gate: threading.Event = field(default_factory=threading.Event)  # set = playback may be heard
    marks: dict[str, int] = field(default_factory=dict)
    pending_events: list[tuple[str, dict[str, object]]] = field(default_factory=list)


@dataclass(slots=True)
class Turn:
    id: int
    trigger: Trigger
    created_ns: int = field(default_factory=time.monotonic_ns)
    wake_word: str = ""
    t0_ns: int | None = None  # last voiced sample captured
    marks: dict[str, int] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    route: Literal["", "intent", "llm", "say"] = ""
    transcript: str = ""
    reply_text: str = ""
    heard_text: str = ""
    error: str = ""
    speculative_used: bool = False
    remembered: bool = False  # added to the LLM conversation history

    def mark(self, name: str, ns: int | None = None) -> None:
        self.marks.setdefault(name, ns if ns is not None else time.monotonic_ns())

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    @property
    def committed(self) -> Attempt | None:
        return next((a for a in self.attempts if a.committed), None)

    def cancel_all(self, reason: str) -> None:
        for a in self.attempts:
            a.cancel.cancel(reason)

    def latency(self) -> dict[str, float | None]:
        """The breakdown published in ``response.done`` (ms). Stage names are the same in events,
        logs and benchmarks: see the README's latency vocabulary."""
        m = self.marks
        a = self.committed
        am = a.marks if a else {}
        out: dict[str, float | None] = {
            "endpoint_ms": _ms(self.t0_ns, m.get("committed")),
            "asr_ms": a.asr_ms if a else None,
            "intent_ms": _ms(am.get("transcript"), am.get("intent")) if self.route == "intent" else None,
            "llm_ttft_ms": _ms(am.get("llm_start"), am.get("llm_first_token"))
            if self.route == "llm"
            else None,
            "first_sentence_ms": _ms(am.get("reply_start"), am.get("first_sentence")),
            "tts_first_chunk_ms": _ms(am.get("first_sentence"), am.get("first_audio")),
            "voice_to_voice_ms": _ms(self.t0_ns, m.get("playback_started")),
        }
        if "wake_ack" in m and "wake" in m:
            out["wake_to_ack_ms"] = _ms(m["wake"], m["wake_ack"])
        return out
