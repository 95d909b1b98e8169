"""The real Piper voice (joe medium): speech out, determinism, cancel between sentences, phrase cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import IntentsConfig, TtsConfig
from edge_voice.engines.intents import confirmation_phrases
from edge_voice.engines.tts import PhraseCache, PiperSynthesizer, voice_paths

pytestmark = pytest.mark.engines

THREE = "The kitchen light is on. The fan is off. The coffee machine is warming up."


@pytest.fixture(scope="module")
def tts() -> PiperSynthesizer:
    synth = PiperSynthesizer(dataclasses.replace(TtsConfig(), deterministic=True))
    assert synth.warm() > 0
    return synth


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


def test_speaks_at_the_voice_rate(tts: PiperSynthesizer) -> None:
    pcm = tts.synthesize_all("Turning on the kitchen light.")
    assert tts.sample_rate == 22050
    assert pcm.dtype == np.int16
    seconds = len(pcm) / tts.sample_rate
    assert 0.8 < seconds < 3.5  # five words of speech
    assert rms(pcm) > 1000  # not silence (Piper normalises each sentence to full scale)


def test_one_chunk_per_sentence(tts: PiperSynthesizer) -> None:
    chunks = list(tts.synthesize(THREE, NEVER))
    assert len(chunks) == 3
    assert all(rms(c) > 1000 for c in chunks)


def test_deterministic_is_bit_identical(tts: PiperSynthesizer) -> None:
    a = tts.synthesize_all("What is the capital of France?")
    b = tts.synthesize_all("What is the capital of France?")
    assert np.array_equal(a, b)


def test_default_noise_varies() -> None:
    noisy = PiperSynthesizer(TtsConfig())
    a = noisy.synthesize_all("What is the capital of France?")
    b = noisy.synthesize_all("What is the capital of France?")
    assert not (len(a) == len(b) and np.array_equal(a, b))


def test_cancel_stops_between_sentences(tts: PiperSynthesizer) -> None:
    cancel = CancelToken()
    got = []
    for chunk in tts.synthesize(THREE, cancel):
        got.append(chunk)
        cancel.cancel()
    assert len(got) == 1


def test_cancelled_before_start_or_empty_text_yields_nothing(tts: PiperSynthesizer) -> None:
    cancel = CancelToken()
    cancel.cancel()
    assert list(tts.synthesize(THREE, cancel)) == []
    assert list(tts.synthesize("   ", NEVER)) == []


def test_voice_config_is_verified_from_the_manifest() -> None:
    model, config = voice_paths("piper-joe")
    assert model.suffix == ".onnx" and config.name == model.name + ".json"


def test_phrase_cache_holds_the_fast_path_replies(tts: PiperSynthesizer) -> None:
    cache = PhraseCache(tts, max_phrases=64)
    phrases = confirmation_phrases(IntentsConfig())[:6]
    assert cache.prepare(phrases) == 6
    assert cache.prepare(phrases) == 0  # already there
    hit = cache.get("Turning on  the kitchen light.")  # whitespace-insensitive key
    assert hit is not None
    assert np.array_equal(hit, tts.synthesize_all("Turning on the kitchen light."))
    assert cache.get("Something never cached.") is None


def test_phrase_cache_is_bounded(tts: PiperSynthesizer) -> None:
    cache = PhraseCache(tts, max_phrases=2)
    cache.prepare(["One two three.", "Four five six."])
    cache.get("One two three.")  # recently used: survives
    cache.prepare(["Seven eight nine."])
    assert len(cache) == 2
    assert "One two three." in cache and "Four five six." not in cache
