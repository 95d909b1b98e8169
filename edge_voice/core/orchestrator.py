"""The orchestrator: the turn state machine, and the only owner of turn state.

It runs on one asyncio loop and never runs inference. Threads (capture, listen, ASR, LLM, TTS, playback)
post messages into its inbox; ``handle`` dispatches each with ``match`` + ``assert_never``, one call per
message type. Its collaborators hold everything that is not turn state: ``TurnTaking`` (whether words
end the turn, what becomes of speech after a commit), ``ReplyRouter`` (what a transcript becomes),
``Conversation`` (history, prompts, priming), ``Supervisor`` (deadlines, hang exit, reload),
``LatencyRecorder`` (marks) and the event sinks. The clock is injected, so unit tests drive it
synchronously with a fake one.

Speculation: when the user goes quiet for ``endpoint.speculative_silence_ms`` the orchestrator starts an
*attempt* — ASR, then intent or LLM, then TTS — whose playback is held behind a gate. If the user speaks
again the attempt is cancelled; when the endpoint is confirmed the gate opens and the reply is heard at
once. A speculative transcript that is a complete fast-path command commits the turn as soon as the
pause has lasted ``endpoint.commit_silence_ms`` (``intents.early_commit``). Events of an uncommitted
attempt are held and published only on commit, so subscribers see exactly one consistent turn.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import assert_never

from edge_voice.core import events as ev
from edge_voice.core.announcements import Announcements, speak_due
from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import Config
from edge_voice.core.controls import CONTROLS, handle_control
from edge_voice.core.conversation import Conversation
from edge_voice.core.endofturn import is_echo
from edge_voice.core.intent import IntentMatcher, IntentOutcome
from edge_voice.core.jobs import (
    AsrJob,
    ChimeJob,
    Ctx,
    EndOfReply,
    ListenControl,
    PrimeJob,
    SpeakJob,
)
from edge_voice.core.latency import LatencyRecorder
from edge_voice.core.messages import (
    AgentFallback,
    AudioChunk,
    GenerationDone,
    Message,
    NoSpeech,
    PlaybackFinished,
    PlaybackStarted,
    SentenceReady,
    ShortUtterance,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    StageFailed,
    SynthesisDone,
    TextDelta,
    Transcript,
    WakeDetected,
)
from edge_voice.core.publisher import EventSink, Publisher
from edge_voice.core.replies import ReplyRouter, Workers
from edge_voice.core.stop_word import STOP_PROMPT, is_stop, says_stop
from edge_voice.core.supervisor import Supervisor
from edge_voice.core.turn_taking import Continuation, TurnTaking
from edge_voice.core.turns import Attempt, Mark, Trigger, Turn, next_turn_id
from edge_voice.core.vocabulary import ErrorCode, Stage, State

log = logging.getLogger(__name__)

# turns nobody asked for with a wake word or a button: speech heard while the device speaks may be only
# its own voice (``SpeechStopped.echo``)
UNBIDDEN = frozenset({"follow_up", "continuation"})
# a decode that failed (whisper's time limit, the ASR stage's deadline or error): the user hears it, as a
# person would say it, instead of silence; not said when the audio simply held no words
DIDNT_CATCH = "Sorry, I didn't catch that."
STOP_CHECK = -1  # the attempt number of a stop-word check's ASR job: never a turn's attempt


def _nothing() -> None:
    pass


@dataclass(frozen=True, slots=True)
class Hooks:
    """What the daemon around the state machine wants to hear of or supply (all optional)."""

    on_intent: Callable[[Turn, IntentOutcome], None] | None = None  # a committed intent (volume, …)
    on_tick: Callable[[], None] = _nothing  # every 100 ms on the loop (timers due)
    on_config: Callable[[Config], None] | None = None  # a reloaded config's live part was applied
    on_turn_end: Callable[[], None] = _nothing  # release engine buffers (malloc trim)
    realtime: Callable[[bool], None] | None = None  # a turn is live: WAV sources pace in real time
    facts: Callable[[], str] | None = None  # the LLM's facts line (clock)
    ground: Callable[[str], str] | None = None  # facts about the words (skills), after the facts line
    load_config: Callable[[], Config] | None = None  # SIGHUP re-read


class Orchestrator:
    def __init__(
        self,
        cfg: Config,
        *,
        listen: ListenControl,
        workers: Workers,
        intents: IntentMatcher | None,
        sinks: list[EventSink],
        now_ns: Callable[[], int],
        hooks: Hooks | None = None,
    ) -> None:
        self.cfg, self.listen, self.w, self.now_ns = cfg, listen, workers, now_ns
        self.hooks = hooks = hooks or Hooks()
        self.out = Publisher(sinks, now_ns)
        self.conversation = Conversation(cfg.llm, lambda: now_ns() / 1e9, hooks.facts, hooks.ground)
        stages = (workers.asr, workers.llm, workers.tts, workers.playback)
        self.supervisor = Supervisor(cfg, stages, now_ns, hooks.load_config, lambda: listen.heard)
        self.latency = LatencyRecorder()
        self.announcements = Announcements(cfg.conversation.say_max_wait_ms, now_ns)
        self._later: list[Message] = []  # raised while handling a message, handled right after it
        self.router = ReplyRouter(
            workers, intents, self.conversation, self.latency, self.publish, self._later.append, now_ns
        )
        self.router.on_intent, self.router.enabled = hooks.on_intent, cfg.intents.enabled
        self.router.ha_matched = cfg.intents.language != "en"  # a restart key: never changed by a reload
        self.exit_code, self.state = 0, State.IDLE
        self.turn: Turn | None = None
        self.taking = TurnTaking(cfg, listen)
        self.muted = self.source_ended = False
        self.mute_source = ""  # who muted: a physical mute (button, switch) is undone only physically
        self.stopping = False  # Shutdown, the end of a file source, a fatal failure or a hang

    # ------------------------------------------------------------------ plumbing

    def publish(self, payload: ev.EventPayload, turn: Turn | None = None) -> None:
        self.out.event(payload, turn.id if turn else None)

    def set_state(self, state: State) -> None:
        if state != self.state:
            speaking = state == State.SPEAKING
            if speaking != (self.state == State.SPEAKING):  # the stop word listens while the device speaks
                self.listen.arm_stop(speaking and self.cfg.conversation.stop_word)
            self.state = state
            self.latency.state(self.turn, state, self.now_ns())
            self.out.state(state)

    def rest_state(self) -> None:
        self.set_state(State.MUTED if self.muted else State.IDLE)

    def tick(self) -> None:
        """Housekeeping every 100 ms: stage deadlines, then the daemon's own (timers due)."""
        try:
            self.supervisor.tick(self)
            self.hooks.on_tick()
        except Exception:  # housekeeping must outlive any one failure
            log.exception("orchestrator housekeeping failed")
        if self._later:  # e.g. a timer's reply found the TTS queue full
            self.handle(self._later.pop(0))
        speak_due(self)

    # ------------------------------------------------------------------ what the supervisor may do

    def is_live(self, turn_id: int, attempt: int) -> bool:
        return self._attempt(turn_id, attempt) is not None

    def abandon(self, reason: str) -> None:
        self._cancel_turn(reason)

    def halt(self, exit_code: int, reason: str) -> None:
        self.exit_code = exit_code or self.exit_code
        self.cancel(reason)
        self.stopping = True

    def apply_config(self, cfg: Config) -> None:
        self.cfg = self.taking.cfg = cfg
        self.conversation.configure(cfg.llm)
        self.router.enabled = cfg.intents.enabled
        if self.hooks.on_config is not None:
            self.hooks.on_config(cfg)

    # ------------------------------------------------------------------ dispatch

    def handle(self, msg: Message) -> None:
        """One message (and any it raised); a bug in a handler ends the turn, never the daemon."""
        self._later.append(msg)
        while self._later:
            msg = self._later.pop(0)
            try:
                self.latency.before(msg, self.turn, self.now_ns())
                self._dispatch(msg)
                self.latency.after(msg, self.turn)
            except Exception as exc:
                log.exception("orchestrator failed on %s", type(msg).__name__)
                self.publish(ev.ErrorInfo(Stage.ORCHESTRATOR, ErrorCode.INTERNAL, str(exc)), self.turn)
                self._end_turn("error")
            if not self._later and not self.stopping:
                speak_due(self)  # the turn may just have ended: a waiting say speaks now

    def give_up_heard(self) -> None:
        """Shutdown: the playback thread never said what was heard of these; publish them as interrupted."""
        for turn in self.conversation.give_up():
            self._publish_done(turn, "interrupted")

    def _dispatch(self, msg: Message) -> None:
        if isinstance(msg, CONTROLS):
            handle_control(self, msg)
            return
        match msg:
            case WakeDetected():
                self._on_wake(msg)
            case SpeechStarted():
                self._on_speech_started(msg)
            case SpeechPaused():
                self._on_paused(msg)
            case SpeechResumed():
                self._on_resumed()
            case SpeechStopped():
                self._on_stopped(msg)
            case NoSpeech():
                self._on_no_speech()
            case ShortUtterance():
                self._on_short(msg)
            case Transcript():
                self._on_transcript(msg)
            case TextDelta() | SentenceReady() | GenerationDone() | AudioChunk() | SynthesisDone():
                a = self._attempt(msg.turn_id, msg.attempt)
                if a is not None and self.turn is not None and self.router.progress(self.turn, a, msg):
                    self._end_if_silent(a)  # synthesis is over
            case PlaybackStarted():
                self._on_playback_started(msg)
            case PlaybackFinished():
                self._on_played(msg)
            case StageFailed():
                self._on_failed(msg)
            case AgentFallback():
                a = self._attempt(msg.turn_id, msg.attempt)
                if a is not None and self.turn is not None:
                    self.router.agent_failed(self.turn, a, msg.publish)
            case _:
                assert_never(msg)

    def _attempt(self, turn_id: int, number: int) -> Attempt | None:
        """The live attempt a message belongs to, or None if it is stale (old turn / cancelled)."""
        return self.turn.live(turn_id, number) if self.turn is not None else None

    # ------------------------------------------------------------------ listening

    def _start_turn(self, trigger: Trigger, made: Turn | None = None) -> Turn:
        """``made``: the turn was made before it was live (a continuation decoded early)."""
        t = self.turn
        if t is not None and trigger == "wake" and t.becomes_wake():
            return t
        if t is not None:
            # a wake word opened the listener for the new turn itself: closing it would deafen the turn
            reason = "barge_in" if trigger in ("wake", "button") else "superseded"
            self._cancel_turn(reason, close_listener=trigger != "wake")
        if made is not None:
            made.created_ns = self.now_ns()  # (the listening deadline counts from here)
        self.turn = made or Turn(next_turn_id(), trigger, self.now_ns())
        if self.hooks.realtime is not None:
            self.hooks.realtime(True)
        return self.turn

    def open_for_speech(self, trigger: Trigger) -> Turn:
        """A turn the user will speak in: the LLM evaluates the prompt up to where the words will go,
        the listener opens (by itself on a wake word), a chime says the microphone is open."""
        turn = self._start_turn(trigger)
        self._prime()
        if trigger in ("button", "mqtt"):
            self.listen.open()
        if trigger != "follow_up" and self.cfg.conversation.chimes:
            self.w.playback.submit_nowait(ChimeJob())
        return turn

    def _prime(self) -> None:
        """Skipped if the queue is full. Not cancellable, and it needs none: ~30 tokens, done long before
        the user stops speaking."""
        request = self.conversation.prime_request()
        if request is not None:
            self.w.llm.submit_nowait(PrimeJob(request))

    def _on_wake(self, msg: WakeDetected) -> None:
        busy = self.state in (State.THINKING, State.SPEAKING)
        if self.muted or (self.turn is not None and busy and not self.cfg.conversation.barge_in):
            self.listen.close()  # the listener opened itself on the wake word: not this time
            return
        turn = self.open_for_speech("wake")
        turn.wake_word = msg.word
        self.publish(ev.WakeInfo.of(msg), turn)
        self.set_state(State.LISTENING)

    def _on_speech_started(self, msg: SpeechStarted) -> None:
        turn = self.turn
        if turn is not None and turn.committed is not None:
            self.taking.went_on(turn, msg)
            return
        if turn is None:
            if self.muted:
                return
            turn = self.open_for_speech("follow_up")
            turn.previous = self.taking.window_previous
            self.set_state(State.LISTENING)
        elif turn.held is not None:  # the rest of an unfinished sentence: its first words are kept
            turn.held.cancel.cancel("speech_resumed")
            turn.held = None
        elif turn.started_published:  # one turn, one start: the window's start held the wake word
            turn.started_published = False
            return
        self.publish(ev.SpeechStartedInfo.of(msg), turn)

    def _settle_continuation(self, turn: Turn) -> None:
        said = turn.committed
        nxt = self.taking.settle(turn)
        if nxt is not None:  # the question went on before its answer was heard: ask it again, whole
            self._cancel_turn("continued", going_on=True)
            self._begin_continuation(nxt, said=said)

    def _begin_continuation(
        self, nxt: Continuation, said: Attempt | None = None, previous: IntentOutcome | None = None
    ) -> None:
        """``said``: the unfinished question's attempt, decoded again with the rest; ``previous``: the
        command a new one goes on from."""
        turn = self._start_turn("continuation", nxt.turn)
        turn.continues(previous, nxt.echo_of, said)
        self._prime()
        self.set_state(State.LISTENING)
        self.publish(ev.SpeechStartedInfo.of(nxt.started), turn)
        if nxt.stopped is not None:
            self._on_stopped(nxt.stopped)  # its early attempt, if it has one for this end, goes on
        for msg in nxt.early:  # what the early decode heard, now handled as for any turn (once)
            self._on_transcript(msg)

    def _on_short(self, msg: ShortUtterance) -> None:
        """The stop word: a short utterance heard while the device speaks (a reply, a timer ringing) goes
        to the ASR; if it says "stop", the turn ends (``_on_stop_check``). Bounded by the ASR's queue: a
        full one drops the check, never the turn."""
        turn = self.turn
        if turn is None or self.state != State.SPEAKING or not self.cfg.conversation.stop_word:
            return
        ctx = Ctx(turn.id, STOP_CHECK, CancelToken(), threading.Event())  # (the ASR has no gate to wait on)
        if not self.w.asr.submit_nowait(AsrJob(ctx, msg.audio, STOP_PROMPT)):
            log.warning("turn=%d stop-word check dropped: ASR queue full", turn.id)

    def _on_stop_check(self, msg: Transcript) -> None:
        turn = self.turn
        heard = is_stop(msg.text)
        log.info("turn=%d stop-word check: %r%s", msg.turn_id, msg.text, " -> stop" if heard else "")
        if not (heard and turn is not None and turn.id == msg.turn_id and self.state == State.SPEAKING):
            return
        if self.cfg.audio.echo_guard and says_stop(turn.said()):
            # The reply itself says "stop" ("I can't stop the rain"): what the canceller leaks of it is
            # the device's own voice (as the self-wake guard judges a wake word it plays). This reply then
            # ends only by the wake word, the button or MQTT (bench stop, part=own).
            log.info("turn=%d stop-word check: the reply itself says stop; ignored", turn.id)
            return
        self._cancel_turn("stop_word")

    def _on_no_speech(self) -> None:
        turn = self.turn
        if turn is None:
            if self.state == State.LISTENING:
                self.rest_state()  # the follow-up window closed unused
            return
        if turn.committed is not None or self.state != State.LISTENING:
            return
        held, turn.held = turn.held, None
        if held is not None and not held.cancel.cancelled:
            self._commit(held)  # nothing more came: the unfinished sentence is what was said
            return
        self.publish(ev.TurnCancelledInfo("no_speech"), turn)
        self._end_turn("no_speech", published=True)

    def _on_paused(self, msg: SpeechPaused) -> None:
        turn = self.turn
        if turn is None or self.cfg.endpoint.speculative_silence_ms == 0:
            return
        if msg.echo and (turn.committed is not None or turn.trigger in UNBIDDEN):
            return  # the device's own voice so far: nothing to decode (its end cancels the turn)
        if turn.committed is not None:  # a continuation's pause: decoded now, acted on once it is live
            early = self.taking.early_turn(self.now_ns())
            if early is not None:
                self._speculate(early, msg, live=False)
            return
        self._speculate(turn, msg, live=True)

    def _speculate(self, turn: Turn, msg: SpeechPaused, live: bool) -> None:
        """A pause in ``turn``'s speech: start its speculative attempt, or note how long the pause of the
        one running has lasted. ``live``: ``turn`` is the current turn (else a continuation's, whose
        transcript only decides once it is live)."""
        cur = turn.current
        if cur is not None and not cur.cancel.cancelled and cur.last_voiced_sample == msg.last_voiced_sample:
            if msg.settled and not cur.settled:
                cur.settled = True
                if live and self.taking.completes(cur):
                    self._commit(cur, early=True)  # its transcript came before the pause settled
            if msg.question and not cur.committed:
                cur.question_settled = True
                if live and self.taking.completes_question(cur):
                    self._commit(cur, early=True)  # a complete question: its answer may play now
            return
        if cur is not None and not cur.committed:
            cur.cancel.cancel("superseded")  # an early decode whose quiet the VAD did not confirm
        lag_ns = (msg.at_sample - msg.last_voiced_sample) * 1_000_000_000 // 16000
        a = turn.new_attempt(msg.last_voiced_sample, msg.captured_ns - lag_ns, msg.at_sample)
        a.settled, a.question_settled = msg.settled, msg.question
        self.router.hand(self.w.asr, AsrJob(turn.ctx(a), turn.audio_for(a, msg.audio, msg.start_sample)), a)

    def _on_resumed(self) -> None:
        turn = self.turn
        if turn is not None and turn.committed is not None:  # the continuation speaks on
            nxt = self.taking.next
            turn = nxt.turn if nxt is not None else None
        if turn is None:
            return
        cur = turn.current
        if cur is not None and not cur.committed:
            cur.cancel.cancel("speech_resumed")
            log.debug("turn=%d speculative attempt %d dropped", turn.id, cur.number)

    def _on_stopped(self, msg: SpeechStopped) -> None:
        turn = self.turn
        if turn is None:
            return
        if turn.committed is not None:
            if self.taking.stopped(msg):  # the continuation ended while the reply still plays
                if not msg.echo:  # (the device's own voice: cancelled once it is live, never decoded)
                    self._decode_early(msg)
                self._settle_continuation(turn)
            return
        if msg.echo and turn.trigger in UNBIDDEN:
            # Heard while the device played and only what the canceller left of it: the device's own
            # voice, not the user's (whisper made "Very normal." of "Turning off the fan." and the LLM
            # answered it). The window stays open for the user.
            log.info("turn=%d the utterance is the device's own voice: not answered", turn.id)
            turn.cancel_all("echo")
            self.publish(ev.TurnCancelledInfo("echo"), turn)
            self._end_turn("echo", published=True)
            return
        turn.t0_ns = msg.voiced_captured_ns
        self.publish(ev.SpeechStoppedInfo.of(msg), turn)
        cur = turn.current
        defer = self.cfg.endpoint.unfinished_silence_ms > 0  # decide when the words are known
        if cur is not None and not cur.cancel.cancelled and cur.last_voiced_sample == msg.last_voiced_sample:
            turn.speculative_used = True
            if cur.transcript is None and defer:
                cur.stop, cur.stop_ns = msg, self.now_ns()  # still decoding: its words say if this is the end
            elif not self.taking.hold(turn, cur, msg):
                self._commit(cur)
            return
        if cur is not None:
            cur.cancel.cancel("superseded")
        a = turn.new_attempt(msg.last_voiced_sample, None, msg.at_sample)
        self.router.hand(self.w.asr, AsrJob(turn.ctx(a), turn.audio_for(a, msg.audio, msg.start_sample)), a)
        if defer:
            a.stop, a.stop_ns = msg, self.now_ns()
        else:
            self._commit(a)

    def _decode_early(self, msg: SpeechStopped) -> None:
        """The continuation ended while the committed turn runs: decode it now if no early attempt of
        its pauses holds this end (``_on_stopped`` finds it once the continuation is live)."""
        early = self.taking.early_turn(self.now_ns())
        if early is None:
            return
        cur = early.current
        if cur is not None and not cur.cancel.cancelled and cur.last_voiced_sample == msg.last_voiced_sample:
            return
        if cur is not None:
            cur.cancel.cancel("superseded")
        a = early.new_attempt(msg.last_voiced_sample, None, msg.at_sample)
        self.router.hand(self.w.asr, AsrJob(early.ctx(a), early.audio_for(a, msg.audio, msg.start_sample)), a)

    def _commit(self, a: Attempt, early: bool = False, endpoint_ns: int | None = None) -> None:
        """``endpoint_ns``: when the endpoint that ends the turn came, if its words were awaited (the
        latency breakdown keeps the wait for them under ``asr_ms``)."""
        turn = self.turn
        assert turn is not None
        a.committed = True
        a.gate.set()
        a.commit_event.set()
        turn.mark(Mark.COMMITTED, self.now_ns() if endpoint_ns is None else endpoint_ns)
        if turn.t0_ns is None:
            turn.t0_ns = a.t0_ns
        self.taking.committed(a)
        if early:
            self.publish(ev.SpeechStoppedInfo.early_commit(a.last_voiced_sample), turn)
        if early or a.t0_ns is not None:
            turn.speculative_used = True  # this attempt began in the end-of-speech silence
        self.set_state(State.THINKING)
        self.router.commit(turn, a)
        if a.transcript == "":
            self._end_turn("no_transcript")
            if a.asr_failed:
                self._didnt_catch()
            return
        self._end_if_silent(a)

    # ------------------------------------------------------------------ answering

    def _on_transcript(self, msg: Transcript) -> None:
        if msg.attempt == STOP_CHECK:
            self._on_stop_check(msg)
            return
        turn, a = self.turn, self._attempt(msg.turn_id, msg.attempt)
        if a is None or turn is None:
            if self.taking.early_result(msg):  # the continuation's, decoded while this turn runs
                nxt = self.taking.next
                assert nxt is not None and nxt.turn is not None
                b = nxt.turn.live(msg.turn_id, msg.attempt)
                if b is not None:
                    b.marks[Mark.TRANSCRIPT] = self.now_ns()
            return
        text = msg.text
        a.transcript, a.asr_ms, a.audio_ms = text, msg.asr_ms, msg.audio_ms
        a.asr_failed = msg.aborted and not text
        speculative = not a.committed and a.stop is None
        self.router.publish_for(
            self.turn, a, ev.TranscriptInfo(text, msg.audio_ms, round(msg.asr_ms, 1), speculative)
        )
        final = a.committed or a.stop is not None  # the endpoint was confirmed on this attempt's audio
        if not text:
            if final:
                self._end_turn("no_transcript")
                if a.asr_failed:
                    self._didnt_catch()
            return
        if turn.echo_of and is_echo(msg.text, turn.echo_of):
            if final:  # the device's own reply heard back, not the user: nothing to answer
                self.publish(ev.TurnCancelledInfo("echo"), turn)
                self._end_turn("echo", published=True)
            return
        outcome = self.router.match(a, text, turn.previous)
        if a.stop is not None:  # the endpoint came before the words: now they say whether it is the end
            stop, a.stop = a.stop, None
            if self.taking.hold(turn, a, stop):
                self.router.route(turn, a, text, outcome)  # ready behind its gate if nothing more comes
            else:
                self._commit(a, endpoint_ns=a.stop_ns)
                self._settle_continuation(turn)
            return
        if not a.committed and (
            (a.settled and self.taking.completes(a)) or self.taking.completes_question(a)
        ):
            self._commit(a, early=True)
            return
        # an unsettled complete command is routed now (its confirmation waits behind the gate) and
        # commits when the pause settles (_on_paused), unless the user speaks on
        self.router.route(turn, a, text, outcome)
        if a.committed:
            self.router.apply(turn, a)
            self._settle_continuation(turn)

    def _end_if_silent(self, a: Attempt) -> None:
        """A committed attempt whose synthesis finished without any audio (stop intent, empty
        generation) ends its turn here: no PlaybackFinished will come."""
        if self.turn is not None and a.committed and a.synthesized and not a.chunks:
            self._end_turn("done" if self.turn.route == "intent" else "no_reply")

    def _on_playback_started(self, msg: PlaybackStarted) -> None:
        if self.turn is not None and self.turn.id == msg.turn_id:
            self.publish(ev.AudioStartedInfo.of(msg), self.turn)
            self.set_state(State.SPEAKING)
            if self.turn.route == "llm" and self.taking.next is None:
                self.listen.close()  # an answer is heard out; a wake word interrupts it (no echo canceller)

    def _on_played(self, msg: PlaybackFinished) -> None:
        old = self.conversation.heard(msg.turn_id, msg.heard_text)
        if old is not None:  # the playback thread says how much of an interrupted reply was heard
            if old.route == "llm" and self.turn is not None and self.turn.committed is None:
                self._prime()  # the barge-in turn's prime was built before this history entry
            self._publish_done(old, "interrupted")
            return
        turn = self.turn
        if turn is None or turn.id != msg.turn_id:
            return
        turn.heard_text = msg.heard_text
        if not msg.interrupted:  # else the cancel path already ended the turn
            self._end_turn("done")

    # ------------------------------------------------------------------ failures, supervision

    def _on_failed(self, msg: StageFailed) -> None:
        turn = self.turn
        same = turn is not None and turn.id == msg.turn_id
        if same and msg.attempt and self._attempt(msg.turn_id, msg.attempt) is None:
            same = False  # a cancelled (speculative) attempt failed: the live turn goes on
        nxt = self.taking.next
        if nxt is not None and nxt.turn is not None and nxt.turn.id == msg.turn_id:
            nxt.turn.cancel_all("failed")  # a continuation's early decode: decoded again once it is live
        self.publish(ev.ErrorInfo(msg.stage, msg.code, msg.message), turn if same else None)
        if same and turn is not None:
            turn.error = f"{msg.stage}: {msg.message}"
            turn.cancel_all(f"{msg.stage}_failed")
            self._end_turn("error")
            if msg.stage == Stage.ASR:
                self._didnt_catch()

    def _didnt_catch(self) -> None:
        """The user spoke and the decode failed: say so (a ``say`` turn), unless a continuation is
        already the next turn, or the device is muted or stopping."""
        if self.turn is None and not self.muted and not self.stopping:
            self.speak(DIDNT_CATCH, "say")

    # ------------------------------------------------------------------ ending, cancelling, commands

    def _release(
        self, turn: Turn, close_listener: bool, follow_up: bool = False, going_on: bool = False
    ) -> None:
        """What every ended turn does: free engine buffers, stop pacing, settle the listener and state.
        ``going_on``: the user's continuation is heard already and becomes the next turn at once."""
        self.hooks.on_turn_end()  # freed engine buffers back to the system: RSS stays flat over months
        self.turn = None
        if self.hooks.realtime is not None:
            self.hooks.realtime(False)
        if follow_up and not going_on:
            self.listen.open(self.cfg.conversation.follow_up_window_ms)
            self.set_state(State.LISTENING)  # the microphone is open without a wake word: say so
        elif not going_on:  # (going on: the listener is in that speech, the next turn sets the state)
            if close_listener:
                self.listen.close()
            self.rest_state()
        if self.source_ended:
            self.stopping = True

    def _cancel_turn(self, reason: str, close_listener: bool = True, going_on: bool = False) -> None:
        turn = self.turn
        if turn is None:
            return
        self.taking.drop()  # a barge-in or cancel: what was said after the commit goes with the turn
        turn.cancel_all(reason)
        self.publish(ev.TurnCancelledInfo(reason), turn)
        if turn.committed is not None and turn.audible and reason != "continued":
            # history gets only the heard part, once playback says (a question asked again whole keeps
            # none of its fragment's answer: it is not what the user asked)
            self.conversation.cut_off(turn)
        self._release(turn, close_listener, going_on=going_on)

    def cancel(self, source: str) -> None:
        if self.turn is not None:
            self._cancel_turn(f"cancel:{source}")

    def _publish_done(self, turn: Turn, status: str) -> None:
        self.publish(ev.ResponseDoneInfo.of(turn, status), turn)

    def _end_turn(self, status: str, published: bool = False) -> None:
        turn = self.turn
        if turn is None:
            return
        if not published:
            self._publish_done(turn, status)
        self.conversation.finished(turn, status)
        turn.cancel_all("turn_ended")  # release anything still queued
        follow, nxt = self.taking.ended(turn, status, self.muted)
        self._release(turn, close_listener=True, follow_up=follow, going_on=nxt is not None)
        if nxt is not None:
            done = turn.committed
            self._begin_continuation(nxt, previous=done.intent if done is not None else None)

    def speak(self, text: str, trigger: Trigger) -> None:
        """``text`` as its own turn (MQTT say/announce, timers, `edge-voice say`)."""
        turn = self._start_turn(trigger)
        a = turn.spoken(text, self.now_ns())
        ctx = turn.ctx(a)
        self.publish(ev.ResponseStartedInfo("say", text), turn)
        self.set_state(State.THINKING)
        if trigger == "announce" and self.cfg.conversation.chimes:
            self.w.playback.submit_nowait(ChimeJob("announce"))  # a chime first: something to hear
        self.router.hand(self.w.tts, SpeakJob(ctx, 0, text), a)
        self.router.hand(self.w.tts, EndOfReply(ctx), a)
