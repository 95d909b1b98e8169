"""Turn-taking decisions: when the user's turn is over, and what becomes of speech that comes after it.

The orchestrator acts (commits, cancels, starts turns); this decides, from the words and the config:
- a speculative transcript *completes* the turn at once (a complete fast-path command);
- an unfinished transcript ("turn on the light and", "what is the") is *held*: the listener carries on
  ``endpoint.unfinished_silence_ms`` from the last word for the rest;
- speech after a commit is a *continuation*: the next turn once this one's reply is over, or — for a
  question whose answer nobody has heard yet — the same question going on, asked again whole;
- a reply that was heard opens the follow-up window, which knows the command it may go on from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from edge_voice.core.config import Config
from edge_voice.core.endofturn import unfinished
from edge_voice.core.intent import IntentOutcome
from edge_voice.core.jobs import ListenControl
from edge_voice.core.messages import SpeechStarted, SpeechStopped, Transcript
from edge_voice.core.turns import Attempt, Turn, next_turn_id

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Continuation:
    """Speech the user went on with after their turn was committed ("turn on the kitchen light ⟨pause⟩
    and turn off the fan"): the next turn's, once this one's reply is over."""

    started: SpeechStarted
    echo_of: str  # the reply was audible when it began: its words may be that reply, heard back
    stopped: SpeechStopped | None = None
    holding: bool = False  # the answer's playback is held until this speech ends (the question may go on)
    # its own turn, made at its first pause to decode it there (``endpoint.decode_continuation``) while
    # the committed turn still runs; not live (nothing of it is routed or published) until that one ends
    turn: Turn | None = None
    early: list[Transcript] = field(default_factory=list)  # its transcripts that came before it was live


class TurnTaking:
    """Holds what outlives one turn of turn-taking: the continuation waiting to be the next turn and the
    command the follow-up window may go on from."""

    def __init__(self, cfg: Config, listen: ListenControl) -> None:
        self.cfg: Config = cfg  # (apply_config replaces it on a reload)
        self.listen = listen
        self.next: Continuation | None = None
        self.window_previous: IntentOutcome | None = None  # "turn it off" / "and the fan" after a command

    def completes(self, a: Attempt) -> bool:
        """A speculative transcript that may end the turn at once: a complete fast-path command that
        does not stop mid-clause ("turn on the light and" waits for its end)."""
        return (
            a.intent is not None
            and a.intent.name != "clarify"  # "Turn off." ⟨pause⟩ "the fan": a question back waits for the end
            and self.cfg.intents.early_commit
            and not (self.cfg.endpoint.unfinished_silence_ms and unfinished(a.transcript or ""))
        )

    def completes_question(self, a: Attempt) -> bool:
        """A speculative transcript that ends the turn once its pause reached
        ``endpoint.question_commit_silence_ms``: a question for the LLM that whisper heard as finished
        ("…?") and that does not stop mid-clause. Said on after that, before its answer is heard, it is
        asked again whole (``went_on``)."""
        text = (a.transcript or "").strip()
        return (
            bool(self.cfg.endpoint.question_commit_silence_ms)
            and a.question_settled
            and a.matched
            and a.intent is None
            and text.endswith("?")
            and not unfinished(text)
        )

    def hold(self, turn: Turn, a: Attempt, msg: SpeechStopped) -> bool:
        """A transcript that stops mid-clause: wait for the rest instead of answering half (True)."""
        wait = self.cfg.endpoint.unfinished_silence_ms
        if not wait or a.transcript is None or msg.reason != "silence" or not unfinished(a.transcript):
            return False
        turn.held = a
        turn.hold_words(a)
        self.listen.carry_on(msg.at_sample, wait - self.cfg.endpoint.silence_end_ms)
        log.debug("turn=%d unfinished %r: waiting for the rest", turn.id, a.transcript)
        return True

    def committed(self, a: Attempt) -> None:
        """After a commit the listener carries on: what the user says next is heard, not lost."""
        if self.cfg.endpoint.continuation:
            self.listen.carry_on(a.after_sample)
        else:
            self.listen.close()

    def went_on(self, turn: Turn, msg: SpeechStarted) -> None:
        """The user speaks on after their turn was committed (the listener carries on after a commit).
        Nothing said is lost: it becomes the next turn — or, if it was a question whose answer nobody
        has heard yet, the question was not finished and is asked again whole."""
        if not self.cfg.endpoint.continuation or turn.route == "say" or self.next is not None:
            return  # a wake word or the button interrupts a reply; say turns hear nobody
        self.next = nxt = Continuation(msg, turn.reply_text if turn.audible else "")
        a = turn.committed
        if a is not None and turn.route != "intent" and not turn.heard_before(msg.captured_ns):
            # Nothing of the answer was heard when this speech began: hold it until this speech ends.
            # Then either the question went on (ask again, whole), or it was "Hey Jarvis" (the wake
            # word's barge-in cancels it). Judged on the capture clock: a busy listener reports the
            # speech late, after the answer began to play ("what is the ⟨500⟩ capital of Spain" answered
            # "What is that?"), and what plays already is cut when the question is asked again.
            if not turn.audible:
                a.gate.clear()
            nxt.holding = True

    def early_turn(self, now_ns: int) -> Turn | None:
        """The turn to decode the continuation on now, while the committed turn's reply is prepared or
        plays (made on first use), so its words are ready when that reply is over. None when it is not
        decoded early: off, no continuation, or a question going on (asked again whole, with the words
        before it)."""
        nxt = self.next
        on = self.cfg.endpoint.decode_continuation and self.cfg.endpoint.speculative_silence_ms > 0
        if nxt is None or nxt.holding or not on:
            return None
        if nxt.turn is None:
            nxt.turn = Turn(next_turn_id(), "continuation", now_ns)
        return nxt.turn

    def early_result(self, msg: Transcript) -> bool:
        """A transcript of the continuation's early decode (True): kept until its turn is live, then
        handled as any transcript (``Continuation.early``); a stale one is dropped."""
        nxt = self.next
        a = nxt.turn.live(msg.turn_id, msg.attempt) if nxt is not None and nxt.turn is not None else None
        if nxt is None or a is None:
            return False
        nxt.early.append(msg)
        return True

    def drop(self) -> None:
        """The continuation goes with the turn (a barge-in, a cancel): its early decodes stop."""
        nxt, self.next = self.next, None
        if nxt is not None and nxt.turn is not None:
            nxt.turn.cancel_all("turn_ended")

    def stopped(self, msg: SpeechStopped) -> bool:
        """The continuation's speech ended (True), while the committed turn's reply is prepared or plays."""
        if self.next is None or self.next.stopped is not None:
            return False
        self.next.stopped = msg
        return True

    def settle(self, turn: Turn) -> Continuation | None:
        """Once the route is known and the held-over speech has ended: a command's confirmation plays
        (the speech is the next turn); an unheard answer is dropped — the continuation returned is the
        question going on, to be asked again whole with the committed attempt's words."""
        nxt, a = self.next, turn.committed
        if nxt is None or not nxt.holding or a is None:
            return None
        heard = turn.heard_before(nxt.started.captured_ns)
        if turn.route == "intent" or heard or (nxt.stopped is not None and nxt.stopped.echo):
            nxt.holding = False
            # (it may have started before the hold): the speech is the next turn — or the device's own
            # voice (a chime's), cancelled then
            a.gate.set()
            return None
        if turn.route != "llm" or nxt.stopped is None:
            return None
        self.next = None
        if nxt.turn is not None:  # (decoded alone: the question is decoded again with its start)
            nxt.turn.cancel_all("continued")
            nxt.turn, nxt.early = None, []
        return nxt

    def ended(self, turn: Turn, status: str, muted: bool) -> tuple[bool, Continuation | None]:
        """A turn ended: whether the follow-up window opens, and the continuation that is the next turn."""
        nxt, self.next = self.next, None
        follow = (
            (
                (status == "done" and turn.route in ("llm", "intent") and bool(turn.heard_text))
                or status == "echo"
            )
            and not muted
            and self.cfg.conversation.follow_up_window_ms > 0
        )  # a reply was heard: the user may answer it without the wake word
        done = turn.committed
        self.window_previous = done.intent if follow and done is not None else None
        if muted and nxt is not None and nxt.turn is not None:
            nxt.turn.cancel_all("turn_ended")
        return follow, None if muted else nxt
