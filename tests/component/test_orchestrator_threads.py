"""The orchestrator with its real worker threads and a real-time WAV sink, fake engines (orchestration
only): what the synchronous unit tests cannot show — threads handing work on, gates, playback timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from edge_voice.audio.sinks import WavSink
from edge_voice.audio.sources import InputClock
from edge_voice.core.config import Config, ConversationConfig
from edge_voice.core.conversation import default_facts, prompt_prefix
from edge_voice.core.messages import (
    CancelCommand,
    ChatMessage,
    MuteCommand,
    SayCommand,
    Shutdown,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    WakeDetected,
)
from edge_voice.core.orchestrator import Hooks, Orchestrator
from edge_voice.core.replies import Workers
from edge_voice.integrations.sinks import MemorySink
from edge_voice.runtime.turn_loop import TurnLoop
from edge_voice.runtime.workers import AsrWorker, LlmWorker, PlaybackWorker, TtsWorker
from tests.conftest import wait_until_async
from tests.fakes import (
    KitchenIntents,
    RecordingListen,
    ScriptedGenerator,
    ScriptedTranscriber,
    SimpleSplitter,
    ToneSynthesizer,
)


class Harness:
    def __init__(self, tmp: Path, asr: ScriptedTranscriber, llm: ScriptedGenerator, cfg: Config) -> None:
        self.clock = InputClock()
        self.sink = WavSink(tmp / "out.wav", self.clock, 16000, pace=True)
        self.memory = MemorySink()
        self.listen = RecordingListen()
        self.intents = KitchenIntents()
        self.asr_engine, self.llm_engine, self.tts_engine = asr, llm, ToneSynthesizer()
        post = self._post
        self.playback = PlaybackWorker(self.sink, post, 20)
        self.tts = TtsWorker(self.tts_engine, post, self.playback)
        self.llm = LlmWorker(llm, post, self.tts, SimpleSplitter)
        self.asr = AsrWorker(asr, post)
        clock = self.clock
        self.facts: Callable[[], str] | None = None
        self.load_config: Callable[[], Config] | None = None
        hooks = Hooks(
            realtime=lambda on: clock.realtime.set() if on else clock.realtime.clear(),
            facts=lambda: self.facts() if self.facts is not None else default_facts(),
            load_config=lambda: self.load_config() if self.load_config is not None else cfg,
        )
        self.orch = Orchestrator(
            cfg,
            listen=self.listen,
            workers=Workers(self.asr, self.llm, self.tts, self.playback),
            intents=self.intents,
            sinks=[self.memory],
            now_ns=time.monotonic_ns,
            hooks=hooks,
        )
        self.turn_loop = TurnLoop(self.orch)

    def _post(self, msg: object) -> None:
        self.turn_loop.post(msg)  # type: ignore[arg-type]

    def types(self) -> list[str]:
        return [t for t in self.memory.types() if t != "response.text.delta"]

    async def wait_for(self, pred: Callable[[], bool], timeout_s: float = 10.0) -> None:
        try:
            await wait_until_async(pred, timeout_s)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; events so far: {self.types()}") from None


def _cfg(**endpoint: int) -> Config:
    base = Config()
    return replace(
        base,
        endpoint=replace(base.endpoint, **endpoint),
        conversation=ConversationConfig(follow_up_window_ms=3000),
    )


@contextmanager
def _noop() -> Iterator[None]:
    yield


def run_scenario(
    tmp: Path,
    scenario: Callable[[Harness], object],
    asr: ScriptedTranscriber | None = None,
    llm: ScriptedGenerator | None = None,
    cfg: Config | None = None,
) -> Harness:
    h = Harness(tmp, asr or ScriptedTranscriber(), llm or ScriptedGenerator(), cfg or _cfg())

    async def main() -> None:
        h.turn_loop.loop = asyncio.get_running_loop()
        for w in (h.playback, h.tts, h.llm, h.asr):
            w.start()
        task = asyncio.create_task(h.turn_loop.run())
        try:
            await scenario(h)  # type: ignore[misc]
        finally:
            h.turn_loop.post(Shutdown())
            await asyncio.wait_for(task, 5)
            for w in (h.asr, h.llm, h.tts, h.playback):
                w.stop()

    asyncio.run(main())
    return h


AUDIO = np.zeros(16000, np.int16)


def wake(at: int = 16000) -> WakeDetected:
    return WakeDetected("hey_jarvis", 0.97, at, time.monotonic_ns())


def started(at: int = 20000) -> SpeechStarted:
    return SpeechStarted(at, time.monotonic_ns())


def paused(last_voiced: int = 50000, settled: bool = True) -> SpeechPaused:
    return SpeechPaused(AUDIO, 15000, last_voiced, last_voiced + 3200, time.monotonic_ns(), settled)


def stopped(last_voiced: int = 50000) -> SpeechStopped:
    now = time.monotonic_ns()
    return SpeechStopped(
        AUDIO, 15000, 20000, last_voiced, last_voiced + 8000, "silence", now, now - 500_000_000
    )


def test_command_turn_events_in_order(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        for m in (wake(), started(), stopped()):
            h.turn_loop.post(m)
        await h.wait_for(lambda: "response.done" in h.types())

    h = run_scenario(tmp_path, scenario, cfg=_cfg(speculative_silence_ms=0))
    assert h.types() == [
        "wake.detected",
        "input_audio.speech_started",
        "input_audio.speech_stopped",
        "transcript.final",
        "intent.recognized",
        "response.started",
        "response.audio.started",
        "response.done",
    ]
    done = h.memory.of("response.done")[0].data
    assert done["route"] == "intent" and done["reply"] == "Turning on the kitchen light."
    lat = done["latency"]
    assert isinstance(lat, dict) and lat["voice_to_voice_ms"] is not None and lat["intent_ms"] is not None
    assert h.memory.states[:3] == ["listening", "thinking", "speaking"]
    assert h.tts_engine.texts == ["Turning on the kitchen light."]
    assert ("open", 3000) in h.listen.calls  # follow-up window opened after the reply
    assert h.intents.applied == ["light_on:kitchen light"]  # side effects once, on commit


def test_silent_intent_ends_turn_without_audio(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        for m in (wake(), started(), paused()):
            h.turn_loop.post(m)
        await h.wait_for(lambda: "response.done" in h.types())

    h = run_scenario(
        tmp_path, scenario, asr=ScriptedTranscriber(["Stop."]), cfg=_cfg(speculative_silence_ms=200)
    )
    assert h.memory.of("response.done")[0].data["status"] == "done"
    assert h.tts_engine.texts == [] and not h.sink.replies
    assert h.orch.state == "idle"


def test_speculative_attempt_is_used_and_events_held_until_commit(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        for m in (wake(), started(), paused()):
            h.turn_loop.post(m)
        await h.wait_for(lambda: len(h.asr_engine.calls) == 1)
        await asyncio.sleep(0.3)  # the speculative reply is prepared…
        assert "transcript.final" not in h.types()  # …but nothing is published
        assert not h.sink.replies  # …and nothing is heard before the endpoint
        h.turn_loop.post(stopped())
        await h.wait_for(lambda: "response.done" in h.types())

    asr = ScriptedTranscriber(["what is the capital of France"])
    h = run_scenario(tmp_path, scenario, asr=asr, cfg=_cfg(speculative_silence_ms=200))
    assert len(asr.calls) == 1  # the speculative decode was committed, not redone
    done = h.memory.of("response.done")[0].data
    assert done["speculative"] is True and done["route"] == "llm"
    assert h.types().index("input_audio.speech_stopped") < h.types().index("transcript.final")


def test_speech_resumed_cancels_speculation(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        for m in (wake(), started(), paused(40000)):
            h.turn_loop.post(m)
        await h.wait_for(lambda: len(h.asr_engine.calls) == 1)
        h.turn_loop.post(SpeechResumed(42000, time.monotonic_ns()))
        h.turn_loop.post(stopped(60000))
        await h.wait_for(lambda: "response.done" in h.types())

    asr = ScriptedTranscriber(["what is the", "what is the capital of France"])
    h = run_scenario(tmp_path, scenario, asr=asr, cfg=_cfg(speculative_silence_ms=200))
    assert len(asr.calls) == 2
    finals = h.memory.of("transcript.final")
    assert [e.data["text"] for e in finals] == ["what is the capital of France"]
    assert h.memory.of("response.done")[0].data["speculative"] is False


def test_early_commit_on_complete_command(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        for m in (wake(), started(), paused()):
            h.turn_loop.post(m)
        await h.wait_for(lambda: "response.done" in h.types())

    h = run_scenario(tmp_path, scenario, cfg=_cfg(speculative_silence_ms=200))
    assert h.intents.applied == ["light_on:kitchen light"]
    stops = h.memory.of("input_audio.speech_stopped")
    assert len(stops) == 1 and stops[0].data["reason"] == "early_commit"
    assert h.memory.of("response.done")[0].data["route"] == "intent"
    assert h.listen.calls[0][0] == "carry_on"  # what the user says next is still heard


def test_an_early_pause_decodes_but_commits_a_command_only_once_settled(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        for m in (wake(), started(), paused(40000, settled=False)):
            h.turn_loop.post(m)
        await h.wait_for(lambda: len(h.tts_engine.texts) == 1)  # decoded, matched, confirmation made…
        await asyncio.sleep(0.1)
        assert "transcript.final" not in h.types()  # …but the turn is not over: the user may go on
        assert not h.intents.applied and not h.sink.replies
        h.turn_loop.post(SpeechResumed(42000, time.monotonic_ns()))  # "…and the hallway light"
        h.turn_loop.post(paused(60000, settled=False))
        await h.wait_for(lambda: len(h.tts_engine.texts) == 2)
        assert not h.intents.applied
        h.turn_loop.post(paused(60000, settled=True))
        await h.wait_for(lambda: "response.done" in h.types())

    asr = ScriptedTranscriber(["turn on the kitchen light", "turn on the hallway light"])
    h = run_scenario(tmp_path, scenario, asr=asr, cfg=_cfg(speculative_silence_ms=64))
    assert h.intents.applied == ["light_on:hallway light"]  # once, for the whole command
    assert [e.data["text"] for e in h.memory.of("transcript.final")] == ["turn on the hallway light"]
    stops = h.memory.of("input_audio.speech_stopped")
    assert len(stops) == 1 and stops[0].data["reason"] == "early_commit"
    assert h.memory.of("response.done")[0].data["reply"] == "Turning on the hallway light."


def test_barge_in_cancels_and_history_keeps_heard_part(tmp_path: Path) -> None:
    long_answer = "Paris is the capital of France. " + "It has many museums and long old streets. " * 6
    llm = ScriptedGenerator(long_answer.strip())

    async def scenario(h: Harness) -> None:
        for m in (wake(), started(), stopped()):
            h.turn_loop.post(m)
        await h.wait_for(lambda: h.orch.state == "speaking")
        await asyncio.sleep(0.8)  # the first sentence (~0.6 s) is heard, the next is cut
        h.turn_loop.post(wake(200000))
        await h.wait_for(lambda: "turn.cancelled" in h.types())
        await h.wait_for(lambda: "response.done" in h.types())

    asr = ScriptedTranscriber(["tell me about Paris"])
    h = run_scenario(tmp_path, scenario, asr=asr, llm=llm, cfg=_cfg(speculative_silence_ms=0))
    assert h.memory.of("turn.cancelled")[0].data["reason"] == "barge_in"
    done = h.memory.of("response.done")[0]
    assert done.turn_id == h.memory.of("turn.cancelled")[0].turn_id and done.data["status"] == "interrupted"
    heard = str(done.data["heard"])
    assert heard.startswith("Paris is the capital of France.")
    assert len(heard) < len(long_answer) / 2
    (user, assistant) = h.orch.conversation.history.items[0][1:]
    assert user.endswith("tell me about Paris") and assistant == heard  # stored as sent, facts first
    # playback stopped: the reply in the sink is far shorter than the whole answer would be
    start, end = h.sink.replies[0]
    assert (end - start) / 16000 < 0.02 * len(long_answer) / 2


def test_failing_asr_ends_turn_and_next_turn_works(tmp_path: Path) -> None:
    asr = ScriptedTranscriber(["turn on the kitchen light"])

    async def scenario(h: Harness) -> None:
        asr.fail = RuntimeError("decoder exploded")
        for m in (wake(), started(), stopped()):
            h.turn_loop.post(m)
        await h.wait_for(lambda: "error" in h.types())
        # the engine's failure is said ("Sorry, I didn't catch that."), then the device is idle again
        await h.wait_for(lambda: len(h.memory.of("response.done")) == 2 and h.orch.state == "idle")
        asr.fail = None
        for m in (wake(300000), started(310000), stopped(340000)):
            h.turn_loop.post(m)
        await h.wait_for(lambda: len(h.memory.of("response.done")) == 3)

    h = run_scenario(tmp_path, scenario, asr=asr, cfg=_cfg(speculative_silence_ms=0))
    err = h.memory.of("error")[0].data
    assert err["stage"] == "asr" and "exploded" in str(err["message"])
    first, sorry, second = h.memory.of("response.done")
    assert first.data["status"] == "error" and second.data["route"] == "intent"
    assert sorry.data["route"] == "say" and "catch" in h.tts_engine.texts[0]


def test_mute_ignores_wake_and_say_speaks(tmp_path: Path) -> None:
    async def scenario(h: Harness) -> None:
        h.turn_loop.post(MuteCommand(True))
        h.turn_loop.post(wake())
        await h.wait_for(lambda: h.orch.state == "muted")
        await asyncio.sleep(0.1)
        assert "wake.detected" not in h.types()
        h.turn_loop.post(MuteCommand(False))
        h.turn_loop.post(SayCommand("Dinner is ready."))
        await h.wait_for(lambda: "response.done" in h.types())

    h = run_scenario(tmp_path, scenario)
    assert h.tts_engine.texts == ["Dinner is ready."]
    assert h.memory.of("response.done")[0].data["route"] == "say"


def test_cancel_command_during_reply(tmp_path: Path) -> None:
    llm = ScriptedGenerator("One. Two. Three. Four. Five. Six. Seven. Eight.", delay_s=0.05)

    async def scenario(h: Harness) -> None:
        for m in (wake(), started(), stopped()):
            h.turn_loop.post(m)
        await h.wait_for(lambda: h.orch.state == "speaking")
        h.turn_loop.post(CancelCommand("mqtt"))
        await h.wait_for(lambda: "turn.cancelled" in h.types())
        await asyncio.sleep(0.3)

    h = run_scenario(tmp_path, scenario, asr=ScriptedTranscriber(["count to eight"]), llm=llm)
    assert h.orch.state == "idle"
    assert h.memory.of("response.done")[0].data["status"] == "interrupted"
    assert len(h.tts_engine.texts) < 8  # the LLM and TTS stopped early


def _has_done(h: Harness, count: int) -> bool:
    return len(h.memory.of("response.done")) == count


def test_history_is_prefix_stable_and_bounded(tmp_path: Path) -> None:
    n = 3

    async def scenario(h: Harness) -> None:
        h.facts = lambda: "It is 10:42."
        for i in range(n + 2):
            base = 100000 * (i + 1)
            for m in (wake(base), started(base + 1000), stopped(base + 30000)):
                h.turn_loop.post(m)
            await h.wait_for(partial(_has_done, h, i + 1))

    llm = ScriptedGenerator("Sure.")
    cfg = replace(_cfg(speculative_silence_ms=0), llm=replace(Config().llm, history_turns=n))
    # the decode takes a moment, as a real one does: the prime is done before the request comes (a
    # request already waiting makes the LLM thread skip the prime)
    asr = ScriptedTranscriber(["tell me something"], delay_s=0.1)
    h = run_scenario(tmp_path, scenario, asr=asr, llm=llm, cfg=cfg)
    p = llm.prompts
    # each prompt extends the previous one (llama.cpp reuses its KV cache) until memory is full…
    for k in range(n):
        assert p[k + 1][: len(p[k])] == p[k]
    k = len(prompt_prefix(cfg.llm))  # system prompt and examples: the same at the start of every prompt
    assert all(x[:k] == prompt_prefix(cfg.llm) for x in p)
    assert [len(x) - k for x in p] == [1, 3, 5, 7, 3]  # …then it is cut back to the last exchange at once
    assert len(h.orch.conversation.history.items) <= n
    # the answer is stored exactly as generated (spaces included), not as the cleaned heard text:
    # its tokens are then already in the KV cache and the next question re-evaluates only itself
    assert p[1][k + 1] == ChatMessage("assistant", "Sure. ")
    # each wake word primed the LLM with that turn's request up to where the words go
    assert len(llm.primed) == len(p)
    for primed, request in zip(llm.primed, p, strict=True):
        assert primed[:-1] == request[:-1]
        assert primed[-1] == ChatMessage("user", "(It is 10:42.)\n")
        assert request[-1] == ChatMessage("user", "(It is 10:42.)\ntell me something")


def test_an_engine_stuck_for_good_ends_the_turn_then_exits_for_a_restart(tmp_path: Path) -> None:
    cfg = replace(
        _cfg(speculative_silence_ms=0),
        service=replace(Config().service, stage_timeout_ms=1000, hung_exit_ms=2000),
    )
    llm = ScriptedGenerator("never ending story", delay_s=30.0)  # a native call that never returns

    async def scenario(h: Harness) -> None:
        for m in (wake(), started(), stopped()):
            h.turn_loop.post(m)
        await h.wait_for(lambda: h.orch.exit_code == 70, timeout_s=20)

    h = run_scenario(tmp_path, scenario, asr=ScriptedTranscriber(["tell me a story"]), llm=llm, cfg=cfg)
    codes = [(e.data["stage"], e.data["code"]) for e in h.memory.of("error")]
    assert codes == [("llm", "timeout"), ("llm", "hung")]  # first the turn ends, then the process
    assert h.memory.of("response.done")[0].data["status"] == "error"


def test_a_german_command_is_matched_on_the_asr_thread_and_answered_in_home_assistants_words(
    tmp_path: Path,
) -> None:
    """intents.language = "de" with the real matcher (hassil + HA's German templates): the ASR thread
    prepares the match, the loop finds it (hassil ran once), and the reply is HA's German sentence."""
    from edge_voice.core.config import DeviceEntry, IntentsConfig
    from edge_voice.engines.intents import RuleIntentMatcher, ha_sentences

    devices = (DeviceEntry("Küchenlicht", "light", (), "light.kuechenlicht", "Küche"),)
    cfg = replace(_cfg(speculative_silence_ms=0), intents=IntentsConfig(language="de", devices=devices))
    sentences = ha_sentences(cfg.intents)
    assert sentences is not None
    matcher = RuleIntentMatcher(cfg.intents, sentences=sentences)
    sentences.ran = 0

    async def scenario(h: Harness) -> None:
        h.orch.router.intents, h.asr.prepare = matcher, matcher.prepare
        for m in (wake(), started(), stopped()):
            h.turn_loop.post(m)
        await h.wait_for(lambda: "response.done" in h.types())

    asr = ScriptedTranscriber(["Schalte das Küchenlicht ein"])
    h = run_scenario(tmp_path, scenario, asr=asr, cfg=cfg)
    done = h.memory.of("response.done")[0].data
    assert (done["route"], done["reply"]) == ("intent", "Licht eingeschaltet"), done
    assert h.memory.of("intent.recognized")[0].data["name"] == "turn_on"
    assert h.tts_engine.texts == ["Licht eingeschaltet"]
    assert sentences.ran == 1  # on the ASR thread; the loop's match was a memo hit
    assert h.orch.router.ha_matched
