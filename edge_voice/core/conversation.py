"""The conversation: what the LLM is asked and what it remembers (as Home Assistant's conversation agent
and pipecat's context aggregator hold it, apart from the turn state machine).

Prefix-stable, because llama.cpp reuses the KV cache of the longest common prompt prefix: the system
prompt comes first, then the example exchanges (``llm.examples``; the fixed prefix the LLM evaluates
once at start-up, see ``prompt_prefix``), then history, then the changing facts just before the user's
words; the user message is stored exactly as it was sent and a fully heard answer exactly as generated;
when memory is full it is cut back to the last exchange in one step rather than sliding (a slide changes
the prefix on every turn: measured TTFT grew from 0.23 to 1.0 s over five questions).
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_voice.core.chunker import through_last_sentence
from edge_voice.core.config import LlmConfig
from edge_voice.core.intent import IntentOutcome
from edge_voice.core.messages import ChatMessage
from edge_voice.core.turns import Turn


@dataclass(slots=True)
class History:
    """Conversation memory for the LLM: only what was actually heard is kept."""

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


class Conversation:
    """Builds each LLM request and keeps the history; ``now_s`` is the injected monotonic clock."""

    def __init__(
        self,
        cfg: LlmConfig,
        now_s: Callable[[], float],
        facts: Callable[[], str] | None = None,
        ground: Callable[[str], str] | None = None,
    ):
        self.cfg = cfg
        self.now_s = now_s
        self.facts = facts or default_facts
        self.ground = ground  # what the offline skills know about the words (not an answer): no guessing
        self.history = History(cfg.history_turns, cfg.history_window_s)
        self.last_reply = ""  # for the "repeat" intent
        self._cut_off: dict[int, Turn] = {}  # replies cut off mid-word: waiting for what was heard

    def configure(self, cfg: LlmConfig) -> None:
        """A reloaded config (system prompt, memory size, prime)."""
        self.cfg = cfg
        self.history.max_turns = cfg.history_turns
        self.history.window_s = cfg.history_window_s

    def request(self, text: str) -> tuple[str, tuple[ChatMessage, ...]]:
        """(user message, whole request) for ``text``: the fixed prefix first (system prompt and examples:
        its KV cache is reused), then history, then the changing facts just before the words."""
        facts = self.facts()
        known = self.ground(text) if self.ground is not None and text else ""
        facts = f"{facts} {known}".strip()
        user = f"({facts})\n{text}" if facts else text
        msgs = (
            *prompt_prefix(self.cfg),
            *self.history.messages(self.now_s()),
            ChatMessage("user", user),
        )
        return user, msgs

    def prime_request(self) -> tuple[ChatMessage, ...] | None:
        """The request up to where the user's words will go, for the LLM to evaluate while the user
        speaks; None when priming is off."""
        return self.request("")[1] if self.cfg.prime else None

    def intent_reply(self, outcome: IntentOutcome) -> str:
        if outcome.name == "repeat":
            return self.last_reply or "I haven't said anything yet."
        return outcome.reply

    def remember(self, turn: Turn, complete: bool = False) -> bool:
        """History gets what was heard. A ``complete`` reply is stored as generated, so the next prompt
        shares its KV cache prefix (the heard text is cleaned and stripped: re-evaluating a whole answer
        cost ~200 ms of TTFT on the next question). True if something was added."""
        heard = turn.heard_text.strip()
        if not heard or turn.remembered:
            return False
        a = turn.committed
        said = as_generated(a.generated, a.stopped) if a is not None and complete else ""
        user = a.prompt_user if a is not None and a.prompt_user else turn.transcript
        self.history.add(self.now_s(), user, said or heard)
        turn.remembered = True
        return True

    def finished(self, turn: Turn, status: str) -> None:
        """A turn ended: an LLM answer enters history (a failed one is not a conversation to continue);
        a heard reply is what "repeat" says next."""
        if turn.route == "llm" and status != "error":
            self.remember(turn, complete=status == "done")
        if turn.reply_text and turn.heard_text:
            self.last_reply = turn.reply_text

    def cut_off(self, turn: Turn) -> None:
        """A reply was cut off mid-word: history waits for the playback thread to say what was heard."""
        self._cut_off[turn.id] = turn

    def heard(self, turn_id: int, heard_text: str) -> Turn | None:
        """What was heard of a cut-off reply (an answer enters history with it); None if not cut off."""
        turn = self._cut_off.pop(turn_id, None)
        if turn is not None:
            turn.heard_text = heard_text
            if turn.route == "llm":
                self.remember(turn)
        return turn

    @property
    def awaiting_heard(self) -> bool:
        """Replies cut off whose playback has not yet said what was heard."""
        return bool(self._cut_off)

    def give_up(self) -> list[Turn]:
        """Shutdown: the cut-off replies the playback thread never answered for."""
        turns, self._cut_off = list(self._cut_off.values()), {}
        return turns


def prompt_prefix(cfg: LlmConfig) -> tuple[ChatMessage, ...]:
    """The start of every request, the same for every turn: the system prompt, then each example as a
    user/assistant exchange (a small model copies their length, language and honesty). The daemon warms
    exactly this at start-up (``Generator.warm``), so the examples cost no time per turn."""
    msgs = [ChatMessage("system", cfg.system_prompt)]
    for ex in cfg.examples:
        msgs += [ChatMessage("user", ex.user), ChatMessage("assistant", ex.assistant)]
    return tuple(msgs)


def as_generated(generated: str, stopped: str) -> str:
    """The generated text a fully heard reply said: all of it at end of stream; cut by ``max_tokens``,
    up to its last sentence end (the chunker dropped the unfinished tail). "" if none is usable."""
    if stopped == "eos":
        return generated if generated.strip() else ""
    if stopped == "max_tokens":
        return through_last_sentence(generated)
    return ""


def default_facts() -> str:
    now = dt.datetime.now()
    return f"It is {now:%H:%M} on {now:%A, %d %B %Y}."
