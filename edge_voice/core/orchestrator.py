"""The orchestrator: the only owner of turn state.

It runs on one asyncio loop and never runs inference. Threads (capture, listen, ASR, LLM, TTS, playback)
post messages into its inbox; it dispatches them with ``match`` + ``assert_never``.

Speculation: when the user goes quiet for ``endpoint.speculative_silence_ms`` the orchestrator starts an
*attempt* — ASR, then intent or LLM, then TTS — whose playback is held behind a gate. If the user speaks
again the attempt is cancelled; when the endpoint is confirmed the gate opens and the reply is heard at
once. A speculative transcript that is a complete fast-path command commits the turn as soon as the
pause has lasted ``endpoint.commit_silence_ms`` (``intents.early_commit``). Events of an uncommitted
attempt are held and published only on commit, so subscribers see exactly one consistent turn.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, assert_never

from edge_voice.audio.sources import InputClock
from edge_voice.core.config import Config
from edge_voice.core.messages import (
    SAMPLE_RATE,
    AudioChunk,
    BadCommand,
    CancelCommand,
    ChatMessage,
    EngineFallback,
    Event,
    GenerationDone,
    IntentMatched,
    ListenCommand,
    Message,
    MuteCommand,
    NoSpeech,
    PlaybackFinished,
    PlaybackStarted,
    ReloadConfig,
    SayCommand,
    SentenceReady,
    Shutdown,
    SourceEnded,
    SourceFailed,
    SourceRecovered,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    StageFailed,
    SynthesisDone,
    TextDelta,
    Transcript,
    VolumeCommand,
    WakeDetected,
)
from edge_voice.core.turns import Attempt, Trigger, Turn, next_turn_id
from edge_voice.engines.chunker import through_last_sentence
from edge_voice.runtime import heap
from edge_voice.runtime.workers import (
    AsrJob,
    AsrWorker,
    Ctx,
    EndOfReply,
    LlmJob,
    LlmWorker,
    PlaybackWorker,
    PrimeJob,
    SpeakJob,
    TtsWorker,
    Worker,
)

log = logging.getLogger(__name__)

State = Literal["idle", "listening", "thinking", "speaking", "muted", "error"]


class EventSink(Protocol):
    """Receives every outward event and state change (JSONL writer, MQTT bridge, LEDs, tests)."""

    def emit(self, event: Event) -> None: ...

    def state(self, state: str) -> None: ...


class ListenControl(Protocol):
    """The orchestrator's handle on the listen thread (requests run in that thread, in order)."""

    def open(self, timeout_ms: int | None = None) -> None: ...

    def close(self) -> None: ...


class IntentOutcome(Protocol):
    """A fast-path match (engines/intents.IntentResult). ``reply`` "" = say nothing (stop)."""

    @property
    def name(self) -> str: ...

    @property
    def slots(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def reply(self) -> str: ...


class IntentMatcher(Protocol):
    def match(self, text: str) -> IntentOutcome | None:
        """Pure: safe on a speculative transcript."""
        ...

    def apply(self, result: Any) -> None:
        """Commit side effects (timers) once the turn is final. ``result``: what ``match`` returned."""
        ...


@dataclass(slots=True)
class _History:
    """Conversation memory for the LLM: only what was actually heard is kept.

    Prefix-stable, because llama.cpp reuses the KV cache of the longest common prompt prefix: the user
    message is stored exactly as it was sent (facts included), and when memory is full it is cut back to
    the last exchange in one step rather than sliding (a slide changes the prefix on every turn: measured
    TTFT grew from 0.23 to 1.0 s over five questions)."""

    max_turns: int
    window_s: float
    items: deque[tuple[float, str, str]] = field(default_factory=deque)

    def messages(self, now: float) -> list[ChatMessage]:
        while self.items and now - self.items[-1][0] > self.window_s:
            self.items.clear()
        out: list[ChatMessage] = []
        for _, user, assistant in list(self.items)[-self.max_turns :] if self.max_turns else []:
            out += [ChatMessage("user", user), ChatMessage("assistant", assistant)]
        return out

    def add(self, now: float, user: str, assistant: str) -> None:
        if self.max_turns and user and assistant:
            self.items.append((now, user, assistant))
            if len(self.items) > self.max_turns:
                self.items = deque([self.items[-1]])


class Orchestrator:
    def __init__(
        self,
        cfg: Config,
        *,
        listen: ListenControl,
        asr: AsrWorker,
        llm: LlmWorker,
        tts: TtsWorker,
        playback: PlaybackWorker,
        intents: IntentMatcher | None,
        sinks: list[EventSink],
        clock: InputClock,
        on_intent: Callable[[Turn, IntentOutcome], None] | None = None,
        facts: Callable[[], str] | None = None,
        load_config: Callable[[], Config] | None = None,
    ) -> None:
        self.cfg = cfg
        self.load_config = load_config  # SIGHUP: re-read the same file + env (raises ConfigError)
        self.exit_code = 0
        self.listen = listen
        self.asr, self.llm, self.tts, self.playback = asr, llm, tts, playback
        self.intents = intents
        self.sinks = sinks
        self.clock = clock
        self.on_intent = on_intent
        self.facts = facts or _default_facts
        self.inbox: asyncio.Queue[Message] = asyncio.Queue()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.state: State = "idle"
        self.turn: Turn | None = None
        self.muted = False
        self.history = _History(cfg.llm.history_turns, cfg.llm.history_window_s)
        self.last_reply = ""
        self.source_ended = False
        self._stop = asyncio.Event()
        self._chunks_seen: dict[tuple[int, int], int] = {}
        self._interrupted: dict[int, Turn] = {}  # cancelled mid-reply: waiting for what was heard

    # ------------------------------------------------------------------ plumbing

    def post(self, msg: Message) -> None:
        """Thread-safe: any thread hands a message to the loop."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self.inbox.put_nowait, msg)

    def emit(self, type_: str, turn: Turn | None, **data: Any) -> None:
        ev = Event(type_, turn.id if turn else None, time.monotonic_ns(), data)
        for s in self.sinks:
            try:
                s.emit(ev)
            except Exception:  # an outward sink must never take the daemon down
                log.exception("event sink failed for %s", type_)

    def _emit_for(self, attempt: Attempt | None, type_: str, **data: Any) -> None:
        """Events of a speculative attempt are held until it is committed."""
        if attempt is not None and not attempt.committed:
            attempt.pending_events.append((type_, data))
        else:
            self.emit(type_, self.turn, **data)

    def set_state(self, state: State) -> None:
        if state == self.state:
            return
        self.state = state
        if self.turn is not None and state == "listening":
            self.turn.mark("wake_ack")
        for s in self.sinks:
            try:
                s.state(state)
            except Exception:
                log.exception("state sink failed")

    async def run(self) -> None:
        """Dispatch until a Shutdown command (or the end of a file source once the last turn is done)."""
        self.loop = asyncio.get_running_loop()
        timer_task = asyncio.create_task(self._tick())
        try:
            while not self._stop.is_set():
                try:
                    msg = await asyncio.wait_for(self.inbox.get(), 0.2)
                except TimeoutError:
                    continue  # re-check _stop (it may be set from the housekeeping tick)
                try:
                    self.handle(msg)
                except Exception as exc:  # a bug in one handler ends the turn, not the daemon
                    log.exception("orchestrator failed on %s", type(msg).__name__)
                    self.emit("error", self.turn, stage="orchestrator", code="internal", message=str(exc))
                    self._end_turn("error")
            await self._drain_interrupted()
        finally:
            timer_task.cancel()

    async def _drain_interrupted(self, timeout_s: float = 1.0) -> None:
        """On shutdown, a reply cut off mid-word still gets its ``response.done`` ("interrupted", with the
        heard text): the playback thread stops within one chunk, so this waits milliseconds, not seconds."""
        end = time.monotonic() + timeout_s
        while self._interrupted and time.monotonic() < end:
            try:
                msg = await asyncio.wait_for(self.inbox.get(), max(0.01, end - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(msg, PlaybackFinished):
                self._on_played(msg)
        for turn in list(self._interrupted.values()):  # the playback thread never answered
            self._emit_done(turn, "interrupted")
        self._interrupted.clear()

    async def _tick(self) -> None:
        """Housekeeping every 100 ms: timers due, stage deadlines."""
        while True:
            await asyncio.sleep(0.1)
            try:
                self._check_deadlines()
                self.on_tick()
            except Exception:  # housekeeping must outlive any one failure
                log.exception("orchestrator housekeeping failed")

    def on_tick(self) -> None:
        """Hook for timers (the daemon installs one)."""

    def on_config(self, cfg: Config) -> None:
        """Hook: a reloaded config's live part was applied (the daemon rebuilds intents, volume, logging)."""

    # ------------------------------------------------------------------ dispatch

    def handle(self, msg: Message) -> None:
        match msg:
            case WakeDetected():
                self._on_wake(msg)
            case SpeechStarted():
                self._on_speech_started(msg)
            case SpeechPaused():
                self._on_paused(msg)
            case SpeechResumed():
                self._on_resumed(msg)
            case SpeechStopped():
                self._on_stopped(msg)
            case NoSpeech():
                if self.turn is not None and self.state == "listening" and self.turn.committed is None:
                    self.emit("turn.cancelled", self.turn, reason="no_speech")
                    self._end_turn("no_speech", published=True)
            case Transcript():
                self._on_transcript(msg)
            case IntentMatched():
                pass  # intents are matched on the loop itself (see _route)
            case TextDelta():
                a = self._attempt(msg.turn_id, msg.attempt)
                if a is not None:
                    if msg.first:
                        a.marks.setdefault("llm_first_token", time.monotonic_ns())
                    self._emit_for(a, "response.text.delta", delta=msg.text)
            case SentenceReady():
                a = self._attempt(msg.turn_id, msg.attempt)
                if a is not None:
                    a.marks.setdefault("first_sentence", time.monotonic_ns())
            case GenerationDone():
                a = self._attempt(msg.turn_id, msg.attempt)
                if a is not None and self.turn is not None:
                    a.marks["llm_done"] = time.monotonic_ns()
                    a.generated, a.stopped = msg.text, msg.stopped
                    self.turn.reply_text = msg.text.strip()
            case AudioChunk():
                a = self._attempt(msg.turn_id, msg.attempt)
                if a is not None:
                    a.marks.setdefault("first_audio", time.monotonic_ns())
                    key = (msg.turn_id, msg.attempt)
                    self._chunks_seen[key] = self._chunks_seen.get(key, 0) + 1
            case SynthesisDone():
                a = self._attempt(msg.turn_id, msg.attempt)
                if a is not None:
                    a.marks["synth_done"] = time.monotonic_ns()
                    self._end_if_silent(a)
            case PlaybackStarted():
                if self.turn is not None and self.turn.id == msg.turn_id:
                    self.turn.mark("playback_started", msg.written_ns)
                    self.emit(
                        "response.audio.started",
                        self.turn,
                        output_sample=msg.output_sample,
                        output_ms=msg.output_sample * 1000 // SAMPLE_RATE,
                    )
                    self.set_state("speaking")
            case PlaybackFinished():
                self._on_played(msg)
            case StageFailed():
                self._on_failed(msg)
            case ListenCommand():
                self._on_listen(msg.source)
            case CancelCommand():
                self.cancel(msg.source)
            case SayCommand():
                self.say(msg.text, trigger="mqtt")
            case MuteCommand():
                self._on_mute(msg.on)
            case VolumeCommand():
                self.playback.volume = max(0.0, min(1.0, msg.level))
                self.emit("volume.changed", None, level=self.playback.volume)
            case BadCommand():
                self.emit(
                    "error",
                    self.turn,
                    stage="command",
                    code="bad_command",
                    command=msg.name,
                    message=msg.message,
                )
            case EngineFallback():
                self.emit(
                    "engine.fallback",
                    self.turn,
                    stage=msg.stage,
                    backend=msg.backend,
                    reason=msg.reason,
                    using=msg.using,
                )
            case ReloadConfig():
                self._reload()
            case Shutdown():
                self.cancel("shutdown")
                self._stop.set()
            case SourceFailed():
                self.emit(
                    "error",
                    self.turn,
                    stage="audio",
                    code="source_failed",
                    message=msg.message,
                    recoverable=msg.recoverable,
                )
                if self.turn is not None:
                    self._cancel_turn("audio_failed")
                self.set_state("error")
                if not msg.recoverable:
                    self._stop.set()
            case SourceRecovered():
                self.emit("audio.recovered", None, at_sample=msg.at_sample)
                if self.turn is None:
                    self.set_state("muted" if self.muted else "idle")
            case SourceEnded():
                self.source_ended = True
                if self.turn is not None and self.turn.committed is None:
                    self._cancel_turn("source_ended")  # no more audio will come: nothing to listen to
                if self.turn is None:
                    self._stop.set()
            case _:
                assert_never(msg)

    # ------------------------------------------------------------------ listening

    def _start_turn(self, trigger: Trigger) -> Turn:
        if self.turn is not None:
            # a wake word opened the listener for the new turn itself: closing it would deafen the turn
            self._cancel_turn(
                "barge_in" if trigger in ("wake", "button") else "superseded",
                close_listener=trigger != "wake",
            )
        self.turn = Turn(next_turn_id(), trigger)
        self.clock.realtime.set()
        return self.turn

    def _prime(self) -> None:
        """While the user speaks, the LLM evaluates the prompt up to where the words will go (history,
        facts): after the endpoint only the transcript is left to evaluate. Skipped if the queue is full.
        Not cancellable, and it needs none: ~30 tokens, done long before the user stops speaking."""
        if self.cfg.llm.prime:
            _, messages = self._prompt("")
            self.llm.submit_nowait(PrimeJob(messages))

    def _on_wake(self, msg: WakeDetected) -> None:
        if self.muted:
            self.listen.close()  # the listener opened itself on the wake word
            return
        if (
            self.turn is not None
            and not self.cfg.conversation.barge_in
            and self.state in ("thinking", "speaking")
        ):
            self.listen.close()  # the listener opened itself on the wake word: not this time
            return
        turn = self._start_turn("wake")
        self._prime()
        turn.wake_word = msg.word
        turn.mark("wake", msg.captured_ns)
        self.emit(
            "wake.detected",
            turn,
            word=msg.word,
            score=round(msg.score, 3),
            at_sample=msg.at_sample,
            at_ms=msg.at_sample * 1000 // SAMPLE_RATE,
        )
        self.set_state("listening")

    def _on_listen(self, source: str) -> None:
        if self.muted:
            self.emit("error", None, stage="command", code="muted", message="listen ignored while muted")
            return
        self._start_turn("button" if source == "button" else "mqtt")
        self._prime()
        self.listen.open()
        self.set_state("listening")

    def _on_speech_started(self, msg: SpeechStarted) -> None:
        if self.turn is not None and self.turn.committed is not None:
            return  # a reply is under way: only the wake word (or button) interrupts it
        if self.turn is None:
            if self.muted:
                return
            self._start_turn("follow_up")
            self._prime()
            self.set_state("listening")
        assert self.turn is not None
        self.turn.mark("speech_started", msg.captured_ns)
        self.emit(
            "input_audio.speech_started",
            self.turn,
            at_sample=msg.at_sample,
            audio_start_ms=msg.at_sample * 1000 // SAMPLE_RATE,
        )

    def _new_attempt(self, last_voiced: int) -> Attempt:
        assert self.turn is not None
        a = Attempt(len(self.turn.attempts) + 1, last_voiced)
        self.turn.attempts.append(a)
        return a

    def _ctx(self, a: Attempt) -> Ctx:
        assert self.turn is not None
        return Ctx(self.turn.id, a.number, a.cancel, a.gate)

    def _on_paused(self, msg: SpeechPaused) -> None:
        if (
            self.turn is None
            or self.turn.committed is not None
            or self.cfg.endpoint.speculative_silence_ms == 0
        ):
            return
        cur = self.turn.current
        if cur is not None and not cur.cancel.cancelled and cur.last_voiced_sample == msg.last_voiced_sample:
            if msg.settled and not cur.settled:
                cur.settled = True
                if cur.intent is not None and self.cfg.intents.early_commit:
                    self._commit(cur, early=True)  # its transcript came before the pause settled
            return
        a = self._new_attempt(msg.last_voiced_sample)
        a.settled = msg.settled
        lag_ns = (msg.at_sample - msg.last_voiced_sample) * 1_000_000_000 // SAMPLE_RATE
        a.marks["t0"] = msg.captured_ns - lag_ns
        a.marks["asr_start"] = time.monotonic_ns()
        self._hand(self.asr, AsrJob(self._ctx(a), msg.audio))

    def _on_resumed(self, msg: SpeechResumed) -> None:
        if self.turn is None or self.turn.committed is not None:
            return
        cur = self.turn.current
        if cur is not None and not cur.committed:
            cur.cancel.cancel("speech_resumed")
            log.debug("turn=%d speculative attempt %d dropped", self.turn.id, cur.number)

    def _on_stopped(self, msg: SpeechStopped) -> None:
        turn = self.turn
        if turn is None or turn.committed is not None:
            return
        turn.t0_ns = msg.voiced_captured_ns
        self.emit(
            "input_audio.speech_stopped",
            turn,
            at_sample=msg.at_sample,
            last_voiced_sample=msg.last_voiced_sample,
            reason=msg.reason,
            audio_end_ms=msg.last_voiced_sample * 1000 // SAMPLE_RATE,
            duration_ms=(msg.last_voiced_sample - msg.speech_start_sample) * 1000 // SAMPLE_RATE,
        )
        cur = turn.current
        if cur is not None and not cur.cancel.cancelled and cur.last_voiced_sample == msg.last_voiced_sample:
            turn.speculative_used = True
            self._commit(cur)
            return
        if cur is not None:
            cur.cancel.cancel("superseded")
        a = self._new_attempt(msg.last_voiced_sample)
        a.marks["asr_start"] = time.monotonic_ns()
        self._commit(a)
        self._hand(self.asr, AsrJob(self._ctx(a), msg.audio))

    def _commit(self, a: Attempt, early: bool = False) -> None:
        turn = self.turn
        assert turn is not None
        a.committed = True
        a.gate.set()
        turn.mark("committed")
        if turn.t0_ns is None:
            turn.t0_ns = a.marks.get("t0")
        self.listen.close()
        if early:
            self.emit(
                "input_audio.speech_stopped",
                turn,
                last_voiced_sample=a.last_voiced_sample,
                reason="early_commit",
                audio_end_ms=a.last_voiced_sample * 1000 // SAMPLE_RATE,
            )
        if early or "t0" in a.marks:
            turn.speculative_used = True  # this attempt began in the end-of-speech silence
        self.set_state("thinking")
        pending, a.pending_events = a.pending_events, []
        # order: transcript, then intent/response.started, then the reply's held deltas
        for type_, data in pending:
            if type_ == "transcript.final":
                self.emit(type_, turn, **data)
        if a.transcript is not None:
            self._apply_route(a)
        for type_, data in pending:
            if type_ != "transcript.final":
                self.emit(type_, turn, **data)
        if a.transcript == "":
            self._end_turn("no_transcript")
            return
        self._end_if_silent(a)

    # ------------------------------------------------------------------ answering

    def _end_if_silent(self, a: Attempt) -> None:
        """A committed attempt whose synthesis finished without any audio (stop intent, empty
        generation) ends its turn here: no PlaybackFinished will come."""
        if self.turn is None or not a.committed or "synth_done" not in a.marks:
            return
        if not self._chunks_seen.get((self.turn.id, a.number)):
            self._end_turn("done" if self.turn.route == "intent" else "no_reply")

    def _hand(self, worker: Worker[Any], job: Any) -> None:
        """Give a worker a job without ever blocking the loop; a full queue fails the turn (bounded)."""
        if not worker.submit_nowait(job):
            c: Ctx = job.ctx
            self.post(
                StageFailed(c.turn_id, worker.stage, "overloaded", f"{worker.stage} queue full", c.attempt)
            )

    def _attempt(self, turn_id: int, number: int) -> Attempt | None:
        """The live attempt a message belongs to, or None if it is stale (old turn / cancelled)."""
        t = self.turn
        if t is None or t.id != turn_id or number > len(t.attempts):
            return None
        a = t.attempts[number - 1]
        return None if a.cancel.cancelled else a

    def _on_transcript(self, msg: Transcript) -> None:
        a = self._attempt(msg.turn_id, msg.attempt)
        if a is None or self.turn is None:
            return
        a.transcript, a.asr_ms, a.audio_ms = msg.text, msg.asr_ms, msg.audio_ms
        a.marks["transcript"] = time.monotonic_ns()
        self._emit_for(
            a,
            "transcript.final",
            text=msg.text,
            audio_ms=msg.audio_ms,
            asr_ms=round(msg.asr_ms, 1),
            speculative=a.number > 0 and not a.committed,
        )
        if not msg.text:
            if a.committed:
                self._end_turn("no_transcript")
            return
        outcome = self._match(a, msg.text)
        if outcome is not None and not a.committed and self.cfg.intents.early_commit and a.settled:
            self._commit(a, early=True)
            return
        # an unsettled complete command is routed now (its confirmation waits behind the gate) and
        # commits when the pause settles (_on_paused), unless the user speaks on
        self._route(a, msg.text, outcome)
        if a.committed:
            self._apply_route(a)

    def _match(self, a: Attempt, text: str) -> IntentOutcome | None:
        if self.intents is None or not self.cfg.intents.enabled:
            return None
        outcome = self.intents.match(text)
        a.marks["intent"] = time.monotonic_ns()
        a.intent = outcome
        return outcome

    def _route(self, a: Attempt, text: str, outcome: IntentOutcome | None) -> None:
        """Hand the reply work out (speculatively if not committed: playback is gated)."""
        if a.reply_started or self.turn is None:
            return
        a.reply_started = True
        ctx = self._ctx(a)
        a.marks["reply_start"] = time.monotonic_ns()
        if outcome is not None:
            reply = self._intent_reply(outcome)
            a.reply_text = reply  # the turn's only once committed (_apply_route): this may be withdrawn
            if reply:
                a.marks["first_sentence"] = a.marks["reply_start"]
                self._hand(self.tts, SpeakJob(ctx, 0, reply))
            self._hand(self.tts, EndOfReply(ctx))  # a silent intent (stop) still ends through SynthesisDone
            return
        a.marks["llm_start"] = time.monotonic_ns()
        a.prompt_user, msgs = self._prompt(text)
        self._hand(self.llm, LlmJob(ctx, msgs))

    def _prompt(self, text: str) -> tuple[str, tuple[ChatMessage, ...]]:
        """(user message, whole request) for ``text``: the fixed system prompt first (its KV cache is
        reused), then history, then the changing facts just before the words (``_prime`` sends "")."""
        facts = self.facts()
        user = f"({facts})\n{text}" if facts else text
        msgs = (
            ChatMessage("system", self.cfg.llm.system_prompt),
            *self.history.messages(time.monotonic()),
            ChatMessage("user", user),
        )
        return user, msgs

    def _apply_route(self, a: Attempt) -> None:
        """Side effects and events that only a committed attempt may have."""
        turn = self.turn
        if turn is None or a.applied or a.transcript is None or not a.transcript:
            return
        a.applied = True
        turn.transcript = a.transcript
        if not a.reply_started:
            matched = a.intent if "intent" in a.marks else self._match(a, a.transcript)
            self._route(a, a.transcript, matched)
        outcome: IntentOutcome | None = a.intent
        if outcome is not None:
            turn.route = "intent"
            turn.reply_text = a.reply_text
            self.emit(
                "intent.recognized",
                turn,
                name=outcome.name,
                slots=dict(outcome.slots),
                text=a.transcript,
                intent_ms=turn.latency()["intent_ms"],
            )
            if self.intents is not None:
                self.intents.apply(outcome)
            if self.on_intent is not None:
                try:
                    self.on_intent(turn, outcome)
                except Exception:
                    log.exception("turn=%d intent handler failed", turn.id)
        else:
            turn.route = "llm"
        self.emit("response.started", turn, route=turn.route)

    def _intent_reply(self, outcome: IntentOutcome) -> str:
        if outcome.name == "repeat":
            return self.last_reply or "I haven't said anything yet."
        return outcome.reply

    def _on_played(self, msg: PlaybackFinished) -> None:
        old = self._interrupted.pop(msg.turn_id, None)
        if old is not None:  # the playback thread says how much of an interrupted reply was heard
            old.heard_text = msg.heard_text
            if old.route == "llm":
                self._remember(old)
                if self.turn is not None and self.turn.committed is None:
                    self._prime()  # the barge-in turn's prime was built before this history entry
            self._emit_done(old, "interrupted")
            return
        turn = self.turn
        if turn is None or turn.id != msg.turn_id:
            return
        turn.heard_text = msg.heard_text
        if msg.interrupted:
            return  # the cancel path already ended the turn
        self._end_turn("done")

    def _on_failed(self, msg: StageFailed) -> None:
        turn = self.turn
        same = turn is not None and turn.id == msg.turn_id
        if same and msg.attempt and self._attempt(msg.turn_id, msg.attempt) is None:
            same = False  # a cancelled (speculative) attempt failed: the live turn goes on
        self.emit("error", turn if same else None, stage=msg.stage, code=msg.code, message=msg.message)
        if same and turn is not None:
            turn.error = f"{msg.stage}: {msg.message}"
            turn.cancel_all(f"{msg.stage}_failed")
            self._end_turn("error")

    def _check_deadlines(self) -> None:
        """An engine that hangs must not hold a turn forever: bound each stage by its worker's busy time.
        A turn that listens far longer than any utterance can last (the listener never reported) ends."""
        self._check_hung()
        turn = self.turn
        if turn is None:
            return
        if turn.committed is None:
            e = self.cfg.endpoint
            limit_ns = (e.no_speech_timeout_ms + e.max_utterance_ms + 5000) * 1_000_000
            if time.monotonic_ns() - turn.created_ns > limit_ns:
                self.emit(
                    "error", turn, stage="listen", code="listen_timeout", message="no endpoint reported"
                )
                self._cancel_turn("listen_timeout")
            return
        now = time.monotonic()
        stage_s = self.cfg.service.stage_timeout_ms / 1000
        budgets = (
            (self.asr, self.cfg.asr.max_decode_ms / 1000 + 2.0),
            (self.llm, stage_s),
            (self.tts, stage_s),
            (self.playback, stage_s),  # one sentence's audio; a hung device write ends here
        )
        for worker, budget in budgets:
            since, ctx = worker.busy_since, worker.busy_ctx
            budget += worker.busy_extra_s
            if since is None or ctx is None or now - since <= budget or ctx.turn_id != turn.id:
                continue
            if self._attempt(ctx.turn_id, ctx.attempt) is None:
                continue  # stuck on cancelled work: not this turn's fault
            msg = f"{worker.stage} did not finish within {budget:.0f} s"
            self.handle(StageFailed(turn.id, worker.stage, "timeout", msg, ctx.attempt))
            return

    def _check_hung(self) -> None:
        """An engine call that never returns cannot be interrupted from Python, and its thread is the only
        one allowed to touch that engine. Past ``hung_exit_ms`` the daemon exits 70 (EX_SOFTWARE), so
        systemd restarts it (Restart=on-failure) rather than leaving a deaf assistant on the shelf."""
        if self.exit_code:
            return
        limit = self.cfg.service.hung_exit_ms / 1000
        now = time.monotonic()
        for worker in (self.asr, self.llm, self.tts, self.playback):
            since = worker.busy_since
            if since is not None and now - since > limit:
                msg = f"{worker.stage} engine stuck for {now - since:.0f} s; exiting for a restart"
                log.error("%s", msg)
                self.emit("error", self.turn, stage=worker.stage, code="hung", message=msg)
                self.exit_code = 70
                self.cancel("hung")
                self._stop.set()
                return

    def _reload(self) -> None:
        from edge_voice.core.config import ConfigError
        from edge_voice.core.reload import apply_live, changed_keys, is_live

        if self.load_config is None:
            return
        try:
            new = self.load_config()
        except ConfigError as exc:  # keep serving with the old config
            self.emit("error", None, stage="config", code="reload_failed", key=exc.key, message=str(exc))
            return
        keys = changed_keys(self.cfg, new)
        live = [k for k in keys if is_live(k)]
        self.cfg = apply_live(self.cfg, new)
        self.history.max_turns = self.cfg.llm.history_turns
        self.history.window_s = self.cfg.llm.history_window_s
        self.on_config(self.cfg)
        self.emit("config.reloaded", None, applied=live, restart_required=[k for k in keys if not is_live(k)])

    # ------------------------------------------------------------------ ending, cancelling, commands

    def _cancel_turn(self, reason: str, publish: bool = True, close_listener: bool = True) -> None:
        turn = self.turn
        if turn is None:
            return
        turn.cancel_all(reason)
        if publish:
            self.emit("turn.cancelled", turn, reason=reason)
        heard_any = any(k[0] == turn.id for k in self._chunks_seen)  # PlaybackStarted may still be queued
        if "playback_started" in turn.marks or (turn.committed is not None and heard_any):
            self._interrupted[turn.id] = turn  # history gets only the heard part, once playback says
        heap.trim()  # freed engine buffers back to the system: RSS stays flat over months
        self.turn = None
        if close_listener:
            self.listen.close()
        self.clock.realtime.clear()
        self._chunks_seen = {k: v for k, v in self._chunks_seen.items() if k[0] != turn.id}
        self.set_state("muted" if self.muted else "idle")
        if self.source_ended:
            self._stop.set()

    def cancel(self, source: str) -> None:
        if self.turn is not None:
            self._cancel_turn(f"cancel:{source}")

    def _remember(self, turn: Turn, complete: bool = False) -> None:
        """History gets what was heard. A ``complete`` reply is stored as generated, so the next prompt
        shares its KV cache prefix (the heard text is cleaned and stripped: re-evaluating a whole answer
        cost ~200 ms of TTFT on the next question)."""
        heard = turn.heard_text.strip()
        if heard and not turn.remembered:
            a = turn.committed
            said = as_generated(a.generated, a.stopped) if a is not None and complete else ""
            self.history.add(
                time.monotonic(), a.prompt_user if a and a.prompt_user else turn.transcript, said or heard
            )
            turn.remembered = True

    def _emit_done(self, turn: Turn, status: str) -> None:
        self.emit(
            "response.done",
            turn,
            status=status,
            route=turn.route,
            transcript=turn.transcript,
            reply=turn.reply_text,
            heard=turn.heard_text,
            speculative=turn.speculative_used,
            latency=turn.latency(),
        )

    def _end_turn(self, reason: str, published: bool = False) -> None:
        turn = self.turn
        if turn is None:
            return
        if not published:
            self._emit_done(turn, reason)
        if turn.route == "llm" and reason != "error":  # a failed reply is not a conversation to continue
            self._remember(turn, complete=reason == "done")
        if turn.reply_text and turn.heard_text:
            self.last_reply = turn.reply_text
        turn.cancel_all("turn_ended")  # release anything still queued
        heap.trim()  # freed engine buffers back to the system: RSS stays flat over months
        self.turn = None
        self.clock.realtime.clear()
        self._chunks_seen = {k: v for k, v in self._chunks_seen.items() if k[0] != turn.id}
        follow = (
            reason == "done"
            and turn.route in ("llm", "intent")
            and bool(turn.heard_text)  # a reply was heard: the user may answer it without the wake word
            and not self.muted
            and self.cfg.conversation.follow_up_window_ms > 0
        )
        if follow:
            self.listen.open(self.cfg.conversation.follow_up_window_ms)
        else:
            self.listen.close()
        self.set_state("muted" if self.muted else "idle")
        if self.source_ended:
            self._stop.set()

    def say(self, text: str, trigger: Trigger = "say") -> None:
        """Speak ``text`` as its own turn (MQTT say/announce, timers, `edge-voice say`)."""
        if self.turn is not None and self.state in ("thinking", "speaking"):
            self._cancel_turn("superseded")
        turn = self._start_turn("say" if trigger == "say" else trigger)
        turn.route = "say"
        turn.reply_text = text
        a = self._new_attempt(0)
        a.transcript = ""
        a.committed = True
        a.gate.set()
        a.reply_started = True
        now = time.monotonic_ns()
        turn.t0_ns = now
        turn.mark("committed", now)
        a.marks["reply_start"] = a.marks["first_sentence"] = now
        ctx = self._ctx(a)
        self.emit("response.started", turn, route="say", text=text)
        self.set_state("thinking")
        self._hand(self.tts, SpeakJob(ctx, 0, text))
        self._hand(self.tts, EndOfReply(ctx))

    def _on_mute(self, on: bool) -> None:
        self.muted = on
        if on:
            self.cancel("mute")
            self.listen.close()
        self.emit("mute.changed", None, on=on)
        if on or self.turn is None:
            self.set_state("muted" if on else "idle")


def as_generated(generated: str, stopped: str) -> str:
    """The generated text a fully heard reply said: all of it at end of stream; cut by ``max_tokens``,
    up to its last sentence end (the chunker dropped the unfinished tail). "" if none is usable."""
    if stopped == "eos":
        return generated if generated.strip() else ""
    if stopped == "max_tokens":
        return through_last_sentence(generated)
    return ""


def _default_facts() -> str:
    now = dt.datetime.now()
    return f"It is {now:%H:%M} on {now:%A, %d %B %Y}."
