"""`edge-voice ask --session`: the fast path's state carries from one question to the next, as after a
heard reply in the daemon (session 15: "and the fan", "turn it off", a timer's status and the answer to
"Which light?" all went to the LLM, and "how long is left on my timer" said "You have no timers")."""

from __future__ import annotations

from typing import Any, cast

import pytest

from edge_voice.core.config import Config
from edge_voice.engines.base import Generator
from edge_voice.engines.intents import RuleIntentMatcher
from edge_voice.runtime.ask import Asker


class NoLlm:
    """Every question here is the fast path's: the LLM is never asked."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the LLM was asked ({name})")


def asker(session: bool) -> Asker:
    cfg = Config()
    matcher = RuleIntentMatcher(cfg.intents)
    return Asker(cfg, cast(Generator, NoLlm()), matcher, lambda: pytest.fail("no splitter"), session=session)


def test_a_session_carries_follow_ups_timers_and_questions_asked_back() -> None:
    a = asker(session=True)
    said = [
        ("turn on the kitchen light", "turn_on", "Turning on the kitchen light."),
        ("and the fan", "turn_on", "Turning on the fan."),
        ("turn it off", "turn_off", "Turning off the fan."),
        ("set a timer for 3 minutes", "timer_set", "Timer set for three minutes."),
        ("how long is left on my timer", "timer_status", "Your three minute timer has three minutes left."),
        ("cancel the timer", "timer_cancel", "Timer cancelled."),
        ("turn off the light", "clarify", "Which light?"),
        ("the hallway", "turn_off", "Turning off the hallway light."),
    ]
    for question, intent, reply in said:
        got = a.ask(question)
        assert (got.route, got.intent, got.reply) == ("intent", intent, reply), question


def test_without_a_session_each_question_is_asked_fresh() -> None:
    a = asker(session=False)
    assert a.ask("set a timer for 3 minutes").intent == "timer_set"
    assert a.ask("how long is left on my timer").reply == "You have no timers."
