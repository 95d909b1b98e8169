"""The reply guard: every sentence of an LLM answer is checked before it is spoken (issue 17).

A 135M model answers in French to an English question, writes lists, runs on into a second question it
invented, and gives tomorrow's temperature with confidence. ``ReplyGuard`` is asked once per sentence, in
order, for one reply (one instance per reply) and says: speak it (cleaned of markup), end the reply here
quietly (enough was said), or refuse it (the reply ends; if nothing was spoken yet, ``FALLBACK`` is).

Pure: no I/O, no clock, no model. Foreign text is told by function words (a few hundred short words of
English, French, German, Spanish, Italian, Portuguese and Dutch that the other languages do not share)
and by letters outside Latin script: names ("Canberra", "Jupiter", "Sao Paulo") are no function word of
any language, so they never count, and no word list has to be installed.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

FALLBACK = "Sorry, I don't know that one."
MAX_SENTENCES = 2

Action = Literal["speak", "end", "refuse"]


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Action
    text: str = ""  # what to speak ("speak"): the sentence without markup
    reason: str = ""  # why a reply ends or is refused: sentences, run-on, question, foreign:<lang>,
    # markup, live-fact


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# English function words and the commonest short words of answers.
_ENGLISH = _words(
    """a an the and or but if so of to in on at by for from with without about as into onto over under
    is are was were be been being am do does did done have has had having will would shall should can could
    may might must it its it's this that these those there here their they them he him his she her hers we
    us our you your i me my mine not no yes very more most many much some any all each every one two three
    what which who whom whose when where why how than then also too only just because while after before
    between during through up down out off again once about around near far large small big long short
    called known named made used like such other another same own new old first last most best good well
    year years day days time people world country city capital water part number way about include includes
    including usually often always never sometimes make makes get gets got i'm i'll i've you're don't can't
    won't isn't aren't doesn't didn't that's there's let's sorry thank thanks please hello hi okay
    sure"""
)

# Words of one language that are not English words (so "die", "also", "was", "come", "son", "per", "con",
# "fast", "hat", "war", "bin", "in", "a" are left out: they would count against plain English).
_FOREIGN: dict[str, frozenset[str]] = {
    "french": _words(
        """le la les un une des du de est sont et ou où mais donc avec sans pour par dans sur sous chez
        je tu il elle nous vous ils elles mon ton son ma ta sa mes tes ses notre votre leur leurs ce cette
        ces qui que quoi dont très bien merci bonjour bonsoir salut oui non pas être avoir fait été
        capitale ville pays grand grande petit petite aussi comme plus moins tout tous toute toutes c'est
        n'est qu'il j'ai l'eau d'un d'une au aux y ça voilà beaucoup"""
    ),
    "german": _words(
        """der das und ist sind nicht ein eine einen einem einer eines mit von zu zum zur auf für ich du
        er sie es wir ihr mein dein sein unser euer kein keine auch noch nur schon sehr gut danke bitte
        hallo ja nein wie wo wer warum weil dass oder aber ist's haben hat wird werden wurde
        hauptstadt stadt land größte ganz gibt es heute morgen nicht"""
    ),
    "spanish": _words(
        """el la los las una unos unas de del a al es son está están y pero con sin para por en
        yo tú él ella nosotros ellos mi tu su sus nuestro muy bien gracias hola sí no también como más
        menos todo todos capital ciudad país grande pequeño que qué quién dónde cuándo porque hay ser
        estar tiene tienen hace días lo"""
    ),
    "italian": _words(
        """il la lo gli della dello delle degli dei di da a è sono e ed ma con senza tra fra nel nella
        io tu lui lei noi voi loro mio tuo suo nostro molto bene grazie ciao buongiorno sì anche come più
        meno tutto tutti capitale città paese grande piccolo che chi dove quando perché ci sono ha hanno
        una uno un' l'acqua dell'"""
    ),
    "portuguese": _words(
        """o a os as um uma uns umas de do da dos das é são está estão e mas com sem para por em no na nos nas
        eu você ele ela nós eles meu seu sua muito bem obrigado obrigada olá sim não também mais menos
        tudo todos cidade país grande pequeno que quem onde quando porque há ser estar tem"""
    ),
    "dutch": _words(
        """de het een en is zijn niet met van op voor ik jij je hij zij wij jullie mijn jouw ons onze
        ook nog maar zeer goed dank bedankt hallo ja nee hoe waar wie waarom omdat dat of maar
        hoofdstad stad groot grote klein"""
    ),
}
# a word shared by English and another language ("a", "do", "capital", "no") tells neither
_SHARED = _ENGLISH & frozenset().union(*_FOREIGN.values())
_ENGLISH_ONLY = _ENGLISH - _SHARED
_FOREIGN = {lang: vocab - _ENGLISH for lang, vocab in _FOREIGN.items()}

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?")
_MARKUP = re.compile(r"[*#`~|]|^\s*(?:[-+•]|\d+[.)])\s+|\[([^\]]*)\]\([^)]*\)")
_SPACES = re.compile(r"\s+")

# Questions only live data can answer (the weather, markets, news, last night's game): an offline 135M
# model can only invent the answer, so anything but an honest "I can't" is refused. Topic words alone
# are not enough for sport or temperature ("Who won the World Cup in 1966?", "What temperature does water
# boil at?"): those need a word for now.
_RECENCY = (
    r"(today|tonight|tomorrow|yesterday|last night|this (morning|afternoon|evening|week|weekend)|"
    r"next week|right now|now|currently|at the moment|latest|current)"
)


def _near_now(topic: str) -> re.Pattern[str]:
    return re.compile(rf"\b({topic})\b.*\b{_RECENCY}\b|\b{_RECENCY}\b.*\b({topic})\b", re.IGNORECASE)


_LIVE = (
    re.compile(r"\b(weather|forecast)\b", re.IGNORECASE),
    re.compile(
        r"\b(price|prices|stocks?|share price|bitcoin|crypto\w*|exchange rate|interest rate|inflation)\b",
        re.IGNORECASE,
    ),
    re.compile(r"\bhow much (does|do|did|would|will|could)\b.*\bcost\b", re.IGNORECASE),  # "a Tesla"
    re.compile(r"\b(news|headlines?)\b", re.IGNORECASE),
    _near_now(r"rain\w*|snow\w*|sunny|cloudy|windy|hot|cold|warm|temperature|degrees|humid\w*|storm\w*"),
    _near_now(r"won|win|wins|winning|score|scores|result|results|match|game|games|beat|lost|playing"),
)
_DECLINE = re.compile(
    r"\b(can't|cannot|can not|don't have|do not have|not able|unable|don't know|do not know|no access|"
    r"offline|not connected|no internet|not sure)\b",
    re.IGNORECASE,
)
# A question the model asks itself after answering ("... Paris. What is the capital of Spain?")
_RUN_ON_QUESTION = re.compile(
    r"^(what|who|whom|whose|where|when|which|why|how (many|much|long|far|old|big|tall|do|does|did|is|are))\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")


def _asks(text: str) -> bool:
    """The user's words are a question (a typed one may come without its question mark)."""
    return text.rstrip().endswith("?") or bool(_RUN_ON_QUESTION.match(text.strip()))


def _counted(text: str) -> list[str]:
    """The lower-cased words that may tell a language: not a capitalised word before another one, which
    is part of a name ("Los Angeles", "La Paz", "Das Kapital"; German nouns still leave its verbs)."""
    raw = [w.replace("’", "'") for w in _WORD.findall(text)]
    return [
        w.lower()
        for i, w in enumerate(raw)
        if not (w[:1].isupper() and i + 1 < len(raw) and raw[i + 1][:1].isupper())
    ]


def language_of(text: str) -> str:
    """ "english", a foreign language's name, "other-script" (Cyrillic, CJK…), or "" (too little to
    tell: a name alone, a number). English wins a tie: an answer is English unless shown otherwise."""
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return ""
    non_latin = sum(1 for ch in letters if not unicodedata.name(ch, "").startswith("LATIN"))
    if non_latin * 3 > len(letters):
        return "other-script"
    ws = _counted(text)
    en = sum(1 for w in ws if w in _ENGLISH_ONLY)
    counts = {lang: sum(1 for w in ws if w in vocab) for lang, vocab in _FOREIGN.items()}
    lang, best = max(counts.items(), key=lambda kv: kv[1])
    # two foreign words that outnumber the English ones; or a short sentence with a foreign word and no
    # English one ("Très bien.", "A capital do Brasil é Brasília.")
    if best >= 2 and best > en:
        return lang
    if best >= 1 and en == 0 and len(ws) <= 6:
        return lang
    return "english" if en else ""


def strip_markup(text: str) -> str:
    """A sentence without markdown: emphasis, headings, code ticks, table bars, list bullets, links."""
    text = _MARKUP.sub(lambda m: m.group(1) or " ", text)
    return _SPACES.sub(" ", text).strip()


def is_live_question(question: str) -> bool:
    """Weather, prices and rates, news, or a game of late: an answer needs data an offline device lacks."""
    return any(p.search(question) for p in _LIVE)


def invents_live_fact(question: str, sentence: str) -> bool:
    """An answer to a live question that is not an honest "I can't know": a forecast, a price, a score."""
    return is_live_question(question) and not _DECLINE.search(sentence)


class ReplyGuard:
    """One reply's sentences, in order. ``question`` is the user's words (without the facts line)."""

    def __init__(self, question: str, max_sentences: int = MAX_SENTENCES) -> None:
        self.question = question
        self.max_sentences = max_sentences
        self.spoken = 0  # chunks handed on
        self.sentences = 0  # of them, complete sentences (the first chunk may be a clause)
        # the spoken start of a sentence not yet ended ("The chemical symbol for gold"): the language of
        # its rest ("is Au.") is judged with it, as a whole sentence is
        self._clause = ""

    def check(self, chunk: str) -> Verdict:
        """The verdict on the next chunk (a sentence, or the first clause of one)."""
        if self.max_sentences and self.sentences >= self.max_sentences:
            return Verdict("end", reason="sentences")
        text = strip_markup(chunk)
        if not any(ch.isalnum() for ch in text):
            return Verdict("end" if self.spoken else "refuse", reason="markup")
        lang = language_of(f"{self._clause} {text}" if self._clause else text)
        if lang not in ("english", ""):
            return Verdict("refuse", reason=f"foreign:{lang}")
        if invents_live_fact(self.question, text):
            return Verdict("refuse", reason="live-fact")
        if text.endswith("?") and _RUN_ON_QUESTION.match(text) and not self._clause:
            # after an answer: a question the model goes on to ask itself
            if self.spoken:
                return Verdict("end", reason="run-on")
            # first, to a question: the user's question echoed ("Who wrote Romeo and Juliet?") or one of
            # the model's own ("Who was that?") is no answer (to "I'm bored", "What would you like?" is)
            if _asks(self.question):
                return Verdict("refuse", reason="question")
        self.spoken += 1
        if _SENTENCE_END.search(text):
            self.sentences += 1
            self._clause = ""
        else:
            self._clause = f"{self._clause} {text}".strip()
        return Verdict("speak", text)

    @property
    def done(self) -> bool:
        """Enough was said: the generation can stop now."""
        return bool(self.max_sentences) and self.sentences >= self.max_sentences
