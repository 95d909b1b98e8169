"""The small protocols every engine implements. Real engines live beside this file and import their heavy
libraries lazily (inside ``load``/``__init__``), so choosing one never imports the others. Fakes for
orchestration tests live in tests/, never in the package.

Threading: each engine instance is used by exactly one thread (its worker), except ``sample_rate``-style
read-only attributes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt

from edge_voice.core.cancel import CancelToken
from edge_voice.core.messages import ChatMessage, Pcm


class RemoteError(RuntimeError):
    """A remote engine (OpenAI-compatible server, Wyoming peer) is unreachable, too slow or answered
    nonsense. The fallback wrappers catch exactly this and switch to the on-device engine."""


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


class Transcriber(Protocol):
    """Speech → text. Called from the ASR thread only."""

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> str:
        """Decode 16 kHz int16 speech. Returns "" for nothing usable (silence/noise tags, aborted).
        Must return within the configured time limit even if the decode degenerates."""
        ...


class Generator(Protocol):
    """Chat LLM with streaming. Called from the LLM thread only."""

    def warm(self, system_prompt: str) -> None:
        """Fill the KV cache with the system prompt so the first turn is as fast as later ones."""
        ...

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate ``messages`` into the KV cache ahead of the request that will extend them (the user
        message so far, while the user is still speaking). Best effort: an engine without a local cache
        does nothing; never raises."""
        ...

    def stream(self, messages: Sequence[ChatMessage], cancel: CancelToken) -> Iterator[str]:
        """Yield text pieces as they are generated; stop promptly when ``cancel`` is set."""
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
