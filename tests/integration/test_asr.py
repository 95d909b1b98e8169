"""whisper.cpp with our own converted models on speech generated at test time (Piper and espeak-ng voices,
clean and at 10 dB SNR): transcripts, f16 = q8_0, non-speech gives "", and every decode is bounded."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from edge_voice.audio import clips
from edge_voice.bench.asr import normalize
from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import Config
from edge_voice.core.messages import Pcm
from edge_voice.engines.asr import WhisperCppTranscriber
from edge_voice.models import build as models_build

pytestmark = pytest.mark.engines


def utterance(speech: Pcm, snr_db: float | None = None) -> Pcm:
    """As the endpointer hands it over: 300 ms pre-roll + speech + 500 ms of end-of-speech silence."""
    pcm = np.concatenate([clips.silence(300), speech, clips.silence(500)])
    return pcm if snr_db is None else clips.mix_at_snr(pcm, snr_db, seed=7)


def speech(text: str, voice: str) -> Pcm:
    if voice.startswith("piper"):
        return clips.piper_speech(text, length_scale=float(voice.partition(":")[2] or 1.0))
    return clips.espeak_speech(text, voice)


@pytest.fixture(scope="module")
def cfg() -> Config:
    cfg = Config()
    models_build.build_all(cfg.models_path, progress=False)  # cached: instant once built
    # accuracy, not speed: on a loaded box the 3 s decode budget aborted decodes (an empty transcript)
    return dataclasses.replace(cfg, asr=dataclasses.replace(cfg.asr, max_decode_ms=20000))


@pytest.fixture(scope="module")
def asr(cfg: Config) -> Iterator[WhisperCppTranscriber]:
    engine = WhisperCppTranscriber(cfg.asr, cfg.models_path)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def asr_f16(cfg: Config) -> Iterator[WhisperCppTranscriber]:
    engine = WhisperCppTranscriber(dataclasses.replace(cfg.asr, model="whisper-tiny.en-f16"), cfg.models_path)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def long_speech() -> Pcm:
    """~25 s of continuous speech: a decode that would run for hundreds of tokens."""
    text = (
        "The quick brown fox jumps over the lazy dog. She sells sea shells by the sea shore. "
        "Peter Piper picked a peck of pickled peppers. How much wood would a woodchuck chuck. "
    )
    return clips.piper_speech(text * 2)


# ------------------------------------------------------------------------------------------ accuracy

SAME_TEXT = [
    ("Set a timer for five minutes.", "piper", None),
    ("Switch off the bedroom light.", "piper:1.2", None),
    ("What time is it?", "en-us", None),
    ("What is the capital of France?", "en-gb", None),
    # since test clips are resampled by soxr (session 7), q8_0 hears "bedroom" here and f16 "menu": a
    # known difference, kept visible (strict: it fails the day both agree again)
    pytest.param(
        "Switch off the bedroom light.",
        "en-us+f3",
        None,
        marks=pytest.mark.xfail(strict=True, reason="f16 hears 'menu' on the soxr-resampled clip"),
    ),
    ("Turn on the kitchen light.", "en-gb+m3", 10.0),
]


@pytest.mark.parametrize(("text", "voice", "snr"), SAME_TEXT)
def test_converted_f16_and_q8_0_give_the_same_transcript(
    asr: WhisperCppTranscriber, asr_f16: WhisperCppTranscriber, text: str, voice: str, snr: float | None
) -> None:
    audio = utterance(speech(text, voice), snr)
    q8, f16 = asr.decode(audio), asr_f16.decode(audio)
    assert normalize(q8.text) == normalize(f16.text)
    assert normalize(q8.text) == normalize(text)  # and both are right


EXPECTED = [
    ("Set a timer for five minutes.", "piper", None, {"timer", "five", "minutes"}),
    ("Turn on the kitchen light.", "piper", 10.0, {"turn", "on", "kitchen", "light"}),
    ("What is the capital of France?", "piper", 10.0, {"capital", "france"}),
    ("Switch off the bedroom light.", "piper:1.2", 10.0, {"switch", "off", "bedroom", "light"}),
    ("Set a timer for five minutes.", "en-us", None, {"timer", "five", "minutes"}),
    # whisper tiny hears "pen" for "fan" on this espeak voice once the clip is resampled by soxr (the
    # device-name misheard issue, #23); strict: it fails the day "fan" is heard again
    pytest.param(
        "Turn off the fan.",
        "en-us",
        None,
        {"turn", "off", "fan"},
        marks=pytest.mark.xfail(strict=True, reason="'fan' heard as 'pen' on this espeak voice"),
    ),
    ("What is the capital of France?", "en-gb", None, {"capital", "france"}),
    ("Turn on the kitchen light.", "en-gb", 10.0, {"kitchen", "light"}),
    ("What time is it?", "en-us+f3", None, {"what", "time"}),
    ("What time is it?", "en-us+f3", 10.0, {"what", "time"}),
    ("Switch off the bedroom light.", "en-gb+m3", None, {"switch", "bedroom", "light"}),
    ("Play some music in the living room.", "en-gb+m3", 10.0, {"music", "living", "room"}),
]


@pytest.mark.parametrize(("text", "voice", "snr", "words"), EXPECTED)
def test_transcript_contains_the_spoken_words(
    asr: WhisperCppTranscriber, text: str, voice: str, snr: float | None, words: set[str]
) -> None:
    result = asr.decode(utterance(speech(text, voice), snr))
    assert words <= set(normalize(result.text)), result.text
    assert not result.aborted and not result.skipped and result.audio_ctx % 256 == 0


def test_transcribe_timed_and_protocol_method(asr: WhisperCppTranscriber) -> None:
    audio = utterance(clips.piper_speech("Turn off the fan."))
    text, ms = asr.transcribe_timed(audio)
    assert normalize(text) == ["turn", "off", "the", "fan"] and ms > 0
    assert asr.transcribe(audio, CancelToken()).text == text


def test_decodes_do_not_depend_on_the_previous_one(asr: WhisperCppTranscriber, long_speech: Pcm) -> None:
    # a long decode (larger audio_ctx) between two identical ones must not change the second
    audio = utterance(clips.espeak_speech("Turn on the hallway light.", "en-gb+m3"), 10.0)
    first = asr.decode(audio)
    asr.decode(long_speech[: 16000 * 12])
    assert asr.decode(audio).raw == first.raw


# ---------------------------------------------------------------------------------------- non-speech


@pytest.mark.parametrize(
    "audio",
    [
        clips.silence(2000),
        clips.compose([("quiet", clips.silence(3000))], floor_dbfs=-60).pcm,
        clips.noise(2000, -30),
        clips.noise(3000, -20, kind="pink", seed=4),
        clips.noise(1500, -10, seed=5),
        clips.silence(50),
    ],
    ids=["zeros", "room-floor", "white", "pink", "loud-white", "50ms"],
)
def test_silence_and_noise_are_not_decoded(asr: WhisperCppTranscriber, audio: Pcm) -> None:
    result = asr.decode(audio)
    assert result.text == "" and result.skipped and result.steps == 0


def test_hum_reaches_whisper_but_its_output_is_dropped(asr: WhisperCppTranscriber) -> None:
    # a steady 120 Hz hum is periodic, so it passes the voicing check; whisper says "you" → ""
    t = np.arange(32000) / 16000
    hum = np.sum([np.sin(2 * np.pi * 120 * k * t) / k for k in range(1, 6)], axis=0)
    result = asr.decode((hum * 0.05 * 32767).astype(np.int16))
    assert not result.skipped and result.steps > 0
    assert result.text == ""


# ------------------------------------------------------------------------------------ bounded decodes


def test_time_limit_aborts_a_long_decode(cfg: Config, long_speech: Pcm) -> None:
    engine = WhisperCppTranscriber(  # the bare limit: no retry
        dataclasses.replace(cfg.asr, max_decode_ms=100), cfg.models_path, warm=False, retry=False
    )
    try:
        result = engine.decode(long_speech)
        unbounded = WhisperCppTranscriber(cfg.asr, cfg.models_path, warm=False)
        full = unbounded.decode(long_speech)
        unbounded.close()
    finally:
        engine.close()
    assert result.aborted == "time" and result.text == ""
    assert not full.aborted and result.steps < full.steps


class OneCoreFree:
    """``FreeCores`` as a box with one core held by another process reports it."""

    def free(self) -> int:
        return 1


@pytest.mark.parametrize("cores", [None, OneCoreFree()], ids=["fixed-threads", "adapting"])
def test_a_decode_out_of_time_is_retried_once_on_one_thread(
    cfg: Config, long_speech: Pcm, cores: OneCoreFree | None
) -> None:
    # the first pass gets 100 ms (it aborts, as above); the retry gets 100 ms + the audio's length, with
    # or without service.adapt_to_load (cores)
    limited = dataclasses.replace(cfg.asr, max_decode_ms=100, threads=2)
    engine = WhisperCppTranscriber(limited, cfg.models_path, warm=False, cores=cores)
    try:
        result = engine.decode(long_speech)
    finally:
        engine.close()
    assert result.retried and result.threads == 1 and not result.aborted
    assert "quick brown fox" in " ".join(normalize(result.text))


def test_token_limit_ends_a_runaway_decode(cfg: Config, long_speech: Pcm) -> None:
    engine = WhisperCppTranscriber(dataclasses.replace(cfg.asr, max_tokens=8), cfg.models_path, warm=False)
    try:
        result = engine.decode(long_speech)
    finally:
        engine.close()
    assert result.truncated and not result.aborted
    assert result.steps == 9  # 8 + the one that hit the limit, then whisper.cpp stopped
    assert 0 < len(normalize(result.text)) <= result.steps  # at most one word per decoded token
    assert normalize(result.text)[:2] == ["the", "quick"]


class CancelAfter(CancelToken):
    """Reads as cancelled from the ``n``-th check on: cancels at an exact point inside the decode."""

    __slots__ = ("checks", "n")

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.checks = n, 0

    @property
    def cancelled(self) -> bool:
        self.checks += 1
        return self.checks >= self.n or super().cancelled


def test_cancel_token_stops_the_decode_between_steps(asr: WhisperCppTranscriber, long_speech: Pcm) -> None:
    token = CancelAfter(5)  # 1 check before starting, then one per whisper.cpp step
    result = asr.decode(long_speech, token)
    assert result.aborted == "cancelled" and result.text == ""
    assert result.steps == 3  # encoder + 3 decoder passes ran; the check after the third aborted


def test_cancel_from_another_thread(asr: WhisperCppTranscriber, long_speech: Pcm) -> None:
    token = CancelToken()
    timer = threading.Timer(0.02, token.cancel, args=("barge-in",))
    timer.start()
    try:
        result = asr.decode(long_speech, token)
    finally:
        timer.cancel()
    assert result.aborted == "cancelled" and result.text == ""


def test_cancelled_before_start_is_not_decoded(asr: WhisperCppTranscriber) -> None:
    token = CancelToken()
    token.cancel()
    result = asr.decode(utterance(clips.piper_speech("Turn off the fan.")), token)
    assert result.aborted == "cancelled" and result.skipped and result.text == ""
