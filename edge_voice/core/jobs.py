"""The jobs the orchestrator hands to the engine threads, and the ports it hands them through.

A job carries its attempt's ``Ctx``: the cancel token every engine checks between chunks and the gate
playback waits on (a speculative reply is prepared but only heard once the endpoint is confirmed).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol, TypeVar

from edge_voice.core.cancel import CancelToken
from edge_voice.core.messages import ChatMessage, Pcm
from edge_voice.core.vocabulary import Stage


@dataclass(frozen=True, slots=True)
class Ctx:
    """What every job of one attempt shares."""

    turn_id: int
    attempt: int
    cancel: CancelToken
    gate: threading.Event  # set = this attempt may be heard
    # set once the attempt is committed (never cleared, unlike ``gate``, which a continuation may hold):
    # what Home Assistant's agent waits for before acting; None: the gate
    committed: threading.Event | None = None


@dataclass(frozen=True, slots=True, eq=False)
class AsrJob:
    ctx: Ctx
    audio: Pcm
    prompt: str | None = None  # this decode's own whisper prompt (the stop check's); None: the engine's


@dataclass(frozen=True, slots=True)
class LlmJob:
    ctx: Ctx
    messages: tuple[ChatMessage, ...]
    question: str = ""  # the user's words alone (the reply guard judges the answer against them)
    # not None: a device command for Home Assistant's conversation agent (intents.backend); this is the
    # fast path's confirmation, spoken if HA fails
    agent_fallback: str | None = None


@dataclass(frozen=True, slots=True)
class PrimeJob:
    """Evaluate a prompt prefix while the user speaks (no Ctx: it belongs to no attempt, fails no turn)."""

    messages: tuple[ChatMessage, ...]


@dataclass(frozen=True, slots=True)
class SpeakJob:
    ctx: Ctx
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class EndOfReply:
    """No more sentences for this attempt (sent after the last SpeakJob)."""

    ctx: Ctx


@dataclass(frozen=True, slots=True)
class ChimeJob:
    """A short tone that says the microphone is open (``conversation.chimes``); played at once, ahead
    of no reply, and never part of one."""

    kind: str = "listen"


J_contra = TypeVar("J_contra", contravariant=True)


class BusyStage(Protocol):
    """What the supervisor sees of an engine thread (runtime/workers.py): is it stuck, and on whose job."""

    @property
    def stage(self) -> Stage: ...

    @property
    def busy_since_ns(self) -> int | None:
        """When the running job started (monotonic ns); None when idle."""
        ...

    @property
    def busy_ctx(self) -> Ctx | None: ...

    @property
    def busy_extra_s(self) -> float:
        """Added to the stage deadline for the running job (playback: its audio length)."""
        ...


class StagePort(BusyStage, Protocol[J_contra]):
    """An engine thread the orchestrator hands jobs to."""

    def submit_nowait(self, job: J_contra) -> bool:
        """Never blocks (the orchestrator's loop must not): False if the queue is full."""
        ...


class PlaybackPort(BusyStage, Protocol):
    volume: float

    def submit_nowait(self, job: ChimeJob) -> bool: ...


class ListenControl(Protocol):
    """The orchestrator's handle on the listen thread (requests run in that thread, in order)."""

    def open(self, timeout_ms: int | None = None) -> None: ...

    def carry_on(self, after_sample: int, timeout_ms: int | None = None) -> None:
        """Listen on after a commit: what the user says next is a new utterance (a continuation)."""
        ...

    def close(self) -> None: ...

    def arm_stop(self, on: bool) -> None:
        """The stop word: while on, short utterances come back as ``ShortUtterance`` (listen/stop.py)."""
        ...

    @property
    def heard(self) -> int:
        """Input samples the listen thread has taken so far (the input clock; read from the loop)."""
        ...
