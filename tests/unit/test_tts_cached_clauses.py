"""A confirmation naming several devices starts with a cached phrase: that phrase plays at once and only
the rest is synthesised (``TtsWorker._chunks``). Fake synthesiser and playback, ``handle`` called directly."""

from __future__ import annotations

import threading

import numpy as np

from edge_voice.core.cancel import CancelToken
from edge_voice.core.jobs import Ctx, SpeakJob
from edge_voice.core.messages import Pcm
from edge_voice.runtime.workers import PlayChunk, TtsWorker, _first_clause
from tests.fakes import ToneSynthesizer


class Cache:
    def __init__(self, texts: list[str]) -> None:
        self.pcm = {t: np.full(1600, i + 1, np.int16) for i, t in enumerate(texts)}

    def get(self, text: str) -> Pcm | None:
        return self.pcm.get(text)

    def put(self, text: str, pcm: Pcm) -> None:
        self.pcm[text] = pcm


class Playback:
    def __init__(self) -> None:
        self.chunks: list[PlayChunk] = []

    def submit(self, job: object, timeout_s: float = 5.0) -> None:
        assert isinstance(job, PlayChunk)
        self.chunks.append(job)


CACHED = ["Turning on the hallway light.", "Turning off the fan.", "Turning on the fan."]


def speak(text: str) -> tuple[ToneSynthesizer, Playback, Cache]:
    tone, playback, cache = ToneSynthesizer(), Playback(), Cache(CACHED)
    worker = TtsWorker(tone, lambda _m: None, playback, cache=cache)  # type: ignore[arg-type]
    worker.handle(SpeakJob(Ctx(1, 1, CancelToken(), threading.Event()), 0, text))
    return tone, playback, cache


def test_the_cached_first_clause_plays_and_only_the_rest_is_synthesised() -> None:
    tone, playback, cache = speak("Turning on the hallway light and the coffee machine.")
    assert tone.texts == ["and the coffee machine."]
    first, second = (j.chunk for j in playback.chunks)
    assert np.array_equal(first.samples, cache.pcm["Turning on the hallway light."])
    assert not first.last_of_sentence and second.last_of_sentence
    assert first.text == second.text == "Turning on the hallway light and the coffee machine."


def test_two_cached_phrases_need_no_synthesis() -> None:
    tone, playback, _ = speak("Turning on the hallway light and turning off the fan.")
    assert tone.texts == []
    assert [j.chunk.samples[0] for j in playback.chunks] == [1, 2]  # the two cached phrases, in order
    assert [j.chunk.last_of_sentence for j in playback.chunks] == [False, True]


def test_a_sentence_without_a_cached_start_is_synthesised_whole() -> None:
    tone, playback, _ = speak("Paris is the capital of France, and it is big.")
    assert tone.texts == ["Paris is the capital of France, and it is big."]
    assert len(playback.chunks) == 1 and playback.chunks[0].chunk.last_of_sentence
    tone, playback, _ = speak("Turning on the fan.")  # cached whole
    assert tone.texts == [] and len(playback.chunks) == 1


def test_first_clause() -> None:
    assert _first_clause("Turning on the fan and the kitchen light.") == (
        "Turning on the fan",
        "and the kitchen light.",
    )
    assert _first_clause("Turning on the fan, the kitchen light and the coffee machine.") == (
        "Turning on the fan",
        "the kitchen light and the coffee machine.",
    )
    assert _first_clause("Turning on the fan.") == ("", "")
