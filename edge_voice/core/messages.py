"""Typed messages between threads and the orchestrator.

All are frozen, slotted dataclasses joined in unions; the orchestrator dispatches with ``match`` and
``assert_never`` so mypy flags an unhandled message. JSON exists only at the MQTT and CLI boundary
(see ``core/events.py``). Sample positions are counted on the input clock (16 kHz samples since the source
started), never wall time; ``*_ns`` fields are ``time.monotonic_ns()`` marks for latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from edge_voice.core.vocabulary import ErrorCode, Stage

SAMPLE_RATE = 16000
Pcm = npt.NDArray[np.int16]  # mono int16 samples


# ------------------------------------------------------------------------------------ audio in / listen


@dataclass(frozen=True, slots=True, eq=False)
class AudioFrame:
    """A block of captured audio. ``start_sample`` is its offset on the input clock."""

    samples: Pcm
    start_sample: int
    captured_ns: int

    @property
    def end_sample(self) -> int:
        return self.start_sample + len(self.samples)


@dataclass(frozen=True, slots=True)
class WakeDetected:
    word: str
    score: float
    at_sample: int  # end of the 80 ms hop that crossed the threshold
    captured_ns: int


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    at_sample: int  # first voiced sample (pre-roll is before it)
    captured_ns: int


@dataclass(frozen=True, slots=True, eq=False)
class SpeechPaused:
    """Speech went quiet for ``endpoint.speculative_silence_ms``: a speculative decode may start. Sent
    again with ``settled`` once the quiet lasts ``endpoint.commit_silence_ms``: a complete command may
    now end the turn."""

    audio: Pcm  # pre-roll + speech so far + the silence seen
    start_sample: int  # of ``audio``
    last_voiced_sample: int  # end of the last voiced VAD frame
    at_sample: int
    captured_ns: int
    settled: bool
    question: bool = False  # the quiet lasted endpoint.question_commit_silence_ms: a question may end
    echo: bool = False  # heard while the device played, and only what the canceller left of it


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """Speech came back after a ``SpeechPaused``: the speculative work is stale."""

    at_sample: int
    captured_ns: int


@dataclass(frozen=True, slots=True, eq=False)
class SpeechStopped:
    """The endpoint is confirmed. ``audio`` is pre-roll + speech + trailing silence."""

    audio: Pcm
    start_sample: int  # of ``audio``
    speech_start_sample: int
    last_voiced_sample: int  # t0: end of the last voiced frame
    at_sample: int  # where the endpoint fired
    reason: Literal["silence", "max_length"]
    captured_ns: int
    voiced_captured_ns: int  # monotonic time the last voiced sample was captured (t0 for latency)
    echo: bool = False  # heard while the device played, and only what the canceller left of it


@dataclass(frozen=True, slots=True)
class NoSpeech:
    """Listening was opened (wake / command) but nobody spoke before the timeout."""

    at_sample: int


@dataclass(frozen=True, slots=True, eq=False)
class ShortUtterance:
    """While the stop word is armed (the device speaks or a timer rings): a short voiced run with silence
    either side — maybe "stop" (``listen/stop.py``). ``audio`` is padded 200 ms each side."""

    audio: Pcm
    start_sample: int  # first voiced sample
    end_sample: int  # after the last voiced sample
    captured_ns: int


ListenEvent = (
    WakeDetected | SpeechStarted | SpeechPaused | SpeechResumed | SpeechStopped | NoSpeech | ShortUtterance
)


@dataclass(frozen=True, slots=True)
class SourceFailed:
    """The audio source raised or ran dry unexpectedly. ``recoverable`` = worth retrying."""

    message: str
    recoverable: bool


@dataclass(frozen=True, slots=True)
class SourceEnded:
    """A file source reached its end."""

    at_sample: int


@dataclass(frozen=True, slots=True)
class SourceRecovered:
    at_sample: int


@dataclass(frozen=True, slots=True)
class EchoPathChanged:
    """The echo canceller started or stopped removing the device's own voice (capture thread → loop)."""

    cancelling: bool
    reason: str
    erle_db: float | None = None  # echo return loss enhancement over the last check, if measured


# ------------------------------------------------------------------------------------------ engines out


@dataclass(frozen=True, slots=True)
class Transcript:
    turn_id: int
    attempt: int  # which speculative/final attempt of the turn produced it
    text: str  # "" = nothing usable (silence, noise tag, aborted)
    audio_ms: int
    asr_ms: float
    aborted: bool = False


@dataclass(frozen=True, slots=True)
class TextDelta:
    """LLM tokens (already detokenised) for the turn."""

    turn_id: int
    attempt: int
    text: str
    first: bool


@dataclass(frozen=True, slots=True)
class SentenceReady:
    """A chunk of reply text handed to TTS (first chunk may be a clause)."""

    turn_id: int
    attempt: int
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class GenerationDone:
    turn_id: int
    attempt: int
    text: str  # exactly as generated, unstripped: the string whose tokens are in the KV cache
    tokens: int
    stopped: Literal["eos", "max_tokens", "cancelled", "error"]


@dataclass(frozen=True, slots=True, eq=False)
class AudioChunk:
    """Synthesised reply audio at ``rate_hz`` (the TTS voice's rate)."""

    turn_id: int
    attempt: int
    sentence_index: int
    samples: Pcm
    rate_hz: int
    last_of_sentence: bool
    text: str = ""  # the sentence this chunk belongs to (for "what was heard")


@dataclass(frozen=True, slots=True)
class SynthesisDone:
    turn_id: int
    attempt: int


@dataclass(frozen=True, slots=True)
class PlaybackStarted:
    turn_id: int
    written_ns: int  # first reply sample written to the sink
    output_sample: int  # its position on the input clock (WAV sink timeline)


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    turn_id: int
    heard_text: str  # the sentences actually played (whole, or cut at an interruption)
    interrupted: bool


@dataclass(frozen=True, slots=True)
class StageFailed:
    """A stage raised or timed out. The turn ends with an ``error`` event; the daemon keeps serving."""

    turn_id: int
    stage: Stage
    code: ErrorCode
    message: str
    attempt: int = 0  # 0 = the turn as a whole; else a failure of a cancelled attempt is ignored


# ------------------------------------------------------------------------------------------- commands


@dataclass(frozen=True, slots=True)
class ListenCommand:
    """Open a turn without the wake word (button press, MQTT ``listen``)."""

    source: Literal["button", "mqtt", "cli"] = "mqtt"


@dataclass(frozen=True, slots=True)
class CancelCommand:
    source: Literal["button", "mqtt", "cli", "wake"] = "mqtt"


@dataclass(frozen=True, slots=True)
class SayCommand:
    text: str
    announce: bool = False  # announce = play a chime first


@dataclass(frozen=True, slots=True)
class MuteCommand:
    """``source``: a physical mute (``button`` hold, ``switch``) is undone only physically (never over
    MQTT); the switch's only by the switch."""

    on: bool
    source: Literal["mqtt", "button", "switch", "cli"] = "mqtt"


@dataclass(frozen=True, slots=True)
class VolumeCommand:
    level: float  # 0.0–1.0


@dataclass(frozen=True, slots=True)
class BadCommand:
    """A command payload that failed validation (already reported)."""

    name: str
    message: str


@dataclass(frozen=True, slots=True)
class ReloadConfig:
    """SIGHUP: re-read the config; apply what can change live, keep the old config if the new is bad."""


@dataclass(frozen=True, slots=True)
class Shutdown:
    reason: str = ""


Command = (
    ListenCommand
    | CancelCommand
    | SayCommand
    | MuteCommand
    | VolumeCommand
    | BadCommand
    | ReloadConfig
    | Shutdown
)


@dataclass(frozen=True, slots=True)
class EngineFallback:
    """A remote engine failed or timed out and the on-device one took over (or the remote came back).
    Posted by the fallback wrappers in ``engines/fallback.py`` from the engine's own thread."""

    stage: Literal["asr", "llm", "tts", "intent"]  # intent: Home Assistant's conversation agent
    backend: str  # the remote that failed, e.g. "openai http://10.0.0.5:8080/v1"
    reason: str
    using: Literal["local", "remote"] = "local"  # which engine serves from now on


@dataclass(frozen=True, slots=True)
class AgentFallback:
    """Home Assistant's conversation agent failed on a committed device command: the fast path's intent
    applies instead (its confirmation is being spoken). Posted by the LLM thread."""

    turn_id: int
    attempt: int
    # False: HA timed out and may have acted; the intent's MQTT event is not published (the blueprint
    # would act a second time)
    publish: bool = True


EngineResult = (
    Transcript
    | TextDelta
    | SentenceReady
    | GenerationDone
    | AudioChunk
    | SynthesisDone
    | PlaybackStarted
    | PlaybackFinished
    | StageFailed
    | EngineFallback
    | AgentFallback
)

SourceEvent = SourceFailed | SourceEnded | SourceRecovered | EchoPathChanged

Message = ListenEvent | EngineResult | Command | SourceEvent


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: Literal["system", "user", "assistant"]
    content: str
