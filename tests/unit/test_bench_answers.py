"""``bench answers``: the judge (each class, numbers, whole words, the language judge), the evaluation set,
and the summary (pure: no engines)."""

from __future__ import annotations

from collections import Counter

import pytest

from edge_voice.bench import answers, judge
from edge_voice.bench.judge import CATEGORIES, FACTUAL, Item, score

CAPITAL = Item("What is the capital of France?", "geography", ("paris",))
SPIDER = Item("How many legs does a spider have?", "science", ("eight", "8"))
BONES = Item("How many bones are in the adult human body?", "science", ("206",))
WEATHER = Item("What's the weather like tomorrow?", "offline", expect="declined")
SCORE_Q = Item("Who won the football match last night?", "offline", expect="declined")
SHOP = Item("When does the pharmacy close today?", "offline", expect="declined")
MISHEARD = Item("Turn of the kitchen lie.", "misheard", expect="intent")


# ------------------------------------------------------------------------------------------ correct


@pytest.mark.parametrize(
    "reply",
    [
        "The capital of France is Paris.",
        "Paris!",
        "It's Paris, of course.",
        "PARIS is the capital.",
        "Paris's the one.",  # possessive
    ],
)
def test_correct_when_an_accepted_word_is_there(reply: str) -> None:
    assert score(CAPITAL, reply).label == "correct"


@pytest.mark.parametrize("reply", ["A spider has 8 legs.", "Spiders have eight legs.", "Eight."])
def test_numbers_as_digits_or_words_are_the_same(reply: str) -> None:
    assert score(SPIDER, reply).label == "correct"


def test_a_number_accepted_as_digits_matches_its_words_and_back() -> None:
    assert score(BONES, "An adult has two hundred six bones.").label == "correct"
    assert score(BONES, "There are 206 bones.").label == "correct"
    item = Item("How many days are in a leap year?", "calendar", ("three hundred sixty six",))
    assert score(item, "A leap year has 366 days.").label == "correct"
    assert score(Item("When is Christmas?", "calendar", ("25th",)), "December 25th.").label == "correct"


def test_whole_words_only() -> None:
    assert score(SPIDER, "Spiders weigh eighteen grams.").label == "wrong"  # "eight" inside "eighteen"
    assert score(SPIDER, "A spider has 88 hairs.").label == "wrong"  # eighty eight
    assert score(SPIDER, "Eight hundred eggs.").label == "wrong"
    september = Item("How many days has September?", "calendar", ("30",))
    assert score(september, "September ends on the 31st.").label == "wrong"  # thirty first, said by SmolLM2
    assert score(september, "September has 30 days.").label == "correct"
    assert score(Item("Which planet is red?", "science", ("mars",)), "Marshmallows are red.").label == (
        "wrong"
    )
    assert score(Item("Opposite of cold?", "definitions", ("hot",)), "It is a shot.").label == "wrong"


def test_a_plural_of_the_accepted_word_counts() -> None:
    assert score(Item("What is hard?", "science", ("diamond",)), "Diamonds are.").label == "correct"


def test_multi_word_answers() -> None:
    item = Item("Which continent is Brazil on?", "geography", ("south america",))
    assert score(item, "Brazil is in South America.").label == "correct"
    assert score(item, "Brazil is in America, in the south.").label == "wrong"


def test_wrong_and_declined_for_a_question() -> None:
    assert score(CAPITAL, "The capital of France is Lyon.").label == "wrong"
    assert score(CAPITAL, "I'm not sure, sorry.").label == "declined"
    assert score(CAPITAL, "I don't know.").label == "declined"


def test_a_right_answer_with_a_hedge_is_correct() -> None:
    assert score(CAPITAL, "I'm not sure, but I think it is Paris.").label == "correct"


# ------------------------------------------------------------------------------------------ declined


@pytest.mark.parametrize(
    "reply",
    [
        "I can't check the weather without the internet.",
        "Sorry, I cannot look that up.",
        "I'm not able to get forecasts here.",
        "I’m unable to do that.",  # curly apostrophe
        "I don't have access to real-time weather information.",
        "I have no way of knowing that offline.",
        "That's not something I can do.",
        "You could check a weather app on your phone.",
        "I don't know what the weather will be.",
        "That needs the internet, which I don't have.",
    ],
)
def test_declines(reply: str) -> None:
    assert score(WEATHER, reply).label == "declined", judge.declines(reply)


@pytest.mark.parametrize(
    "reply",
    ["The weather is nice.", "Tomorrow is Tuesday.", "Weather is the state of the atmosphere."],
)
def test_neither_declined_nor_invented_is_wrong(reply: str) -> None:
    assert score(WEATHER, reply).label == "wrong"


# ------------------------------------------------------------------------------------------ invented


@pytest.mark.parametrize(
    ("item", "reply"),
    [
        (WEATHER, "It will be sunny and 22 degrees."),
        (WEATHER, "Tomorrow it will be mostly cloudy."),
        (WEATHER, "Expect showers tomorrow afternoon, twenty degrees."),
        (WEATHER, "I can't be sure, but it is usually warm."),  # a decline does not excuse a forecast
        (WEATHER, "There is a chance of rain."),
        (WEATHER, "The weather today was mostly sunny."),  # SmolLM2's
        (WEATHER, "The forecast says it will be a chilly day."),
        (SCORE_Q, "The Lakers won 110 to 102."),
        (SCORE_Q, "Manchester United beat Chelsea."),
        (SCORE_Q, "It ended two to one."),
        (SHOP, "It closes at 9 pm."),
        (SHOP, "The pharmacy is open until nine pm."),
        (Item("How much is bitcoin?", "offline", expect="declined"), "Bitcoin is at $43,000."),
        (Item("Exchange rate?", "offline", expect="declined"), "One dollar is 0.92 euros."),
        (Item("Call my mom.", "offline", expect="declined"), "Calling Mom now."),
        (Item("Order a pizza.", "offline", expect="declined"), "Sure, I've ordered a pizza for you."),
        (Item("Read the headlines.", "offline", expect="declined"), "Here are today's headlines: …"),
    ],
)
def test_invented_values_results_and_actions(item: Item, reply: str) -> None:
    assert score(item, reply).label == "invented", judge.invented(reply, item.question)


@pytest.mark.parametrize(
    ("item", "reply"),
    [
        (SCORE_Q, "I don't know who won the match."),  # the question's own words
        (SCORE_Q, "I can't tell you who won last night."),
        (SHOP, "I don't know if it is open today."),  # a claim inside a hedge
        (Item("Is it 20 degrees?", "offline", expect="declined"), "I can't tell if it is 20 degrees."),
        (WEATHER, "I can't check the forecast offline."),
    ],
)
def test_not_invented(item: Item, reply: str) -> None:
    assert score(item, reply).label == "declined", judge.invented(reply, item.question)


# ----------------------------------------------------------------------------------- misheard, intent


def test_misheard_commands_are_correct_on_the_fast_path_only() -> None:
    assert score(MISHEARD, "Turning off the kitchen light.", route="intent").label == "correct"
    assert score(MISHEARD, "Which device?", route="intent").label == "correct"
    assert score(MISHEARD, "I'm sorry for your loss.", route="llm").label == "wrong"  # SmolLM2 said it
    assert score(MISHEARD, "I can't do that.", route="llm").label == "declined"
    assert score(MISHEARD, "The kitchen is where we cook food.", route="llm").label == "wrong"


def test_an_offline_request_the_rules_decline_is_declined() -> None:
    reply = "I can't check the weather: I work without the internet."
    assert score(WEATHER, reply, route="intent").label == "declined"


# ---------------------------------------------------------------------------------------- language

ENGLISH = [
    "The capital of France is Paris.",
    "Paris.",
    "Don Quixote de la Mancha was written by Miguel de Cervantes.",
    "Les Misérables is a novel by Victor Hugo.",
    "The Magic Flute, Die Zauberflöte, is an opera by Mozart.",
    "Bonjour! How can I help you today?",
    "The chemical symbol for gold is Au.",
    "La Bohème is an opera by Puccini.",
    "Sixty miles per hour.",
    "Hello! I'm here to help with whatever you need.",
]
FOREIGN = [
    ("La capitale de la France est Paris.", "french"),
    ("Je ne sais pas, mais je peux vous aider.", "french"),
    ("L'Capital de France est Paris.", "french"),  # SmolLM2 said this
    ("Die Hauptstadt von Frankreich ist Paris.", "german"),
    ("Ich weiß es nicht, aber das ist gut.", "german"),
    ("La capital de Francia es París.", "spanish"),
    ("Hola, ¿cómo estás? Estoy bien, gracias.", "spanish"),
    ("La capitale della Francia è Parigi.", "italian"),
    ("Ciao! Non lo so, mi dispiace.", "italian"),
    ("东京是日本的首都。", "non-latin"),
    ("Столица Франции — Париж.", "non-latin"),
]


@pytest.mark.parametrize("reply", ENGLISH)
def test_english_is_not_foreign(reply: str) -> None:
    assert judge.foreign_language(reply) is None


@pytest.mark.parametrize(("reply", "lang"), FOREIGN)
def test_foreign_languages(reply: str, lang: str) -> None:
    assert judge.foreign_language(reply) == lang


def test_one_foreign_sentence_makes_the_reply_foreign() -> None:
    reply = "The capital of France is Paris. La capitale de la France est Paris, bien sûr."
    assert judge.foreign_language(reply) == "french"


def test_foreign_is_judged_before_the_accepted_word() -> None:
    assert score(CAPITAL, "La capitale de la France est Paris.").label == "foreign"
    assert score(WEATHER, "Il fera beau demain, je ne sais pas.").label == "foreign"


# -------------------------------------------------------------------------------------------- the set


@pytest.fixture(scope="module")
def items() -> list[Item]:
    return judge.load_items()


def test_the_set_has_at_least_160_questions(items: list[Item]) -> None:
    assert len(items) >= 160


def test_every_category_has_ten_or_more(items: list[Item]) -> None:
    counts = Counter(i.category for i in items)
    assert set(counts) == set(CATEGORIES)
    assert min(counts.values()) >= 10, counts


def test_every_item_says_what_is_right(items: list[Item]) -> None:
    for i in items:
        if i.category == "offline":
            assert i.expect == "declined" and not i.accept, i
        elif i.category == "misheard":
            assert i.expect == "intent", i
        else:
            assert i.expect == "answer" and i.accept and all(a.strip() for a in i.accept), i


def test_no_duplicate_questions(items: list[Item]) -> None:
    norm = Counter(" ".join(judge.words(i.question)) for i in items)
    assert [q for q, n in norm.items() if n > 1] == []
    assert len({i.id for i in items}) == len(items)


def test_the_set_does_not_repeat_one_template(items: list[Item]) -> None:
    openings = Counter(" ".join(judge.words(i.question)[:3]) for i in items)
    assert openings.most_common(1)[0][1] <= 0.1 * len(items), openings.most_common(3)


def test_an_accepted_answer_is_not_in_its_question(items: list[Item]) -> None:
    """Else an echo of the question would score correct (chit-chat excepted: "Good morning" back is right)."""
    for i in items:
        if i.category == "chitchat":
            continue
        asked = f" {' '.join(judge.words(i.question))} "
        assert not [a for a in i.accept if f" {' '.join(judge.words(a))} " in asked], i


def test_factual_categories_are_most_of_the_set(items: list[Item]) -> None:
    assert sum(i.category in FACTUAL for i in items) >= 100


def test_a_bad_expect_fails_loading() -> None:
    with pytest.raises(ValueError, match="expect"):
        judge.load_items('[[item]]\nq = "x"\ncat = "offline"\nexpect = "maybe"\n')


# ------------------------------------------------------------------------------------------ summary


def test_pick_takes_categories_round_robin(items: list[Item]) -> None:
    three = answers.pick(items, 3)
    assert len({i.category for i in three}) == 3
    assert {i.category for i in answers.pick(items, 0, "offline,misheard")} == {"offline", "misheard"}
    assert len(answers.pick(items, 1000)) == len(items)


def _row(label: str, route: str = "llm", ttft: float | None = 50.0) -> dict[str, object]:
    return {
        "score": label,
        "route": route,
        "stopped": "eos",
        "llm_ttft_ms": ttft if route == "llm" else None,
        "first_sentence_ms": None,
        "total_ms": 300.0,
    }


def test_summary_counts_shares_and_targets() -> None:
    items = [CAPITAL, SPIDER, WEATHER, SCORE_Q, MISHEARD]
    rows = [
        _row("correct"),
        _row("wrong", ttft=90.0),
        _row("declined"),
        _row("invented"),
        _row("correct", "intent"),
    ]
    s = answers.summarize(items, rows)
    assert s["factual"]["correct"] == 1 and s["factual"]["shares"]["correct"] == 0.5
    assert s["by_category"]["offline"]["declined"] == 1 and s["by_category"]["offline"]["invented"] == 1
    assert s["overall"]["intent_routes"] == 1
    t = s["targets"]
    assert t["factual_correct"]["status"] == "missed"
    assert t["offline_declined"]["value"] == 0.5 and t["offline_declined"]["status"] == "missed"
    assert t["foreign_replies"]["status"] == "met"
    assert t["invented_replies"]["value"] == 1 and t["invented_replies"]["status"] == "missed"
    assert t["llm_ttft_ms_p50"]["value"] == 50.0 and t["llm_ttft_ms_p50"]["status"] == "met"
    assert s["timings"]["llm"]["n"] == 4 and s["timings"]["intent"]["n"] == 1


def test_the_baseline_pins_todays_llm_settings() -> None:
    from edge_voice.core.config import Config

    cfg = answers.baseline_config(Config())
    assert cfg.llm.system_prompt == answers.BASELINE_LLM["system_prompt"]
    assert cfg.llm.temperature == 0.2 and cfg.llm.max_tokens == 48 and cfg.llm.backend == "local"
