"""Assembling the daemon: load and warm every engine, start one thread per engine, run the orchestrator.

Start-up fails fast (missing model, bad config, no audio device) with ``StartupError`` — the CLI prints
it and exits 78 so systemd does not restart-loop. Everything is loaded and warmed *before* READY, so the
first turn is as fast as every later one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from edge_voice.audio.sinks import AudioSink
from edge_voice.audio.sources import AudioSource, CaptureThread, FrameQueue, InputClock
from edge_voice.core import events as ev
from edge_voice.core.announcements import say
from edge_voice.core.config import Config
from edge_voice.core.intent import IntentOutcome
from edge_voice.core.messages import (
    EngineFallback,
    Message,
    ReloadConfig,
    SayCommand,
    Shutdown,
    SourceFailed,
    SourceRecovered,
)
from edge_voice.core.orchestrator import Hooks, Orchestrator
from edge_voice.core.publisher import EventSink
from edge_voice.core.replies import Workers
from edge_voice.core.turns import Turn
from edge_voice.engines import phonetic
from edge_voice.engines.base import (
    Generator,
    Interruptible,
    Synthesizer,
    Transcriber,
    VoiceActivityDetector,
    WakeDetector,
)
from edge_voice.engines.intents import RuleIntentMatcher, ha_sentences
from edge_voice.engines.skills import Skills, load_skills
from edge_voice.listen.thread import FrameListener, ListenThread
from edge_voice.models.registry import ModelError
from edge_voice.runtime import heap, shutdown
from edge_voice.runtime.echo_path import EchoPath
from edge_voice.runtime.generation import SentenceSplitter
from edge_voice.runtime.turn_loop import TurnLoop
from edge_voice.runtime.workers import (
    Agent,
    AsrWorker,
    LlmWorker,
    PhraseStore,
    PlaybackWorker,
    TtsWorker,
)

log = logging.getLogger(__name__)
# tts.local_fallback = false: no local voice sets the output rate; Piper voices (wyoming-piper) use it
REMOTE_ONLY_RATE_HZ = 22050


class ReportsFallback(Protocol):
    """A remote-engine wrapper (engines/remote/fallback.py): tells the loop when it switches."""

    notify: Callable[[EngineFallback], None] | None


class StartupError(RuntimeError):
    """The daemon cannot start; the message says what and how to fix it."""


@dataclass
class Engines:
    wake: WakeDetector
    vad: VoiceActivityDetector
    asr: Transcriber
    llm: Generator
    tts: Synthesizer
    intents: RuleIntentMatcher | None
    make_splitter: Callable[[], SentenceSplitter]
    make_listener: Callable[[Config, WakeDetector, VoiceActivityDetector], FrameListener]
    phrase_cache: PhraseStore | None = None
    prefill: Sequence[str] = ()  # phrases to cache on the TTS thread while it is idle
    clock_phrases: Callable[[], Sequence[str]] | None = None  # replies that change with the clock
    load_ms: dict[str, float] = field(default_factory=dict)
    fallbacks: list[ReportsFallback] = field(default_factory=list)  # remote engines' switch reports
    skills: Skills | None = None  # offline answers and boundaries, asked when no rule matches
    # the on-device engines whose native call a shutdown ends (whisper.cpp, Piper): see shutdown.py
    interruptible: list[Interruptible] = field(default_factory=list)


def load_llm(
    cfg: Config, timed: Callable[[str, Callable[[], Any]], Any], fallbacks: list[ReportsFallback]
) -> Generator:
    """The configured LLM, loaded and warm (its system prefix evaluated). ``timed(name, fn)`` runs a step."""
    from edge_voice.core.conversation import prompt_prefix
    from edge_voice.engines.llm import LlamaGenerator

    llm: Generator = timed("llm", lambda: LlamaGenerator(cfg.llm, cfg.models_path))
    if cfg.llm.backend == "openai":  # the on-device model stays loaded and warm: it is the fallback
        from edge_voice.engines.remote.fallback import FallbackGenerator
        from edge_voice.engines.remote.openai import OpenAiGenerator

        client = OpenAiGenerator(cfg.llm)
        remote = FallbackGenerator(client, llm, f"openai {client.url}")  # url: credentials redacted
        fallbacks.append(remote)
        llm = remote
    timed("llm_warm", lambda: llm.warm(prompt_prefix(cfg.llm)))
    return llm


def threads_for_free_cores(cfg: Config, free: int) -> Config:
    """LLM and Piper thread counts (fixed once loaded) capped at the cores other processes left free at
    start-up: a thread on a core another process holds stalls ggml's barriers and onnxruntime's pool. The
    ASR keeps ``asr.threads`` as its ceiling and follows the free cores per decode.

    The LLM is not niced (``llm.nice`` = 0): thread nice is global on Linux, so a llama.cpp niced to yield
    to our TTS yields as much to every neighbour at nice 0, and one of its two prompt-evaluation threads
    sharing that neighbour's core (CFS weight 110 against 1024: ~10 % of it) held every barrier — TTFT
    0.6 s idle, 8.3 s with one core busy on a quiet box. Prompt evaluation runs on the generation's threads
    (``llm.batch_threads`` is not used): llama.cpp fixes its thread counts when the server starts, so they
    cannot follow a neighbour that comes and goes, and un-niced the second thread still waited on the busy
    core (TTFT 150 ms idle, 560 ms busy) where one thread takes ~260 ms either way (design note 231). On a
    box where everything competes at one nice, one thread is a smaller share (note 117)."""
    llm, tts = cfg.llm, cfg.tts
    capped = replace(
        cfg,
        llm=replace(llm, threads=min(llm.threads, free), batch_threads=0, nice=0),
        tts=replace(tts, threads=min(tts.threads, free)),
    )
    log.info(
        "cpu: %d core(s) free of %d at start-up; llm %d/%d threads (not niced), tts %d",
        free,
        os.cpu_count() or 1,
        capped.llm.threads,
        capped.llm.batch_threads or capped.llm.threads,
        capped.tts.threads,
    )
    return capped


def load_engines(cfg: Config, progress: Callable[[str], None] | None = None) -> Engines:
    """Load, verify and warm every real engine (imports are lazy: only what the config chooses)."""
    say = progress or (lambda _m: None)
    times: dict[str, float] = {}
    fallbacks: list[ReportsFallback] = []

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        say(f"loading {name}…")
        t = time.perf_counter()
        try:
            out = fn()
        except ModelError as exc:
            raise StartupError(str(exc)) from None
        times[name] = round((time.perf_counter() - t) * 1000, 1)
        return out

    from edge_voice.core import chunker
    from edge_voice.engines import intents
    from edge_voice.engines.asr import local_transcriber
    from edge_voice.engines.tts import PhraseCache, PiperSynthesizer
    from edge_voice.listen.listener import Listener
    from edge_voice.listen.micro import wake_detector
    from edge_voice.listen.vad import SileroVad

    meter = None
    if cfg.service.adapt_to_load:
        from edge_voice.runtime.cpu import CpuMeter, measure_free_cores

        cfg = threads_for_free_cores(cfg, measure_free_cores())
        meter = CpuMeter().start()  # the ASR re-checks before every decode
    wake = timed("wake", lambda: wake_detector(cfg.wake))
    vad = timed("vad", lambda: SileroVad(cfg.vad))
    asr = timed("asr", lambda: local_transcriber(cfg, cores=meter))
    asr_local: object = asr
    if cfg.asr.backend == "wyoming":  # the local engine stays loaded and warm: it is the fallback
        from edge_voice.engines.remote.fallback import FallbackTranscriber
        from edge_voice.engines.remote.wyoming import WyomingTranscriber

        asr = FallbackTranscriber(WyomingTranscriber(cfg.asr), asr, f"wyoming {cfg.asr.uri}")
        fallbacks.append(asr)
        timed("asr_warm", asr.warm)  # a server that is down now: the device serves from the first turn
    llm = load_llm(cfg, timed, fallbacks)
    tts: Any
    tts_local: object = None
    phrase_cache: PhraseCache | None
    if cfg.tts.backend == "wyoming" and not cfg.tts.local_fallback:
        # Piper is never imported: the server's voice, resampled to a fixed output rate; silence (and an
        # engine.fallback event) while it is down; no phrase cache (the server's audio is not ours to keep)
        from edge_voice.engines.remote.fallback import FallbackSynthesizer, NoVoice
        from edge_voice.engines.remote.wyoming import WyomingSynthesizer

        rate = cfg.audio.output_rate_hz or REMOTE_ONLY_RATE_HZ
        tts = FallbackSynthesizer(WyomingSynthesizer(cfg.tts, rate), NoVoice(rate), f"wyoming {cfg.tts.uri}")
        fallbacks.append(tts)
        phrase_cache = None
    else:
        tts = tts_local = timed("tts", lambda: PiperSynthesizer(cfg.tts, cfg.models_path))
        phrase_cache = PhraseCache(tts)  # filled with the on-device voice, never through a remote server
    if cfg.tts.backend == "wyoming" and cfg.tts.local_fallback:
        # Piper stays loaded and warm: it is the fallback (and sets the rate)
        from edge_voice.engines.remote.fallback import FallbackSynthesizer
        from edge_voice.engines.remote.wyoming import WyomingSynthesizer

        remote_tts = WyomingSynthesizer(cfg.tts, tts.sample_rate)
        tts = FallbackSynthesizer(remote_tts, tts, f"wyoming {cfg.tts.uri}")
        fallbacks.append(tts)
    timed("tts_warm", tts.warm)
    skills = timed("skills", lambda: load_skills(cfg.skills.enabled, country=cfg.skills.country))
    sentences = timed("ha_sentences", lambda: ha_sentences(cfg.intents))
    matcher = (
        RuleIntentMatcher(cfg.intents, skills=skills, sentences=sentences, phonemes=phonetic.for_config(cfg))
        if cfg.intents.enabled
        else None
    )
    return Engines(
        wake=wake,
        vad=vad,
        asr=asr,
        llm=llm,
        tts=tts,
        intents=matcher,
        make_splitter=chunker.splitter_for(cfg.tts),
        make_listener=Listener,
        phrase_cache=phrase_cache,
        prefill=intents.confirmation_phrases(cfg.intents) if matcher is not None else (),
        clock_phrases=matcher.clock_phrases if matcher is not None else None,
        load_ms=times,
        fallbacks=fallbacks,
        skills=skills,
        interruptible=[e for e in (asr_local, tts_local) if isinstance(e, Interruptible)],
    )


def home_assistant_agent(cfg: Config, post: Callable[[Message], None]) -> Agent | None:
    """Home Assistant's conversation agent when ``intents.backend = "home_assistant"`` (else None), its
    failures and recoveries posted as ``engine.fallback`` (stage ``intent``)."""
    if cfg.intents.backend != "home_assistant" or not cfg.intents.enabled:
        return None
    from edge_voice.engines.remote.fallback import _Switch
    from edge_voice.engines.remote.home_assistant import HomeAssistantAgent

    client = HomeAssistantAgent(cfg.home_assistant)
    switch = _Switch("intent", client.backend, cfg.home_assistant.retry_after_s)
    switch.notify = post
    return Agent(client, switch)


class Daemon:
    """One running assistant: threads + orchestrator around a source and a sink."""

    def __init__(
        self,
        cfg: Config,
        engines: Engines,
        source: AudioSource,
        sink: AudioSink,
        sinks: list[EventSink],
        clock: InputClock,
        reopen_source: Callable[[], AudioSource] | None = None,
        on_intent: Callable[[Turn, IntentOutcome], None] | None = None,
        on_frame: Callable[[], None] | None = None,
        on_ready: Callable[[], None] | None = None,
        load_config: Callable[[], Config] | None = None,
        facts: Callable[[], str] | None = None,
        echo: EchoPath | None = None,
    ) -> None:
        self.cfg = cfg
        self.on_ready = on_ready
        self.engines = engines
        self.lingering: list[str] = []  # threads still running after the shutdown's join (shutdown.py)
        self.clock = clock
        self.sink = sink
        self.frames = FrameQueue(
            cfg.audio.capture_queue_frames if source.live else 2, drop_oldest=source.live
        )
        post: Callable[[Message], None] = self._post
        self.playback = PlaybackWorker(sink, post, cfg.audio.output_chunk_ms)
        self.playback.volume = cfg.audio.volume
        self.agent = home_assistant_agent(cfg, post)
        prefill = engines.prefill
        if self.agent is not None and cfg.intents.language == "en":  # HA's usual (English) replies, ahead
            from edge_voice.engines.remote.home_assistant import AGENT_PHRASES

            prefill = (*prefill, *AGENT_PHRASES)
        self.tts = TtsWorker(
            engines.tts,
            post,
            self.playback,
            engines.phrase_cache,
            prefill,
            lambda: self.orch.turn is None,
            engines.clock_phrases,
            fill_engine=getattr(engines.phrase_cache, "synth", None),  # the local voice (PhraseCache)
            max_reply_s=cfg.tts.max_reply_s,
        )
        self.llm = LlmWorker(
            engines.llm, post, self.tts, engines.make_splitter, cfg.llm.max_sentences, self.agent
        )
        # another language than English: HA's templates alone, ~5-25 ms a text here, matched on the ASR
        # thread as each transcript is made; the loop's match finds it in the matcher's memo
        # (the matcher of the moment: a reload replaces it; the language is a restart key)
        prepare = self._prepare if cfg.intents.language != "en" else None
        self.asr = AsrWorker(engines.asr, post, cfg.asr, prepare)  # a decode's retry: its time
        listener = engines.make_listener(cfg, engines.wake, engines.vad)
        self.echo = echo
        follow = getattr(listener, "follow_playback", None)  # the real Listener (fakes need not)
        if echo is not None and follow is not None:
            follow(echo.playing())
            near = getattr(listener, "follow_near", None)
            if near is not None:
                near(echo.near_levels())
        # the self-wake guard sits between the listener and the loop; echo status events go to the loop
        listen_post = echo.connect(post) if echo is not None else post
        self.listen = ListenThread(listener, self.frames, listen_post, on_frame)
        self.source_live = source.live
        self.capture = CaptureThread(
            source,
            self.frames,
            clock,
            on_failure=lambda m, r: post(SourceFailed(m, r)),
            on_end=lambda _n: None,
            on_recovered=lambda n: post(SourceRecovered(n)),
            reopen=reopen_source,
            frame_samples=cfg.audio.frame_samples,
        )
        self._user_on_intent = on_intent
        hooks = Hooks(
            on_intent=self._on_intent,
            on_tick=self._check_timers,
            on_config=self._on_config,
            on_turn_end=heap.trim,
            realtime=lambda on: clock.realtime.set() if on else clock.realtime.clear(),
            facts=facts,
            ground=engines.skills.facts if engines.skills is not None else None,
            load_config=load_config,
        )
        workers = Workers(self.asr, self.llm, self.tts, self.playback)
        self.orch = Orchestrator(
            cfg,
            listen=self.listen,
            workers=workers,
            intents=engines.intents,
            sinks=sinks,
            now_ns=time.monotonic_ns,
            hooks=hooks,
        )
        self.turn_loop = TurnLoop(self.orch)
        if self.agent is not None:
            self.orch.router.agent_ready = self.agent.switch.use_remote
        for engine in engines.fallbacks:  # remote engines report their local/remote switches to the loop
            engine.notify = post

    def _post(self, msg: Message) -> None:
        self.turn_loop.post(msg)

    def _on_intent(self, turn: Turn, outcome: IntentOutcome) -> None:
        slots = dict(outcome.slots)
        if outcome.name == "volume_set" and "level" in slots:
            self.playback.volume = max(0.0, min(1.0, int(slots["level"]) / 100))
        elif outcome.name in ("volume_up", "volume_down"):
            step = 0.1 if outcome.name == "volume_up" else -0.1
            self.playback.volume = max(0.0, min(1.0, self.playback.volume + step))
        if outcome.name in ("volume_set", "volume_up", "volume_down"):  # Home Assistant's volume follows
            self.orch.publish(ev.VolumeInfo(self.playback.volume), turn)
        if self._user_on_intent is not None:
            self._user_on_intent(turn, outcome)

    def _prepare(self, text: str) -> None:
        """The fast path's match of ``text`` ahead, on the ASR thread (another language than English)."""
        matcher = self.engines.intents
        if isinstance(matcher, RuleIntentMatcher):
            matcher.prepare(text)

    def _on_config(self, cfg: Config) -> None:
        """The live part of a reloaded config (orchestrator thread): devices, volume, log level."""
        self.cfg = cfg
        self.playback.volume = cfg.audio.volume
        logging.getLogger().setLevel(cfg.service.log_level.upper())
        old = self.engines.intents
        if cfg.intents.enabled:
            timers = old.timers if old is not None else None  # running timers survive a reload
            # HA's templates are rebuilt (~0.2 s) only when the devices changed
            same = old is not None and old.devices == cfg.intents.devices
            sentences = old.sentences if same and old is not None else ha_sentences(cfg.intents)
            self.engines.intents = RuleIntentMatcher(
                cfg.intents,
                timers=timers,
                skills=self.engines.skills,
                sentences=sentences,
                phonemes=phonetic.for_config(cfg),
            )
        else:
            self.engines.intents = None
        self.orch.router.intents = self.engines.intents

    def _check_timers(self) -> None:
        if self.engines.intents is None:
            return
        for timer in self.engines.intents.timers.due(time.monotonic()):
            self.orch.publish(ev.TimerFinishedInfo(timer.name, timer.duration_s))
            # it rings: the phrase over and over, until it ends or "stop" / the wake word / cancel ends it
            say(self.orch, " ".join([timer.done_phrase()] * self.cfg.conversation.timer_repeats), "timer")

    def stop(self) -> None:
        self.turn_loop.post(Shutdown("stop"))

    def reload(self) -> None:
        self.turn_loop.post(ReloadConfig())

    async def run_async(self) -> None:
        loop = asyncio.get_running_loop()
        self.turn_loop.loop = loop
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(RuntimeError, ValueError):  # not the main thread (tests)
                loop.add_signal_handler(sig, self.stop)
        with contextlib.suppress(RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGHUP, self.reload)
        for w in (self.playback, self.tts, self.llm, self.asr):
            w.start()
        # warm means warm: the fast-path confirmations are cached before the first frame is heard
        await asyncio.to_thread(self.tts.prefilled.wait, 60.0)
        if self.on_ready is not None:
            self.on_ready()
        self.listen.start()
        self.capture.start()
        if self.echo is not None and (text := self.echo.greeting(self.cfg)) is not None:
            self._post(SayCommand(text))  # the canceller learns the room on it (note 302)
        if self.source_live:  # a WAV read ahead at full speed must never run at realtime priority
            from edge_voice.runtime.cpu import realtime_thread

            for audio_thread in (self.capture, self.playback):
                how = realtime_thread(audio_thread.native_id or 0, self.cfg.audio.realtime_priority)
                log.info("%s thread: %s", audio_thread.name, how)
        try:
            await self.turn_loop.run()
        finally:
            self.capture.stop_event.set()
            self.listen.stop_event.set()
            for w in (self.asr, self.llm, self.tts, self.playback):
                w.stop()
            threads = (self.capture, self.listen, self.asr, self.llm, self.tts, self.playback)
            self.lingering = shutdown.stop_threads(threads, self.engines.interruptible)

    def run(self) -> None:
        asyncio.run(self.run_async())
