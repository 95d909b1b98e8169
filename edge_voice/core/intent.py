"""The fast path as the orchestrator sees it: a matcher of transcripts to intents, and what a match
holds. The rule-based implementation is ``engines/intents.RuleIntentMatcher``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol


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
