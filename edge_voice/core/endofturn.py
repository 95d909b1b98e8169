"""End of turn from words: is a transcript a finished sentence, or did the user stop mid-clause?

Silence alone cannot tell "turn on the kitchen light" (done: answer now) from "turn on the kitchen light
and" (going on: wait). The last word can. A transcript ending in a conjunction, an article, a possessive or
a preposition that needs its object is unfinished: the orchestrator waits ``endpoint.unfinished_silence_ms``
for the rest instead of answering half a question. Words that also end finished sentences are left out,
so a finished command is never held.

Also here: whether a continuation transcript is only the device's own reply heard back (no echo
cancellation yet: the microphone stays open while a confirmation plays).
"""

from __future__ import annotations

import re

# words a spoken sentence to a voice assistant does not end on. Not verb particles or pronouns, which end
# commands ("switch the fan off", "turn it on"), nor words that end questions ("where are you from", "tell
# me why", "what day it is", "I'd like some"): a question cut there is still caught, as the user goes
# on before its answer is heard (the orchestrator then asks again with the whole sentence).
UNFINISHED_LAST_WORDS = frozenset(
    {
        # conjunctions
        "and",
        "or",
        "but",
        "nor",
        "because",
        "then",
        "plus",
        "also",
        # articles, possessives
        "the",
        "a",
        "an",
        "my",
        "your",
        "our",
        "their",
        "its",
        "every",
        # prepositions that need their object
        "of",
        "to",
        "for",
        "with",
        "at",
        "about",
        "into",
        "onto",
        "than",
        "as",
        "by",
        "via",
        "between",
        # question words that need more
        "what's",
        "whats",
        "which",
        "whose",
    }
)

_WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def unfinished(text: str) -> bool:
    """True if ``text`` stops mid-clause (its last word needs more after it). Whisper's own trailing
    "..." or "-" on a cut-off word counts too."""
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.endswith(("...", "…", "-", "—", ",")):
        return True
    w = words(stripped)
    return bool(w) and w[-1] in UNFINISHED_LAST_WORDS


def is_echo(transcript: str, reply: str, share: float = 0.6) -> bool:
    """True if most of ``transcript``'s words are words of ``reply``: the microphone heard the
    device's own confirmation, not the user."""
    heard, said = words(transcript), set(words(reply))
    if not heard or not said:
        return False
    return sum(w in said for w in heard) / len(heard) >= share
