"""End of turn from words: unfinished clauses, and the echo of the device's own reply."""

from __future__ import annotations

import pytest

from edge_voice.core.endofturn import is_echo, unfinished


@pytest.mark.parametrize(
    "text",
    [
        "Turn on the kitchen light and",
        "turn on the kitchen light and...",
        "What is the",
        "what's",
        "Set a timer for",
        "Turn off the",
        "What is the capital of",
        "Turn on the light, the fan, and",
        "Tell me about",
        "Switch the fan to",
        "Turn on the kitchen-",
        "Turn on the kitchen light,",
    ],
)
def test_a_clause_cut_mid_way_is_unfinished(text: str) -> None:
    assert unfinished(text)


@pytest.mark.parametrize(
    "text",
    [
        "Turn on the kitchen light.",
        "turn the fan off",
        "Turn it on.",
        "What is the capital of France?",
        "Set a timer for ten minutes",
        "Where are you from?",
        "Tell me why.",
        "What day it is",
        "Stop.",
        "",
        "   ",
        "Thank you",
        "Turn on the light please",
    ],
)
def test_a_finished_sentence_is_not_held(text: str) -> None:
    assert not unfinished(text)


def test_the_devices_own_reply_heard_back_is_echo_and_the_users_words_are_not() -> None:
    reply = "Turning on the kitchen light."
    assert is_echo("turning on the kitchen light", reply)
    assert is_echo("Turning on the kitchen.", reply)
    assert not is_echo("and turn off the fan.", reply)
    assert not is_echo("and the coffee machine", reply)
    assert not is_echo("", reply) and not is_echo("turning on", "")
