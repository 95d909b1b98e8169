"""``bench names``' scoring of one matcher result (no decoding)."""

from __future__ import annotations

from edge_voice.bench.names import outcome
from edge_voice.core.config import IntentsConfig
from edge_voice.engines.intents import RuleIntentMatcher

ROW = {"devices": ("fan",), "action": "turn_on"}


def test_each_result_is_counted_once() -> None:
    m = RuleIntentMatcher(IntentsConfig())
    assert outcome(ROW, m.match("Turn on the fan.")) == "right"
    assert outcome(ROW, m.match("Turn off the fan.")) == "wrong"  # another action on the device
    assert outcome(ROW, m.match("Turn on the kitchen light.")) == "wrong"
    assert outcome(ROW, m.match("Turn on the van.")) == "clarified_right"  # "Did you mean the fan?"
    assert outcome(ROW, m.match("Turn on the copy machine.")) == "clarified"  # offers another device
    assert outcome(ROW, m.match("Turn on the hand.")) == "refused"  # letters only: no sounds-like
    assert outcome(ROW, m.match("What is a fan?")) == "to_llm"
    assert outcome(ROW, m.match("Set a timer for five minutes.")) == "other"
