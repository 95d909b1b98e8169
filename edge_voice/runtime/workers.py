"""Engine threads. One engine, one thread; each takes jobs from a bounded queue and hands results to the
orchestrator's loop through ``post`` (thread-safe). Data flows LLM → TTS → playback directly, without a
hop through the loop, so nothing waits on the orchestrator; the loop is told about every step.

Cancellation overtakes data: a job carries its attempt's ``CancelToken``; a worker checks it before a job
and between chunks, and drops anything stale. Playback of an attempt waits on its ``gate`` — a
speculative reply is prepared in the end-of-speech silence and only heard once the endpoint is confirmed.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np

from edge_voice.audio.chimes import chime
from edge_voice.audio.resample import StreamResampler
from edge_voice.audio.sinks import AudioSink
from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import AsrConfig
from edge_voice.core.jobs import AsrJob, ChimeJob, Ctx, EndOfReply, LlmJob, PrimeJob, SpeakJob
from edge_voice.core.messages import (
    AgentFallback,
    AudioChunk,
    GenerationDone,
    Message,
    Pcm,
    PlaybackFinished,
    PlaybackStarted,
    SentenceReady,
    StageFailed,
    SynthesisDone,
    TextDelta,
    Transcript,
)
from edge_voice.core.reply_guard import MAX_SENTENCES, ReplyGuard
from edge_voice.core.vocabulary import ErrorCode, Stage
from edge_voice.engines.base import (
    Generator,
    PromptedTranscriber,
    RemoteError,
    RemoteTimeout,
    ReportsRetry,
    Stopped,
    Synthesizer,
    Transcriber,
)
from edge_voice.runtime.generation import SentenceSplitter, generate_sentences

log = logging.getLogger(__name__)

Post = Callable[[Message], None]


@dataclass(frozen=True, slots=True, eq=False)
class PlayChunk:
    ctx: Ctx
    chunk: AudioChunk


J = TypeVar("J")


class Worker(threading.Thread, Generic[J]):
    """A daemon thread draining a bounded queue. ``submit`` blocks (bounded) rather than dropping: these
    queues carry turn work, which is small and must not be lost; audio frames use FrameQueue instead."""

    def __init__(self, name: Stage, post: Post, maxsize: int) -> None:
        super().__init__(name=str(name), daemon=True)
        self.stage: Stage = name
        self.jobs: queue.Queue[J | None] = queue.Queue(maxsize)
        self.post = post
        self.busy_since_ns: int | None = None  # monotonic; for deadlines and hang detection
        self.busy_ctx: Ctx | None = None  # whose job is running (deadlines blame the right attempt)
        self.busy_extra_s = 0.0  # added to the stage deadline for this job (playback: its audio length)
        self.stopping = CancelToken()  # ``stop``: work of no turn (the TTS's phrase cache) ends

    def submit(self, job: J, timeout_s: float = 5.0) -> None:
        """From another worker thread: wait for room (these queues are never full in practice)."""
        self.jobs.put(job, timeout=timeout_s)

    def submit_nowait(self, job: J) -> bool:
        """From the orchestrator's loop, which must never block: False if the queue is full."""
        try:
            self.jobs.put_nowait(job)
        except queue.Full:
            return False
        return True

    def _fail(self, c: Ctx, stage: Stage, code: ErrorCode, message: str) -> None:
        if not c.cancel.cancelled:
            self.post(StageFailed(c.turn_id, stage, code, message, c.attempt))

    def stop(self) -> None:
        self.stopping.cancel("stop")
        with contextlib.suppress(queue.Full):
            self.jobs.put_nowait(None)

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self._run_one(job)

    def _run_one(self, job: J) -> None:
        self.busy_ctx = self.ctx_of(job)
        self.busy_since_ns = time.monotonic_ns()
        try:
            self.handle(job)
        except Exception as exc:  # a failing job ends its turn, never the thread
            log.exception("%s: job failed", self.name)
            if self.busy_ctx is not None:
                self._fail(self.busy_ctx, self.stage, ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}")
        finally:
            self.busy_since_ns = None
            self.busy_ctx = None
            self.busy_extra_s = 0.0

    def handle(self, job: J) -> None:
        raise NotImplementedError

    def ctx_of(self, job: J) -> Ctx | None:
        """The attempt a job works for (deadlines blame the right one); None for work of no turn."""
        raise NotImplementedError


class AsrWorker(Worker[AsrJob]):
    """``cfg``: the decode's limits. A decode's one retry (``AsrConfig.retry_limit_ms``) is added to this
    job's deadline; when the engine says the retry has started (``ReportsRetry``), the deadline is moved
    to count the retry's limit from that moment: the first pass may have ended well past its own limit
    (whisper.cpp checks the abort between graph nodes, seconds apart on a starved or emulated CPU), and
    that overrun must not eat the retry's time. ``cfg=None``: no retry time (tests). ``prepare(text)``: run
    on this thread with each transcript before it is posted (the fast path's match in another language
    than English, too slow for the loop: the loop's match then finds it done)."""

    def __init__(
        self,
        engine: Transcriber,
        post: Post,
        cfg: AsrConfig | None = None,
        prepare: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(Stage.ASR, post, maxsize=8)
        self.engine = engine
        self.cfg = cfg
        self.prepare = prepare
        if cfg is not None and isinstance(engine, ReportsRetry):
            engine.on_retry = self._retrying

    def ctx_of(self, job: AsrJob) -> Ctx | None:
        return job.ctx

    def handle(self, job: AsrJob) -> None:
        c = job.ctx
        if c.cancel.cancelled:
            return
        t = time.monotonic_ns()
        if self.cfg is not None:
            self.busy_extra_s = self.cfg.retry_limit_ms(len(job.audio) * 1000 // 16000) / 1000
        try:
            if job.prompt is not None and isinstance(self.engine, PromptedTranscriber):
                result = self.engine.transcribe_prompted(job.audio, c.cancel, job.prompt)
            else:
                result = self.engine.transcribe(job.audio, c.cancel)
        except Exception as exc:
            log.exception("turn=%d asr failed", c.turn_id)
            self._fail(c, Stage.ASR, ErrorCode.ASR_FAILED, str(exc))
            return
        ms = (time.monotonic_ns() - t) / 1e6
        if not c.cancel.cancelled:
            audio_ms = len(job.audio) * 1000 // 16000
            aborted = bool(result.aborted)  # time/token limit hit
            text = result.text.strip()
            if self.prepare is not None and text:
                try:
                    self.prepare(text)
                except Exception:  # the loop's own match will say it again, where it is handled
                    log.exception("turn=%d preparing the fast path's match failed", c.turn_id)
            self.post(Transcript(c.turn_id, c.attempt, text, audio_ms, ms, aborted))

    def _retrying(self, limit_ms: int) -> None:
        """On this thread, as the retry starts: the supervisor's ASR budget (``max_decode_ms`` + 2 s from
        the job's start) plus this extra ends ``limit_ms`` + 2 s after now."""
        since, cfg = self.busy_since_ns, self.cfg
        if since is None or cfg is None:
            return
        elapsed_s = (time.monotonic_ns() - since) / 1e9
        moved = elapsed_s - cfg.max_decode_ms / 1000 + limit_ms / 1000
        self.busy_extra_s = max(self.busy_extra_s, moved)


class LlmWorker(Worker[LlmJob | PrimeJob]):
    """Streams tokens, splits them into sentences, checks each (``ReplyGuard``) and hands it to TTS at
    once. ``max_sentences``: the answer ends after this many spoken sentences (0 = no limit)."""

    def __init__(
        self,
        engine: Generator,
        post: Post,
        tts: TtsWorker,
        make_splitter: Callable[[], SentenceSplitter],
        max_sentences: int = MAX_SENTENCES,
        agent: Agent | None = None,
    ) -> None:
        super().__init__(Stage.LLM, post, maxsize=4)
        self.engine = engine
        self.tts = tts
        self.make_splitter = make_splitter
        self.max_sentences = max_sentences
        self.agent = agent  # Home Assistant's conversation agent (intents.backend), with its cool-down

    def ctx_of(self, job: LlmJob | PrimeJob) -> Ctx | None:
        return job.ctx if isinstance(job, LlmJob) else None

    def handle(self, job: LlmJob | PrimeJob) -> None:
        if isinstance(job, PrimeJob):
            if self.jobs.empty():  # a turn's request already waiting needs the thread more
                self.engine.prime(job.messages)
            return
        c = job.ctx
        if c.cancel.cancelled:
            return
        if job.agent_fallback is not None and self.agent is not None:
            self._ask_agent(job, self.agent)
            return
        self._generate(job)

    def _ask_agent(self, job: LlmJob, agent: Agent) -> None:
        """A device command for Home Assistant: asked only once the attempt is committed (HA acts, so a
        speculation the user talks over must never reach it) — on the commit event, not the playback
        gate, which a continuation may hold. Its reply is spoken. If it failed, or did not understand,
        the fast path's confirmation is spoken and its intent applied (``AgentFallback``); only a
        failure keeps HA out for the switch's cool-down."""
        c = job.ctx
        committed = c.committed or c.gate
        while not committed.wait(0.05):
            if c.cancel.cancelled:
                return
        if c.cancel.cancelled:
            return
        try:
            reply = agent.client.ask(job.question, c.cancel)
        except RemoteError as exc:
            if c.cancel.cancelled:
                return
            agent.switch.failed(str(exc))
            self.post(AgentFallback(c.turn_id, c.attempt, publish=not isinstance(exc, RemoteTimeout)))
            self._speak_whole(c, job.agent_fallback or "")
            return
        agent.switch.succeeded()
        if not reply.understood:
            log.info("turn=%d home assistant did not understand; the fast path acts", c.turn_id)
            self.post(AgentFallback(c.turn_id, c.attempt))
            self._speak_whole(c, job.agent_fallback or "")
            return
        self._speak_whole(c, reply.speech)

    def _speak_whole(self, c: Ctx, text: str) -> None:
        """One finished reply (not streamed) through the usual progress messages."""
        if text:
            self.post(TextDelta(c.turn_id, c.attempt, text, first=True))
            self.post(SentenceReady(c.turn_id, c.attempt, 0, text))
            self.tts.submit(SpeakJob(c, 0, text))
        self.post(GenerationDone(c.turn_id, c.attempt, text, 1 if text else 0, "eos"))
        self.tts.submit(EndOfReply(c))

    def _generate(self, job: LlmJob) -> None:
        c = job.ctx
        pieces: list[str] = []
        index = 0

        def piece(text: str, first: bool) -> None:
            self.post(TextDelta(c.turn_id, c.attempt, text, first=first))
            pieces.append(text)

        def sentence(s: str) -> None:
            nonlocal index
            self.post(SentenceReady(c.turn_id, c.attempt, index, s))
            self.tts.submit(SpeakJob(c, index, s))
            index += 1

        stopped: Stopped
        guard = ReplyGuard(job.question, self.max_sentences)
        try:
            done = generate_sentences(
                self.engine, job.messages, c.cancel, self.make_splitter(), piece, sentence, guard
            )
            text, stopped = done.text, done.stopped  # text: what was spoken when the guard ended it
            if done.cut:
                log.info("turn=%d llm: answer ended by the guard (%s)", c.turn_id, done.cut)
        except Exception as exc:
            log.exception("turn=%d llm failed", c.turn_id)
            text, stopped = "".join(pieces), "error"
            self._fail(c, Stage.LLM, ErrorCode.LLM_FAILED, str(exc))
        self.post(GenerationDone(c.turn_id, c.attempt, text, len(pieces), stopped))
        self.tts.submit(EndOfReply(c))


@dataclass(frozen=True, slots=True)
class Agent:
    """Home Assistant's conversation agent and the switch that rests it after a failure."""

    client: AgentClient
    switch: AgentSwitch


class AgentClient(Protocol):
    def ask(self, text: str, cancel: CancelToken) -> AgentReplyLike: ...


class AgentReplyLike(Protocol):
    @property
    def speech(self) -> str: ...

    @property
    def understood(self) -> bool: ...


class AgentSwitch(Protocol):
    def use_remote(self) -> bool: ...

    def failed(self, reason: str) -> None: ...

    def succeeded(self) -> None: ...


class PhraseStore(Protocol):
    def get(self, text: str) -> Pcm | None: ...

    def put(self, text: str, pcm: Pcm) -> None: ...


def _first_clause(text: str) -> tuple[str, str]:
    """("Turning on the hallway light", "and the fan.") for "Turning on the hallway light and the fan.":
    the sentence cut at its first ", " or " and " (the rest keeps its "and"); ("", "") if it has neither."""
    cuts = [(i, sep) for sep in (", ", " and ") if (i := text.find(sep)) > 0]
    if not cuts:
        return "", ""
    i, sep = min(cuts)
    return text[:i], text[i + len(sep) :] if sep == ", " else text[i + 1 :]


class TtsWorker(Worker[SpeakJob | EndOfReply]):
    """Synthesises sentence by sentence; known phrases (fast-path confirmations) come from the cache at
    once. The cache is filled on this thread, one phrase at a time while no reply is waiting, so the
    engine stays single-threaded and start-up does not wait for it. ``clock_phrases`` (the time and date
    replies of this minute and the next) are kept synthesised the same way, beside the cache, so the
    minute-by-minute phrases never evict a confirmation. Both are synthesised by ``fill_engine`` (the
    on-device voice when ``engine`` is a remote one: start-up never waits on, or stores, a server's audio).

    One reply (a turn's attempt: an answer, a say/announce) speaks at most ``max_reply_s`` of audio: the
    chunk that reaches it is cut there and the rest of the reply is not synthesised."""

    IDLE_POLL_S = 0.5  # how often an idle worker checks whether the clock phrases changed

    def __init__(
        self,
        engine: Synthesizer,
        post: Post,
        playback: PlaybackWorker,
        cache: PhraseStore | None = None,
        prefill: Sequence[str] = (),
        may_prefill: Callable[[], bool] = lambda: True,
        clock_phrases: Callable[[], Sequence[str]] | None = None,
        fill_engine: Synthesizer | None = None,
        max_reply_s: float = 30.0,
    ) -> None:
        super().__init__(Stage.TTS, post, maxsize=64)
        self.engine = engine
        self.fill_engine = fill_engine or engine
        self.max_reply_s = max_reply_s
        self._reply: Ctx | None = None  # the reply whose audio is being counted
        self._reply_left = 0  # samples it may still speak
        self.playback = playback
        self.cache = cache
        self._prefill = list(prefill) if cache is not None else []
        self._may_prefill = may_prefill  # e.g. "no turn active": never compete with a live turn for CPU
        self._clock_phrases = clock_phrases
        self._clock_pcm: dict[str, Pcm] = {}  # only ever touched on this thread
        self._clock_failed: set[str] = set()
        self.prefilled = threading.Event()  # every known phrase is cached (part of "warm")
        if not self._prefill:
            self.prefilled.set()

    def run(self) -> None:
        while True:
            try:
                job = self.jobs.get(timeout=self._idle_wait())
            except queue.Empty:
                if self._may_prefill() and not self.stopping.cancelled:
                    self._idle_work()
                continue
            if job is None:
                return
            self._run_one(job)

    def ctx_of(self, job: SpeakJob | EndOfReply) -> Ctx | None:
        return job.ctx

    def _idle_wait(self) -> float | None:
        if self._prefill:
            return 0.005 if self._may_prefill() else 0.05
        return self.IDLE_POLL_S if self._clock_phrases is not None else None

    def _idle_work(self) -> None:
        """One synthesis at most, so a job that arrives waits for one phrase, not for all of them."""
        if self._prefill and self.cache is not None:
            text = self._prefill.pop(0)
            if self.cache.get(text) is None:
                pcm = self._synthesize_all(text)
                if pcm is not None:
                    self.cache.put(text, pcm)
            if not self._prefill:
                self.prefilled.set()
            return
        if self._clock_phrases is None:
            return
        wanted = list(dict.fromkeys(self._clock_phrases()))
        self._clock_pcm = {t: p for t, p in self._clock_pcm.items() if t in wanted}
        self._clock_failed &= set(wanted)  # a phrase that failed is not retried every half second
        missing = [t for t in wanted if t not in self._clock_pcm and t not in self._clock_failed]
        if missing:
            pcm = self._synthesize_all(missing[0])
            if pcm is None:
                self._clock_failed.add(missing[0])
            else:
                self._clock_pcm[missing[0]] = pcm

    def _synthesize_all(self, text: str) -> Pcm | None:
        """``text`` for the cache, or None. A shutdown (``stop``) ends it between sentences, or within one
        (``Interruptible``); a phrase cut short is never cached."""
        try:
            parts = list(self.fill_engine.synthesize(text, self.stopping))
        except Exception:
            if not self.stopping.cancelled:
                log.exception("tts: could not cache %r", text)
            return None
        if self.stopping.cancelled:
            return None
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def _cached(self, text: str) -> Pcm | None:
        pcm = self._clock_pcm.get(text)
        if pcm is None and self.cache is not None:
            pcm = self.cache.get(text)
        return pcm

    def handle(self, job: SpeakJob | EndOfReply) -> None:
        c = job.ctx
        if isinstance(job, EndOfReply):
            self.playback.submit(job)
            if not c.cancel.cancelled:
                self.post(SynthesisDone(c.turn_id, c.attempt))
            return
        if c.cancel.cancelled:
            return
        rate = self.engine.sample_rate
        if self._reply is not c:
            self._reply, self._reply_left = c, round(self.max_reply_s * rate)
        if self._reply_left <= 0:
            log.debug("turn=%d tts: reply past tts.max_reply_s; %r not spoken", c.turn_id, job.text[:40])
            return
        try:
            last: Pcm | None = None
            for pcm, more in self._chunks(job.text, c.cancel):  # hold one back so the last can be flagged
                if c.cancel.cancelled:
                    return
                if last is not None:
                    self._emit(c, job, last, rate, False)
                    last = None
                if len(pcm) >= self._reply_left:  # the reply's audio budget ends inside this chunk
                    log.warning(
                        "turn=%d tts: reply cut at tts.max_reply_s = %.0f s", c.turn_id, self.max_reply_s
                    )
                    last, self._reply_left = pcm[: self._reply_left], 0
                    break
                self._reply_left -= len(pcm)
                if more:  # surely not the last: played now, while the rest is synthesised
                    self._emit(c, job, pcm, rate, False)
                else:
                    last = pcm
            if last is not None and not c.cancel.cancelled:
                self._emit(c, job, last, rate, True)
        except Exception as exc:
            log.exception("turn=%d tts failed", c.turn_id)
            self._fail(c, Stage.TTS, ErrorCode.TTS_FAILED, str(exc))

    def _chunks(self, text: str, cancel: CancelToken) -> Iterator[tuple[Pcm, bool]]:
        """The sentence's audio as (chunk, more surely follows). From the cache when it is there; a
        sentence that starts with a cached phrase ("Turning on the hallway light" + "and the fan.", a
        command naming several devices) plays that phrase at once, and only the rest is synthesised
        (or is cached too: "and turning off the fan." is "Turning off the fan.")."""
        whole = self._cached(text)
        if whole is not None:
            yield whole, False
            return
        head, rest = _first_clause(text)
        first = self._cached(head + ".") if head else None
        if first is None:
            yield from ((pcm, False) for pcm in self.engine.synthesize(text, cancel))
            return
        yield first, True
        tail = rest.removeprefix("and ")
        again = self._cached(tail[:1].upper() + tail[1:]) if tail else None
        if again is not None:
            yield again, False
        else:
            yield from ((pcm, False) for pcm in self.engine.synthesize(rest, cancel))

    def _emit(self, c: Ctx, job: SpeakJob, pcm: Pcm, rate: int, last: bool) -> None:
        chunk = AudioChunk(c.turn_id, c.attempt, job.index, pcm, rate, last, job.text)
        self.post(chunk)
        self.playback.submit(PlayChunk(c, chunk))


class PlaybackWorker(Worker[PlayChunk | EndOfReply | ChimeJob]):
    """Writes reply audio in ``chunk_ms`` slices, checking the cancel token between slices, so a
    barge-in is heard within one slice. Tracks which words were actually heard. A reply at another rate
    than the sink's goes through one ``StreamResampler`` from its first chunk to its end, so sentence
    joins are as smooth as inside a sentence; the held-back tail is played at the reply's end. Chimes
    are played between replies, never inside one."""

    def __init__(self, sink: AudioSink, post: Post, chunk_ms: int) -> None:
        super().__init__(Stage.PLAYBACK, post, maxsize=256)
        self.sink = sink
        self.chunk_ms = chunk_ms
        self.volume = 1.0
        self._playing: Ctx | None = None
        self._heard: list[str] = []
        self._failed: Ctx | None = None
        self._rs: StreamResampler | None = None  # reset at every reply: one stream per reply
        self._announce = False  # PlaybackStarted is still due for the playing reply
        self._pos = 0  # the playing reply's start on the input clock

    def ctx_of(self, job: PlayChunk | EndOfReply | ChimeJob) -> Ctx | None:
        return None if isinstance(job, ChimeJob) else job.ctx

    def handle(self, job: PlayChunk | EndOfReply | ChimeJob) -> None:
        if isinstance(job, ChimeJob):
            self._chime(job.kind)
            return
        c = job.ctx
        if c is self._failed:
            return
        if c.cancel.cancelled:
            self._finish(c, interrupted=True)
            return
        while not c.gate.wait(0.01):  # speculative reply: hold until the endpoint is confirmed
            if c.cancel.cancelled:
                return
        try:
            if isinstance(job, EndOfReply):
                self._play_tail(c)
            else:
                self._play(c, job.chunk)
        except Exception as exc:
            log.exception("turn=%d playback failed", c.turn_id)
            self._failed = c
            self._playing = None
            self._fail(c, Stage.PLAYBACK, ErrorCode.SINK_FAILED, str(exc))
            return
        if isinstance(job, EndOfReply):
            self._finish(c, interrupted=c.cancel.cancelled)

    def _chime(self, kind: str) -> None:
        if self._playing is not None:
            self._finish(self._playing, interrupted=True)  # a new turn opened: the old reply is over
        pcm = chime(kind, self.sink.rate_hz)
        if self.volume != 1.0:
            pcm = (pcm.astype(np.float32) * self.volume).astype(np.int16)
        try:
            self.sink.begin(chime=True)
            step = max(1, self.sink.rate_hz * self.chunk_ms // 1000)
            for i in range(0, len(pcm), step):
                self.sink.write(pcm[i : i + step])
            self.sink.end(False)
        except Exception:  # a chime that cannot play never fails a turn (the reply reports the sink)
            log.exception("playback: chime failed")

    def _play(self, c: Ctx, chunk: AudioChunk) -> None:
        if self._playing is not None and self._playing is not c:  # the old reply never got its EndOfReply
            self._finish(self._playing, interrupted=True)
        if self._playing is not c:
            self._playing, self._heard = c, []
            self._pos = self.sink.begin()
            self._announce = True
            if self._rs is not None:
                self._rs.reset()  # an interrupted reply's held-back samples must not open this one
        pcm = chunk.samples
        if chunk.rate_hz != self.sink.rate_hz:
            rs = self._rs
            if rs is None or (rs.src_hz, rs.dst_hz) != (chunk.rate_hz, self.sink.rate_hz):
                rs = self._rs = StreamResampler(chunk.rate_hz, self.sink.rate_hz)
            pcm = rs.push(pcm)
        played = self._write(c, pcm)
        words = chunk.text.split()
        if played >= len(pcm) or not len(pcm):
            if chunk.last_of_sentence:
                self._heard.append(chunk.text)
        elif played:  # cut mid-sentence: keep the words heard so far (proportional estimate)
            self._heard.append(" ".join(words[: math.ceil(len(words) * played / len(pcm))]))
        if c.cancel.cancelled:
            self._finish(c, interrupted=True)

    def _play_tail(self, c: Ctx) -> None:
        """The resampler's held-back end of the reply (a few ms, usually the sentence's trailing pause)."""
        if self._playing is c and self._rs is not None:
            self._write(c, self._rs.flush())

    def _write(self, c: Ctx, pcm: Pcm) -> int:
        """``pcm`` in ``chunk_ms`` slices until cancelled; returns the samples written."""
        if self.volume != 1.0:
            pcm = np.clip(pcm.astype(np.float32) * self.volume, -32768, 32767).astype(np.int16)
        step = max(1, self.sink.rate_hz * self.chunk_ms // 1000)
        self.busy_extra_s = len(pcm) / self.sink.rate_hz  # a long sentence is not a hung device
        played = 0
        for i in range(0, len(pcm), step):
            if c.cancel.cancelled:
                break
            self.sink.write(pcm[i : i + step])
            if self._announce:  # at the reply's first sample, which a resampler may hold back a chunk
                self._announce = False
                self.post(PlaybackStarted(c.turn_id, time.monotonic_ns(), self._pos))
            played = min(len(pcm), i + step)
        return played

    def _finish(self, c: Ctx, interrupted: bool) -> None:
        if self._playing is not c:
            return
        self.sink.end(interrupted)
        self._playing = None
        self.post(PlaybackFinished(c.turn_id, " ".join(self._heard).strip(), interrupted))
        self._heard = []
