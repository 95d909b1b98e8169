"""`edge-voice ask`: a typed question through the same answer path as a spoken turn — the fast-path rules
and skills first, then the LLM with the daemon's own prompt (system prompt, history, facts line), its
answer streamed into the same spoken sentences — without audio. Engines load and warm once; each
question is timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import Config
from edge_voice.core.conversation import Conversation, as_generated
from edge_voice.core.intent import IntentMatcher, IntentOutcome
from edge_voice.core.reply_guard import ReplyGuard
from edge_voice.engines.base import Generator
from edge_voice.runtime.generation import SentenceSplitter, generate_sentences


@dataclass(frozen=True, slots=True)
class Answer:
    question: str
    reply: str  # what would be spoken
    route: str  # "intent" (fast path: rules and skills) or "llm"
    intent: str | None = None  # the fast-path intent's name
    sentences: tuple[str, ...] = ()
    stopped: str = ""  # why the LLM stopped (eos, max_tokens, …); "" on the fast path
    timings: dict[str, float | None] = field(default_factory=dict)
    cut: str = ""  # why the reply guard ended the answer (sentences, foreign:<lang>, …); "" if it did not

    def as_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "reply": self.reply,
            "route": self.route,
            "intent": self.intent,
            "sentences": list(self.sentences),
            "stopped": self.stopped,
            "cut": self.cut,
            **self.timings,
        }


class Asker:
    """``session``: history carries from one question to the next (else each is asked fresh)."""

    def __init__(
        self,
        cfg: Config,
        llm: Generator,
        matcher: IntentMatcher | None,
        make_splitter: Callable[[], SentenceSplitter],
        facts: Callable[[], str] | None = None,
        session: bool = False,
        ground: Callable[[str], str] | None = None,
        guard: bool = True,
    ) -> None:
        self.cfg, self.llm, self.matcher, self.make_splitter = cfg, llm, matcher, make_splitter
        self.conversation = Conversation(cfg.llm, time.monotonic, facts, ground)
        self.session = session
        self.guard = guard  # the daemon's reply guard (off only for a benchmark's baseline)
        # with ``session``, the fast path's state carries too, as after a heard reply in the daemon: the
        # command a follow-up goes on from ("and the fan", "turn it off"), timers, a question asked back
        self.previous: IntentOutcome | None = None

    def ask(self, question: str) -> Answer:
        text = question.strip()
        t0 = time.perf_counter_ns()

        def ms() -> float:
            return round((time.perf_counter_ns() - t0) / 1e6, 1)

        matcher = self.matcher if self.cfg.intents.enabled else None
        outcome = matcher.match(text, self.previous) if matcher is not None else None
        intent_ms = ms()
        if self.session and matcher is not None:
            for part in (outcome, *outcome.also) if outcome is not None else ():
                matcher.apply(part)  # as the daemon does at the commit
            self.previous = outcome
        if outcome is not None:
            reply = self.conversation.intent_reply(outcome)
            timings = {
                "intent_ms": intent_ms,
                "llm_ttft_ms": None,
                "first_sentence_ms": None,
                "total_ms": ms(),
            }
            return Answer(question, reply, "intent", outcome.name, (reply,) if reply else (), "", timings)
        if not self.session:
            self.conversation.history.items.clear()
        user, messages = self.conversation.request(text)
        marks: dict[str, float] = {}  # llm_ttft_ms, first_sentence_ms
        sentences: list[str] = []

        def piece(_text: str, is_first: bool) -> None:
            if is_first:
                marks["llm_ttft_ms"] = ms()

        def sentence(s: str) -> None:
            marks.setdefault("first_sentence_ms", ms())
            sentences.append(s.strip())

        guard = ReplyGuard(text, self.cfg.llm.max_sentences) if self.guard else None
        done = generate_sentences(
            self.llm, messages, CancelToken(), self.make_splitter(), piece, sentence, guard
        )
        reply = " ".join(sentences)
        if self.session and reply:
            said = as_generated(done.text, done.stopped) or reply  # as generated: a prefix-stable prompt
            self.conversation.history.add(time.monotonic(), user, said)
        timings = {
            "intent_ms": intent_ms,
            "llm_ttft_ms": marks.get("llm_ttft_ms"),
            "first_sentence_ms": marks.get("first_sentence_ms"),
            "total_ms": ms(),
            **_llm_stats(self.llm),
        }
        return Answer(question, reply, "llm", None, tuple(sentences), done.stopped, timings, cut=done.cut)


def _llm_stats(llm: Generator) -> dict[str, float | None]:
    """The LLM's own account of the answer: prompt tokens evaluated (not served from the KV cache), reused
    from the cache, and the time llama.cpp spent evaluating them."""
    s = llm.last
    if s is None:
        return {}
    return {
        "llm_prompt_tokens": s.prompt_tokens,
        "llm_cached_tokens": s.cached_tokens,
        "llm_prompt_ms": round(s.prompt_ms, 1),
    }


def load_asker(cfg: Config, session: bool = False, progress: Callable[[str], None] | None = None) -> Asker:
    """Only what answering needs (no audio engines): the rules and the LLM, warm."""
    from edge_voice.core import chunker
    from edge_voice.engines import phonetic
    from edge_voice.engines.intents import RuleIntentMatcher, ha_sentences
    from edge_voice.engines.skills import load_skills
    from edge_voice.runtime.daemon import ReportsFallback, load_llm

    say = progress or (lambda _m: None)

    def timed(name: str, fn: Callable[[], Any]) -> Any:
        say(f"loading {name}…")
        return fn()

    fallbacks: list[ReportsFallback] = []
    llm = load_llm(cfg, timed, fallbacks)
    skills = timed("skills", lambda: load_skills(cfg.skills.enabled, country=cfg.skills.country))
    sentences = timed("ha_sentences", lambda: ha_sentences(cfg.intents))
    matcher = (
        RuleIntentMatcher(cfg.intents, skills=skills, sentences=sentences, phonemes=phonetic.for_config(cfg))
        if cfg.intents.enabled
        else None
    )
    return Asker(cfg, llm, matcher, chunker.splitter_for(cfg.tts), session=session, ground=skills.facts)
