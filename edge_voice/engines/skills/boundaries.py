"""Honest boundaries: requests that need the internet or an integration this device does not have are
answered with one true sentence instead of an invented forecast, price or score.

The table is data (``edge_voice/data/boundaries.toml``): per entry a name, regular expressions searched in
the normalised transcript (``patterns``), optional ``unless`` expressions that veto a match ("the
temperature in the oven"), and the reply."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable

from edge_voice.engines.skills.base import SkillAnswer
from edge_voice.engines.skills.text import skill_text

BOUNDARIES_FILE: Traversable = resources.files("edge_voice").joinpath("data", "boundaries.toml")
CHAT_FILE: Traversable = resources.files("edge_voice").joinpath("data", "chat.toml")


@dataclass(frozen=True, slots=True)
class Boundary:
    name: str
    reply: str
    patterns: tuple[re.Pattern[str], ...]
    unless: tuple[re.Pattern[str], ...] = ()

    def matches(self, text: str) -> bool:
        return any(p.search(text) for p in self.patterns) and not any(u.search(text) for u in self.unless)


def _compile(key: str, raw: object) -> tuple[re.Pattern[str], ...]:
    if not isinstance(raw, list) or not all(isinstance(p, str) for p in raw):
        raise ValueError(f"{key}: a list of regular expressions")
    try:
        # whole words only: "news" must not fire inside "newsletter"-like words by accident
        return tuple(re.compile(rf"\b(?:{p})\b") for p in raw)
    except re.error as exc:
        raise ValueError(f"{key}: {exc}") from exc


def parse_boundaries(toml_text: str, table: str = "boundary") -> tuple[Boundary, ...]:
    """Parse and check the table (``[[boundary]]``, or the small talk's ``[[reply]]``): a bad entry fails
    with its name (at start-up, not mid-turn)."""
    data = tomllib.loads(toml_text)
    entries = data.get(table)
    if not isinstance(entries, list) or not entries:
        raise ValueError(f"{table}: expected [[{table}]] entries")
    out: list[Boundary] = []
    for i, entry in enumerate(entries):
        name = entry.get("name")
        reply = entry.get("reply")
        if not isinstance(name, str) or not name:
            raise ValueError(f"{table}[{i}].name: a non-empty string")
        if not isinstance(reply, str) or not reply.strip():
            raise ValueError(f"{table}.{name}.reply: a non-empty sentence")
        patterns = _compile(f"{table}.{name}.patterns", entry.get("patterns"))
        if not patterns:
            raise ValueError(f"{table}.{name}.patterns: at least one")
        unless = _compile(f"{table}.{name}.unless", entry.get("unless", []))
        out.append(Boundary(name, reply.strip(), patterns, unless))
    return tuple(out)


class BoundarySkill:
    name = "boundary"

    def __init__(self, boundaries: tuple[Boundary, ...]) -> None:
        self.boundaries = boundaries

    @classmethod
    def load(cls) -> BoundarySkill:
        return cls(parse_boundaries(BOUNDARIES_FILE.read_text(encoding="utf-8")))

    @classmethod
    def small_talk(cls) -> BoundarySkill:
        """Greetings, thanks, "how are you", a joke: the same table shape, fixed friendly replies."""
        skill = cls(parse_boundaries(CHAT_FILE.read_text(encoding="utf-8"), table="reply"))
        skill.name = "chat"
        return skill

    def which(self, text: str) -> Boundary | None:
        t = skill_text(text)
        return next((b for b in self.boundaries if b.matches(t)), None) if t else None

    def answer(self, text: str) -> SkillAnswer | None:
        found = self.which(text)
        return SkillAnswer(self.name, reply=found.reply) if found else None
