"""The turn state machine, driven synchronously: messages in, jobs and events out, a fake clock.

No threads, no sleeps: the test plays every engine thread by answering the jobs the orchestrator hands
out (recording ports). tests/component/test_orchestrator_threads.py runs the same logic with the real
worker threads and a real-time sink."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import pytest

from edge_voice.core.announcements import say
from edge_voice.core.config import Config, ConfigError, ConversationConfig, EndpointConfig
from edge_voice.core.conversation import as_generated, prompt_prefix
from edge_voice.core.jobs import AsrJob, ChimeJob, Ctx, EndOfReply, LlmJob, PrimeJob, SpeakJob
from edge_voice.core.messages import (
    AudioChunk,
    ChatMessage,
    GenerationDone,
    Message,
    MuteCommand,
    NoSpeech,
    PlaybackFinished,
    PlaybackStarted,
    ReloadConfig,
    SayCommand,
    SentenceReady,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    SynthesisDone,
    TextDelta,
    Transcript,
    WakeDetected,
)
from edge_voice.core.orchestrator import Hooks, Orchestrator
from edge_voice.core.replies import Workers
from edge_voice.core.vocabulary import EventType, Latency, Stage, State
from edge_voice.integrations.sinks import MemorySink
from tests.fakes import KitchenIntents, RecordingListen

MS = 1_000_000
AUDIO = np.zeros(16000, np.int16)


class FakeClock:
    def __init__(self) -> None:
        self.ns = 1_000 * MS

    def __call__(self) -> int:
        return self.ns

    def advance(self, ms: float) -> int:
        self.ns += int(ms * MS)
        return self.ns


@dataclass
class Port:
    """A recording engine thread: keeps every job; busy fields set by the test to simulate a hang."""

    stage: Stage
    jobs: list[object] = field(default_factory=list)
    busy_since_ns: int | None = None
    busy_ctx: Ctx | None = None
    busy_extra_s: float = 0.0
    volume: float = 1.0
    full: bool = False  # the bounded queue is full: jobs are refused

    def submit_nowait(self, job: object) -> bool:
        if self.full:
            return False
        self.jobs.append(job)
        return True

    def of(self, kind: type) -> list[object]:
        return [j for j in self.jobs if isinstance(j, kind)]


class Rig:
    def __init__(self, cfg: Config, on_tick: Callable[[], None] = lambda: None) -> None:
        self.clock = FakeClock()
        self.asr, self.llm = Port(Stage.ASR), Port(Stage.LLM)
        self.tts, self.playback = Port(Stage.TTS), Port(Stage.PLAYBACK)
        self.listen = RecordingListen(self.clock)
        self.memory = MemorySink()
        self.intents = KitchenIntents()
        self.loaded: list[Config | ConfigError] = []
        self.orch = Orchestrator(
            cfg,
            listen=self.listen,
            workers=Workers(self.asr, self.llm, self.tts, self.playback),  # type: ignore[arg-type]
            intents=self.intents,
            sinks=[self.memory],
            now_ns=self.clock,
            hooks=Hooks(facts=lambda: "It is 10:42.", load_config=self._load, on_tick=on_tick),
        )

    def _load(self) -> Config:
        r = self.loaded.pop(0)
        if isinstance(r, ConfigError):
            raise r
        return r

    def send(self, *msgs: Message) -> None:
        for m in msgs:
            self.orch.handle(m)

    def types(self) -> list[str]:
        return [t for t in self.memory.types() if t != EventType.TEXT_DELTA]

    def data(self, type_: str, i: int = 0) -> dict[str, object]:
        return self.memory.of(type_)[i].data

    # --- the engine threads, played by hand
    def decode(self, text: str, ms: float = 150) -> Ctx:
        job = self.asr.jobs[-1]
        assert isinstance(job, AsrJob)
        self.clock.advance(ms)
        self.send(Transcript(job.ctx.turn_id, job.ctx.attempt, text, len(job.audio) // 16, ms))
        return job.ctx

    def answer(self, text: str, ttft_ms: float = 60) -> Ctx:
        """The LLM streams ``text`` word by word; each sentence goes to TTS, which makes one chunk."""
        job = self.llm.jobs[-1]
        assert isinstance(job, LlmJob)
        c = job.ctx
        self.clock.advance(ttft_ms)
        for i, word in enumerate(text.split(" ")):
            self.send(TextDelta(c.turn_id, c.attempt, word + " ", first=i == 0))
        self.send(SentenceReady(c.turn_id, c.attempt, 0, text))
        self.send(GenerationDone(c.turn_id, c.attempt, text + " ", len(text.split()), "eos"))
        self.synthesize(c, [text])
        return c

    def synthesize(self, c: Ctx, sentences: list[str], ms: float = 100) -> None:
        self.clock.advance(ms)
        for i, s in enumerate(sentences):
            self.send(AudioChunk(c.turn_id, c.attempt, i, np.zeros(1600, np.int16), 16000, True, s))
        self.send(SynthesisDone(c.turn_id, c.attempt))

    def answering(self, question: str, answer: str) -> Ctx:
        """A spoken ``question`` answered by the LLM; the answer's playback has started (SPEAKING)."""
        self.send(wake(self.clock), started(self.clock), stopped(self.clock))
        c = self.decode(question)
        self.answer(answer)
        self.send(PlaybackStarted(c.turn_id, self.clock(), 90000))
        return c

    def play(self, c: Ctx, heard: str, interrupted: bool = False) -> int:
        written = self.clock.advance(5)
        self.send(PlaybackStarted(c.turn_id, written, 90000))
        self.send(PlaybackFinished(c.turn_id, heard, interrupted))
        return written


def cfg(speculative_ms: int = 0, **service: int) -> Config:
    base = Config()
    return replace(
        base,
        endpoint=replace(base.endpoint, speculative_silence_ms=speculative_ms),
        conversation=ConversationConfig(follow_up_window_ms=3000),
        service=replace(base.service, **service),
    )


def wake(clock: FakeClock, at: int = 16000) -> WakeDetected:
    return WakeDetected("hey_jarvis", 0.97, at, clock())


def started(clock: FakeClock, at: int = 20000) -> SpeechStarted:
    return SpeechStarted(at, clock())


def paused(
    clock: FakeClock, last_voiced: int = 50000, settled: bool = True, question: bool = False
) -> SpeechPaused:
    return SpeechPaused(AUDIO, 15000, last_voiced, last_voiced + 3200, clock(), settled, question)


def stopped(clock: FakeClock, last_voiced: int = 50000) -> SpeechStopped:
    now = clock()
    return SpeechStopped(AUDIO, 15000, 20000, last_voiced, last_voiced + 8000, "silence", now, now - 500 * MS)


def said(clock: FakeClock, start: int, ms: int = 1000, value: int = 7) -> SpeechStopped:
    """An utterance of ``ms`` (samples set to ``value``) from ``start``, stopped by the silence."""
    audio = np.full(ms * 16, value, np.int16)
    end = start + len(audio)
    now = clock()
    return SpeechStopped(audio, start, start + 4800, end - 8000, end, "silence", now, now - 500 * MS)


def test_a_command_turn_publishes_events_in_order_with_an_exact_latency_breakdown() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock))
    assert r.playback.of(ChimeJob) == [ChimeJob("listen")]  # the microphone opened: a chime says so
    r.clock.advance(2000)
    r.send(stopped(r.clock))  # t0 = 500 ms before the endpoint
    t0 = r.clock() - 500 * MS
    c = r.decode("turn on the kitchen light", ms=150)
    speak = r.tts.jobs
    assert speak == [SpeakJob(c, 0, "Turning on the kitchen light."), EndOfReply(c)]
    r.synthesize(c, ["Turning on the kitchen light."], ms=20)
    written = r.play(c, "Turning on the kitchen light.")
    assert r.types() == [
        "wake.detected",
        "input_audio.speech_started",
        "input_audio.speech_stopped",
        "transcript.final",
        "intent.recognized",
        "response.started",
        "response.audio.started",
        "response.done",
    ]
    done = r.data("response.done")
    assert done["route"] == "intent" and done["status"] == "done"
    assert done["latency"] == {
        Latency.ENDPOINT: 500.0,
        Latency.DECODE_START: 500.0,  # no pause before the stop: the decode starts at the endpoint
        Latency.ASR_WAIT: 0.0,
        Latency.ASR: 150.0,
        Latency.INTENT: 0.0,
        Latency.LLM_TTFT: None,
        Latency.FIRST_SENTENCE: 0.0,
        Latency.TTS_FIRST_CHUNK: 20.0,
        Latency.VOICE_TO_VOICE: (written - t0) / MS,
        Latency.WAKE_TO_ACK: 0.0,
    }
    # the follow-up window after a heard reply: the microphone is open without a wake word, and says so
    assert r.memory.states == [State.LISTENING, State.THINKING, State.SPEAKING, State.LISTENING]
    assert r.listen.calls[-1] == ("open", 3000)
    r.send(NoSpeech(200000))  # the window closed unused
    assert r.memory.states[-1] == State.IDLE and r.orch.turn is None
    assert r.intents.applied == ["light_on:kitchen light"]  # side effects once, on commit
    assert len(r.llm.of(PrimeJob)) == 1 and not r.llm.of(LlmJob)  # primed at the wake word only


def test_a_wake_word_in_the_follow_up_window_starts_that_turn_without_a_phantom_cancel() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    c = r.decode("turn on the kitchen light")
    r.synthesize(c, ["Turning on the kitchen light."])
    r.play(c, "Turning on the kitchen light.")
    assert r.listen.calls[-1] == ("open", 3000)  # the follow-up window
    r.send(started(r.clock, 120000))  # the VAD hears "Hey Jarvis" before the wake word fires
    window_turn = r.orch.turn
    assert window_turn is not None and window_turn.trigger == "follow_up"
    r.send(wake(r.clock, 128000), started(r.clock, 129000), stopped(r.clock, 150000))
    assert r.orch.turn is window_turn and window_turn.trigger == "wake"
    assert "turn.cancelled" not in r.types()
    assert r.memory.of("wake.detected")[-1].turn_id == window_turn.id
    # one turn, one start: the window's start (the VAD heard "Hey Jarvis") is not followed by another
    starts = [e.turn_id for e in r.memory.of("input_audio.speech_started")]
    assert starts.count(window_turn.id) == 1
    c = r.decode("turn on the hallway light")
    r.synthesize(c, ["Turning on the hallway light."])
    r.play(c, "Turning on the hallway light.")
    assert [e.data["status"] for e in r.memory.of("response.done")] == ["done", "done"]
    assert r.intents.applied == ["light_on:kitchen light", "light_on:hallway light"]


def test_a_silent_intent_ends_the_turn_without_audio() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock))
    c = r.decode("Stop.")
    assert r.tts.jobs == [EndOfReply(c)]
    r.synthesize(c, [])
    assert r.data("response.done")["status"] == "done"
    assert r.orch.state == State.IDLE and r.orch.turn is None


def test_a_speculative_answer_is_held_until_the_endpoint_and_then_used() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, settled=False))
    r.decode("what is the capital of France")
    r.answer("Paris is the capital of France.")
    (job,) = r.llm.of(LlmJob)
    assert isinstance(job, LlmJob) and not job.ctx.gate.is_set()  # prepared, not heard
    assert r.types() == ["wake.detected", "input_audio.speech_started"]  # nothing else published
    r.send(paused(r.clock, settled=True), stopped(r.clock))
    assert job.ctx.gate.is_set() and len(r.asr.jobs) == 1  # the speculative decode was used, not redone
    assert r.types()[2:] == [
        "input_audio.speech_stopped",
        "transcript.final",
        "response.started",
    ]
    assert r.memory.types().count("response.text.delta") == 6  # the held deltas, after the start
    r.play(job.ctx, "Paris is the capital of France.")
    done = r.data("response.done")
    assert done["speculative"] is True and done["route"] == "llm"
    assert done["latency"][Latency.LLM_TTFT] == 60.0  # type: ignore[index]


def test_speech_resuming_cancels_the_speculative_attempt_and_drops_its_late_results() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000))
    first = r.asr.jobs[0]
    assert isinstance(first, AsrJob)
    r.send(SpeechResumed(42000, r.clock()))
    assert first.ctx.cancel.cancelled
    r.decode("what is the")  # late: ignored
    r.send(stopped(r.clock, 60000))
    r.decode("what is the capital of France")
    finals = [e.data["text"] for e in r.memory.of("transcript.final")]
    assert finals == ["what is the capital of France"]
    assert len(r.llm.of(LlmJob)) == 1


def test_a_settled_command_commits_early_and_an_unsettled_one_waits_for_the_pause() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000, settled=False))
    r.decode("turn on the kitchen light")  # matched, confirmation prepared behind the gate…
    assert "transcript.final" not in r.types() and not r.intents.applied  # …but the user may go on
    r.send(SpeechResumed(42000, r.clock()), paused(r.clock, 60000, settled=False))
    r.decode("turn on the hallway light")
    assert not r.intents.applied
    r.send(paused(r.clock, 60000, settled=True))  # the pause lasted commit_silence_ms: commit
    assert r.intents.applied == ["light_on:hallway light"]  # once, for the whole command
    assert [e.data["text"] for e in r.memory.of("transcript.final")] == ["turn on the hallway light"]
    (stop,) = r.memory.of("input_audio.speech_stopped")
    assert stop.data["reason"] == "early_commit" and "at_sample" not in stop.data
    assert r.listen.calls[-1] == ("carry_on", 63200)  # what the user says next is heard, not lost


def test_a_barge_in_cancels_and_history_keeps_only_what_was_heard() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    r.decode("tell me about Paris")
    c = r.answer("Paris is the capital of France. It has many museums.")
    r.send(PlaybackStarted(c.turn_id, r.clock.advance(5), 90000))
    r.send(wake(r.clock, 200000))  # "Hey Jarvis" while the answer plays
    assert c.cancel.cancelled and r.data("turn.cancelled")["reason"] == "barge_in"
    assert "response.done" not in r.types()  # waits for playback to say what was heard
    primes = len(r.llm.of(PrimeJob))
    r.send(PlaybackFinished(c.turn_id, "Paris is the capital of France.", True))
    done = r.memory.of("response.done")[0]
    assert done.turn_id == c.turn_id and done.data["status"] == "interrupted"
    assert done.data["heard"] == "Paris is the capital of France."
    ((_, user, assistant),) = r.orch.conversation.history.items
    assert user == "(It is 10:42.)\ntell me about Paris" and assistant == "Paris is the capital of France."
    assert len(r.llm.of(PrimeJob)) == primes + 1  # the new turn's prime now includes that history
    assert r.orch.state == State.LISTENING and r.orch.turn is not None


def test_a_failing_stage_ends_the_turn_and_the_next_turn_works() -> None:
    from edge_voice.core.messages import StageFailed
    from edge_voice.core.vocabulary import ErrorCode

    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    job = r.asr.jobs[0]
    assert isinstance(job, AsrJob)
    r.send(StageFailed(job.ctx.turn_id, Stage.ASR, ErrorCode.ASR_FAILED, "decoder exploded", 1))
    assert r.data("error") == {"stage": "asr", "code": "asr_failed", "message": "decoder exploded"}
    assert job.ctx.cancel.cancelled
    sorry = r.tts.of(SpeakJob)[-1]
    assert isinstance(sorry, SpeakJob) and sorry.text == "Sorry, I didn't catch that."
    r.synthesize(sorry.ctx, [sorry.text])
    r.play(sorry.ctx, sorry.text)
    assert r.orch.state == State.IDLE and r.orch.turn is None
    r.send(wake(r.clock, 300000), started(r.clock, 310000), stopped(r.clock, 340000))
    c = r.decode("turn on the kitchen light")
    r.synthesize(c, ["Turning on the kitchen light."])
    r.play(c, "Turning on the kitchen light.")
    first, sorry_done, second = r.memory.of("response.done")
    assert first.data["status"] == "error" and sorry_done.data["route"] == "say"
    assert second.data["route"] == "intent"


def test_a_stuck_engine_ends_the_turn_at_its_deadline_then_exits_for_a_restart() -> None:
    r = Rig(cfg(stage_timeout_ms=1000, hung_exit_ms=2000))
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    r.decode("tell me a story")
    job = r.llm.of(LlmJob)[0]
    assert isinstance(job, LlmJob)
    r.llm.busy_since_ns, r.llm.busy_ctx = r.clock(), job.ctx  # a native call that never returns
    r.clock.advance(900)
    r.orch.tick()
    assert "error" not in r.types()
    r.clock.advance(200)
    r.orch.tick()
    assert r.data("error") == {"stage": "llm", "code": "timeout", "message": "llm did not finish within 1 s"}
    assert r.data("response.done")["status"] == "error" and r.orch.exit_code == 0
    r.clock.advance(1000)
    r.orch.tick()
    assert r.data("error", 1)["code"] == "hung" and r.orch.exit_code == 70 and r.orch.stopping


def test_a_timer_reply_that_finds_the_tts_queue_full_ends_its_turn_at_that_tick() -> None:
    due = ["Your timer is done."]
    r = Rig(cfg(), on_tick=lambda: [say(r.orch, due.pop(), trigger="timer") for _ in list(due)] and None)
    r.tts.full = True
    r.orch.tick()  # the timer speaks from housekeeping, outside any message
    assert r.data("error") == {"stage": "tts", "code": "overloaded", "message": "tts queue full"}
    assert r.data("response.done")["status"] == "error" and r.orch.turn is None
    assert r.orch.state == State.IDLE


def test_a_turn_that_never_hears_an_endpoint_times_out_on_the_input_clock() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock))
    e = r.orch.cfg.endpoint
    limit = (e.no_speech_timeout_ms + e.max_utterance_ms + 5000) * 16  # samples
    r.listen.heard = r.listen.heard  # the test moves the input clock from here
    r.orch.tick()
    r.listen.heard += limit
    r.clock.advance(100)  # a listener faster than real time: the audio counts, not the wall clock
    r.orch.tick()
    assert "error" not in r.types()
    r.listen.heard += 16
    r.orch.tick()
    assert r.data("error") == {"stage": "listen", "code": "listen_timeout", "message": "no endpoint reported"}
    assert r.data("turn.cancelled")["reason"] == "listen_timeout" and r.orch.turn is None


def test_a_listener_slower_than_real_time_keeps_its_turn_until_its_audio_runs_out() -> None:
    r = Rig(cfg())  # emulation, a busy board: each second of audio takes 10 s to listen to
    r.send(wake(r.clock), started(r.clock))
    e = r.orch.cfg.endpoint
    limit_s = (e.no_speech_timeout_ms + e.max_utterance_ms + 5000) // 1000
    r.listen.heard = r.listen.heard  # the test moves the input clock from here
    r.orch.tick()
    for _ in range(limit_s):
        r.clock.advance(10_000)
        r.listen.heard += 16000
        r.orch.tick()
    assert "error" not in r.types() and r.orch.turn is not None  # 10x the old wall-clock deadline
    r.clock.advance(10_000)
    r.listen.heard += 16000
    r.orch.tick()
    assert r.data("error")["message"] == "no endpoint reported"


def test_a_listener_that_takes_no_audio_ends_its_turn_at_the_stage_timeout() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock))
    stage_ms = r.orch.cfg.service.stage_timeout_ms
    r.listen.heard = r.listen.heard  # stalled from here
    r.clock.advance(stage_ms)
    r.orch.tick()
    assert "error" not in r.types()
    r.clock.advance(1000)
    r.orch.tick()
    secs = (stage_ms + 1000) // 1000
    assert r.data("error")["message"] == f"no audio listened to for {secs} s"
    assert r.data("turn.cancelled")["reason"] == "listen_timeout" and r.orch.turn is None


def test_no_speech_after_the_wake_word_ends_the_turn() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), NoSpeech(40000))
    assert r.types() == ["wake.detected", "turn.cancelled"]
    assert r.data("turn.cancelled")["reason"] == "no_speech" and r.orch.state == State.IDLE


def test_a_decode_whisper_gave_up_on_is_said_and_audio_with_no_words_is_not() -> None:
    """Whisper's time limit (``Transcript.aborted``) is the engine's failure: "Sorry, I didn't catch
    that." is heard. A decode that found no words in the audio ends the turn quietly, as before."""
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    job = r.asr.jobs[-1]
    assert isinstance(job, AsrJob)
    r.send(Transcript(job.ctx.turn_id, job.ctx.attempt, "", 1000, 3000.0, aborted=True))
    assert r.data("response.done")["status"] == "no_transcript"
    assert [j.text for j in r.tts.of(SpeakJob)] == ["Sorry, I didn't catch that."]  # type: ignore[attr-defined]
    assert r.data("response.started") == {"route": "say", "text": "Sorry, I didn't catch that."}
    r2 = Rig(cfg())
    r2.send(wake(r2.clock), started(r2.clock), stopped(r2.clock))
    r2.decode("")
    assert r2.data("response.done")["status"] == "no_transcript"
    assert not r2.tts.of(SpeakJob) and r2.orch.turn is None and r2.orch.state == State.IDLE


def test_mute_ignores_the_wake_word_and_say_speaks_as_its_own_turn() -> None:
    r = Rig(cfg())
    r.send(MuteCommand(True), wake(r.clock))
    assert r.orch.state == State.MUTED and "wake.detected" not in r.types()
    assert r.listen.calls[-1] == ("close", None) and not r.playback.of(ChimeJob)
    r.send(MuteCommand(False), SayCommand("Dinner is ready."))
    (speak, end) = r.tts.jobs
    assert isinstance(speak, SpeakJob) and speak.text == "Dinner is ready." and isinstance(end, EndOfReply)
    assert not r.playback.of(ChimeJob)  # a plain say: no chime
    r.synthesize(speak.ctx, ["Dinner is ready."])
    r.play(speak.ctx, "Dinner is ready.")
    assert r.data("response.started") == {"route": "say", "text": "Dinner is ready."}
    assert r.data("response.done")["route"] == "say"


def test_a_say_waits_for_the_users_turn_to_end_and_never_cancels_it() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock))
    r.send(SayCommand("Dinner is ready."))  # mid-question
    assert "turn.cancelled" not in r.types() and not r.tts.jobs and r.orch.state == State.LISTENING
    r.send(stopped(r.clock))
    r.decode("what is the capital of France")
    r.send(SayCommand("The door is open."))  # while the answer is prepared and played
    c = r.answer("Paris.")
    assert not r.tts.of(SpeakJob) or all(
        isinstance(j, SpeakJob) and j.text != "Dinner is ready." for j in r.tts.jobs
    )
    r.play(c, "Paris.")
    first, *_ = r.memory.of("response.done")
    assert first.data["status"] == "done" and first.data["reply"] == "Paris."  # the question was answered
    spoken = [j for j in r.tts.of(SpeakJob) if isinstance(j, SpeakJob)]
    assert [j.text for j in spoken] == ["Dinner is ready."]  # then the first message, in order…
    r.synthesize(spoken[0].ctx, ["Dinner is ready."])
    r.play(spoken[0].ctx, "Dinner is ready.")
    spoken = [j for j in r.tts.of(SpeakJob) if isinstance(j, SpeakJob)]
    assert [j.text for j in spoken] == ["Dinner is ready.", "The door is open."]  # …and the next
    assert "turn.cancelled" not in r.types()


def test_a_timer_rings_at_once_while_the_user_speaks_and_a_long_turn_yields_after_the_max_wait() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock))
    say(r.orch, "Your timer is done.", trigger="timer")
    assert r.playback.of(ChimeJob)[-1] == ChimeJob("timer") and not r.tts.jobs
    r.clock.advance(r.orch.cfg.conversation.say_max_wait_ms - 1)
    r.orch.tick()
    assert not r.tts.jobs
    r.clock.advance(2)
    r.orch.tick()  # waited say_max_wait_ms: the stuck turn yields
    assert r.data("turn.cancelled")["reason"] == "superseded"
    (speak, _) = r.tts.jobs
    assert isinstance(speak, SpeakJob) and speak.text == "Your timer is done."


def test_messages_waiting_for_the_user_are_bounded() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock))
    for i in range(5):
        r.send(SayCommand(f"Message {i}."))
    (err,) = r.memory.of("error")
    assert err.data["code"] == "overloaded" and "Message 4." in str(err.data["message"])


def test_announce_plays_a_chime_then_the_text_and_chimes_can_be_turned_off() -> None:
    r = Rig(cfg())
    r.send(SayCommand("The washing is done.", announce=True))
    assert r.playback.of(ChimeJob) == [ChimeJob("announce")]
    assert isinstance(r.tts.jobs[0], SpeakJob)
    quiet = Rig(replace(cfg(), conversation=ConversationConfig(chimes=False)))
    quiet.send(wake(quiet.clock), NoSpeech(40000), SayCommand("Hello.", announce=True))
    assert not quiet.playback.of(ChimeJob) and quiet.tts.jobs


def test_history_is_prefix_stable_and_bounded() -> None:
    n = 3
    base = cfg()
    r = Rig(replace(base, llm=replace(base.llm, history_turns=n)))
    for i in range(n + 2):
        at = 100000 * (i + 1)
        r.send(wake(r.clock, at), started(r.clock, at + 1000), stopped(r.clock, at + 30000))
        r.decode("tell me something")
        c = r.answer("Sure.")
        r.play(c, "Sure.")
    p = [j.messages for j in r.llm.of(LlmJob) if isinstance(j, LlmJob)]
    for k in range(n):  # each prompt extends the previous one (llama.cpp reuses its KV cache)…
        assert p[k + 1][: len(p[k])] == p[k]
    k = len(prompt_prefix(r.orch.cfg.llm))  # system prompt and examples, the same in every prompt
    assert [len(x) - k for x in p] == [1, 3, 5, 7, 3]  # …until memory is full: cut back to the last exchange
    assert p[1][k + 1] == ChatMessage("assistant", "Sure. ")  # stored as generated, not as heard
    primed = [j.messages for j in r.llm.of(PrimeJob) if isinstance(j, PrimeJob)]
    for prime, request in zip(primed, p, strict=True):
        assert prime[:-1] == request[:-1] and prime[-1] == ChatMessage("user", "(It is 10:42.)\n")


def test_reload_applies_live_keys_and_keeps_the_old_config_when_invalid() -> None:
    base = cfg()
    r = Rig(base)
    r.loaded = [
        replace(
            base,
            conversation=replace(base.conversation, follow_up_window_ms=1000),
            asr=replace(base.asr, threads=1),  # captured by the engine at start-up: needs a restart
        ),
        ConfigError("conversation.bogus", "unknown key"),
    ]
    r.send(ReloadConfig(), ReloadConfig())
    assert r.data("config.reloaded") == {
        "applied": ["conversation.follow_up_window_ms"],
        "restart_required": ["asr.threads"],
    }
    bad = r.data("error")
    assert bad["code"] == "reload_failed" and bad["key"] == "conversation.bogus"
    assert r.orch.cfg.conversation.follow_up_window_ms == 1000
    assert r.orch.cfg.asr.threads == base.asr.threads


@pytest.mark.parametrize(
    ("generated", "stopped", "stored"),
    [
        (" Paris is the capital. ", "eos", " Paris is the capital. "),
        (" It is Paris. It has many", "max_tokens", " It is Paris."),
        (' He said "yes." Then he', "max_tokens", ' He said "yes."'),
        (" no sentence end at all", "max_tokens", ""),
        (" Paris.", "cancelled", ""),
        ("  ", "eos", ""),
    ],
)
def test_as_generated_keeps_what_was_heard_of_the_generated_text(
    generated: str, stopped: str, stored: str
) -> None:
    assert as_generated(generated, stopped) == stored


def test_endpoint_config_rejects_speculation_after_endpoint() -> None:
    with pytest.raises(ConfigError, match=r"endpoint\.speculative_silence_ms"):
        EndpointConfig(silence_end_ms=300, speculative_silence_ms=400)


# ---------------------------------------------------------------------------- nothing said is lost


def test_a_command_continued_after_an_early_commit_becomes_the_next_turn_and_acts_on_both_parts() -> None:
    """ "Turn on the kitchen light ⟨300 ms⟩ and the hallway light": the first part commits at the
    settled pause, the continuation is heard while its confirmation plays and acted on after it."""
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000))
    first = r.decode("Turn on the kitchen light.")
    assert r.intents.applied == ["light_on:kitchen light"]
    assert r.listen.calls[-1] == ("carry_on", 43200)  # listening on after the committed words
    r.send(started(r.clock, 45000))  # the user goes on while the confirmation is synthesised
    r.synthesize(first, ["Turning on the kitchen light."])
    r.send(PlaybackStarted(first.turn_id, r.clock(), 90000))
    r.send(stopped(r.clock, 60000))  # … and stops while it plays: decoded now, acted on after the reply
    assert len(r.asr.jobs) == 2 and r.orch.turn is not None and r.orch.turn.id == first.turn_id
    assert r.intents.applied == ["light_on:kitchen light"]
    r.send(PlaybackFinished(first.turn_id, "Turning on the kitchen light.", False))
    turn = r.orch.turn
    assert turn is not None and turn.trigger == "continuation" and turn.id != first.turn_id
    second = r.decode("and the hallway light.")
    assert r.intents.applied == ["light_on:kitchen light", "light_on:hallway light"]
    assert r.intents.previous == ["light_on"]  # the continuation was matched knowing what it continues
    r.synthesize(second, ["Turning on the hallway light."])
    r.play(second, "Turning on the hallway light.")
    assert [e.data["status"] for e in r.memory.of("response.done")] == ["done", "done"]
    assert [e.turn_id for e in r.memory.of("input_audio.speech_started")] == [first.turn_id, second.turn_id]
    assert "turn.cancelled" not in r.types()
    assert r.listen.calls[-1] == ("open", 3000)  # then the follow-up window, as after any reply


def test_a_continuation_that_is_the_reply_heard_back_is_dropped_as_echo() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    first = r.decode("turn on the kitchen light")
    r.synthesize(first, ["Turning on the kitchen light."])
    r.send(PlaybackStarted(first.turn_id, r.clock(), 90000))
    r.send(started(r.clock, 70000), stopped(r.clock, 90000))  # the microphone hears the speaker
    r.send(PlaybackFinished(first.turn_id, "Turning on the kitchen light.", False))
    r.decode("Turning on the kitchen light.")
    assert r.intents.applied == ["light_on:kitchen light"]  # once: the echo was not obeyed
    assert r.data("turn.cancelled")["reason"] == "echo"
    assert r.orch.turn is None and r.listen.calls[-1] == ("open", 3000)


def test_the_devices_own_voice_in_the_follow_up_window_is_not_answered() -> None:
    """The window heard what the canceller left of the confirmation (``SpeechStopped.echo``): whisper
    made "Very normal." of it and the LLM answered. Now it is cancelled as echo, nothing is decoded,
    and the window stays open for the user; the user's own words there (not echo) are answered."""
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    c = r.decode("turn on the kitchen light")
    r.synthesize(c, ["Turning on the kitchen light."])
    r.play(c, "Turning on the kitchen light.")
    asr_jobs = len(r.asr.jobs)
    r.send(started(r.clock, 100000))
    r.send(replace(paused(r.clock, 110000, settled=False), echo=True))
    r.send(replace(stopped(r.clock, 110000), echo=True))
    assert len(r.asr.jobs) == asr_jobs  # never decoded, never answered
    assert r.data("turn.cancelled")["reason"] == "echo"
    assert r.orch.turn is None and r.listen.calls[-1] == ("open", 3000)  # the window is open again
    r.send(started(r.clock, 150000), stopped(r.clock, 170000))  # the user, in the window
    r.decode("and the hallway light")
    assert r.intents.applied == ["light_on:kitchen light", "light_on:hallway light"]


def test_the_devices_own_voice_heard_as_a_continuation_is_dropped_not_decoded() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000))
    first = r.decode("Turn on the kitchen light.")
    r.synthesize(first, ["Turning on the kitchen light."])
    r.send(PlaybackStarted(first.turn_id, r.clock(), 90000))
    asr_jobs = len(r.asr.jobs)
    r.send(started(r.clock, 60000), replace(paused(r.clock, 70000, settled=False), echo=True))
    r.send(replace(stopped(r.clock, 70000), echo=True))  # the residual of the confirmation
    r.send(PlaybackFinished(first.turn_id, "Turning on the kitchen light.", False))
    assert len(r.asr.jobs) == asr_jobs and not r.llm.of(LlmJob)
    assert r.intents.applied == ["light_on:kitchen light"]
    assert r.data("turn.cancelled")["reason"] == "echo"
    assert r.orch.turn is None and r.listen.calls[-1] == ("open", 3000)


def test_an_unheard_answer_is_not_held_for_the_devices_own_voice() -> None:
    """Speech during an answer not yet audible holds it (the question may go on); if that speech is
    only the device's own voice (a chime's leftover), the answer plays and nothing is asked again."""
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000, settled=False, question=True))
    c = r.decode("What is the capital of France?")
    assert r.orch.turn is not None and r.orch.turn.committed is not None
    r.send(started(r.clock, 45000))
    r.send(replace(stopped(r.clock, 52000), echo=True))
    r.answer("Paris.")
    assert r.orch.turn is not None and r.orch.turn.id == c.turn_id
    assert r.orch.turn.committed is not None and r.orch.turn.committed.gate.is_set()
    assert "turn.cancelled" not in r.types()


def test_an_unfinished_sentence_waits_for_its_end_and_is_answered_whole() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000, settled=False))
    r.decode("What is the")
    r.send(paused(r.clock, 40000, settled=True), stopped(r.clock, 40000))
    assert r.orch.turn is not None and r.orch.turn.committed is None  # not answered: it stops mid-clause
    assert r.listen.calls[-1] == ("carry_on", 48000)
    assert r.orch.state == State.LISTENING
    r.send(started(r.clock, 60000), said(r.clock, 58000))
    asr = r.asr.jobs[-1]  # the held words are decoded again with the rest, as one sentence
    assert isinstance(asr, AsrJob) and len(asr.audio) == 16000 + 3200 + 16000  # the pause: at most 200 ms
    assert not asr.audio[:19200].any() and (asr.audio[19200:] == 7).all()
    r.decode("What is the capital of France?")
    (job,) = [j for j in r.llm.of(LlmJob) if isinstance(j, LlmJob) and not j.ctx.cancel.cancelled]
    assert isinstance(job, LlmJob) and "What is the capital of France?" in job.messages[-1].content
    assert [e.data["text"] for e in r.memory.of("transcript.final")] == ["What is the capital of France?"]
    assert r.memory.of("transcript.final")[0].turn_id == job.ctx.turn_id


def test_an_unfinished_command_commits_as_said_when_nothing_more_comes() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000))
    r.decode("Turn on the kitchen light and")
    assert not r.intents.applied  # a settled pause, a complete command: but it stops on "and"
    r.send(stopped(r.clock, 40000))
    assert not r.intents.applied
    r.send(NoSpeech(70000))  # unfinished_silence_ms passed: what was said is all there is
    assert r.intents.applied == ["light_on:kitchen light"]
    assert "turn.cancelled" not in r.types()


def test_a_question_continued_before_its_answer_is_heard_is_asked_again_whole() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    first = r.decode("What is the capital")
    assert r.llm.of(LlmJob) and first.gate.is_set()
    r.send(started(r.clock, 60000))  # the user goes on before any answer is heard
    assert not first.gate.is_set() and not first.cancel.cancelled  # the answer is held, not yet dropped
    r.send(said(r.clock, 30000))  # overlaps the first utterance's audio: only what is new is added
    assert first.cancel.cancelled and r.data("turn.cancelled")["reason"] == "continued"
    turn = r.orch.turn
    assert turn is not None and turn.trigger == "continuation"
    asr = r.asr.jobs[-1]
    assert isinstance(asr, AsrJob) and len(asr.audio) == 16000 + 15000 and (asr.audio[16000:] == 7).all()
    c = r.decode("What is the capital of France?")
    job = r.llm.of(LlmJob)[-1]
    assert isinstance(job, LlmJob) and job.ctx == c
    assert "What is the capital of France?" in job.messages[-1].content
    r.answer("Paris.")
    r.play(c, "Paris.")
    assert [e.data["status"] for e in r.memory.of("response.done")] == ["done"]
    ((_, user, _),) = r.orch.conversation.history.items  # the half question never entered history
    assert user.endswith("What is the capital of France?")


def test_a_question_continued_before_its_answer_played_is_asked_again_though_reported_late() -> None:
    """ "What is the ⟨500⟩ capital of Spain?": whisper heard "What is that?", a complete question, and its
    answer began to play before the busy listener reported the continuation, which had begun 1.5 s
    earlier. The answer is cut and the whole question decoded and answered once."""
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000, settled=False, question=True))
    first = r.decode("What is that?")
    assert r.orch.turn is not None and r.orch.turn.committed is not None  # committed at the question pause
    began = r.clock()  # the user goes on now (capture time) …
    r.clock.advance(1500)
    r.answer("That's a special kind of food.")
    r.send(PlaybackStarted(first.turn_id, r.clock(), 90000))  # … the answer plays …
    r.clock.advance(300)
    r.send(SpeechStarted(52000, began))  # … and the listener says so only now
    r.send(said(r.clock, 30000))
    assert first.cancel.cancelled and r.data("turn.cancelled")["reason"] == "continued"
    turn = r.orch.turn
    assert turn is not None and turn.trigger == "continuation"
    r.send(PlaybackFinished(first.turn_id, "That's a special", True))
    c = r.decode("What is the capital of Spain?")
    r.answer("Madrid.")
    r.play(c, "Madrid.")
    assert [e.data["status"] for e in r.memory.of("response.done")] == ["done"]
    ((_, user, _),) = r.orch.conversation.history.items  # the fragment's answer never entered history
    assert user.endswith("What is the capital of Spain?")


def test_speech_begun_after_the_answer_was_heard_is_the_next_turn_not_the_question_going_on() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000, settled=False, question=True))
    first = r.decode("What is the capital of Spain?")
    r.answer("Madrid.")
    r.send(PlaybackStarted(first.turn_id, r.clock(), 90000))
    r.clock.advance(300)
    r.send(SpeechStarted(90000, r.clock()), said(r.clock, 90000))
    assert not first.cancel.cancelled and "turn.cancelled" not in r.types()


def test_a_wake_word_while_an_answer_is_prepared_is_a_barge_in_not_a_continuation() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    first = r.decode("tell me a story")
    r.send(started(r.clock, 60000))  # the VAD hears "Hey Jarvis" before the wake word fires
    assert not first.gate.is_set()
    r.send(wake(r.clock, 70000))
    assert first.cancel.cancelled and r.data("turn.cancelled")["reason"] == "barge_in"
    r.send(started(r.clock, 72000), stopped(r.clock, 90000))
    c = r.decode("turn on the kitchen light")
    assert r.intents.applied == ["light_on:kitchen light"] and c.turn_id != first.turn_id
    asr = r.asr.jobs[-1]
    assert isinstance(asr, AsrJob) and len(asr.audio) == len(AUDIO)  # nothing of the story question


def test_a_command_confirmation_plays_while_the_user_goes_on() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    c = r.decode("turn on the kitchen light")
    r.send(started(r.clock, 60000))
    assert c.gate.is_set()  # a command's confirmation is not held: the speech is the next turn


def test_speech_during_an_answer_is_not_a_continuation_and_continuation_can_be_turned_off() -> None:
    r = Rig(cfg())
    r.answering("tell me a story", "Once upon a time.")
    assert r.listen.calls[-1] == ("close", None)  # an answer is heard out (the wake word interrupts)
    base = cfg()
    r = Rig(replace(base, endpoint=replace(base.endpoint, continuation=False)))
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    r.decode("turn on the kitchen light")
    assert r.listen.calls[-1] == ("close", None)
    r.send(started(r.clock, 60000), stopped(r.clock, 80000))
    assert len(r.asr.jobs) == 1  # the old behaviour: what follows a commit is not heard


def test_a_question_back_never_commits_early_and_a_follow_up_knows_the_command_before() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000))
    r.intents.clarify = True
    c = r.decode("Turn off.")
    assert r.orch.turn is not None and r.orch.turn.committed is None  # "which device?" waits for the end
    r.intents.clarify = False
    r.send(SpeechResumed(42000, r.clock()), stopped(r.clock, 60000))
    assert c.cancel.cancelled
    c = r.decode("Turn on the kitchen light.")
    r.synthesize(c, ["Turning on the kitchen light."])
    r.play(c, "Turning on the kitchen light.")
    r.send(started(r.clock, 120000), stopped(r.clock, 150000))  # in the follow-up window
    r.decode("and the hallway light")
    assert r.intents.previous == ["light_on"]


def test_each_command_of_a_sentence_is_applied_and_published_on_its_own() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    c = r.decode("turn on the kitchen light and turn on the hallway light")
    assert r.intents.applied == ["light_on:kitchen light", "light_on:hallway light"]
    got = [e.data["slots"] for e in r.memory.of("intent.recognized")]
    assert got == [{"device": ["kitchen light"]}, {"device": ["hallway light"]}]
    assert r.tts.jobs[0] == SpeakJob(c, 0, "Turning on both.")  # one confirmation for the sentence


def test_an_endpoint_before_the_words_waits_for_them_to_know_if_the_sentence_is_over() -> None:
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock, 40000))
    assert r.orch.turn is not None and r.orch.turn.committed is None  # decoding: not yet decided
    r.decode("Set a timer for.")
    assert r.orch.turn.committed is None and r.listen.calls[-1] == ("carry_on", 48000)
    r.send(started(r.clock, 60000), said(r.clock, 58000))
    r.decode("Set a timer for ten minutes.")
    assert r.orch.turn.committed is not None
    assert [e.data["text"] for e in r.memory.of("transcript.final")] == ["Set a timer for ten minutes."]
    assert r.memory.of("transcript.final")[0].data["speculative"] is False


def test_a_decode_that_hangs_before_the_commit_ends_the_turn_at_its_deadline() -> None:
    """The commit waits for the words; a decode that never returns must still end the turn (ASR
    deadline = max_decode_ms + 2 s), not leave it open until the listen timeout."""
    r = Rig(cfg())
    r.send(wake(r.clock), started(r.clock), stopped(r.clock, 40000))
    job = r.asr.jobs[-1]
    assert isinstance(job, AsrJob) and r.orch.turn is not None and r.orch.turn.committed is None
    r.asr.busy_since_ns, r.asr.busy_ctx = r.clock(), job.ctx  # a native call that never returns
    budget_ms = r.orch.cfg.asr.max_decode_ms + 2000
    r.clock.advance(budget_ms - 100)
    r.orch.tick()
    assert "error" not in r.types()
    r.clock.advance(200)
    r.orch.tick()
    assert r.data("error")["stage"] == "asr" and r.data("error")["code"] == "timeout"
    assert r.data("response.done")["status"] == "error" and job.ctx.cancel.cancelled
    # the user is told, not left in silence
    assert r.data("response.started") == {"route": "say", "text": "Sorry, I didn't catch that."}
    sorry = r.orch.turn
    assert sorry is not None and sorry.trigger == "say" and r.orch.state == State.THINKING


def test_a_complete_question_commits_at_the_question_pause_and_others_wait_for_the_endpoint() -> None:
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000, settled=False))
    r.decode("What is the capital of France?")
    (job,) = r.llm.of(LlmJob)
    assert isinstance(job, LlmJob)
    r.send(paused(r.clock, 40000, settled=True))
    assert not job.ctx.gate.is_set()  # commit_silence_ms ends commands only
    r.send(paused(r.clock, 40000, question=True))  # question_commit_silence_ms: the answer may play
    assert job.ctx.gate.is_set() and r.memory.of("input_audio.speech_stopped")[0].data["reason"] == (
        "early_commit"
    )
    assert r.listen.calls[-1] == ("carry_on", 43200) and len(r.asr.jobs) == 1
    # the question pause before the words: they commit when they come
    r = Rig(cfg(speculative_ms=64))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000, settled=False))
    r.send(paused(r.clock, 40000), paused(r.clock, 40000, question=True))
    r.decode("How many legs does a spider have?")
    assert r.orch.turn is not None and r.orch.turn.committed is not None
    # not a finished question: it stops mid-clause, or whisper did not hear a question mark
    for text in ("What is the?", "Tell me a story."):
        r = Rig(cfg(speculative_ms=64))
        r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000, settled=False))
        r.decode(text)
        r.send(paused(r.clock, 40000), paused(r.clock, 40000, question=True))
        assert r.orch.turn is not None and r.orch.turn.committed is None, text
    # off: the question waits for the endpoint
    off = cfg(speculative_ms=64)
    r = Rig(replace(off, endpoint=replace(off.endpoint, question_commit_silence_ms=0)))
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000, settled=False))
    r.decode("What is the capital of France?")
    r.send(paused(r.clock, 40000), paused(r.clock, 40000, question=True))
    assert r.orch.turn is not None and r.orch.turn.committed is None


def _confirming(r: Rig) -> Ctx:
    """ "Turn on the kitchen light" committed at its settled pause; its confirmation plays."""
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000))
    first = r.decode("Turn on the kitchen light.")
    r.synthesize(first, ["Turning on the kitchen light."])
    r.send(PlaybackStarted(first.turn_id, r.clock(), 90000))
    return first


def test_a_continuation_decoded_in_its_pause_is_acted_on_once_the_moment_the_first_reply_ends() -> None:
    r = Rig(cfg(speculative_ms=64))
    first = _confirming(r)
    r.send(started(r.clock, 45000), paused(r.clock, 60000, settled=False))  # "and the hallway light" ⟨…⟩
    job = r.asr.jobs[-1]  # decoded in its pause, on a turn of its own that is not live yet
    assert isinstance(job, AsrJob) and job.ctx.turn_id != first.turn_id
    r.decode("and the hallway light.")  # its words come while the first confirmation plays
    r.send(paused(r.clock, 60000, settled=True))
    assert r.intents.applied == ["light_on:kitchen light"]  # nothing of it acted on or published yet
    assert [e.data["text"] for e in r.memory.of("transcript.final")] == ["Turn on the kitchen light."]
    assert r.orch.turn is not None and r.orch.turn.id == first.turn_id
    r.clock.advance(300)
    r.send(PlaybackFinished(first.turn_id, "Turning on the kitchen light.", False))
    turn = r.orch.turn  # the first reply is over: the continuation is live and commits at once
    assert turn is not None and turn.id == job.ctx.turn_id and turn.committed is not None
    assert r.intents.applied == ["light_on:kitchen light", "light_on:hallway light"]
    assert r.intents.previous == ["light_on"] and len(r.asr.jobs) == 2  # not decoded again
    assert SpeakJob(job.ctx, 0, "Turning on the hallway light.") in r.tts.jobs
    second = [e for e in r.memory.events if e.turn_id == turn.id]
    assert [e.type for e in second][:3] == [
        "input_audio.speech_started",
        "input_audio.speech_stopped",
        "transcript.final",
    ]
    assert second[1].data["reason"] == "early_commit" and second[2].data["text"] == "and the hallway light."
    lat = turn.latency()
    assert lat[Latency.DECODE_START] == 200.0  # at its pause (3200 samples on), not when the reply ended
    r.synthesize(job.ctx, ["Turning on the hallway light."])
    r.play(job.ctx, "Turning on the hallway light.")
    assert [e.data["status"] for e in r.memory.of("response.done")] == ["done", "done"]
    assert r.intents.applied == ["light_on:kitchen light", "light_on:hallway light"]  # exactly once
    assert "turn.cancelled" not in r.types()


def test_a_continuation_that_speaks_on_after_its_pause_is_decoded_again_at_its_end() -> None:
    r = Rig(cfg(speculative_ms=64))
    first = _confirming(r)
    r.send(started(r.clock, 45000), paused(r.clock, 52000, settled=False))  # "and" ⟨…⟩
    stale = r.asr.jobs[-1]
    assert isinstance(stale, AsrJob)
    r.send(SpeechResumed(54000, r.clock()))  # ⟨…⟩ "the hallway light"
    assert stale.ctx.cancel.cancelled
    r.decode("and")  # a late result of the dropped attempt: nothing comes of it
    r.send(stopped(r.clock, 60000))  # the continuation ends while the confirmation plays: decoded now
    end = r.asr.jobs[-1]
    assert isinstance(end, AsrJob) and end.ctx.turn_id == stale.ctx.turn_id and end.ctx.attempt == 2
    r.send(PlaybackFinished(first.turn_id, "Turning on the kitchen light.", False))
    assert r.orch.turn is not None and r.orch.turn.committed is None  # its words are not back yet
    r.decode("and the hallway light.")
    assert r.intents.applied == ["light_on:kitchen light", "light_on:hallway light"]
    assert len(r.asr.jobs) == 3 and [e.data["text"] for e in r.memory.of("transcript.final")] == [
        "Turn on the kitchen light.",
        "and the hallway light.",
    ]


def test_a_barge_in_drops_the_continuations_early_decode_and_nothing_of_it_is_acted_on() -> None:
    r = Rig(cfg(speculative_ms=64))
    first = _confirming(r)
    r.send(started(r.clock, 45000), paused(r.clock, 60000))
    job = r.asr.jobs[-1]
    assert isinstance(job, AsrJob)
    r.send(wake(r.clock, 70000))  # "Hey Jarvis": a new turn interrupts the reply
    assert job.ctx.cancel.cancelled and first.cancel.cancelled
    r.decode("and the hallway light.")
    assert r.intents.applied == ["light_on:kitchen light"]
    assert r.orch.turn is not None and r.orch.turn.id not in (first.turn_id, job.ctx.turn_id)


def test_off_a_continuation_is_decoded_only_once_the_first_reply_is_over() -> None:
    base = cfg(speculative_ms=64)
    r = Rig(replace(base, endpoint=replace(base.endpoint, decode_continuation=False)))
    first = _confirming(r)
    r.send(started(r.clock, 45000), paused(r.clock, 60000), stopped(r.clock, 60000))
    assert len(r.asr.jobs) == 1
    r.send(PlaybackFinished(first.turn_id, "Turning on the kitchen light.", False))
    assert len(r.asr.jobs) == 2
    r.decode("and the hallway light.")
    assert r.intents.applied == ["light_on:kitchen light", "light_on:hallway light"]
