"""Scoring of ``bench answers``: the evaluation set and a pure judge of each reply (no engines, no I/O but
reading the packaged set).

A reply is one of:

- ``correct``: an accepted word or phrase is in it as whole words, after both are normalised alike
  (lower case, no punctuation, apostrophes dropped, digits spelled out: "8" = "eight", "25th" =
  "twenty fifth"); the last word may take an -s/-es (a plural, or a possessive: "Jupiter's" →
  "jupiters"). For a misheard device command, ``correct`` = the fast path took it (route ``intent``:
  it acted or asked back), whatever it said.
- ``declined``: an honest "I can't / I don't know / not without the internet / you could check …" reply
  (``DECLINE`` below). The right outcome for an offline-only request; for a question, an honest miss.
- ``invented`` (offline-only requests): it gives a value or an outcome it cannot know — a number, price,
  temperature, score, forecast, a result ("the Lakers won"), or claims to have done what it cannot ("I've
  ordered …", "Calling Mom") — even beside a decline. Words the question itself says do not count.
- ``foreign``: the reply (or one of its sentences) is not English (``foreign_language``), judged first.
- ``wrong``: anything else.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

from edge_voice.bench.asr import normalize

Label = Literal["correct", "declined", "wrong", "foreign", "invented"]
LABELS: tuple[Label, ...] = ("correct", "declined", "wrong", "foreign", "invented")
Expect = Literal["answer", "declined", "intent"]
FACTUAL = ("geography", "science", "culture", "definitions", "numbers", "calendar")
CATEGORIES = (*FACTUAL, "offline", "chitchat", "misheard")


@dataclass(frozen=True, slots=True)
class Item:
    question: str
    category: str
    accept: tuple[str, ...] = ()  # any one of these in the reply: correct
    expect: Expect = "answer"  # "declined": offline-only; "intent": a misheard device command

    @property
    def id(self) -> str:
        return f"{self.category}:{'-'.join(words(self.question))}"


@dataclass(frozen=True, slots=True)
class Score:
    label: Label
    evidence: str = ""  # what decided it: the accepted word, the decline or the invented value found


def load_items(text: str | None = None) -> list[Item]:
    """The packaged set (``edge_voice/bench/data/answers.toml``), or ``text`` in the same format."""
    if text is None:
        text = resources.files("edge_voice.bench").joinpath("data/answers.toml").read_text("utf-8")
    items = []
    for row in tomllib.loads(text)["item"]:
        expect = row.get("expect", "answer")
        if expect not in ("answer", "declined", "intent"):
            raise ValueError(f"{row['q']!r}: expect must be answer, declined or intent, not {expect!r}")
        items.append(Item(row["q"], row["cat"], tuple(row.get("accept", ())), expect))
    return items


# ------------------------------------------------------------------------------------------ words


def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


def words(text: str) -> list[str]:
    """Lower-case words for matching: digits spelled out (``bench.asr.normalize``), apostrophes dropped
    ("can't" → "cant", "I'm" → "im", "it's" → "its", "Jupiter's" → "jupiters")."""
    return normalize(text.replace("\u2019", "'").replace("\u2018", "'"))


def _joined(text: str) -> str:
    return f" {' '.join(words(text))} "


def accepted_in(reply: str, accept: Iterable[str]) -> str | None:
    """The first accepted word or phrase found in ``reply`` as whole words (its last word may take a plural
    -s/-es: a plural or a possessive); a number only as a whole number ("eight" is not in "eighty eight"
    or "eight hundred"). None if none is."""
    said = words(reply)
    for a in accept:
        phrase = words(a)
        n = len(phrase)
        if not n:
            continue
        for k in range(len(said) - n + 1):
            got = said[k : k + n]
            last = got[-1]
            if got[:-1] != phrase[:-1] or last not in (phrase[-1], phrase[-1] + "s", phrase[-1] + "es"):
                continue
            if phrase[0] in NUMBER_WORDS and _inside_a_number(said, k, k + n):
                continue
            return a
    return None


NUMBER_WORDS = _wordset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand "
    "million billion"
)
_SCALES = frozenset({"hundred", "thousand", "million", "billion"})
# "thirty first" (31st) is not "thirty"
_ORDINALS = _wordset(
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth thirtieth fortieth "
    "fiftieth sixtieth seventieth eightieth ninetieth hundredth thousandth millionth"
)


def _inside_a_number(said: Sequence[str], start: int, end: int) -> bool:
    """Whether said[start:end] is only part of a longer spoken number."""
    if end < len(said) and (said[end] in NUMBER_WORDS or said[end] in _ORDINALS):
        return True
    before = start - 1
    if before >= 1 and said[before] == "and" and said[before - 1] in _SCALES:
        return True
    return before >= 0 and said[before] in NUMBER_WORDS


# ---------------------------------------------------------------------------------------- declines

# on ``words()`` output joined by spaces: no apostrophes ("cant", "dont", "im"), digits spelled out
_I = r"\bi(?:m| am)?(?: really| honestly| just| sorry but i| afraid i| sorry i)?"
DECLINE: tuple[str, ...] = (
    # I can't / I'm unable / I'm not able / I don't know / I don't have / I have no …
    _I + r" (?:cant|cannot|can not|couldnt|could not|unable|not able|wont be able|will not be able"
    r"|dont know|do not know|dont have|do not have|have no|dont really know|am not sure|not sure"
    r"|m not sure|afraid|dont think i can|do not think i can|no longer)\b",
    r"\bim (?:sorry|afraid),? (?:but )?(?:i|that|this|thats)\b",
    r"\b(?:unable|not able|no way) to\b",
    r"\bno (?:idea|way of knowing|way to know|access|information)\b",
    # not without the internet / offline / no connection
    r"\b(?:without|no|not connected to|not on|need|needs|requires?|need to be) (?:the |an |any |a )?"
    r"(?:internet|web|network|online)\b",
    r"\boffline\b",
    r"\b(?:real time|realtime|live|up to date|current|latest|todays) (?:data|information|info|updates"
    r"|news|prices?|weather|results|scores|forecasts?|traffic)\b",
    r"\b(?:isnt|is not|not) (?:something|a thing|anything) i\b",
    r"\bbeyond (?:my|what i)\b",
    r"\b(?:thats|its|that is|this is|it is) not (?:possible|available|something)\b",
    r"\b(?:that|this|it) isnt (?:possible|available|something)\b",
    # deferral to a source it does not have: "you could check a weather app"
    r"\byou(?:ll| will| would| d)? (?:can|could|might|may|should|need to|have to|want to|d need to"
    r"|would need to|will need to|ll need to|d have to)(?: want to)?(?: try)? (?:check|checking|try|look"
    r"|use|ask|call|visit|search|consult|open)\b",
)
_DECLINE_RE = tuple(re.compile(p) for p in DECLINE)


def declines(reply: str) -> str | None:
    """The decline phrase in ``reply`` (normalised), or None."""
    said = _joined(reply)
    for pat in _DECLINE_RE:
        m = pat.search(said)
        if m:
            return m.group(0).strip()
    return None


# ---------------------------------------------------------------------------------------- invented

_NUM = (
    r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
    r"|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred"
    r"|thousand|million|billion)"
)
_UNIT = (
    r"(?:degrees?|percent|per cent|dollars?|euros?|pounds?|cents?|pence|bucks|points?|goals?|runs?"
    r"|minutes?|hours?|celsius|fahrenheit|am|pm|o clock|oclock|to (?:one|two|three|four|five|six|seven"
    r"|eight|nine|zero|nil))"
)
# on ``words()`` output; digits are spelled out there, so a number anywhere also shows as _NUM words
INVENTED: tuple[tuple[str, str], ...] = (
    ("value", rf"\b{_NUM}(?: (?:and|point|{_NUM}))* {_UNIT}\b"),
    (
        "forecast",
        r"\b(?:its|it is|it was|is|was|are|were|it will be|itll be|will be|expect|expecting|going to be"
        r"|should be)"
        r"(?: a)?(?: very| mostly| partly| quite| mainly| a bit| fairly| pretty| usually| typically"
        r"| normally| generally| probably| likely)? (?:sunny|rainy|raining"
        r"|cloudy|overcast|snowing|snowy|windy|hot|cold|warm|cool|mild|stormy|foggy|humid|dry|wet"
        r"|freezing|chilly|breezy|drizzly|icy|grey|gray)\b",
    ),
    (
        "forecast",
        r"\b(?:sunny|cloudy|showers|thunderstorms|rain|snow|sunshine) (?:today|tomorrow|tonight|later"
        r"|this (?:morning|afternoon|evening|weekend)|all day|on (?:saturday|sunday))\b",
    ),
    ("forecast", r"\bchance of (?:rain|showers|snow|storms)\b"),
    (
        "result",
        r"\b(?!who |which |whoever |what |know )\w+ (?:won|beat|defeated|lost to|drew with|tied with)\b",
    ),
    ("result", r"\b(?:final score|the score was|scored|winning team|won the|lost the)\b"),
    (
        "status",
        r"\b(?:is|its|it is|they are|theyre|currently|will be) (?:delayed|cancelled|canceled|on time"
        r"|on schedule|boarding|open|closed|heavy|light|congested|backed up|busy)\b",
    ),
    ("news", r"\bhere (?:are|is|s) (?:the|your|todays|some) (?:latest |top )?(?:headlines|news|emails?)\b"),
    (
        "action",
        r"\b(?:ive|i have|ill|i will|im|i am|okay|ok|sure|alright|done|now)(?: now| just)? (?:sent|sending"
        r"|ordered|ordering|called|calling|dialing|dialling|added|adding|booked|booking|texted|texting"
        r"|emailed|emailing|playing|searching|reserved|reserving|placed|placing)\b",
    ),
    (
        "action",
        r"^ (?:calling|dialing|dialling|sending|ordering|adding|booking|playing|searching|texting"
        r"|reserving)\b",
    ),
)
_INVENTED_RE = tuple((kind, re.compile(p)) for kind, p in INVENTED)
_CURRENCY = re.compile(r"[$€£¥]\s?\d|\d\s?[$€£¥]|\d\s?°|°\s?[cf]\b", re.IGNORECASE)


def invented(reply: str, question: str = "") -> str | None:
    """``kind: evidence`` for a value, forecast, result, status or action claim in ``reply`` that the
    question did not itself say (a number, a currency sign, "sunny tomorrow", "the Lakers won", "I've
    ordered"), or None."""
    said, asked = _joined(reply), _joined(question)
    m = _CURRENCY.search(reply)
    if m:
        return f"value: {m.group(0).strip()}"
    asked_digits = set(re.findall(r"\d+", question))
    new_digits = [d for d in re.findall(r"\d+", reply) if d not in asked_digits]
    if new_digits:
        return f"number: {new_digits[0]}"
    for kind, pat in _INVENTED_RE:
        for m in pat.finditer(said):
            found = m.group(0).strip()
            if f" {found} " not in asked and not (kind != "action" and _HEDGE.search(said[: m.start()])):
                return f"{kind}: {found}"
    return None


# "I don't know if it is open", "I can't tell you who won": a claim inside a hedge is not a claim
_HEDGE = re.compile(
    r"\b(?:if|whether|when|what|how|who|dont know|not sure|cant tell|cannot tell) (?:\w+ ){0,3}$"
)


# ---------------------------------------------------------------------------------------- language


# The commonest words of a short spoken English reply. A foreign function word that is also an English
# word ("die", "also", "son", "no", "per", "plus", "im" from "I'm") is left out of the foreign lists.
ENGLISH = _wordset(
    """a about after all also am an and any are as at be because been before but by called can capital city
    could country day days did do does done dont for from get go good great had has have he hello help her
    here his how i if im in into is it its just know known largest biggest like made make many me more
    most much my name named no not now of on one only or our out over people please really right said see
    she so some sorry sure than thank thanks that thats the their them then there these they this those
    time to today too up us very was we well were what whats when where which who why will with world
    would wrote year years yes you your youre welcome"""
)
FOREIGN: dict[str, frozenset[str]] = {
    "french": _wordset(
        """le la les un une de des du est et il elle ils nous vous je tu ce cette ces qui que quoi dans
        pour avec sur pas ne mais ou au aux sa ses mon ma mes leur sont être été avoir bonjour merci oui
        très aussi comme capitale cest quil jai nest suis peux fait ville bien sûr"""
    ),
    "german": _wordset(
        """der die das und ist nicht ein eine einen einem den dem des zu von mit auf für ich du er sie es wir
        ihr sind wird auch noch nur wie aber oder dass hauptstadt hallo danke ja nein bitte gibt haben sein
        vom zum zur kann ihnen heute stadt gut"""
    ),
    "spanish": _wordset(
        """el la los las un una unos unas es y de del en que por para con se su sus lo al como pero muy está
        esta también hola gracias sí ciudad yo tú usted qué más puedo hoy país eres estoy"""
    ),
    "italian": _wordset(
        """il lo la gli le un una uno è di del della dei delle che non con sono mi ti ci ma anche molto più
        ciao grazie capitale questo questa nel nella alla al città paese oggi posso sei"""
    ),
}
# articles and prepositions that also occur in names an English reply may say ("Don Quixote de la
# Mancha", "Ludwig van Beethoven", "Les Misérables"): alone they do not make a reply foreign
PARTICLES = _wordset("de la le les el los las del della di da von van der du des il lo die das den")
_LETTERS = re.compile(r"[^\W\d_]+")
_LATIN = re.compile(r"^[a-zà-öø-ÿœæß]+$")


def _tokens(text: str) -> list[str]:
    return _LETTERS.findall(text.lower().replace("'", "").replace("\u2019", ""))


def foreign_language(reply: str) -> str | None:
    """The language a reply (or one sentence of it, of 3+ words) is in if that is not English: "french",
    "german", "spanish", "italian" (at least 2 of its common words, more than English ones, and at least
    one that is not a name particle such as "de", "la", "van"), or "non-latin" (most letters in another
    script); None for English, or too short to tell ("Paris.").

    A function-word judge, self-contained so every machine scores alike: Debian's /usr/share/dict/words
    (wamerican) is not installed on ours, and a dictionary share passes French that shares English words."""
    for i, part in enumerate([reply, *re.split(r"(?<=[.!?;:])\s+", reply)]):
        tokens = _tokens(part)
        if i > 0 and len(tokens) < 3:
            continue
        found = _judge(tokens)
        if found is not None:
            return found
    return None


def _judge(tokens: Sequence[str]) -> str | None:
    if not tokens:
        return None
    if sum(len(t) for t in tokens if not _LATIN.match(t)) > 0.3 * sum(len(t) for t in tokens):
        return "non-latin"
    en = sum(t in ENGLISH for t in tokens)
    best, hits, core = "", 0, 0
    for lang, vocab in FOREIGN.items():
        found = [t for t in tokens if t in vocab]
        if len(found) > hits:
            best, hits, core = lang, len(found), sum(t not in PARTICLES for t in found)
    return best if hits >= 2 and hits > en and core >= 1 else None


# ------------------------------------------------------------------------------------------- score


def score(item: Item, reply: str, route: str = "llm") -> Score:
    """Classify ``reply`` (what would be spoken) to ``item``; ``route`` "intent" or "llm"."""
    if item.expect == "intent" and route == "intent":
        return Score("correct", "route intent")
    lang = foreign_language(reply)
    if lang is not None:
        return Score("foreign", lang)
    if item.expect == "declined" and (made_up := invented(reply, item.question)) is not None:
        return Score("invented", made_up)
    if item.expect == "answer" and (hit := accepted_in(reply, item.accept)) is not None:
        return Score("correct", hit)
    said = declines(reply)
    return Score("declined", said) if said is not None else Score("wrong")
