"""Worker behaviour: the TTS worker's clock phrases, the LLM worker's primes, playback's resampling."""

from __future__ import annotations

import threading
import time

import numpy as np

from edge_voice.audio.resample import resample
from edge_voice.core.cancel import CancelToken
from edge_voice.core.messages import (
    AudioChunk,
    ChatMessage,
    GenerationDone,
    Pcm,
    PlaybackFinished,
    PlaybackStarted,
)
from edge_voice.engines.base import GenerationStats
from edge_voice.runtime.workers import (
    Ctx,
    EndOfReply,
    LlmJob,
    LlmWorker,
    PlaybackWorker,
    PlayChunk,
    PrimeJob,
    SpeakJob,
    TtsWorker,
)
from tests.conftest import wait_until
from tests.fakes import ScriptedGenerator, SimpleSplitter, ToneSynthesizer


class RecordingPlayback:
    def __init__(self) -> None:
        self.jobs: list[object] = []

    def submit(self, job: object, timeout_s: float = 5.0) -> None:
        self.jobs.append(job)


def test_clock_phrases_are_synthesised_while_idle_and_served_without_synthesis() -> None:
    tone, playback = ToneSynthesizer(), RecordingPlayback()
    phrases = ["It's ten forty two.", "It's ten forty three."]
    idle = threading.Event()
    idle.set()
    worker = TtsWorker(
        tone, lambda _m: None, playback, may_prefill=idle.is_set, clock_phrases=lambda: list(phrases)
    )
    worker.IDLE_POLL_S = 0.01
    worker.start()
    try:
        wait_until(lambda: tone.texts == phrases, what="both phrases synthesised")
        # the minute turns: the old phrase is dropped, the new one synthesised once
        phrases[:] = ["It's ten forty three.", "It's ten forty four."]
        wait_until(lambda: tone.texts[-1] == "It's ten forty four.", what="the new minute's phrase")
        time.sleep(0.05)
        assert tone.texts == ["It's ten forty two.", "It's ten forty three.", "It's ten forty four."]

        ctx = Ctx(1, 1, CancelToken(), threading.Event())
        idle.clear()  # a turn is live: no idle synthesis competes with it
        worker.submit(SpeakJob(ctx, 0, "It's ten forty three."))
        wait_until(lambda: len(playback.jobs) == 1, what="the first reply played")
        assert len(tone.texts) == 3  # answered from memory
        worker.submit(SpeakJob(ctx, 1, "It's ten forty two."))  # no longer kept: synthesised now
        wait_until(lambda: len(playback.jobs) == 2, what="the second reply played")
        assert tone.texts[-1] == "It's ten forty two."
        played = [j for j in playback.jobs if isinstance(j, PlayChunk)]
        assert [j.chunk.text for j in played] == ["It's ten forty three.", "It's ten forty two."]
        assert all(len(j.chunk.samples) > 0 for j in played)
    finally:
        worker.stop()
        worker.join(5)


def test_a_prime_is_skipped_when_a_request_is_already_waiting() -> None:
    llm = ScriptedGenerator("Sure.")
    tts = TtsWorker(ToneSynthesizer(), lambda _m: None, RecordingPlayback())
    worker = LlmWorker(llm, lambda _m: None, tts, SimpleSplitter)
    prefix = (ChatMessage("system", "Be brief."), ChatMessage("user", "(It is 10:42.)\n"))
    request = (prefix[0], ChatMessage("user", "(It is 10:42.)\nhello"))
    worker.submit(PrimeJob(prefix))
    worker._run_one(worker.jobs.get())  # nothing else waiting: primed
    assert llm.primed == [prefix]
    worker.submit(PrimeJob(prefix))
    worker.submit(LlmJob(Ctx(1, 1, CancelToken(), threading.Event()), request))
    worker._run_one(worker.jobs.get())  # the request is waiting: evaluating the prefix twice helps nobody
    worker._run_one(worker.jobs.get())
    assert llm.primed == [prefix] and llm.prompts == [request]


# ------------------------------------------------------------------------------------- playback


class ListSink:
    """An ``AudioSink`` at 48 kHz that keeps every write, per reply."""

    rate_hz = 48000

    def __init__(self) -> None:
        self.replies: list[list[Pcm]] = []
        self.ended: list[bool] = []

    def begin(self) -> int:
        self.replies.append([])
        return 0

    def write(self, pcm: Pcm) -> None:
        self.replies[-1].append(pcm.copy())

    def end(self, interrupted: bool) -> None:
        self.ended.append(interrupted)

    def close(self) -> None:
        pass

    def heard(self, reply: int) -> Pcm:
        return np.concatenate(self.replies[reply])


def _voice(seconds: float, seed: int, rate: int = 22050) -> Pcm:
    """Tones plus noise: energy up to the band edge, where a join's discontinuity shows most."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    x = (
        6000 * np.sin(2 * np.pi * 310 * t)
        + 3000 * np.sin(2 * np.pi * 5100 * t)
        + 1500 * rng.standard_normal(len(t))
    )
    return np.clip(x, -32768, 32767).astype(np.int16)


def _reply(worker: PlaybackWorker, ctx: Ctx, parts: list[Pcm], text: str = "one two three four") -> None:
    for i, pcm in enumerate(parts):
        last = i == len(parts) - 1
        worker.handle(PlayChunk(ctx, AudioChunk(ctx.turn_id, ctx.attempt, 0, pcm, 22050, last, text)))
    worker.handle(EndOfReply(ctx))


def _ctx(turn: int) -> Ctx:
    gate = threading.Event()
    gate.set()
    return Ctx(turn, 1, CancelToken(), gate)


def test_playback_resamples_a_reply_as_one_signal_and_each_reply_afresh() -> None:
    sink, posted = ListSink(), []
    worker = PlaybackWorker(sink, posted.append, chunk_ms=20)
    first = [_voice(0.45, 1), _voice(0.02, 2), _voice(0.7, 3)]  # a 20 ms chunk resamples to nothing yet
    _reply(worker, _ctx(1), first)
    second = [_voice(0.3, 4), _voice(0.5, 5)]
    _reply(worker, _ctx(2), second)

    # the chunk joins are seamless: exactly the whole reply resampled in one piece, nothing held over
    assert np.array_equal(sink.heard(0), resample(np.concatenate(first), 22050, 48000))
    assert np.array_equal(sink.heard(1), resample(np.concatenate(second), 22050, 48000))
    assert sink.ended == [False, False]
    started = [m for m in posted if isinstance(m, PlaybackStarted)]
    assert [m.turn_id for m in started] == [1, 2]
    finished = [m for m in posted if isinstance(m, PlaybackFinished)]
    assert [(m.turn_id, m.heard_text, m.interrupted) for m in finished] == [
        (1, "one two three four", False),
        (2, "one two three four", False),
    ]


def test_playback_after_a_barge_in_starts_clean() -> None:
    sink, posted = ListSink(), []
    worker = PlaybackWorker(sink, posted.append, chunk_ms=20)
    cut = _ctx(1)
    chunk = AudioChunk(1, 1, 0, _voice(0.5, 6), 22050, False, "one two")
    worker.handle(PlayChunk(cut, chunk))  # the resampler now holds the end of this chunk back
    cut.cancel.cancel()
    worker.handle(EndOfReply(cut))
    nxt = [_voice(0.4, 7)]
    _reply(worker, _ctx(2), nxt)
    assert sink.ended == [True, False]
    assert np.array_equal(sink.heard(1), resample(nxt[0], 22050, 48000))  # no leftover of reply 1


def test_an_answer_cut_by_the_token_limit_is_reported_as_such_and_its_tail_is_not_spoken() -> None:
    llm = ScriptedGenerator("Paris is the capital. It has many")
    llm.last = GenerationStats(6, "max_tokens", 10.0, 50.0, 20, 0, 5.0, 50.0, llm.text)
    posted: list[object] = []
    tts = TtsWorker(ToneSynthesizer(), lambda _m: None, RecordingPlayback())  # type: ignore[arg-type]
    worker = LlmWorker(llm, posted.append, tts, SimpleSplitter)
    worker.submit(LlmJob(Ctx(1, 1, CancelToken(), threading.Event()), (ChatMessage("user", "Paris?"),)))
    worker._run_one(worker.jobs.get())  # type: ignore[arg-type]
    (done,) = [m for m in posted if isinstance(m, GenerationDone)]
    assert done.stopped == "max_tokens"  # so history keeps only what was spoken (as_generated)
    spoken = [j.text for j in list(tts.jobs.queue) if isinstance(j, SpeakJob)]
    assert spoken == ["Paris is the capital."]


def test_an_asr_job_deadline_includes_the_retry_its_utterance_may_need() -> None:
    """The supervisor's ASR deadline gets the decode retry's time for this utterance, and only while the
    job runs: a slow neighbour's retried decode is not mistaken for a hung one."""
    from edge_voice.core.config import AsrConfig
    from edge_voice.core.jobs import AsrJob
    from edge_voice.engines.base import Transcription
    from edge_voice.runtime.workers import AsrWorker

    seen: list[float] = []

    class Recording:
        def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
            seen.append(worker.busy_extra_s)
            return Transcription("turn on the fan", "")

    posted: list[object] = []
    worker = AsrWorker(Recording(), posted.append, AsrConfig(max_decode_ms=3000).retry_limit_ms)
    ctx = Ctx(1, 0, CancelToken(), threading.Event())
    worker._run_one(AsrJob(ctx, np.zeros(32000, np.int16)))  # 2 s of audio
    assert seen == [5.0] and worker.busy_extra_s == 0.0  # 3 s + 2 s of audio at 1 s per s
    assert len(posted) == 1
