"""The fast path as the orchestrator sees it: a matcher of transcripts to intents, and what a match
holds. The rule-based implementation is ``engines/intents.RuleIntentMatcher``."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

# Every intent the fast path gives (engines/intents): Home Assistant's ``event`` entity lists them.
DEVICE_INTENTS = ("turn_on", "turn_off", "set_brightness", "step_brightness", "set_color")
INTENT_NAMES = (
    *DEVICE_INTENTS,
    "unknown_device",
    "clarify",
    "timer_set",
    "timer_cancel",
    "timer_status",
    "time",
    "date",
    "volume_up",
    "volume_down",
    "volume_set",
    "arithmetic",
    "stop",
    "repeat",
    "answer",
    "decline",
)
ALL_LIGHTS = "all lights"  # the ``device`` slot of "turn off all the lights"


def norm_device_name(name: str) -> str:
    """A device name as the ``device`` slot carries it: lower case, words only ("Kitchen-light" →
    "kitchen light")."""
    return " ".join(re.sub(r"[^\w\s]", " ", name.lower().replace("-", " ")).split())


class IntentOutcome(Protocol):
    """A fast-path match. ``reply`` "" = say nothing (stop)."""

    @property
    def name(self) -> str: ...

    @property
    def slots(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def reply(self) -> str: ...

    @property
    def also(self) -> Sequence[IntentOutcome]:
        """The other commands of a sentence that gave several; ``reply`` confirms them all."""
        ...


class IntentMatcher(Protocol):
    def match(self, text: str, previous: IntentOutcome | None = None) -> IntentOutcome | None:
        """Pure: safe on a speculative transcript. ``previous``: the intent of the turn just before,
        when ``text`` may continue it (a follow-up, or the second half of a paused command): a verbless
        "and the fan" after turn_on kitchen light is turn_on fan, "turn it off" acts on its devices.
        Without it, such a fragment matches nothing. A question the matcher asks back (``clarify``) is
        answered by the next ``match`` once ``apply`` committed it; no ``previous`` is needed for that."""
        ...

    def apply(self, result: IntentOutcome) -> None:
        """Commit side effects (timers) once the turn is final. ``result``: what ``match`` returned."""
        ...
