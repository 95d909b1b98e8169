"""``intents.backend = "home_assistant"``: which commands go to Home Assistant's agent, and a diverted
command keeps being a command for turn-taking (early commit, continuations, follow-ups, questions back)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge_voice.core.config import IntentsConfig
from edge_voice.core.intent import IntentOutcome
from edge_voice.core.jobs import LlmJob
from edge_voice.core.messages import AgentFallback
from edge_voice.core.replies import agent_parses
from edge_voice.engines.intents import RuleIntentMatcher
from tests.fakes import KitchenIntents, Outcome
from tests.unit.test_orchestrator import Rig, cfg, paused, said, started, stopped, wake


@pytest.mark.parametrize(
    ("text", "previous", "diverted"),
    [
        ("Turn on the kitchen light.", False, True),
        ("turn the kitchen light off", False, True),
        ("set the kitchen light to 50 percent", False, True),
        ("turn on the foo", False, True),  # a name we do not know: HA may (its entities, aliases)
        ("turn on the kitchen light and the fan", False, False),  # two targets
        ("turn on the kitchen light and turn off the fan", False, False),  # also
        ("dim the kitchen light", False, False),  # relative brightness: not in HA 2024.3's sentences
        ("brighten the kitchen light", False, False),
        ("turn off the kitchen lite", False, False),  # fuzzy: HA would not find "kitchen lite"
        ("and the fan", True, False),  # a continuation of the command before
        ("turn it off", True, False),  # a follow-up
        ("turn on the kitchen light", True, False),  # said in the follow-up window: stays local
    ],
)
def test_only_what_home_assistant_parses_as_said_is_diverted(
    text: str, previous: bool, diverted: bool
) -> None:
    m = RuleIntentMatcher(IntentsConfig())
    before = m.match("turn on the kitchen light") if previous else None
    outcome = m.match(text, before)
    assert outcome is not None
    assert agent_parses(outcome, text, before) is diverted


def test_the_answer_to_our_question_back_is_not_diverted() -> None:
    m = RuleIntentMatcher(IntentsConfig())
    question = m.match("turn on the light")
    assert question is not None and question.name == "clarify"
    m.apply(question)
    answer = m.match("the kitchen")
    assert answer is not None and answer.name == "turn_on"
    assert not agent_parses(answer, "the kitchen", None)
    assert not agent_parses(answer, "the kitchen light", None)  # no verb: HA has no sentence for it


class HaKitchen(KitchenIntents):
    """KitchenIntents with HA-shaped intent names (device commands are diverted)."""

    def match(self, text: str, previous: IntentOutcome | None = None) -> IntentOutcome | None:
        got = super().match(text, previous)
        if got is not None and got.name == "light_on":
            return replace(Outcome("turn_on", got.slots, got.reply), also=tuple(got.also))
        if got is None and previous is not None and "and the" in text:  # "and the hallway light"
            return None
        return got


def ha_rig(speculative_ms: int = 0) -> Rig:
    r = Rig(cfg(speculative_ms=speculative_ms))
    r.intents = HaKitchen()
    r.orch.router.intents = r.intents
    r.orch.router.agent_ready = lambda: True
    return r


def agent_jobs(r: Rig) -> list[LlmJob]:
    return [j for j in r.llm.of(LlmJob) if isinstance(j, LlmJob) and j.agent_fallback is not None]


def test_a_diverted_command_commits_early_and_closes_the_matchers_question() -> None:
    """(a) early commit needs the intent; (d) the matcher's apply runs at the commit (its question back
    is answered), while the MQTT intent waits: HA acts."""
    r = ha_rig(speculative_ms=64)
    r.send(wake(r.clock), started(r.clock), paused(r.clock, 40000))
    c = r.decode("turn on the kitchen light")
    turn = r.orch.turn
    assert turn is not None and turn.committed is not None  # committed at the settled pause
    assert turn.route == "intent" and c.committed is not None and c.committed.is_set()
    (job,) = agent_jobs(r)
    assert (
        job.question == "turn on the kitchen light" and job.agent_fallback == "Turning on the kitchen light."
    )
    assert r.intents.applied == ["turn_on:kitchen light"]
    assert "intent.recognized" not in r.types()  # the blueprint must not act too
    assert r.data("response.started")["route"] == "intent"


def test_a_diverted_command_continued_is_not_asked_again() -> None:
    """(b) "turn on the kitchen light ⟨pause⟩ and the hallway light": the confirmation is not held and the
    turn not cancelled as an unfinished question — HA is asked once, the rest is the next turn."""
    r = ha_rig()
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    c = r.decode("turn on the kitchen light")
    r.send(started(r.clock, 60000))
    assert c.gate.is_set()
    r.send(said(r.clock, 70000))
    assert "turn.cancelled" not in r.types() and not c.cancel.cancelled
    assert len(agent_jobs(r)) == 1


def test_a_follow_up_after_a_diverted_command_knows_it_and_acts_locally() -> None:
    """(c) the follow-up window keeps the command; "and the hallway light" is not HA's to parse."""
    r = ha_rig()
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    c = r.decode("turn on the kitchen light")
    r.answer("Turned on the light.")
    r.play(c, "Turned on the light.")
    r.send(started(r.clock, 120000), stopped(r.clock, 150000))  # in the follow-up window
    r.decode("and the hallway light")
    assert r.intents.previous == ["turn_on"]
    assert len(agent_jobs(r)) == 1  # the follow-up acts locally


def test_a_failed_or_not_understood_diverted_command_publishes_its_intent_once() -> None:
    r = ha_rig()
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    c = r.decode("turn on the kitchen light")
    r.send(AgentFallback(c.turn_id, c.attempt))
    r.send(AgentFallback(c.turn_id, c.attempt))  # at most once
    assert [e.data["name"] for e in r.memory.of("intent.recognized")] == ["turn_on"]
    assert r.intents.applied == ["turn_on:kitchen light"]  # the matcher applied it once, at the commit
    r = ha_rig()
    r.send(wake(r.clock), started(r.clock), stopped(r.clock))
    c = r.decode("turn on the kitchen light")
    r.send(AgentFallback(c.turn_id, c.attempt, publish=False))  # timed out: HA may have acted
    assert "intent.recognized" not in r.types()
