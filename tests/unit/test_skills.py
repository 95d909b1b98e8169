"""Offline knowledge skills with their real data (pint, holidays, countryinfo + babel, WordNet from
Debian's wordnet-base) and the ordered ``Skills`` list. ``today`` is fixed: 2026-12-07, a Monday."""

from __future__ import annotations

import logging
from datetime import date

import pytest

from edge_voice.engines.skills import SkillAnswer, Skills, load_skills
from edge_voice.engines.skills.calendar_facts import CalendarSkill
from edge_voice.engines.skills.countries import CountriesSkill
from edge_voice.engines.skills.holidays import HolidaysSkill
from edge_voice.engines.skills.numbers import speakable
from edge_voice.engines.skills.text import skill_text
from edge_voice.engines.skills.units import UnitsSkill
from edge_voice.engines.skills.wordnet import WordNet
from edge_voice.engines.skills.words import WordsSkill

TODAY = date(2026, 12, 7)


def today() -> date:
    return TODAY


@pytest.fixture(scope="module")
def skills() -> Skills:
    return load_skills(today=today)


@pytest.fixture(scope="module")
def units() -> UnitsSkill:
    return UnitsSkill()


@pytest.fixture(scope="module")
def countries() -> CountriesSkill:
    return CountriesSkill(today=today)


@pytest.fixture(scope="module")
def words() -> WordsSkill:
    return WordsSkill(WordNet())


def reply(got: SkillAnswer | None) -> str | None:
    return got.reply if got else None


# ------------------------------------------------------------------------------------------- the list


def test_default_skills_all_load(skills: Skills) -> None:
    assert skills.names == ("units", "calendar", "holidays", "countries", "words", "chat", "boundary")


COMMANDS = [
    "Turn on the kitchen light.",
    "Set a timer for 5 minutes.",
    "What time is it?",
    "What is two plus two?",
    "What's 7 times 8?",
    "Stop.",
    "Turn the volume down.",
    "Cancel the timer.",
    "What's the date today?",
    "Tell me a story about a dragon.",
    "Who wrote Romeo and Juliet?",
    "How do I cook a turkey?",
    "How many people live in London?",
    "",
    "   ",
]


@pytest.mark.parametrize("text", COMMANDS)
def test_commands_and_open_questions_fall_through_every_skill(skills: Skills, text: str) -> None:
    for skill in skills.skills:
        assert skill.answer(text) is None, (skill.name, text)
    assert skills.answer(text) is None


@pytest.mark.parametrize(
    "text,skill,expected",
    [
        ("Convert 5 miles to kilometers.", "units", "5 miles is about 8.05 kilometers."),
        ("How many days in February 2028?", "calendar", "February 2028 has 29 days."),
        ("How many days until Christmas?", "holidays", "There are 18 days until Christmas Day."),
        ("What is the capital of Australia?", "countries", "The capital of Australia is Canberra."),
        ("What does ephemeral mean?", "words", "Ephemeral means lasting a very short time."),
        ("What does forecast mean?", "words", "To forecast means to predict in advance."),
        ("What's the weather in France?", "boundary", "I can't check the weather without the internet."),
    ],
)
def test_first_direct_answer_wins(skills: Skills, text: str, skill: str, expected: str) -> None:
    assert skills.answer(text) == SkillAnswer(skill, reply=expected)


def test_facts_only_when_nothing_answers(skills: Skills) -> None:
    got = skills.answer("Tell me about Japan.")
    assert got == SkillAnswer(
        "countries",
        facts="Japan: capital Tokyo; currency Japanese yen; official language Japanese; continent Asia.",
    )


class _Broken:
    name = "broken"

    def answer(self, text: str) -> SkillAnswer | None:
        raise RuntimeError("bug")


class _Facts:
    name = "facts"

    def answer(self, text: str) -> SkillAnswer | None:
        return SkillAnswer("facts", facts="a fact")


class _Direct:
    name = "direct"

    def answer(self, text: str) -> SkillAnswer | None:
        return SkillAnswer("direct", reply="Yes.")


def test_order_facts_and_a_failing_skill(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert Skills([_Broken(), _Facts(), _Direct()]).answer("x") == SkillAnswer("direct", reply="Yes.")
    assert "skill broken failed" in caplog.text
    assert Skills([_Facts(), _Broken()]).answer("x") == SkillAnswer("facts", facts="a fact")
    assert Skills([]).answer("x") is None


def test_missing_wordnet_disables_only_that_skill(tmp_path: object, caplog: pytest.LogCaptureFixture) -> None:
    from pathlib import Path

    with caplog.at_level(logging.WARNING):
        got = load_skills(("calendar", "words"), today=today, wordnet_dir=Path(str(tmp_path)) / "none")
    assert got.names == ("calendar",)
    assert "skill words disabled" in caplog.text


def test_unknown_skill_name_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match="unknown skill 'wether'"):
        load_skills(("wether",))


# ----------------------------------------------------------------------------------------- text


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Convert 5km to miles?", "convert 5 km to miles"),
        ("What is 100°F in Celsius?", "what is 100 degrees fahrenheit in celsius"),
        ("What's minus forty degrees in Fahrenheit?", "what is -40 degrees in fahrenheit"),
        ("What day is July 4th?", "what day is july 4th"),
    ],
)
def test_skill_text(raw: str, expected: str) -> None:
    assert skill_text(raw) == expected


@pytest.mark.parametrize(
    "x,said",
    [
        (8.04672, "8.05"),
        (26400.0, "26400"),
        (2.54, "2.54"),
        (0.3937, "0.394"),
        (-40.0, "minus 40"),
        (9.4607e12, "9.46 trillion"),
        (1609344.0, "1.61 million"),
        (0.0, "0"),
    ],
)
def test_speakable(x: float, said: str) -> None:
    assert speakable(x) == said


# ---------------------------------------------------------------------------------------- units


@pytest.mark.parametrize(
    "text,expected",
    [
        ("How many centimeters in an inch?", "1 inch is 2.54 centimeters."),
        ("How many centimetres are there in an inch?", "1 inch is 2.54 centimeters."),
        ("Convert 5 miles to kilometers.", "5 miles is about 8.05 kilometers."),
        ("Convert five miles to kilometres.", "5 miles is about 8.05 kilometers."),
        ("5km in miles", "5 kilometers is about 3.11 miles."),
        ("What is 100 Fahrenheit in Celsius?", "100 degrees Fahrenheit is about 37.8 degrees Celsius."),
        ("What's 100°F in C?", "100 degrees Fahrenheit is about 37.8 degrees Celsius."),
        (
            "What is minus 40 Celsius in Fahrenheit?",
            "Minus 40 degrees Celsius is minus 40 degrees Fahrenheit.",
        ),
        ("What is 0 degrees Celsius in Fahrenheit?", "0 degrees Celsius is 32 degrees Fahrenheit."),
        ("How many ounces in a pound?", "1 pound is 16 ounces."),
        ("How many ounces in a cup?", "1 cup is 8 fluid ounces."),
        ("How many seconds in an hour?", "1 hour is 3600 seconds."),
        ("How many feet in a mile?", "1 mile is 5280 feet."),
        ("How many kilometers is 26.2 miles?", "26.2 miles is about 42.2 kilometers."),
        ("Convert 1.5 kg to pounds.", "1.5 kilograms is about 3.31 pounds."),
        ("How many grams is half a pound?", "0.5 pounds is about 227 grams."),
        ("60 mph in kph", "60 miles per hour is about 96.6 kilometers per hour."),
        ("How many tablespoons in a cup?", "1 cup is 16 tablespoons."),
        ("How many cups in a gallon?", "1 gallon is 16 cups."),
        ("How many megabytes in a gigabyte?", "1 gigabyte is 1000 megabytes."),
        ("Convert 10 stone to kg.", "10 stone is about 63.5 kilograms."),
        ("What is 1 light year in kilometers?", "1 light year is about 9.46 trillion kilometers."),
        ("How many liters in a gallon?", "1 gallon is about 3.79 liters."),
        (
            "How many feet in a kilogram?",
            "Kilograms and feet measure different things: I can't convert them.",
        ),
    ],
)
def test_units(units: UnitsSkill, text: str, expected: str) -> None:
    got = units.answer(text)
    assert got == SkillAnswer("units", reply=expected)


@pytest.mark.parametrize(
    "text",
    [
        "How many people live in France?",
        "How many days until Christmas?",
        "How many days in a year?",  # the calendar's (pint's year is 365.25 days)
        "Convert this to a PDF.",
        "How many c in a f?",
        "What is 5 in 10?",
        "Set a timer for 5 minutes.",
        "How many miles in a mile?",
    ],
)
def test_units_fall_through(units: UnitsSkill, text: str) -> None:
    assert units.answer(text) is None


# ------------------------------------------------------------------------------------- calendar


@pytest.mark.parametrize(
    "text,expected",
    [
        (
            "How many days in February?",
            "February has 28 days this year; it has 29 in a leap year and 28 otherwise.",
        ),
        ("How many days are there in April?", "April has 30 days."),
        ("How many days in February 2028?", "February 2028 has 29 days."),
        ("How many days does March have?", "March has 31 days."),
        ("How many days in a year?", "A year has 365 days, or 366 in a leap year."),
        ("How many days are there in 2028?", "2028 has 366 days."),
        ("How many days in a week?", "A week has 7 days."),
        (
            "How many weeks in a year?",
            "A year has 52 weeks and 1 day, or 52 weeks and 2 days in a leap year.",
        ),
        ("How many months in a year?", "A year has 12 months."),
        ("Is 2028 a leap year?", "Yes, 2028 is a leap year."),
        ("Is this a leap year?", "No, 2026 is not a leap year."),
        ("Is next year a leap year?", "No, 2027 is not a leap year."),
        ("Is 1900 a leap year?", "No, 1900 is not a leap year."),
        ("When is the next leap year?", "The next leap year is 2028."),
        ("When was the last leap year?", "The last leap year was 2024."),
        ("How many days are left in the year?", "There are 24 days left in 2026 after today."),
        ("What week is it?", "It is week 50 of 2026."),
        ("What day of the year is it?", "Today is day 341 of 2026."),
        ("What day of the week is July 4th, 2027?", "July 4, 2027 is a Sunday."),
        ("What day was March 3rd 2020?", "March 3, 2020 was a Tuesday."),
        ("What day is the 4th of July?", "July 4, 2027 is a Sunday."),
        ("How many days until January 1st?", "There are 25 days until January 1, 2027."),
        ("How many days until the twenty first of December?", "There are 14 days until December 21."),
        ("How many days until December 8?", "There is 1 day until December 8."),
    ],
)
def test_calendar(text: str, expected: str) -> None:
    assert CalendarSkill(today=today).answer(text) == SkillAnswer("calendar", reply=expected)


@pytest.mark.parametrize(
    "text",
    ["What day is it?", "What is February?", "How many days until my birthday?", "What day is July 32?"],
)
def test_calendar_falls_through(text: str) -> None:
    assert CalendarSkill(today=today).answer(text) is None


# ------------------------------------------------------------------------------------- holidays


@pytest.mark.parametrize(
    "text,expected",
    [
        ("When is Christmas?", "Christmas Day is on Friday, December 25."),
        ("What day is Christmas on?", "Christmas Day is on Friday, December 25."),
        ("When is Thanksgiving this year?", "Thanksgiving Day was on Thursday, November 26."),
        ("When is Thanksgiving?", "Thanksgiving Day is on Thursday, November 25, 2027."),
        ("When is Thanksgiving next year?", "Thanksgiving Day is on Thursday, November 25, 2027."),
        ("How many days until Christmas?", "There are 18 days until Christmas Day."),
        ("How long until New Year's?", "There are 25 days until New Year's Day."),
        ("How many sleeps until Christmas?", "There are 18 days until Christmas Day."),
        ("When is Easter?", "Easter Sunday is on Sunday, March 28, 2027."),
        ("When was Easter in 2020?", "Easter Sunday was on Sunday, April 12, 2020."),
        ("When is the fourth of July?", "Independence Day is on Sunday, July 4, 2027."),
        ("When is Mother's Day?", "Mother's Day is on Sunday, May 9, 2027."),
        ("When is MLK Day?", "Martin Luther King Junior Day is on Monday, January 18, 2027."),
        ("When is Labor Day?", "Labor Day is on Monday, September 6, 2027."),
        ("Is today a holiday?", "No, today is not a public holiday."),
        ("What is the next holiday?", "The next public holiday is Christmas Day, on Friday, December 25."),
    ],
)
def test_holidays(text: str, expected: str) -> None:
    assert HolidaysSkill(today=today).answer(text) == SkillAnswer("holidays", reply=expected)


def test_holidays_on_the_day() -> None:
    christmas = HolidaysSkill(today=lambda: date(2026, 12, 25))
    assert reply(christmas.answer("Is today a holiday?")) == "Yes, today is Christmas Day."
    assert reply(christmas.answer("When is Christmas?")) == "Christmas Day is today."
    eve = HolidaysSkill(today=lambda: date(2026, 12, 24))
    assert reply(eve.answer("Is tomorrow a holiday?")) == "Yes, tomorrow is Christmas Day."
    assert (
        reply(eve.answer("Is today a holiday?")) == "Today is Christmas Eve, but it is not a public holiday."
    )
    assert reply(eve.answer("How many days until Christmas?")) == "Christmas Day is tomorrow."


def test_holidays_other_country() -> None:
    uk = HolidaysSkill(country="GB", today=today)
    assert reply(uk.answer("When is Boxing Day?")) == "Boxing Day is on Saturday, December 26."
    assert reply(uk.answer("When is Easter?")) == "Easter Sunday is on Sunday, March 28, 2027."
    assert uk.answer("When is Thanksgiving?") is None  # not a UK holiday: the LLM may say more


@pytest.mark.parametrize("text", ["When is Diwali?", "When is my timer done?", "When is the meeting?"])
def test_holidays_fall_through(text: str) -> None:
    assert HolidaysSkill(today=today).answer(text) is None


# ------------------------------------------------------------------------------------ countries


@pytest.mark.parametrize(
    "text,expected",
    [
        ("What is the capital of Australia?", "The capital of Australia is Canberra."),
        ("What's the capital of France?", "The capital of France is Paris."),
        ("What is Australia's capital?", "The capital of Australia is Canberra."),
        ("Capital of Japan", "The capital of Japan is Tokyo."),
        ("What's the capital city of New Zealand?", "The capital of New Zealand is Wellington."),
        ("What is the capital of the UK?", "The capital of the United Kingdom is London."),
        ("What is the capital of America?", "The capital of the United States is Washington, D.C."),
        ("What is the capital of Kazakhstan?", "The capital of Kazakhstan is Astana."),
        ("What is the capital of Brazil?", "The capital of Brazil is Brasília."),
        ("What is the capital of the Netherlands?", "The capital of the Netherlands is Amsterdam."),
        ("Paris is the capital of which country?", "Paris is the capital of France."),
        ("Which country is Canberra the capital of?", "Canberra is the capital of Australia."),
        ("What currency does Japan use?", "Japan uses the Japanese yen."),
        ("What currency do they use in Croatia?", "Croatia uses the euro."),
        ("What money do they use in India?", "India uses the Indian rupee."),
        ("What is the currency of Switzerland?", "Switzerland uses the Swiss franc."),
        ("What currency does Panama use?", "Panama uses the Panamanian balboa and the US dollar."),
        ("What language do they speak in Brazil?", "The official language of Brazil is Portuguese."),
        (
            "What languages are spoken in Switzerland?",
            "The official languages of Switzerland are German, French and Italian.",
        ),
        ("What language do they speak in the US?", "The main language of the United States is English."),
        ("What continent is Chad in?", "Chad is in Africa."),
        ("Where is Brazil?", "Brazil is in South America."),
        ("Which continent is Mexico on?", "Mexico is in North America."),
    ],
)
def test_countries(countries: CountriesSkill, text: str, expected: str) -> None:
    assert countries.answer(text) == SkillAnswer("countries", reply=expected)


@pytest.mark.parametrize(
    "text",
    [
        "What is the capital of Atlantis?",
        "What is the capital of England?",  # not a country in the data: the LLM answers, nothing is guessed
        "Where is my phone?",
        "How do I cook a turkey?",  # an everyday word, not the country
        "Atlantis is the capital of which country?",
    ],
)
def test_countries_fall_through(countries: CountriesSkill, text: str) -> None:
    assert countries.answer(text) is None


def test_country_facts_for_grounding(countries: CountriesSkill) -> None:
    assert countries.answer("What is the population of Japan?") == SkillAnswer(
        "countries",
        facts="Japan: capital Tokyo; currency Japanese yen; official language Japanese; continent Asia.",
    )
    got = countries.answer("What's the weather in France?")
    assert got == SkillAnswer(
        "countries", facts="France: capital Paris; currency euro; official language French; continent Europe."
    )
    assert countries.answer("Tell me about Turkey.") == SkillAnswer(
        "countries",
        facts="Turkey: capital Ankara; currency Turkish lira; official language Turkish; continent Asia.",
    )


# ---------------------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    "text,expected",
    [
        ("What does ephemeral mean?", "Ephemeral means lasting a very short time."),
        ("Define gregarious.", "Gregarious means tending to form a group with others of the same species."),
        (
            "What is the meaning of serendipity?",
            "Serendipity means good luck in making unexpected and fortunate discoveries.",
        ),
        ("What does the word ubiquitous mean?", "Ubiquitous means being present everywhere at once."),
        ("What does forecast mean?", "To forecast means to predict in advance."),
        (
            "Define cats.",
            "Cat means feline mammal usually having thick soft fur and no ability to roar: domestic cats.",
        ),
        ("What's another word for happy?", "Other words for happy are blessed, blissful and bright."),
        ("Synonym for big", "Other words for big are large, ample and sizable."),
        ("Give me another word for begin.", "Other words for begin are get, start and commence."),
        ("What is the opposite of cold?", "The opposite of cold is hot."),
        ("What's the opposite of up?", "The opposite of up is down."),
        ("Antonym of good", "The opposite of good is bad or evil."),
        ("What is the opposite of happy?", "The opposite of happy is unhappy."),
        ("What is an antonym for love?", "The opposite of love is hate."),
    ],
)
def test_words(words: WordsSkill, text: str, expected: str) -> None:
    assert words.answer(text) == SkillAnswer("words", reply=expected)


@pytest.mark.parametrize(
    "text",
    [
        "What is the meaning of life?",
        "What does that mean?",
        "What does zxqv mean?",
        "Another word for house",
        "What is a black hole?",
        "What does it mean to be or not to be?",
    ],
)
def test_words_fall_through(words: WordsSkill, text: str) -> None:
    assert words.answer(text) is None


def test_wordnet_reader() -> None:
    wn = WordNet()
    goose = wn.lookup("geese", "n")
    assert goose is not None and goose.word == "goose"
    assert wn.lemma("aardvark", "n") is not None and wn.lemma("zzzzzz", "n") is None
    assert wn.lemma("  ", "n") is None  # the licence header is never a match
    assert wn.synset(goose.offsets[0], "n").words == ("goose",)


def test_odd_input_never_raises(skills: Skills) -> None:
    for text in ("?!", "😀 what does 😀 mean", "a" * 3000, "how many " * 100, "what is the capital of " * 30):
        for skill in skills.skills:
            skill.answer(text)


# ------------------------------------------------------------------------------------------ small talk


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("Hello!", "hello"),
        ("Good morning.", "morning"),
        ("Good night.", "night"),
        ("How are you?", "doing well"),
        ("Hey Jarvis, how are you today?", "doing well"),
        ("Who are you?", "voice assistant"),
        ("Thank you.", "welcome"),
        ("Tell me a joke.", "scarecrow"),
        ("Do you know any jokes?", "scarecrow"),
        ("What can you do?", "timers"),
    ],
)
def test_small_talk_gets_a_fixed_friendly_reply(skills: Skills, text: str, words: str) -> None:
    got = skills.answer(text)
    assert got is not None and got.skill == "chat" and words in got.reply.lower(), got


@pytest.mark.parametrize(
    "text",
    ["How are you going to fix this?", "Hello kitty is a brand", "Who are you voting for?", "thanks to you"],
)
def test_small_talk_matches_only_the_whole_phrase(skills: Skills, text: str) -> None:
    got = skills.answer(text)
    assert got is None or got.skill != "chat", got


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("How many days has September?", "30"),
        ("How many days are there in a leap year?", "366"),
        ("What day comes after Friday?", "saturday"),
        ("Which day is before Monday?", "sunday"),
        ("What's the last month of the year?", "december"),
        ("How often is there a leap year?", "four years"),
        ("What is the opposite of empty?", "full"),
        ("How many days does February have in a leap year?", "29"),
    ],
)
def test_calendar_and_word_phrasings_users_say(skills: Skills, text: str, words: str) -> None:
    got = skills.answer(text)
    assert got is not None and words in got.reply.lower(), got


def test_facts_after_an_answer_on_the_same_words_asks_the_skills_once() -> None:
    """The matcher asks first, then the LLM prompt wants the facts: one pass over the skills per turn."""
    from edge_voice.engines.skills import REUSE_S

    class Counting:
        name = "countries"

        def __init__(self) -> None:
            self.calls = 0

        def answer(self, text: str) -> SkillAnswer | None:
            self.calls += 1
            return SkillAnswer(self.name, facts=f"facts about {text}")

    now = [100.0]
    skill = Counting()
    skills = Skills([skill], now_s=lambda: now[0])
    assert skills.answer("tell me about Japan") is not None and skill.calls == 1
    assert skills.facts("tell me about Japan") == "facts about tell me about Japan" and skill.calls == 1
    assert skills.facts("tell me about Peru") == "facts about tell me about Peru" and skill.calls == 2
    now[0] += REUSE_S + 1  # later the same words are asked again: dates may have moved on
    assert skills.facts("tell me about Peru") and skill.calls == 3
