"""Outward events: one frozen payload class per ``EventType``, and the ``Event`` envelope sinks receive.

The orchestrator builds payloads from its typed messages (``SpeechStoppedInfo.of(msg)``); sinks read
``event.payload`` with ``match`` (typed) or ``event.data`` (the JSON-ready dict the wire carries). Field
names are the wire names; a field listed in ``OMIT_NONE`` is left out of ``data`` when it is None.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from edge_voice.core.messages import (
    SAMPLE_RATE,
    EngineFallback,
    PlaybackStarted,
    SourceFailed,
    SpeechStarted,
    SpeechStopped,
    WakeDetected,
)
from edge_voice.core.turns import Turn
from edge_voice.core.vocabulary import ErrorCode, EventType, Stage


def _ms(samples: int) -> int:
    return samples * 1000 // SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class EventPayload:
    TYPE: ClassVar[EventType]
    OMIT_NONE: ClassVar[frozenset[str]] = frozenset()

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None and f.name in self.OMIT_NONE:
                continue
            out[f.name] = value
        return out


@dataclass(frozen=True, slots=True)
class Event:
    """An outward event (MQTT ``…/event/<type>``, CLI JSON line). ``data`` is JSON-ready."""

    type: str
    turn_id: int | None
    ts_ns: int
    data: dict[str, object] = field(default_factory=dict)
    payload: EventPayload | None = None

    @classmethod
    def of(cls, payload: EventPayload, turn_id: int | None, ts_ns: int) -> Event:
        return cls(payload.TYPE, turn_id, ts_ns, payload.as_dict(), payload)


@dataclass(frozen=True, slots=True)
class WakeInfo(EventPayload):
    TYPE = EventType.WAKE_DETECTED
    word: str
    score: float
    at_sample: int
    at_ms: int

    @classmethod
    def of(cls, msg: WakeDetected) -> WakeInfo:
        return cls(msg.word, round(msg.score, 3), msg.at_sample, _ms(msg.at_sample))


@dataclass(frozen=True, slots=True)
class SpeechStartedInfo(EventPayload):
    TYPE = EventType.SPEECH_STARTED
    at_sample: int
    audio_start_ms: int

    @classmethod
    def of(cls, msg: SpeechStarted) -> SpeechStartedInfo:
        return cls(msg.at_sample, _ms(msg.at_sample))


@dataclass(frozen=True, slots=True)
class SpeechStoppedInfo(EventPayload):
    TYPE = EventType.SPEECH_STOPPED
    OMIT_NONE = frozenset({"at_sample", "duration_ms"})
    last_voiced_sample: int
    reason: str  # "silence", "max_length" or "early_commit"
    audio_end_ms: int
    at_sample: int | None = None  # where the endpoint fired (not for an early commit)
    duration_ms: int | None = None

    @classmethod
    def of(cls, msg: SpeechStopped) -> SpeechStoppedInfo:
        return cls(
            msg.last_voiced_sample,
            msg.reason,
            _ms(msg.last_voiced_sample),
            msg.at_sample,
            _ms(msg.last_voiced_sample - msg.speech_start_sample),
        )

    @classmethod
    def early_commit(cls, last_voiced_sample: int) -> SpeechStoppedInfo:
        return cls(last_voiced_sample, "early_commit", _ms(last_voiced_sample))


@dataclass(frozen=True, slots=True)
class TranscriptInfo(EventPayload):
    TYPE = EventType.TRANSCRIPT_FINAL
    text: str
    audio_ms: int
    asr_ms: float
    speculative: bool


# Slots a command may repeat, one per device: on the wire always a list (one device = a list of one), so
# a subscriber iterates them the same way for one device or three (design note 49).
LIST_SLOTS = frozenset({"device", "kind", "candidate", "understood"})


def slots_json(pairs: Iterable[tuple[str, str]]) -> dict[str, str | list[str]]:
    """An intent's (key, value) pairs as the JSON object MQTT and the events carry: ``LIST_SLOTS`` keys
    are lists in the order said, every other key a string ("brightness": "40")."""
    out: dict[str, str | list[str]] = {}
    for key, value in pairs:
        if key in LIST_SLOTS:
            listed = out.setdefault(key, [])
            assert isinstance(listed, list)
            listed.append(value)
        else:
            out[key] = value
    return out


@dataclass(frozen=True, slots=True)
class IntentInfo(EventPayload):
    TYPE = EventType.INTENT_RECOGNIZED
    name: str
    slots: tuple[tuple[str, str], ...]  # as matched; ``data`` carries ``slots_json`` of them
    text: str
    intent_ms: float | None

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "slots": slots_json(self.slots),
            "text": self.text,
            "intent_ms": self.intent_ms,
        }


@dataclass(frozen=True, slots=True)
class ResponseStartedInfo(EventPayload):
    TYPE = EventType.RESPONSE_STARTED
    OMIT_NONE = frozenset({"text"})
    route: str
    text: str | None = None  # a ``say`` gives its text at once


@dataclass(frozen=True, slots=True)
class TextDeltaInfo(EventPayload):
    TYPE = EventType.TEXT_DELTA
    delta: str


@dataclass(frozen=True, slots=True)
class AudioStartedInfo(EventPayload):
    TYPE = EventType.AUDIO_STARTED
    output_sample: int
    output_ms: int

    @classmethod
    def of(cls, msg: PlaybackStarted) -> AudioStartedInfo:
        return cls(msg.output_sample, _ms(msg.output_sample))


@dataclass(frozen=True, slots=True)
class ResponseDoneInfo(EventPayload):
    TYPE = EventType.RESPONSE_DONE
    status: str  # "done", "interrupted", "error", "no_speech", "no_transcript", "no_reply"
    route: str
    transcript: str
    reply: str
    heard: str
    speculative: bool
    latency: dict[str, float | None]

    @classmethod
    def of(cls, turn: Turn, status: str) -> ResponseDoneInfo:
        return cls(
            status,
            turn.route,
            turn.transcript,
            turn.reply_text,
            turn.heard_text,
            turn.speculative_used,
            turn.latency(),
        )


@dataclass(frozen=True, slots=True)
class TurnCancelledInfo(EventPayload):
    TYPE = EventType.TURN_CANCELLED
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorInfo(EventPayload):
    TYPE = EventType.ERROR
    OMIT_NONE = frozenset({"command", "key", "recoverable", "field", "reason", "topic"})
    stage: Stage
    code: ErrorCode | str
    message: str
    command: str | None = None  # bad_command: which command
    key: str | None = None  # reload_failed: the config key
    recoverable: bool | None = None  # source_failed: worth retrying
    field: str | None = None  # bad_command: the offending field, why, and the topic it came on
    reason: str | None = None
    topic: str | None = None

    @classmethod
    def source(cls, msg: SourceFailed) -> ErrorInfo:
        return cls(Stage.AUDIO, ErrorCode.SOURCE_FAILED, msg.message, recoverable=msg.recoverable)


@dataclass(frozen=True, slots=True)
class VolumeInfo(EventPayload):
    TYPE = EventType.VOLUME_CHANGED
    level: float


@dataclass(frozen=True, slots=True)
class MuteInfo(EventPayload):
    TYPE = EventType.MUTE_CHANGED
    on: bool


@dataclass(frozen=True, slots=True)
class TimerFinishedInfo(EventPayload):
    TYPE = EventType.TIMER_FINISHED
    name: str  # "five minute timer"
    duration_s: int


@dataclass(frozen=True, slots=True)
class FallbackInfo(EventPayload):
    TYPE = EventType.ENGINE_FALLBACK
    stage: str
    backend: str
    reason: str
    using: str

    @classmethod
    def of(cls, msg: EngineFallback) -> FallbackInfo:
        return cls(msg.stage, msg.backend, msg.reason, msg.using)


@dataclass(frozen=True, slots=True)
class ReloadedInfo(EventPayload):
    TYPE = EventType.CONFIG_RELOADED
    applied: list[str]
    restart_required: list[str]


@dataclass(frozen=True, slots=True)
class EchoInfo(EventPayload):
    TYPE = EventType.ECHO_PATH
    cancelling: bool
    reason: str
    erle_db: float | None


@dataclass(frozen=True, slots=True)
class RecoveredInfo(EventPayload):
    TYPE = EventType.AUDIO_RECOVERED
    at_sample: int
