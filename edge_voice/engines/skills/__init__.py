"""Answers before the LLM is asked: offline knowledge (units, calendar, holidays, countries, word
meanings) and honest boundaries (what needs the internet or an integration the device does not have).

The caller asks ``Skills.answer(text)`` after the rule matcher misses and before the LLM: a direct
``reply`` is spoken as it is (a boundary's too); ``facts`` only go into the LLM prompt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path

from edge_voice.core.config import SKILL_NAMES
from edge_voice.engines.skills.base import Skill, SkillAnswer

__all__ = ["Skill", "SkillAnswer", "Skills", "load_skills"]

log = logging.getLogger(__name__)

DEFAULT_SKILLS = SKILL_NAMES  # the order they are asked in
REUSE_S = 5.0  # facts() reuses answer() on the same words within this long (dates may change after)


class Skills:
    """An ordered list of skills: the first direct answer wins, else the first facts-only answer."""

    def __init__(self, skills: Iterable[Skill], now_s: Callable[[], float] = time.monotonic) -> None:
        self.skills: tuple[Skill, ...] = tuple(skills)
        self._now_s = now_s
        # the last answer, for ``facts`` on the same words a moment later (the matcher asked first, then
        # the LLM prompt is built): the skills are not asked twice per turn
        self._last: tuple[str, float, SkillAnswer | None] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.skills)

    def answer(self, text: str) -> SkillAnswer | None:
        got = self._ask(text)
        self._last = (text, self._now_s(), got)
        return got

    def _ask(self, text: str) -> SkillAnswer | None:
        facts: SkillAnswer | None = None
        for skill in self.skills:
            try:
                got = skill.answer(text)
            except Exception:  # a skill must not end the turn: the LLM still answers
                log.exception("skill %s failed on %r", skill.name, text)
                continue
            if got is None:
                continue
            if got.reply:
                return got
            if got.facts and facts is None:
                facts = got
        return facts

    def facts(self, text: str) -> str:
        """What the skills know that bears on ``text`` without answering it: grounding for the LLM."""
        last = self._last
        fresh = last is not None and last[0] == text and self._now_s() - last[1] < REUSE_S
        got = last[2] if last is not None and fresh else self.answer(text)
        return got.facts if got is not None and not got.reply else ""


def load_skills(
    names: Sequence[str] = DEFAULT_SKILLS,
    *,
    country: str = "US",
    today: Callable[[], date] = date.today,
    wordnet_dir: Path | None = None,
) -> Skills:
    """Build the named skills in order. Each imports its package only here; a missing optional package
    (or WordNet database) disables that skill with a warning instead of stopping the daemon."""
    built: list[Skill] = []
    for name in names:
        try:
            built.append(_build(name, country=country, today=today, wordnet_dir=wordnet_dir))
        except (ImportError, OSError) as exc:
            log.warning("skill %s disabled: %s", name, exc)
    return Skills(built)


def _build(name: str, *, country: str, today: Callable[[], date], wordnet_dir: Path | None) -> Skill:
    if name == "units":
        from edge_voice.engines.skills.units import UnitsSkill

        return UnitsSkill()
    if name == "calendar":
        from edge_voice.engines.skills.calendar_facts import CalendarSkill

        return CalendarSkill(today=today)
    if name == "holidays":
        from edge_voice.engines.skills.holidays import HolidaysSkill

        return HolidaysSkill(country=country, today=today)
    if name == "countries":
        from edge_voice.engines.skills.countries import CountriesSkill

        return CountriesSkill(today=today)
    if name == "words":
        from edge_voice.engines.skills.wordnet import WordNet
        from edge_voice.engines.skills.words import WordsSkill

        return WordsSkill(WordNet(wordnet_dir) if wordnet_dir else WordNet())
    if name == "boundary":
        from edge_voice.engines.skills.boundaries import BoundarySkill

        return BoundarySkill.load()
    if name == "chat":
        from edge_voice.engines.skills.boundaries import BoundarySkill

        return BoundarySkill.small_talk()
    raise ValueError(f"unknown skill {name!r}; known: {', '.join(DEFAULT_SKILLS)}")
