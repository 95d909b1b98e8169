"""The remote → on-device fallback rule (engines/remote/fallback.py), scripted engines, a fake clock."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pytest

from edge_voice.audio.resample import StreamResampler, resample
from edge_voice.core.cancel import CancelToken
from edge_voice.core.messages import ChatMessage, EngineFallback, Pcm
from edge_voice.engines.base import RemoteError, Transcription
from edge_voice.engines.remote.fallback import (
    FallbackGenerator,
    FallbackSynthesizer,
    FallbackTranscriber,
)

MSGS = (ChatMessage("system", "Be brief."), ChatMessage("user", "Capital of France?"))
BACKEND = "openai http://10.0.0.5:8080/v1"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class ScriptedLlm:
    """Plays one behaviour per call: "ok", "fail" (before output), "mid" (one piece, then fail)."""

    def __init__(self, words: str, script: Sequence[str] = ()) -> None:
        self.words = words.split(" ")
        self.script = list(script)
        self.calls = 0
        self.warmed: list[tuple[ChatMessage, ...]] = []
        self.primes = 0
        self.reachable: bool | None = None
        self.last: object = None
        self.cancel_on_fail: CancelToken | None = None

    def warm(self, prefix: Sequence[ChatMessage]) -> None:
        self.warmed.append(tuple(prefix))

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        self.primes += 1

    def stream(self, messages: Sequence[ChatMessage], cancel: CancelToken) -> Iterator[str]:
        self.calls += 1
        self.last = f"stats of call {self.calls}"
        how = self.script.pop(0) if self.script else "ok"
        if how == "fail":
            if self.cancel_on_fail is not None:
                self.cancel_on_fail.cancel("barge_in")
            raise RemoteError("connection refused")
        for i, w in enumerate(self.words):
            if how == "mid" and i == 1:
                raise RemoteError("no next token within 3000 ms")
            yield w + " "


def make(
    script: Sequence[str] = (), retry_s: float = 30.0
) -> tuple[FallbackGenerator, ScriptedLlm, ScriptedLlm, list[EngineFallback], Clock]:
    clock = Clock()
    remote = ScriptedLlm("Remote says Paris.", script)
    local = ScriptedLlm("Local says Paris.")
    gen = FallbackGenerator(remote, local, BACKEND, retry_s, clock=clock)
    sent: list[EngineFallback] = []
    gen.notify = sent.append
    return gen, remote, local, sent, clock


def answer(gen: FallbackGenerator, cancel: CancelToken | None = None) -> str:
    return "".join(gen.stream(MSGS, cancel or CancelToken())).strip()


def test_remote_serves_while_it_works() -> None:
    gen, remote, local, sent, _ = make()
    assert answer(gen) == "Remote says Paris."
    assert answer(gen) == "Remote says Paris."
    assert (remote.calls, local.calls) == (2, 0)
    assert sent == []
    assert gen.last == "stats of call 2" and gen.using == "remote"


def test_failure_before_output_answers_this_request_locally_and_notifies() -> None:
    gen, remote, local, sent, _ = make(["fail"])
    assert answer(gen) == "Local says Paris."
    assert (remote.calls, local.calls) == (1, 1)
    assert sent == [EngineFallback("llm", BACKEND, sent[0].reason, using="local")]
    assert "connection refused" in sent[0].reason
    assert gen.last == "stats of call 1" and gen.using == "local"


def test_cool_down_goes_straight_to_local_then_retries_remote() -> None:
    gen, remote, _, sent, clock = make(["fail"], retry_s=30.0)
    answer(gen)
    clock.t += 29.0
    assert answer(gen) == "Local says Paris."
    assert remote.calls == 1  # not tried during the cool-down
    clock.t += 1.5
    assert answer(gen) == "Remote says Paris."
    assert remote.calls == 2
    assert [m.using for m in sent] == ["local", "remote"]
    assert sent[1].stage == "llm" and sent[1].backend == BACKEND
    assert answer(gen) == "Remote says Paris."
    assert len(sent) == 2  # "back" is announced once


def test_retry_that_fails_again_falls_back_again_and_restarts_the_cool_down() -> None:
    gen, remote, local, sent, clock = make(["fail", "fail"], retry_s=10.0)
    answer(gen)
    clock.t += 11
    assert answer(gen) == "Local says Paris."
    assert [m.using for m in sent] == ["local", "local"]
    clock.t += 9
    answer(gen)
    assert remote.calls == 2 and local.calls == 3


def test_failure_mid_stream_re_raises_and_next_turn_is_local() -> None:
    gen, remote, local, sent, _ = make(["mid"])
    pieces: list[str] = []
    with pytest.raises(RemoteError, match="next token"):
        for p in gen.stream(MSGS, CancelToken()):
            pieces.append(p)
    assert pieces == ["Remote "]  # what was already handed on stays the remote's
    assert local.calls == 0
    assert [m.using for m in sent] == ["local"]
    assert answer(gen) == "Local says Paris."
    assert remote.calls == 1


def test_failure_after_cancel_does_not_start_the_local_engine() -> None:
    gen, remote, local, _, _ = make(["fail"])
    cancel = CancelToken()
    remote.cancel_on_fail = cancel
    assert answer(gen, cancel) == ""
    assert local.calls == 0


def test_closing_the_stream_early_is_not_a_failure() -> None:
    gen, _, _, sent, _ = make()
    it = gen.stream(MSGS, CancelToken())
    assert next(it) == "Remote "
    it.close()
    assert sent == [] and gen.using == "remote"


def test_warm_warms_both_and_an_unreachable_remote_starts_on_local() -> None:
    clock = Clock()
    remote, local = ScriptedLlm("r"), ScriptedLlm("l")
    remote.reachable = False  # what OpenAiGenerator.warm sets when the server does not answer
    gen = FallbackGenerator(remote, local, BACKEND, clock=clock)
    prefix = (ChatMessage("system", "SYS"), ChatMessage("user", "Q?"), ChatMessage("assistant", "A."))
    gen.warm(prefix)
    assert remote.warmed == [prefix] and local.warmed == [prefix]  # the whole prefix, examples included
    assert gen.using == "local"
    sent: list[EngineFallback] = []
    gen.notify = sent.append  # set later, as the Daemon does
    answer(gen)
    assert [m.using for m in sent] == ["local"] and "start-up" in sent[0].reason
    assert remote.calls == 0


def test_a_failing_notify_does_not_break_the_turn() -> None:
    gen, *_ = make(["fail"])

    def broken(_m: EngineFallback) -> None:
        raise RuntimeError("loop closed")

    gen.notify = broken
    assert answer(gen) == "Local says Paris."


# ----------------------------------------------------------------------------------------- ASR


class ScriptedAsr:
    def __init__(self, text: str, fail: bool = False) -> None:
        self.text, self.fail, self.calls = text, fail, 0

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
        self.calls += 1
        if self.fail:
            raise RemoteError("wyoming: connection refused")
        return Transcription(self.text)


def test_transcriber_falls_back_cools_down_and_comes_back() -> None:
    clock = Clock()
    remote, local = ScriptedAsr("remote words", fail=True), ScriptedAsr("local words")
    asr = FallbackTranscriber(remote, local, "wyoming tcp://asr:10300", retry_after_s=5, clock=clock)
    sent: list[EngineFallback] = []
    asr.notify = sent.append
    audio = np.zeros(1600, np.int16)
    assert asr.transcribe(audio, CancelToken()).text == "local words"
    assert asr.transcribe(audio, CancelToken()).text == "local words"
    assert remote.calls == 1
    remote.fail = False
    clock.t += 5
    assert asr.transcribe(audio, CancelToken()).text == "remote words"
    assert [(m.stage, m.using) for m in sent] == [("asr", "local"), ("asr", "remote")]


def test_transcriber_does_not_swallow_local_errors() -> None:
    class Broken:
        def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
            raise ValueError("bad audio")

    asr = FallbackTranscriber(ScriptedAsr("r", fail=True), Broken(), "x")
    with pytest.raises(ValueError):
        asr.transcribe(np.zeros(10, np.int16), CancelToken())


def test_the_local_decoders_retry_report_reaches_the_asr_worker_through_the_wrapper() -> None:
    """The ASR worker hooks ``on_retry`` on whatever transcriber it has: behind the Wyoming fallback that
    is whisper.cpp's (the remote one does not retry); a local engine without retries has none."""
    from edge_voice.engines.base import ReportsRetry

    class Retrying(ScriptedAsr):
        on_retry = None

    local = Retrying("local words")
    asr = FallbackTranscriber(ScriptedAsr("r"), local, "x")
    assert isinstance(asr, ReportsRetry) and asr.on_retry is None
    told: list[int] = []
    asr.on_retry = told.append
    assert local.on_retry == told.append and asr.on_retry == told.append
    plain = FallbackTranscriber(ScriptedAsr("r"), ScriptedAsr("l"), "x")
    plain.on_retry = told.append  # nothing to hook: ignored
    assert plain.on_retry is None


# ----------------------------------------------------------------------------------------- TTS


class ToneTts:
    def __init__(self, rate: int, chunks: int = 4, fail_at: int | None = None) -> None:
        self.sample_rate = rate
        self.chunks, self.fail_at, self.calls = chunks, fail_at, 0
        t = np.arange(rate // 2) / rate
        self.signal = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)  # 0.5 s

    def synthesize(self, text: str, cancel: CancelToken) -> Iterator[Pcm]:
        self.calls += 1
        for i, part in enumerate(np.array_split(self.signal, self.chunks)):
            if self.fail_at == i:
                raise RemoteError("wyoming: connection reset")
            yield part


def test_synthesizer_uses_the_local_rate_and_resamples_remote_audio_seamlessly() -> None:
    remote, local = ToneTts(16000, chunks=7), ToneTts(22050)
    tts = FallbackSynthesizer(remote, local, "wyoming tcp://tts:10200")
    assert tts.sample_rate == 22050
    out = np.concatenate(list(tts.synthesize("Hello there.", CancelToken())))
    assert np.array_equal(out, resample(remote.signal, 16000, 22050))  # as if resampled in one piece
    assert local.calls == 0


def test_synthesizer_falls_back_before_audio_and_re_raises_after() -> None:
    remote, local = ToneTts(22050, fail_at=0), ToneTts(22050)
    tts = FallbackSynthesizer(remote, local, "wyoming tcp://tts:10200", retry_after_s=0)
    sent: list[EngineFallback] = []
    tts.notify = sent.append
    assert np.array_equal(tts.synthesize_all("Hi."), local.signal)
    remote.fail_at = 2
    got: list[Pcm] = []
    with pytest.raises(RemoteError):
        for c in tts.synthesize("Hi.", CancelToken()):
            got.append(c)
    assert len(got) == 2 and local.calls == 1
    assert [(m.stage, m.using) for m in sent] == [("tts", "local"), ("tts", "remote"), ("tts", "local")]


@pytest.mark.parametrize(("src", "dst"), [(22050, 16000), (16000, 22050), (24000, 22050), (48000, 16000)])
def test_stream_resampler_matches_whole_signal_resampling(src: int, dst: int) -> None:
    rng = np.random.default_rng(src + dst)
    x = (rng.standard_normal(12000) * 3000).astype(np.int16)
    rs = StreamResampler(src, dst)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 2500))
        parts.append(rs.push(x[i : i + n]))
        i += n
    parts.append(rs.flush())
    assert np.array_equal(np.concatenate(parts), resample(x, src, dst))
