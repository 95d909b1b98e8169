"""The small protocols every engine implements. Real engines live beside this file and import their heavy
libraries lazily (inside ``load``/``__init__``), so choosing one never imports the others. Fakes for
orchestration tests live in tests/, never in the package.

Threading: each engine instance is used by exactly one thread (its worker), except ``sample_rate``-style
read-only attributes.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from edge_voice.core.cancel import CancelToken
from edge_voice.core.messages import ChatMessage, Pcm

# Threads that run an engine's native code outside the engine threads (the LLM's request thread, which
# llama.cpp calls back into Python from): the program's exit checks them too (runtime/shutdown.py).
NATIVE_THREADS: weakref.WeakSet[threading.Thread] = weakref.WeakSet()


class RemoteError(RuntimeError):
    """A remote engine (OpenAI-compatible server, Wyoming peer) is unreachable, too slow or answered
    nonsense. The fallback wrappers catch exactly this and switch to the on-device engine."""


class RemoteTimeout(RemoteError):
    """No (whole) answer within the deadline: the request may still have been acted on (HA's agent)."""


class WakeDetector(Protocol):
    """openWakeWord-style streaming detector. Called from the listen thread."""

    words: tuple[str, ...]

    def process(self, samples: Pcm) -> dict[str, float]:
        """Feed 16 kHz int16 audio (any length; leftovers carried to the next call). Returns the highest
        score per word over the 80 ms hops completed by this call ({} if no hop completed)."""
        ...

    def reset(self) -> None:
        """Clear the streaming state (after a detection, so the same audio does not fire twice)."""
        ...


class VoiceActivityDetector(Protocol):
    """Silero-style VAD. Called from the listen thread."""

    frame_samples: int  # 512 at 16 kHz

    def process(self, frame: Pcm) -> float:
        """Speech probability 0–1 for exactly ``frame_samples`` int16 samples."""
        ...

    def reset(self) -> None: ...


class TurnEndDetector(Protocol):
    """Acoustic end of turn (Smart Turn style). Called by one thread at a time."""

    def complete(self, audio: Pcm) -> float:
        """Probability 0–1 that the user has finished their turn, from 16 kHz int16 audio of the utterance
        so far (its speech and the silence seen after it)."""
        ...


AbortReason = Literal["", "cancelled", "time", "tokens"]
Stopped = Literal["eos", "max_tokens", "cancelled", "error"]


@dataclass(frozen=True, slots=True)
class Transcription:
    """What a ``transcribe`` gives: the text ("" for nothing usable) and, if the decode was cut short
    (cancelled, or at its time or token limit), why."""

    text: str
    aborted: AbortReason = ""


class Transcriber(Protocol):
    """Speech → text. Called from the ASR thread only."""

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
        """Decode 16 kHz int16 speech. Text "" for nothing usable (silence/noise tags, aborted).
        Must return within the configured time limit even if the decode degenerates."""
        ...


@dataclass(frozen=True, slots=True)
class GenerationStats:
    """What the last ``stream`` did. Times are wall-clock ms from the call; token rates from llama.cpp."""

    tokens: int
    stopped: Stopped
    ttft_ms: float  # call → first text piece (-1 if none)
    total_ms: float
    prompt_tokens: int  # prompt tokens evaluated this time (not served from the KV cache)
    cached_tokens: int  # prompt tokens reused from the KV cache
    prompt_ms: float
    decode_tok_s: float
    text: str

    @classmethod
    def from_timings(
        cls, timings: dict[str, Any], pieces: list[str], stopped: Stopped, first_s: float, t0: float
    ) -> GenerationStats:
        """From llama.cpp's ``timings`` block (local server or an OpenAI-compatible llama-server)."""
        return cls(
            tokens=int(timings.get("predicted_n", len(pieces))) if stopped != "cancelled" else len(pieces),
            stopped=stopped,
            ttft_ms=first_s * 1000 if first_s >= 0 else -1.0,
            total_ms=(time.monotonic() - t0) * 1000,
            prompt_tokens=int(timings.get("prompt_n", 0)),
            cached_tokens=int(timings.get("cache_n", 0)),
            prompt_ms=float(timings.get("prompt_ms", 0.0)),
            decode_tok_s=float(timings.get("predicted_per_second", 0.0)),
            text="".join(pieces),
        )


class Generator(Protocol):
    """Chat LLM with streaming. Called from the LLM thread only."""

    def warm(self, prefix: Sequence[ChatMessage]) -> None:
        """Fill the KV cache with the fixed start of every request (system prompt and example exchanges,
        ``conversation.prompt_prefix``) so the first turn is as fast as later ones."""
        ...

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate ``messages`` into the KV cache ahead of the request that will extend them (the user
        message so far, while the user is still speaking). Best effort: an engine without a local cache
        does nothing; never raises."""
        ...

    def stream(self, messages: Sequence[ChatMessage], cancel: CancelToken) -> Iterator[str]:
        """Yield text pieces as they are generated; stop promptly when ``cancel`` is set."""
        ...

    @property
    def last(self) -> GenerationStats | None:
        """The stats of the most recent ``stream``, set when it ends (why it stopped, tokens, timings)."""
        ...


@runtime_checkable
class PromptedTranscriber(Protocol):
    """A transcriber that can decode one utterance with its own initial prompt (the stop word's check:
    "Stop." instead of the device names, bench stop). Called from the ASR thread only."""

    def transcribe_prompted(self, audio: Pcm, cancel: CancelToken, prompt: str) -> Transcription: ...


@runtime_checkable
class ReportsRetry(Protocol):
    """A transcriber that retries a decode out of time (``engines.asr.decode_with_retry``) and says so as
    the retry starts, with its limit in ms: the ASR worker's deadline then counts from there."""

    on_retry: Callable[[int], None] | None


@runtime_checkable
class Interruptible(Protocol):
    """An engine whose native call under way another thread can end (shutdown: no engine thread may be
    inside native code when the interpreter finalizes)."""

    def interrupt(self) -> bool:
        """End the call in progress soon (one graph node); later calls are not affected. True if one
        may have been in progress."""
        ...


class Synthesizer(Protocol):
    """Text → speech. Called from the TTS thread only."""

    sample_rate: int

    def synthesize(self, text: str, cancel: CancelToken) -> Iterator[Pcm]:
        """Yield int16 mono chunks at ``sample_rate``; stop promptly when ``cancel`` is set."""
        ...


Float32 = npt.NDArray[np.float32]


def to_float32(pcm: Pcm) -> Float32:
    """int16 → float32 in [-1, 1)."""
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32, copy=False)
