"""Honest boundaries: what needs the internet or a missing integration is declined with one true
sentence; commands and offline questions are never declined."""

from __future__ import annotations

import pytest

from edge_voice.engines.skills.boundaries import BoundarySkill, parse_boundaries


@pytest.fixture(scope="module")
def skill() -> BoundarySkill:
    return BoundarySkill.load()


@pytest.mark.parametrize(
    "text,name",
    [
        ("What's the weather like tomorrow?", "weather"),
        ("What's the weather?", "weather"),
        ("Will it rain today?", "weather"),
        ("Is it going to snow this weekend?", "weather"),
        ("What's the forecast for Saturday?", "weather"),
        ("How cold is it outside?", "weather"),
        ("What is the temperature outside?", "weather"),
        ("What's the temperature in London?", "weather"),
        ("What's the temperature?", "weather"),
        ("Do I need an umbrella today?", "weather"),
        ("What's the chance of rain?", "weather"),
        ("What's the news?", "news"),
        ("Read me the headlines.", "news"),
        ("What's happening in the world?", "news"),
        ("What was the score of the Lakers game?", "sports"),
        ("Who won the Super Bowl?", "sports"),
        ("Who won last night?", "sports"),
        ("Did the Yankees win yesterday?", "sports"),
        ("When do the Packers play next?", "sports"),
        ("Premier League table", "sports"),
        ("What's the Apple stock price?", "markets"),
        ("How much is a bitcoin worth?", "markets"),
        ("What's the exchange rate for the euro?", "markets"),
        ("Convert 5 dollars to euros.", "markets"),
        ("How much is 100 pounds in dollars?", "markets"),
        ("How is the stock market doing?", "markets"),
        ("How's the traffic on my way to work?", "traffic"),
        ("How long will it take to drive to Boston?", "traffic"),
        ("When is the next bus?", "traffic"),
        ("Give me directions to the airport.", "directions"),
        ("How do I get to the station?", "directions"),
        ("Where is the nearest gas station?", "directions"),
        ("Find restaurants near me.", "directions"),
        ("Is my flight on time?", "flights"),
        ("What's the status of flight BA 117?", "flights"),
        ("Is the pharmacy open now?", "opening_hours"),
        ("What time does the bank close?", "opening_hours"),
        ("When does the supermarket open on Sunday?", "opening_hours"),
        ("Remind me to call mom at five.", "reminders"),
        ("Set an alarm for 7 AM.", "reminders"),
        ("Wake me up at six.", "reminders"),
        ("What's on my calendar today?", "reminders"),
        ("Call mom.", "calls"),
        ("Phone John.", "calls"),
        ("Send a text to Sarah.", "calls"),
        ("Read my email.", "calls"),
        ("Do I have any new messages?", "calls"),
        ("Order a pizza.", "shopping"),
        ("Add milk to my shopping list.", "shopping"),
        ("Where is my package?", "shopping"),
        ("Book a table for two.", "shopping"),
        ("Play some jazz.", "media"),
        ("Play the Beatles.", "media"),
        ("Play BBC radio 4.", "media"),
        ("Next song.", "media"),
        ("Play my favourite podcast.", "media"),
        ("Search the web for cheap flights.", "web_search"),
        ("Look it up online.", "web_search"),
        ("Google the population of Peru.", "web_search"),
        ("Translate good morning into French.", "translation"),
        ("How do you say thank you in Spanish?", "translation"),
        ("Is the bakery on Main Street open now?", "opening_hours"),
        ("Read my new emails.", "calls"),
        ("How much does a Tesla cost?", "markets"),
        ("How much do eggs cost?", "markets"),
        ("What's the price of a new iPhone?", "markets"),
        ("What's on TV tonight?", "tv"),
        ("What is on television?", "tv"),
    ],
)
def test_declined(skill: BoundarySkill, text: str, name: str) -> None:
    found = skill.which(text)
    assert found is not None and found.name == name, (text, found)
    got = skill.answer(text)
    assert got is not None and got.skill == "boundary" and got.reply == found.reply and not got.facts


@pytest.mark.parametrize(
    "text",
    [
        "Set a timer for 5 minutes.",
        "What time is it?",
        "Turn on the kitchen light.",
        "Turn off the traffic light",
        "What is the capital of France?",
        "What is the temperature in the oven?",
        "What's the temperature in the living room?",
        "What temperature should I cook chicken at?",
        "How hot is the sun?",
        "What is 100 Fahrenheit in Celsius?",
        "Convert 5 pounds to kilograms.",
        "What is two plus two?",
        "Tell me a joke.",
        "Who wrote Romeo and Juliet?",
        "Who wrote the play Hamlet?",
        "Who won the World Cup in 1966?",
        "What do you call a baby cat?",
        "Call me Bob.",
        "Let's play a game.",
        "Is the kitchen window open?",
        "Is the garage door open?",
        "When does the timer end?",
        "How many days until Christmas?",
        "What currency does Japan use?",
        "What language do they speak in Brazil?",
        "Stop.",
        "Dim the bedroom light.",
        "How long is left on the timer?",
        "What's the date?",
        "Louder.",
        "How far is the moon?",
        "What does cost mean?",
        "Turn on the TV.",
        "What is the speed of light?",
    ],
)
def test_not_declined(skill: BoundarySkill, text: str) -> None:
    assert skill.answer(text) is None, skill.which(text)


def test_every_reply_is_one_short_sentence(skill: BoundarySkill) -> None:
    names = [b.name for b in skill.boundaries]
    assert len(names) == len(set(names)) and len(names) >= 12
    for b in skill.boundaries:
        assert b.reply.endswith(".") and len(b.reply) < 90 and b.reply[0].isupper(), b.name


def test_bad_table_fails_with_the_entry_name() -> None:
    with pytest.raises(ValueError, match=r"boundary\.weather\.patterns"):
        parse_boundaries('[[boundary]]\nname = "weather"\nreply = "No."\npatterns = ["(unclosed"]\n')
    with pytest.raises(ValueError, match=r"boundary\.x\.reply"):
        parse_boundaries('[[boundary]]\nname = "x"\nreply = ""\npatterns = ["a"]\n')
    with pytest.raises(ValueError, match="boundary"):
        parse_boundaries("")


def test_odd_input_does_not_raise(skill: BoundarySkill) -> None:
    for text in ("", "   ", "?!", "😀", "a" * 5000, "weather " * 200):
        skill.answer(text)
