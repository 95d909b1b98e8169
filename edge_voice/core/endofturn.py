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

# prepositions a finished question may end on when its object was moved to the front as the question
# word ("What is water made of?", "What is it used for?", "Who is this for?"): after a verb or a pronoun
STRANDABLE = frozenset({"of", "to", "for", "with", "at", "about", "by", "into", "onto", "as"})
QUESTION_WORDS = frozenset({"what", "what's", "whats", "who", "who's", "whom", "which", "where"})
# the word before a stranded preposition that makes it a verb's ("made of", "looking at", "used for"),
# not a noun's that lacks its object ("the capital of", "the square root of"): past participles and -ing
# forms by their ending, and these irregular participles and common verbs
_VERBISH = frozenset(
    {
        "made",
        "built",
        "known",
        "written",
        "done",
        "born",
        "seen",
        "taken",
        "given",
        "worn",
        "sold",
        "held",
        "kept",
        "meant",
        "paid",
        "said",
        "sent",
        "spent",
        "told",
        "thought",
        "found",
        "heard",
        "bought",
        "brought",
        "caught",
        "taught",
        "drawn",
        "grown",
        "shown",
        "thrown",
        "eaten",
        "driven",
        "chosen",
        "spoken",
        "frozen",
        "stolen",
        "come",
        "go",
        "belong",
        "look",
        "listen",
        "talk",
        "think",
        "wait",
        "ask",
        "pay",
        "use",
        "stand",
        "consist",
        "refer",
        "afraid",
        "full",
        "like",
    }
)
# words that end like a participle but are not one here ("the meaning of", "divided by" a number)
_NOT_PARTICIPLE = frozenset(
    {"bed", "red", "need", "speed", "hundred", "divided", "multiplied", "added", "subtracted", "raised"}
)
_PRONOUNS = frozenset({"it", "this", "that", "these", "those", "them", "you", "me", "him", "her", "us"})
_DETERMINERS = frozenset({"the", "a", "an", "my", "your", "its", "his", "her", "our", "their"})

_WORD = re.compile(r"[a-z']+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def unfinished(text: str) -> bool:
    """True if ``text`` stops mid-clause (its last word needs more after it). Whisper's own trailing
    "..." or "-" on a cut-off word counts too. A question that ends on a preposition stranded after a
    verb ("What is water made of?") is finished (``stranded_question``)."""
    stripped = text.strip()
    if not stripped:
        return False
    if stripped.endswith(("...", "…", "-", "—", ",")):
        return True
    w = words(stripped)
    return bool(w) and w[-1] in UNFINISHED_LAST_WORDS and not stranded_question(stripped, w)


def stranded_question(text: str, w: list[str]) -> bool:
    """A question whisper heard as finished ("?") that ends on a preposition stranded after a verb:
    its object is the question word in front ("What is water made of?" = water is made of what). Not
    a noun's preposition: "What is the capital of?" still wants its object."""
    if not text.endswith("?") or len(w) < 3 or w[-1] not in STRANDABLE:
        return False
    if not any(x in QUESTION_WORDS for x in w[:3]):
        return False
    before = w[-2]
    if before in _VERBISH or before in _PRONOUNS:
        return True
    # "looking at", "used for" — but "the meaning of" is a noun's
    return before.endswith(("ed", "ing")) and before not in _NOT_PARTICIPLE and w[-3] not in _DETERMINERS


def is_echo(transcript: str, reply: str, share: float = 0.6) -> bool:
    """True if most of ``transcript``'s words are words of ``reply``: the microphone heard the
    device's own confirmation, not the user."""
    heard, said = words(transcript), set(words(reply))
    if not heard or not said:
        return False
    return sum(w in said for w in heard) / len(heard) >= share
