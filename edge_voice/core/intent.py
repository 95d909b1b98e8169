"""The fast path as the orchestrator sees it: a matcher of transcripts to intents, and what a match
holds. The rule-based implementation is ``engines/intents.RuleIntentMatcher``."""

from __future__ import annotations

from typing import Protocol


class IntentOutcome(Protocol):
    """A fast-path match. ``reply`` "" = say nothing (stop)."""

    @property
    def name(self) -> str: ...

    @property
    def slots(self) -> tuple[tuple[str, str], ...]: ...

    @property
    def reply(self) -> str: ...


class IntentMatcher(Protocol):
    def match(self, text: str, previous: IntentOutcome | None = None) -> IntentOutcome | None:
        """Pure: safe on a speculative transcript. ``previous``: the command this transcript goes on
        from, when the user continued after a pause ("turn on the kitchen light" … "and the fan")."""
        ...

    def apply(self, result: IntentOutcome) -> None:
        """Commit side effects (timers) once the turn is final. ``result``: what ``match`` returned."""
        ...
