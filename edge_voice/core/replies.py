"""What a transcript becomes, as Home Assistant's pipeline has an intent stage apart from its run: a
fast-path intent (its confirmation to TTS) or an LLM request (the conversation's prompt), handed to the
engine threads; and, once the attempt is committed, the route's side effects and events.

The orchestrator decides *when* (speculation, commit, end of turn); this decides *what* goes where. Work
for an uncommitted attempt is prepared behind its gate and its events are held (``Attempt.held``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, assert_never

from edge_voice.core import events as ev
from edge_voice.core.conversation import Conversation
from edge_voice.core.intent import IntentMatcher, IntentOutcome, norm_device_name
from edge_voice.core.jobs import AsrJob, EndOfReply, LlmJob, PlaybackPort, PrimeJob, SpeakJob, StagePort
from edge_voice.core.latency import LatencyRecorder
from edge_voice.core.messages import (
    AudioChunk,
    GenerationDone,
    Message,
    SentenceReady,
    StageFailed,
    SynthesisDone,
    TextDelta,
)
from edge_voice.core.turns import Attempt, Mark, Turn
from edge_voice.core.vocabulary import ErrorCode

log = logging.getLogger(__name__)

# what Home Assistant's agent answers instead of the fast path (intents.backend = "home_assistant"): device
# commands HA 2024.3's sentences parse (not step_brightness: "dim"/"brighten" are not in them), and names
# the fast path does not know (HA may: its own entities, aliases and areas)
AGENT_INTENTS = frozenset({"turn_on", "turn_off", "set_brightness", "set_color", "unknown_device"})
# a command HA can parse on its own words has a verb; "the kitchen" (an answer to our question back) has not
_AGENT_VERB = re.compile(r"\b(?:turn|switch|set|make|change|put|power)\b")


def agent_parses(
    outcome: IntentOutcome, text: str, previous: IntentOutcome | None, ha_matched: bool = False
) -> bool:
    """Whether Home Assistant's agent understands ``text`` as the fast path did: one target named as said,
    with a verb — not a sentence of several commands (``also``, two devices), not a follow-up or
    continuation (``previous``: "turn it off", "and the fan"), not an answer to our question back, not a
    name the fast path resolved fuzzily ("kitchen lite"). HA 2024.3 answers those no_intent_match.
    ``ha_matched``: the fast path is HA's own templates alone (``intents.language`` not "en"), so the verb
    (an English word list) is not asked: HA's templates for that language already parsed the text."""
    if outcome.name not in AGENT_INTENTS or outcome.also or previous is not None:
        return False
    names = [v for k, v in outcome.slots if k == "device"]
    said = f" {norm_device_name(text)} "
    verb = ha_matched or bool(_AGENT_VERB.search(said))
    return len(names) == 1 and f" {norm_device_name(names[0])} " in said and verb


Progress = TextDelta | SentenceReady | GenerationDone | AudioChunk | SynthesisDone


@dataclass(frozen=True, slots=True)
class Workers:
    asr: StagePort[AsrJob]
    llm: StagePort[LlmJob | PrimeJob]
    tts: StagePort[SpeakJob | EndOfReply]
    playback: PlaybackPort


class ReplyRouter:
    def __init__(
        self,
        workers: Workers,
        intents: IntentMatcher | None,
        conversation: Conversation,
        latency: LatencyRecorder,
        publish: Callable[[ev.EventPayload, Turn | None], None],
        later: Callable[[Message], None],
        now_ns: Callable[[], int],
        on_intent: Callable[[Turn, IntentOutcome], None] | None = None,
    ) -> None:
        self.w, self.intents, self.conversation = workers, intents, conversation
        self.latency, self.publish, self.later, self.now_ns = latency, publish, later, now_ns
        self.on_intent = on_intent
        self.enabled = True  # intents.enabled (live on reload)
        # Home Assistant's conversation agent is configured and not cooling down after a failure
        self.agent_ready: Callable[[], bool] | None = None
        self.ha_matched = False  # the fast path is HA's templates alone (intents.language not "en")

    def hand(self, worker: StagePort[Any], job: AsrJob | LlmJob | SpeakJob | EndOfReply, a: Attempt) -> None:
        """Give a worker a job without ever blocking the loop; a full queue fails the turn (bounded)."""
        self.latency.job(job, a, self.now_ns())
        if not worker.submit_nowait(job):
            c = job.ctx
            msg = f"{worker.stage} queue full"
            self.later(StageFailed(c.turn_id, worker.stage, ErrorCode.OVERLOADED, msg, c.attempt))

    def match(self, a: Attempt, text: str, previous: IntentOutcome | None = None) -> IntentOutcome | None:
        if self.intents is None or not self.enabled:
            return None
        a.intent, a.matched = self.intents.match(text, previous), True
        a.marks[Mark.INTENT] = self.now_ns()
        return a.intent

    def route(self, turn: Turn, a: Attempt, text: str, outcome: IntentOutcome | None) -> None:
        """Hand the reply work out (speculatively if not committed: playback is gated)."""
        if a.reply_started:
            return
        a.reply_started = True
        ctx = turn.ctx(a)
        a.marks[Mark.REPLY_START] = self.now_ns()
        if (
            outcome is not None
            and self.agent_ready is not None
            and agent_parses(outcome, text, turn.previous, self.ha_matched)
            and self.agent_ready()
        ):
            # HA acts and answers; the LLM thread asks it once the attempt is committed (never on a
            # speculation) and speaks this confirmation, and applies the intent, if HA fails or does not
            # understand. The intent stays the attempt's (early commit, continuations, follow-ups see a
            # command); ``diverted`` only keeps its MQTT intent and handlers back while HA acts.
            a.diverted = outcome
            fallback = self.conversation.intent_reply(outcome)
            self.hand(self.w.llm, LlmJob(ctx, (), text, agent_fallback=fallback), a)
            return
        if outcome is not None:
            a.reply_text = self.conversation.intent_reply(outcome)  # the turn's only once committed
            if a.reply_text:
                self.hand(self.w.tts, SpeakJob(ctx, 0, a.reply_text), a)
            self.hand(self.w.tts, EndOfReply(ctx), a)  # a silent intent (stop) ends through SynthesisDone
            return
        a.prompt_user, msgs = self.conversation.request(text)
        self.hand(self.w.llm, LlmJob(ctx, msgs, text), a)

    def progress(self, turn: Turn, a: Attempt, msg: Progress) -> bool:
        """An engine's progress on a live attempt's reply; True once its synthesis is over."""
        match msg:
            case TextDelta():
                a.streamed += msg.text
                self.publish_for(turn, a, ev.TextDeltaInfo(msg.text))
            case SentenceReady():
                pass  # a latency mark only
            case GenerationDone():
                a.generated, a.stopped = msg.text, msg.stopped
                turn.reply_text = msg.text.strip()
            case AudioChunk():
                a.chunks += 1
            case SynthesisDone():
                a.synthesized = True
                return True
            case _:
                assert_never(msg)
        return False

    def publish_for(self, turn: Turn | None, a: Attempt, payload: ev.EventPayload) -> None:
        """Events of a speculative attempt are held until it is committed."""
        if a.committed:
            self.publish(payload, turn)
        else:
            a.held.append(payload)

    def commit(self, turn: Turn, a: Attempt) -> None:
        """Publish what the attempt held — the transcript, then the route's events, then the reply's
        deltas — and apply its route."""
        held, a.held = a.held, []
        for p in held:
            if isinstance(p, ev.TranscriptInfo):
                self.publish(p, turn)
        if a.transcript is not None:
            self.apply(turn, a)
        for p in held:
            if isinstance(p, ev.EventPayload) and not isinstance(p, ev.TranscriptInfo):
                self.publish(p, turn)

    def apply(self, turn: Turn, a: Attempt) -> None:
        """Side effects and events that only a committed attempt may have."""
        if a.applied or not a.transcript:
            return
        a.applied = True
        turn.transcript = a.transcript
        if not a.reply_started:
            self.route(turn, a, a.transcript, a.intent if a.matched else self.match(a, a.transcript))
        outcome = a.intent
        turn.route = "intent" if outcome is not None else "llm"
        if outcome is not None and a.diverted is not None:
            # HA acts: only the matcher's own state (the question back it answered is closed; timers)
            for part in (outcome, *outcome.also):
                if self.intents is not None:
                    self.intents.apply(part)
        elif outcome is not None:
            turn.reply_text = a.reply_text
            intent_ms = turn.latency()["intent_ms"]
            self._apply_intent(turn, outcome, a.transcript, intent_ms)
        self.publish(ev.ResponseStartedInfo(turn.route), turn)

    def agent_failed(self, turn: Turn, a: Attempt, publish: bool = True) -> None:
        """Home Assistant's agent failed on (or did not understand) this committed attempt: the fast
        path's intent applies once (its events and MQTT intent, so an automation can still act); its
        confirmation is already spoken; the matcher applied it at the commit. ``publish`` False (HA
        timed out, so it may have acted): the intent's handlers run, its events are not published — the
        blueprint would act a second time on them."""
        outcome, a.diverted = a.diverted, None
        if outcome is not None and a.committed:
            ms = turn.latency()["intent_ms"]
            self._apply_intent(turn, outcome, a.transcript or "", ms, matcher=False, publish=publish)

    def _apply_intent(
        self,
        turn: Turn,
        outcome: IntentOutcome,
        transcript: str,
        intent_ms: float | None,
        matcher: bool = True,
        publish: bool = True,
    ) -> None:
        for part in (outcome, *outcome.also):  # each command of the sentence, on its own
            if publish:
                self.publish(ev.IntentInfo(part.name, tuple(part.slots), transcript, intent_ms), turn)
            if matcher and self.intents is not None:
                self.intents.apply(part)
            if self.on_intent is not None:
                try:
                    self.on_intent(turn, part)
                except Exception:
                    log.exception("turn=%d intent handler failed", turn.id)
