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


@pytest.mark.parametrize(
    "text",
    [
        "What is water made of?",
        "what are clouds made of?",
        "What is the moon made of?",
        "What is a thermometer used for?",
        "What are you looking at?",
        "Who was Romeo and Juliet written by?",
        "What is it for?",
        "Who is this for?",
    ],
)
def test_a_question_ending_on_a_verbs_stranded_preposition_is_finished(text: str) -> None:
    assert not unfinished(text)


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of?",  # the noun's "of" still wants its object (whisper punctuates a pause)
        "What is the square root of?",
        "What is the meaning of?",
        "What is 100 divided by?",
        "What is water made of",  # no "?": whisper did not hear it as finished
        "Turn the fan to?",  # not a question word's
        "What is the",
    ],
)
def test_a_question_that_still_wants_its_object_is_held(text: str) -> None:
    assert unfinished(text)


def test_the_devices_own_reply_heard_back_is_echo_and_the_users_words_are_not() -> None:
    reply = "Turning on the kitchen light."
    assert is_echo("turning on the kitchen light", reply)
    assert is_echo("Turning on the kitchen.", reply)
    assert not is_echo("and turn off the fan.", reply)
    assert not is_echo("and the coffee machine", reply)
    assert not is_echo("", reply) and not is_echo("turning on", "")
