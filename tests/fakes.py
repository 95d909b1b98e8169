"""Fakes for orchestration unit tests only. Real engines are tested for real in tests/integration."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from edge_voice.core.cancel import CancelToken
from edge_voice.core.intent import IntentOutcome
from edge_voice.core.messages import ChatMessage, Pcm
from edge_voice.engines.base import GenerationStats, Transcription
from edge_voice.listen.wake import HOP_SAMPLES


class ScriptedTranscriber:
    """Returns texts in order (or one text always); can raise or block on demand."""

    def __init__(self, texts: Sequence[str] = ("turn on the kitchen light",), delay_s: float = 0.0) -> None:
        self.texts = list(texts)
        self.calls: list[int] = []  # audio lengths
        self.delay_s = delay_s
        self.fail: Exception | None = None

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
        self.calls.append(len(audio))
        if self.fail is not None:
            raise self.fail
        if self.delay_s:
            cancel.wait(self.delay_s)
        return Transcription(self.texts.pop(0) if len(self.texts) > 1 else self.texts[0])


class ScriptedGenerator:
    def __init__(
        self, text: str = "Paris is the capital of France. It is on the Seine.", delay_s: float = 0.0
    ) -> None:
        self.text = text
        self.delay_s = delay_s
        self.prompts: list[tuple[ChatMessage, ...]] = []
        self.primed: list[tuple[ChatMessage, ...]] = []
        self.warmed: tuple[ChatMessage, ...] = ()
        self.last: GenerationStats | None = None

    def warm(self, prefix: Sequence[ChatMessage]) -> None:
        self.warmed = tuple(prefix)

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        self.primed.append(tuple(messages))

    def stream(self, messages: Sequence[ChatMessage], cancel: CancelToken) -> Iterator[str]:
        self.prompts.append(tuple(messages))
        for word in self.text.split(" "):
            if cancel.cancelled:
                return
            if self.delay_s:
                time.sleep(self.delay_s)
            yield word + " "


class ToneSynthesizer:
    """One chunk per call: a tone whose length is proportional to the text (so 'heard' fractions work)."""

    sample_rate = 16000

    def __init__(self, ms_per_char: float = 20.0) -> None:
        self.ms_per_char = ms_per_char
        self.texts: list[str] = []

    def synthesize(self, text: str, cancel: CancelToken) -> Iterator[Pcm]:
        self.texts.append(text)
        n = int(self.sample_rate * self.ms_per_char * len(text) / 1000)
        t = np.arange(n) / self.sample_rate
        yield (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)


class SimpleSplitter:
    def __init__(self) -> None:
        self.buf = ""
        self.emitted = 0

    def push(self, text: str) -> list[str]:
        self.buf += text
        out = []
        while ". " in self.buf:
            head, self.buf = self.buf.split(". ", 1)
            out.append(head + ".")
        self.emitted += len(out)
        return out

    def flush(self, drop_incomplete: bool = False) -> list[str]:
        rest, self.buf = self.buf.strip(), ""
        if drop_incomplete and self.emitted and not rest.endswith((".", "!", "?")):
            return []  # cut off by the token limit: not spoken (as the real chunker)
        return [rest] if rest else []


class RecordingListen:
    """Records the orchestrator's requests. ``heard`` (input samples listened to) follows ``clock`` (ns) in
    real time, as a live microphone's listener does; ``clock=None``: the test sets it."""

    def __init__(self, clock: Callable[[], int] | None = None) -> None:
        self.calls: list[tuple[str, int | None]] = []
        self.lock = threading.Lock()
        self.clock = clock
        self._heard = 0
        self.armed: list[bool] = []  # arm_stop calls, apart: the stop word follows every SPEAKING state

    @property
    def heard(self) -> int:
        return self._heard if self.clock is None else self.clock() * 16 // 1_000_000

    @heard.setter
    def heard(self, samples: int) -> None:
        self.clock, self._heard = None, samples

    def open(self, timeout_ms: int | None = None) -> None:
        with self.lock:
            self.calls.append(("open", timeout_ms))

    def carry_on(self, after_sample: int, timeout_ms: int | None = None) -> None:
        with self.lock:
            self.calls.append(("carry_on", after_sample))

    def close(self) -> None:
        with self.lock:
            self.calls.append(("close", None))

    def arm_stop(self, on: bool) -> None:
        with self.lock:
            self.armed.append(on)


@dataclass(frozen=True)
class Outcome:
    name: str
    slots: tuple[tuple[str, str], ...]
    reply: str
    also: tuple[Outcome, ...] = ()


class KitchenIntents:
    """Two lights and "stop"; records what was applied as ``name:device``."""

    def __init__(self) -> None:
        self.applied: list[str] = []
        self.previous: list[str] = []  # the commands continuations were matched against
        self.clarify = False  # every match is a question back

    def match(self, text: str, previous: IntentOutcome | None = None) -> IntentOutcome | None:
        if previous is not None:
            self.previous.append(previous.name)
        if self.clarify:
            return Outcome("clarify", (), "Turn off which device?")
        found = [d for d in ("kitchen light", "hallway light") if d in text.lower()]
        if len(found) == 2 and " and turn on " in text.lower():  # two commands in one sentence
            first, second = (Outcome("light_on", (("device", d),), f"Turning on the {d}.") for d in found)
            return Outcome("light_on", first.slots, "Turning on both.", (second,))
        for device in ("kitchen light", "hallway light"):
            if device in text.lower():
                return Outcome("light_on", (("device", device),), f"Turning on the {device}.")
        if text.lower().strip(" .") == "stop":
            return Outcome("stop", (), "")
        return None

    def apply(self, result: IntentOutcome) -> None:
        self.applied.append(f"{result.name}:{dict(result.slots).get('device', '')}")


class ScriptedWake:
    """Scores per completed 80 ms hop from a script (a fake of the wake detector: orchestration only)."""

    words = ("w",)

    def __init__(self, scores: list[float]) -> None:
        self.scores, self.hop, self.fill = scores, 0, 0

    def process(self, samples: np.ndarray) -> dict[str, float]:
        self.fill += len(samples)
        out: dict[str, float] = {}
        while self.fill >= HOP_SAMPLES:
            self.fill -= HOP_SAMPLES
            out = {"w": self.scores[self.hop] if self.hop < len(self.scores) else 0.0}
            self.hop += 1
        return out

    def reset(self) -> None:
        self.fill = 0


class QuietVad:
    """A VAD that never hears speech."""

    frame_samples = 512

    def process(self, frame: np.ndarray) -> float:
        return 0.0

    def reset(self) -> None:
        pass
