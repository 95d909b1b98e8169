"""What a skill gives back, and the one method every skill has."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class SkillAnswer:
    skill: str  # "units", "calendar", "holidays", "countries", "words", "boundary"
    reply: str = ""  # one short spoken sentence; "" = no direct answer
    facts: str = ""  # a short factual line to ground the LLM when there is no direct answer ("" if none)


class Skill(Protocol):
    """Answers a question from data on the device, or says nothing. Called from the thread that matches
    intents; ``answer`` is pure and fast (< 5 ms typical) and never raises on odd input. ``text`` is the
    raw ASR transcript ("What's the capital of France?")."""

    name: str

    def answer(self, text: str) -> SkillAnswer | None: ...
