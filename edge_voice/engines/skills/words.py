"""Word meanings, synonyms and antonyms from WordNet 3.0 (Debian ``wordnet-base``, read by ``wordnet.py``):
"what does ephemeral mean" → "Ephemeral means lasting a very short time."; "another word for happy";
"what is the opposite of cold" → "The opposite of cold is hot." A word WordNet does not know falls through."""

from __future__ import annotations

import re

from edge_voice.engines.skills.base import SkillAnswer
from edge_voice.engines.skills.text import skill_text
from edge_voice.engines.skills.wordnet import Lemma, Synset, WordNet

_W = r"(?:the word |the term )?(?P<w>[a-z][a-z ]{0,40}?)"
_MEANING = [
    rf"^what does {_W} mean$",
    rf"^what is the (?:meaning|definition) of {_W}$",
    rf"^(?:define|definition of|meaning of|dictionary definition of) {_W}$",
    rf"^what is {_W} mean$",
    rf"^what do you mean by {_W}$",
    rf"^what is the word {_W} mean$",
]
_SYNONYM = [
    rf"^(?:what is |whats |give me |tell me |what are |say )?"
    rf"(?:another|a different|other|some other|a) words? "
    rf"(?:for|that means) {_W}$",
    rf"^(?:what is |what are |give me |tell me )?(?:a |some |the )?synonyms? (?:for|of|to) {_W}$",
    rf"^(?:what is )?another way (?:to|of) say(?:ing)? {_W}$",
]
_ANTONYM = [
    rf"^(?:what is |whats |tell me )?the opposite of {_W}$",
    rf"^(?:what is |what are |give me |tell me )?(?:an |the |some )?antonyms? (?:for|of|to) {_W}$",
    rf"^what is opposite (?:of|to) {_W}$",
]
_ORDER = ("n", "v", "a", "r")
# "what is the meaning of life" asks for philosophy, not a dictionary: left to the LLM
_NOT_DICTIONARY = frozenset({"life", "life the universe and everything", "it all", "this", "that", "it"})


def _compile(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


def _join(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


class WordsSkill:
    name = "words"

    def __init__(self, wordnet: WordNet) -> None:
        self.wn = wordnet
        self._meaning = _compile(_MEANING)
        self._synonym = _compile(_SYNONYM)
        self._antonym = _compile(_ANTONYM)

    def answer(self, text: str) -> SkillAnswer | None:
        t = skill_text(text)
        for patterns, make in (
            (self._meaning, self.meaning),
            (self._synonym, self.synonyms),
            (self._antonym, self.antonym),
        ):
            for p in patterns:
                m = p.match(t)
                if m:
                    word = re.sub(r"^(?:a|an|the) ", "", m.group("w").strip())
                    if word in _NOT_DICTIONARY:
                        return None
                    reply = make(word) if len(word.split()) <= 3 else None
                    return SkillAnswer(self.name, reply=reply) if reply else None
        return None

    def _lemmas(self, word: str) -> list[Lemma]:
        """The word's entries, the most used part of speech first (WordNet's tagged-sense counts)."""
        found = [lemma for pos in _ORDER if (lemma := self.wn.lookup(word, pos))]
        return sorted(found, key=lambda lemma: -lemma.tagged)

    def meaning(self, word: str) -> str | None:
        lemmas = self._lemmas(word)
        if not lemmas:
            return None
        best = lemmas[0]
        definition = re.sub(r"^\([^)]*\)\s*", "", self.wn.synset(best.offsets[0], best.pos).definition)
        if not definition:
            return None
        if best.pos == "v":
            return f"To {best.word} means to {definition}."
        return f"{best.word.capitalize()} means {definition}."

    def synonyms(self, word: str) -> str | None:
        """Only the main sense's words (and an adjective's "similar to" words): a rarer sense gives odd
        answers ("house" → "firm"), so none is better."""
        lemmas = sorted(self._lemmas(word), key=lambda lemma: lemma.pos != "a")  # "fast": the adjective
        for lemma in lemmas:
            first = self.wn.synset(lemma.offsets[0], lemma.pos)
            out = list(first.words)
            if lemma.pos == "a":
                similar = [p for p in first.pointers if p.symbol == "&"]
                out += [w for p in similar for w in self.wn.synset(p.offset, p.pos).words]
            names = [w for w in dict.fromkeys(out) if w.lower() not in (word, lemma.word) and w.islower()]
            names = sorted(names[:8], key=lambda w: (" " in w, "-" in w))[:3]  # single words read best
            if len(names) == 1:
                return f"Another word for {word} is {names[0]}."
            if names:
                return f"Other words for {word} are {_join(names)}."
        return None

    def antonym(self, word: str) -> str | None:
        found: list[str] = []
        lemmas = sorted(self._lemmas(word), key=lambda lemma: lemma.pos != "a")  # "empty": full, not fill
        for lemma in lemmas:
            for offset in lemma.offsets:
                s = self.wn.synset(offset, lemma.pos)
                found += self._direct_antonyms(s, lemma.word if lemma.word in s.words else s.words[0])
            if found:
                break
        if not found:  # a satellite adjective ("freezing"): the antonym of its head ("cold" → "hot")
            for lemma in lemmas[:1]:
                s = self.wn.synset(lemma.offsets[0], lemma.pos)
                for p in s.pointers:
                    if p.symbol == "&":
                        head = self.wn.synset(p.offset, p.pos)
                        found += self._direct_antonyms(head, head.words[0])
        names = list(dict.fromkeys(w for w in found if w.lower() != word))[:2]
        return f"The opposite of {word} is {_join(names, 'or')}." if names else None

    def _direct_antonyms(self, s: Synset, word: str) -> list[str]:
        lower = [w.lower() for w in s.words]
        index = lower.index(word.lower()) + 1 if word.lower() in lower else 0
        out = []
        for p in s.pointers:
            if p.symbol == "!" and p.source in (0, index):
                target = self.wn.synset(p.offset, p.pos)
                out.append(target.words[p.target - 1] if p.target else target.words[0])
        return out
