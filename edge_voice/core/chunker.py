"""Incremental sentence splitter between the LLM and TTS: text pieces in, speakable chunks out.

A chunk ends at ``[.!?…]`` followed by whitespace (abbreviations, initials, decimals and list numbers
excepted) or at a line break. Chunks shorter than ``min_chars`` are merged into the next, so Piper never
gets a lone "Sure." The FIRST chunk may also end at a clause boundary (``, ; :`` or before a word that
opens a phrase: " and ", " but ", " that ", " because ", " depending "…) once ``first_chunk_min_words``
words have arrived: TTS starts on a clause while the LLM writes the rest. Markdown (``* # `` ``, list
bullets, links) and emoji are stripped from what is returned.

Pure: no I/O, no clock. One instance per reply (``flush`` resets it).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_voice.core.config import TtsConfig

MIN_CHARS = 12  # fragments shorter than this are merged into the next chunk
MAX_CHARS = 300  # a run with no boundary at all is cut at a space so TTS never waits for ever

# Never a sentence end: titles and Latin abbreviations that precede more of the same sentence.
_NEVER_SPLIT = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "sr", "jr", "vs", "e.g", "i.e", "approx", "fig", "mt", "ft", "no"}
)
# A sentence end only when the next word starts with a capital ("at 9 a.m. Then ...").
_SPLIT_IF_CAPITAL = frozenset(
    {
        "a.m",
        "p.m",
        "etc",
        "inc",
        "ltd",
        "co",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
    }
)

_CLOSERS = "*_\"'”’)]"  # markup/quotes that may follow the full stop: "**Yes.** Then"
_SENTENCE_END = re.compile(rf"[.!?…]+[{re.escape(_CLOSERS)}]*(?=\s)")
_FINAL_PUNCT = re.compile(rf"[.!?…]+[{re.escape(_CLOSERS)}]*")  # the same, also at the end of the text
# where a spoken phrase may break: after , ; : or before a word that opens a new phrase. A long first
# sentence ("The number of days in a week can vary greatly depending on …") would otherwise keep TTS
# waiting for all of it and then take ~350 ms to synthesise.
_PHRASE_OPENERS = (
    "and|but|that|which|who|because|when|where|while|with|depending|since|although|including|especially"
)
_CLAUSE_END = re.compile(rf"[,;:](?=\s)|\s(?=(?:{_PHRASE_OPENERS})\s)")
# ``phrase_breaks``: the first chunk may also end before a preposition or a linking verb ("The largest
# planet | in the solar system is Jupiter.", "The capital of France | is Paris."), a phrase boundary a
# listener hears as a short breath; without one a first sentence with no comma is synthesised whole
PHRASE_BREAK_WORDS = "in|on|of|at|to|for|from|by|about|into|is|are|was|were|has|have"
_PHRASE_BREAK = re.compile(rf"\s(?=(?:{PHRASE_BREAK_WORDS})\s)")
_LAST_TOKEN = re.compile(r"(\S+)$")
_ACRONYM = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # U.S / e.g style (the final '.' is the candidate)

_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_BULLET = re.compile(r"(?m)^\s*(?:[-*+•]|\d+[.)])\s+")
_HEADING = re.compile(r"(?m)^\s*#+\s*")
_MARKUP = re.compile(r"[*`#~]|(?<!\w)_+|_+(?!\w)")
_SPACES = re.compile(r"\s+")
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:…])")


def _is_emoji(ch: str) -> bool:
    if ch in "\u200d\ufe0f\ufe0e":  # zero-width joiner, variation selectors
        return True
    cp = ord(ch)
    # "So" above U+2000 is pictographs/dingbats/arrows; below it sit speakable signs such as "°".
    return (cp >= 0x2000 and unicodedata.category(ch) == "So") or 0x1F000 <= cp <= 0x1FAFF


def clean(text: str) -> str:
    """Strip markdown and emoji; collapse whitespace. Returns "" if nothing speakable is left."""
    text = _LINK.sub(r"\1", text)
    text = _BULLET.sub("", text)
    text = _HEADING.sub("", text)
    text = _MARKUP.sub("", text)
    text = "".join(ch for ch in text if not _is_emoji(ch))
    text = _SPACES.sub(" ", text).strip()
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)  # "hot 🔥." → "hot ." → "hot."
    return text if any(ch.isalnum() for ch in text) else ""


def through_last_sentence(text: str) -> str:
    """``text`` up to and including its last sentence-final punctuation (and closers); "" if none."""
    ends = list(_FINAL_PUNCT.finditer(text))
    return text[: ends[-1].end()] if ends else ""


def _word_count(text: str) -> int:
    return len(clean(text).split())


class SentenceChunker:
    """``push`` text pieces as they stream; each call returns the chunks completed by it."""

    def __init__(
        self,
        first_chunk_min_words: int,
        min_chars: int = MIN_CHARS,
        max_chars: int = MAX_CHARS,
        phrase_breaks: bool = False,
    ) -> None:
        if first_chunk_min_words < 1 or min_chars < 0 or max_chars < 20:
            raise ValueError("first_chunk_min_words ≥ 1, min_chars ≥ 0, max_chars ≥ 20")
        self.first_chunk_min_words = first_chunk_min_words
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.phrase_breaks = phrase_breaks
        self._buf = ""
        self._emitted = 0

    @property
    def chunks_emitted(self) -> int:
        return self._emitted

    def push(self, piece: str) -> list[str]:
        self._buf += piece
        out: list[str] = []
        while (cut := self._find_cut()) is not None:
            chunk = clean(self._buf[:cut])
            self._buf = self._buf[cut:]
            if chunk:
                out.append(chunk)
                self._emitted += 1
        return out

    def flush(self, drop_incomplete: bool = False) -> list[str]:
        """The rest of the text as a final chunk, then reset. ``drop_incomplete`` drops a trailing fragment
        with no sentence-final punctuation (a reply cut off by ``max_tokens``) if a chunk was already sent."""
        rest = clean(self._buf)
        complete = rest.rstrip(_CLOSERS).endswith((".", "!", "?", "…"))
        dropped = drop_incomplete and not complete and self._emitted > 0
        self._buf = ""
        self._emitted = 0
        return [rest] if rest and not dropped else []

    # ------------------------------------------------------------------------------------- internals

    def _find_cut(self) -> int | None:
        """End index (exclusive) of the first chunk in the buffer, or None if none is complete yet."""
        buf = self._buf
        candidates: list[int] = []
        for m in _SENTENCE_END.finditer(buf):
            if self._is_sentence_end(buf, m.start(), m.end()):
                candidates.append(m.end())
        newline = buf.find("\n")
        while newline != -1:
            candidates.append(newline + 1)
            newline = buf.find("\n", newline + 1)
        if self._emitted == 0:
            for rule in (_CLAUSE_END, _PHRASE_BREAK) if self.phrase_breaks else (_CLAUSE_END,):
                for m in rule.finditer(buf):
                    if _word_count(buf[: m.end()]) >= self.first_chunk_min_words:
                        candidates.append(m.end())
        for end in sorted(candidates):
            if len(clean(buf[:end])) >= self.min_chars:
                return end
        if len(buf) > self.max_chars:
            space = buf.rfind(" ", 0, self.max_chars)
            return space + 1 if space > 0 else self.max_chars
        return None

    def _is_sentence_end(self, buf: str, start: int, end: int) -> bool:
        if buf[start] != ".":
            return True  # ! ? … always end a sentence
        token_m = _LAST_TOKEN.search(buf[:start])
        token = token_m.group(1).lstrip("(\"'*_") if token_m else ""
        low = token.lower()
        if low in _NEVER_SPLIT:
            return False
        if len(token) == 1 and token.isupper():
            return False  # an initial: "J. K. Rowling"
        if token.isdigit():
            line_start = buf.rfind("\n", 0, start) + 1
            if not buf[line_start : start - len(token)].strip():
                return False  # "1. " at a line start is a list number, not a sentence
        if low in _SPLIT_IF_CAPITAL or _ACRONYM.fullmatch(token):
            rest = buf[end:].lstrip()
            if not rest:
                return False  # undecided until the next word arrives
            return rest[0].isupper()
        return True


def splitter_for(tts: TtsConfig) -> Callable[[], SentenceChunker]:
    """A fresh chunker per answer, as ``tts`` configures the first chunk: the daemon, ``ask`` and the
    answers bench all take it from here, so a new chunk setting reaches every one of them."""
    n, phrase_breaks = tts.first_chunk_min_words, tts.first_chunk_phrase_breaks
    return lambda: SentenceChunker(n, phrase_breaks=phrase_breaks)
