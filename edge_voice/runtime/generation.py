"""An LLM answer as it is spoken: tokens streamed, split into sentences as they arrive, each sentence
checked by the reply guard and handed on at once. One function for the daemon's LLM thread and for
`edge-voice ask`, so both give the same answer to the same request.

The guard ends the answer early: after ``llm.max_sentences`` spoken sentences, at a question the model
asks itself, or at a sentence it refuses (foreign, markup only, an invented live fact; then
``reply_guard.FALLBACK`` is spoken if nothing was yet). The stream is closed at once, so llama.cpp drops
the request and the LLM thread is free; the answer's text is then what was spoken, so history never
holds what the listener did not hear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from edge_voice.core.cancel import CancelToken
from edge_voice.core.chunker import through_last_sentence
from edge_voice.core.messages import ChatMessage
from edge_voice.core.reply_guard import FALLBACK, ReplyGuard
from edge_voice.engines.base import Generator, Stopped


class SentenceSplitter(Protocol):
    """The slice of the chunker an answer needs (engines/chunker.py implements it)."""

    def push(self, text: str) -> list[str]: ...

    def flush(self, drop_incomplete: bool = False) -> list[str]:
        """The rest; ``drop_incomplete``: not a sentence cut off by the token limit (unless it is all)."""
        ...


@dataclass(frozen=True, slots=True)
class Generated:
    # exactly as generated (history keeps it for a prefix-stable prompt); when the guard ended the answer,
    # the generated text through the last sentence spoken (or the fallback sentence, if that was spoken)
    text: str
    pieces: int
    stopped: Stopped  # a guard-ended answer is complete as spoken: "eos"
    cut: str = ""  # why the guard ended it: sentences, run-on, question, foreign:<lang>, live-fact, …


def generate_sentences(
    engine: Generator,
    messages: Sequence[ChatMessage],
    cancel: CancelToken,
    splitter: SentenceSplitter,
    on_piece: Callable[[str, bool], None],
    on_sentence: Callable[[str], None],
    guard: ReplyGuard | None = None,
) -> Generated:
    """Stream one answer; ``on_piece(text, first)`` for each token piece, ``on_sentence`` for each
    spoken sentence as soon as it is complete (and, with a ``guard``, passed by it). Engine errors
    propagate (the caller reports them)."""
    pieces: list[str] = []
    stopped: Stopped = "eos"
    spoken_raw = ""  # the generated text through the end of the last sentence spoken
    cut = ""

    def hand_out(sentences: Sequence[str]) -> bool:
        """Speak what passes; False once the answer must end here."""
        nonlocal spoken_raw, cut
        for s in sentences:
            if not s.strip() or cancel.cancelled:
                continue
            if guard is None:
                on_sentence(s)
                continue
            before = guard.sentences
            verdict = guard.check(s)
            if verdict.action != "speak":
                cut = verdict.reason
                if verdict.action == "refuse" and not guard.spoken:
                    on_sentence(FALLBACK)
                    spoken_raw = FALLBACK
                return False
            on_sentence(verdict.text)
            if guard.sentences > before:
                spoken_raw = through_last_sentence("".join(pieces)) or spoken_raw
            if guard.done:
                cut = "sentences"
                return False
        return True

    stream: Iterator[str] = iter(engine.stream(messages, cancel))
    try:
        for piece in stream:
            if cancel.cancelled:
                stopped = "cancelled"
                break
            on_piece(piece, not pieces)
            pieces.append(piece)
            if not hand_out(splitter.push(piece)):
                break
        else:
            stats = engine.last
            if stats is not None and stats.stopped == "max_tokens":
                stopped = "max_tokens"  # history then keeps only the sentences that were spoken
            rest = splitter.flush(drop_incomplete=stopped == "max_tokens")
            if hand_out(rest) and guard is not None and not guard.spoken and not cancel.cancelled:
                on_sentence(FALLBACK)  # nothing speakable came: never silence
                spoken_raw, cut = FALLBACK, "empty"
    finally:
        close = getattr(stream, "close", None)
        if close is not None:
            close()  # a generator engine stops now (llama.cpp drops the request, the slot is free)
    if cancel.cancelled and stopped == "eos":
        return Generated("".join(pieces), len(pieces), "cancelled")
    if cut:
        return Generated(spoken_raw, len(pieces), "eos", cut)
    return Generated("".join(pieces), len(pieces), stopped)
