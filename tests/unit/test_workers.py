"""Worker idle work: the TTS worker's clock phrases, the LLM worker's primes."""

from __future__ import annotations

import threading
import time

from edge_voice.core.cancel import CancelToken
from edge_voice.core.messages import ChatMessage
from edge_voice.runtime.workers import Ctx, LlmJob, LlmWorker, PlayChunk, PrimeJob, SpeakJob, TtsWorker
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
