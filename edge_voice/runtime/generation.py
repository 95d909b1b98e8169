"""An LLM answer as it is spoken: tokens streamed, split into sentences as they arrive, each sentence
handed on at once. One function for the daemon's LLM thread and for `edge-voice ask`, so both give the
same answer to the same request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from edge_voice.core.cancel import CancelToken
from edge_voice.core.messages import ChatMessage
from edge_voice.engines.base import Generator, Stopped


class SentenceSplitter(Protocol):
    """The slice of the chunker an answer needs (engines/chunker.py implements it)."""

    def push(self, text: str) -> list[str]: ...

    def flush(self, drop_incomplete: bool = False) -> list[str]:
        """The rest; ``drop_incomplete``: not a sentence cut off by the token limit (unless it is all)."""
        ...


@dataclass(frozen=True, slots=True)
class Generated:
    text: str  # exactly as generated (history keeps it for a prefix-stable prompt)
    pieces: int
    stopped: Stopped


def generate_sentences(
    engine: Generator,
    messages: Sequence[ChatMessage],
    cancel: CancelToken,
    splitter: SentenceSplitter,
    on_piece: Callable[[str, bool], None],
    on_sentence: Callable[[str], None],
) -> Generated:
    """Stream one answer; ``on_piece(text, first)`` for each token piece, ``on_sentence`` for each
    spoken sentence as soon as it is complete. Engine errors propagate (the caller reports them)."""
    pieces: list[str] = []
    stopped: Stopped = "eos"

    def hand_out(sentences: Sequence[str]) -> None:
        for s in sentences:
            if s.strip() and not cancel.cancelled:
                on_sentence(s)

    for piece in engine.stream(messages, cancel):
        if cancel.cancelled:
            stopped = "cancelled"
            break
        on_piece(piece, not pieces)
        pieces.append(piece)
        hand_out(splitter.push(piece))
    else:
        stats = engine.last
        if stats is not None and stats.stopped == "max_tokens":
            stopped = "max_tokens"  # history then keeps only the sentences that were spoken
        hand_out(splitter.flush(drop_incomplete=stopped == "max_tokens"))
    if cancel.cancelled and stopped == "eos":
        stopped = "cancelled"
    return Generated("".join(pieces), len(pieces), stopped)
