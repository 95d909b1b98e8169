"""Worker behaviour: the TTS worker's clock phrases, the LLM worker's primes, playback's resampling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator

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
from edge_voice.core.vocabulary import Stage
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


class _AgentSwitch:
    def __init__(self) -> None:
        self.failures: list[str] = []
        self.successes = 0

    def use_remote(self) -> bool:
        return not self.failures

    def failed(self, reason: str) -> None:
        self.failures.append(reason)

    def succeeded(self) -> None:
        self.successes += 1


class _Agent:
    """Home Assistant's agent as the LLM thread sees it: records when it is asked."""

    def __init__(
        self, speech: str = "Turned on the light", fail: bool = False, understood: bool = True
    ) -> None:
        self.asked: list[str] = []
        self.speech, self.fail, self.understood = speech, fail, understood

    def ask(self, text: str, cancel: CancelToken) -> _Agent:
        from edge_voice.engines.base import RemoteError

        self.asked.append(text)
        if self.fail:
            raise RemoteError("home assistant: connection refused (is it running?)")
        return self


def _agent_worker(agent: _Agent) -> tuple[LlmWorker, TtsWorker, list[object], _AgentSwitch]:
    from edge_voice.runtime.workers import Agent

    switch = _AgentSwitch()
    posted: list[object] = []
    tts = TtsWorker(ToneSynthesizer(), lambda _m: None, RecordingPlayback())  # type: ignore[arg-type]
    llm = ScriptedGenerator("The local LLM answers.")
    worker = LlmWorker(llm, posted.append, tts, SimpleSplitter, agent=Agent(agent, switch))
    return worker, tts, posted, switch


def _spoken(tts: TtsWorker) -> list[str]:
    return [j.text for j in list(tts.jobs.queue) if isinstance(j, SpeakJob)]


def test_home_assistant_is_asked_only_once_the_attempt_is_committed() -> None:
    """HA acts: a speculative attempt (gate not set) must never reach it; a cancelled one never does."""
    agent = _Agent()
    worker, tts, _posted, switch = _agent_worker(agent)
    gate, cancel = threading.Event(), CancelToken()
    job = LlmJob(Ctx(1, 1, cancel, gate), (ChatMessage("user", "x"),), "turn on the light", "Turning on.")
    runner = threading.Thread(target=worker._run_one, args=(job,))
    runner.start()
    time.sleep(0.3)  # the LLM thread waits; nothing may be asked meanwhile
    assert agent.asked == []
    gate.set()  # committed
    runner.join(5)
    assert agent.asked == ["turn on the light"] and switch.successes == 1
    assert _spoken(tts) == ["Turned on the light"]
    cancelled = CancelToken()
    cancelled_job = LlmJob(Ctx(1, 2, cancelled, threading.Event()), (), "turn off the light", "Turning off.")
    runner = threading.Thread(target=worker._run_one, args=(cancelled_job,))
    runner.start()
    cancelled.cancel()  # the user spoke on: the speculation is dropped
    runner.join(5)
    assert agent.asked == ["turn on the light"]


def test_when_home_assistant_fails_the_fast_path_answers_and_applies_its_intent() -> None:
    from edge_voice.core.messages import AgentFallback

    agent = _Agent(fail=True)
    worker, tts, posted, switch = _agent_worker(agent)
    gate = threading.Event()
    gate.set()
    worker._run_one(LlmJob(Ctx(3, 1, CancelToken(), gate), (), "turn on the light", "Turning on the light."))
    assert switch.failures and "refused" in switch.failures[0]
    assert [m for m in posted if isinstance(m, AgentFallback)] == [AgentFallback(3, 1)]
    assert _spoken(tts) == ["Turning on the light."]


def test_what_home_assistant_does_not_understand_the_fast_path_does_without_a_cool_down() -> None:
    """HA answers no_intent_match to a command the fast path understood: our confirmation is spoken and
    the local intent applied once (AgentFallback) — never the local LLM, and HA is not rested."""
    from edge_voice.core.messages import AgentFallback

    agent = _Agent(understood=False)
    worker, tts, posted, switch = _agent_worker(agent)
    gate = threading.Event()
    gate.set()
    job = LlmJob(Ctx(4, 1, CancelToken(), gate), (), "turn on the kitchen light", "Turning on.")
    worker._run_one(job)
    assert agent.asked == ["turn on the kitchen light"] and _spoken(tts) == ["Turning on."]
    assert [m for m in posted if isinstance(m, AgentFallback)] == [AgentFallback(4, 1)]
    assert not switch.failures


def test_home_assistant_is_asked_on_the_commit_even_while_a_continuation_holds_the_gate() -> None:
    """The playback gate may be held (the user goes on); the commit event is what HA waits for."""
    agent = _Agent()
    worker, _tts, _posted, _switch = _agent_worker(agent)
    gate, committed = threading.Event(), threading.Event()
    committed.set()  # committed, but the gate is held
    cancel = CancelToken()
    job = LlmJob(Ctx(5, 1, cancel, gate, committed), (), "turn on the fan", "Turning on.")
    runner = threading.Thread(target=worker._run_one, args=(job,))
    runner.start()
    runner.join(3)
    cancel.cancel()  # (before the fix the thread would wait on the gate for ever)
    runner.join(3)
    assert agent.asked == ["turn on the fan"]


def test_a_timed_out_home_assistant_may_have_acted_so_its_intent_is_not_published_again() -> None:
    from edge_voice.core.messages import AgentFallback
    from edge_voice.engines.base import RemoteTimeout

    class _Slow(_Agent):
        def ask(self, text: str, cancel: CancelToken) -> _Agent:
            self.asked.append(text)
            raise RemoteTimeout("home assistant: no answer within 2000 ms")

    worker, tts, posted, switch = _agent_worker(_Slow())
    gate = threading.Event()
    gate.set()
    worker._run_one(LlmJob(Ctx(6, 1, CancelToken(), gate), (), "turn on the fan", "Turning on."))
    assert [m for m in posted if isinstance(m, AgentFallback)] == [AgentFallback(6, 1, publish=False)]
    assert switch.failures and _spoken(tts) == ["Turning on."]


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
    worker = AsrWorker(Recording(), posted.append, AsrConfig(max_decode_ms=3000))
    ctx = Ctx(1, 0, CancelToken(), threading.Event())
    worker._run_one(AsrJob(ctx, np.zeros(32000, np.int16)))  # 2 s of audio
    assert seen == [5.0] and worker.busy_extra_s == 0.0  # 3 s + 2 s of audio at 1 s per s
    assert len(posted) == 1


def test_the_asr_thread_prepares_the_fast_paths_match_before_it_posts_the_transcript() -> None:
    """intents.language not "en": hassil's match (5-25 ms) runs on the ASR thread, before the transcript
    reaches the loop, whose own match then finds it done; a failing prepare still posts the transcript."""
    from edge_voice.core.jobs import AsrJob
    from edge_voice.core.messages import Transcript
    from edge_voice.engines.base import Transcription
    from edge_voice.runtime.workers import AsrWorker

    order: list[str] = []

    class Said:
        def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
            return Transcription(" Schalte das Küchenlicht ein ", "")

    def prepare(text: str) -> None:
        order.append(f"prepare {text}")
        if len(order) > 1:
            raise RuntimeError("broken")

    def post(msg: object) -> None:
        assert isinstance(msg, Transcript)
        order.append(f"post {msg.text}")

    worker = AsrWorker(Said(), post, prepare=prepare)
    for turn in (1, 2):
        worker._run_one(AsrJob(Ctx(turn, 0, CancelToken(), threading.Event()), np.zeros(1600, np.int16)))
    said = "Schalte das Küchenlicht ein"
    assert order == [f"prepare {said}", f"post {said}", f"prepare {said}", f"post {said}"]


def test_the_asr_deadline_counts_the_retry_from_its_start_when_the_first_pass_overran() -> None:
    """Emulated bookworm: the first pass ended 14 s past its 60 s limit (whisper.cpp checks its abort
    between graph nodes) and the supervisor's budget, counted from the job's start, killed the retry
    11 s before its own limit. Told that the retry started, the worker moves the deadline to the
    retry's limit + 2 s from then; a first pass on time keeps the usual budget."""
    from edge_voice.core.config import AsrConfig, Config
    from edge_voice.core.jobs import AsrJob
    from edge_voice.core.supervisor import Supervisor
    from edge_voice.engines.base import Transcription
    from edge_voice.runtime.workers import AsrWorker

    cfg = AsrConfig(max_decode_ms=3000)
    seen: list[float] = []

    class Retrying:
        on_retry: Callable[[int], None] | None = None

        def __init__(self, first_pass_s: float) -> None:
            self.first_pass_s = first_pass_s

        def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
            assert worker.busy_since_ns is not None and self.on_retry is not None
            worker.busy_since_ns -= int(self.first_pass_s * 1e9)  # as if the first pass took this long
            self.on_retry(cfg.retry_limit_ms(len(audio) // 16))
            seen.append(worker.busy_extra_s)
            return Transcription("turn on the fan", "")

    budget_s = Supervisor(Config(asr=cfg), [], time.monotonic_ns)._budget_s(Stage.ASR)
    for first_pass_s, retry_left_s in ((3.0, 5.0 + 2.0), (10.0, 5.0 + 2.0)):
        engine = Retrying(first_pass_s)
        worker = AsrWorker(engine, lambda _m: None, cfg)
        assert engine.on_retry == worker._retrying
        worker._run_one(AsrJob(Ctx(1, 0, CancelToken(), threading.Event()), np.zeros(32000, np.int16)))
        # deadline (from the job's start) - time already spent = what the retry has left
        left = budget_s + seen[-1] - first_pass_s
        assert abs(left - retry_left_s) < 0.5, (first_pass_s, left)


def test_a_stopped_tts_worker_caches_no_phrase_cut_short() -> None:
    """Shutdown while the phrase cache is being filled: the synthesis ends (its token is the worker's
    ``stopping``) and what it gave so far is not cached as the phrase."""

    class Slow(ToneSynthesizer):
        def synthesize(self, text: str, cancel: CancelToken) -> Iterator[Pcm]:
            started.set()
            cancel.wait(5)  # a long sentence, ended by the stop
            yield from super().synthesize(text, cancel)

    class Store:
        def __init__(self) -> None:
            self.put_texts: list[str] = []

        def get(self, text: str) -> Pcm | None:
            return None

        def put(self, text: str, pcm: Pcm) -> None:
            self.put_texts.append(text)

    started = threading.Event()
    store = Store()
    worker = TtsWorker(Slow(), lambda _m: None, RecordingPlayback(), store, ["Turning on."])  # type: ignore[arg-type]
    worker.start()
    started.wait(5)
    worker.stop()
    worker.join(5)
    assert not worker.is_alive() and store.put_texts == []
