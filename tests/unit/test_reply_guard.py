"""The reply guard: foreign sentences, markup, run-ons and invented live facts never reach TTS."""

from __future__ import annotations

import pytest

from edge_voice.core.reply_guard import (
    ReplyGuard,
    invents_live_fact,
    is_live_question,
    language_of,
    strip_markup,
)

# Answers a good reply may be: names of places, planets and people are no evidence of another language.
ENGLISH = [
    "The capital of Australia is Canberra.",
    "The largest planet in our solar system is Jupiter.",
    "Paris is the capital of France.",
    "Le Grand Paris is the capital of France.",  # wrong, but English
    "La Paz is the seat of government of Bolivia.",
    "Los Angeles is a city in California.",
    "Buenos Aires is the capital of Argentina.",
    "São Paulo is the largest city in Brazil.",
    "The Mona Lisa was painted by Leonardo da Vinci.",
    "Die Hard is a film from 1988.",
    "Angela Merkel was the chancellor of Germany.",
    "Bonjour means hello in French.",
    "Mount Everest is the tallest mountain in the world.",
    "A spider has eight legs.",
    "Water boils at 100 degrees Celsius.",
    "The chemical symbol for gold is Au.",
    "Sorry, I can't check the weather because I work offline.",
    "I'm doing well, thank you for asking.",
    "Rome is the capital of Italy.",
    "Berlin is the capital of Germany, and Madrid is the capital of Spain.",
    "Photosynthesis is how plants turn light into energy.",
    "Tokyo.",
    "Ottawa, in Ontario.",
    "Jupiter!",
    "Karl Marx wrote Das Kapital.",
    "The Eiffel Tower is in Paris.",
    "Café au lait is coffee with milk.",
    "Zürich is a city in Switzerland.",
    "The Portuguese language is spoken in Brazil.",
    "Neil Armstrong was the first person to walk on the moon.",
]

FOREIGN = [
    ("Il caput di Roma è Roma.", "italian"),
    ("La capitale d'Italia è Roma.", "italian"),
    ("La capitale de la France est Paris.", "french"),
    ("Très bien, merci.", "french"),
    ("Der Königreich in Deutschland ist der Bundesrepublik Deutschland und die Bundesbank.", "german"),
    ("Die Hauptstadt von Deutschland ist Berlin.", "german"),
    ("La capital de España es Madrid.", "spanish"),
    ("Hola, ¿cómo estás? Muy bien, gracias.", "spanish"),
    ("A capital do Brasil é Brasília.", "portuguese"),
    ("De hoofdstad van Nederland is Amsterdam.", "dutch"),
    ("Столица Франции — Париж.", "other-script"),
    ("法国的首都是巴黎。", "other-script"),
]


@pytest.mark.parametrize("text", ENGLISH)
def test_english_answers_with_foreign_names_pass(text: str) -> None:
    assert language_of(text) in ("english", "")
    assert ReplyGuard("What is it?").check(text).action == "speak"


@pytest.mark.parametrize(("text", "lang"), FOREIGN)
def test_foreign_sentences_are_refused(text: str, lang: str) -> None:
    found = language_of(text)
    assert found not in ("english", "")
    if lang == "other-script":
        assert found == lang
    verdict = ReplyGuard("What is the capital?").check(text)
    assert (verdict.action, verdict.reason) == ("refuse", f"foreign:{found}")


def test_markdown_is_stripped_and_a_bare_list_marker_is_not_spoken() -> None:
    assert strip_markup("**Paris** is the `capital` of France.") == "Paris is the capital of France."
    assert strip_markup("- Rome is in Italy.") == "Rome is in Italy."
    assert strip_markup("1. Rome is in Italy.") == "Rome is in Italy."
    assert strip_markup("## Capitals") == "Capitals"
    assert strip_markup("See [the map](http://x.y/z).") == "See the map."
    guard = ReplyGuard("What is the capital of France?")
    assert guard.check("**Paris** is the capital.") == guard.check("**Paris** is the capital.").__class__(
        "speak", "Paris is the capital."
    )
    assert ReplyGuard("q").check("* * *").action == "refuse"  # nothing speakable first: fallback


def test_at_most_two_sentences_then_the_reply_ends() -> None:
    guard = ReplyGuard("Tell me about Paris.", max_sentences=2)
    assert guard.check("Paris is the capital of France,").action == "speak"  # a first clause: no sentence yet
    assert guard.check("on the Seine.").action == "speak"
    assert not guard.done
    assert guard.check("It has the Eiffel Tower.").action == "speak"
    assert guard.done
    verdict = guard.check("It has many museums.")
    assert (verdict.action, verdict.reason) == ("end", "sentences")


def test_no_limit_when_max_sentences_is_zero() -> None:
    guard = ReplyGuard("q", max_sentences=0)
    for _ in range(5):
        assert guard.check("Paris is lovely.").action == "speak"
    assert not guard.done


def test_a_question_the_model_asks_itself_ends_the_reply_quietly() -> None:
    guard = ReplyGuard("What is the capital of France?")
    assert guard.check("Paris is the capital of France.").action == "speak"
    verdict = guard.check("What is the capital of Germany?")
    assert (verdict.action, verdict.reason) == ("end", "run-on")
    chat = ReplyGuard("Hello.")
    assert chat.check("Hello!").action == "speak"
    assert chat.check("How can I help you?").action == "speak"  # a question back to the user is fine


@pytest.mark.parametrize(
    "question",
    [
        "What is the weather like tomorrow?",
        "Will it rain today?",
        "How hot is it outside right now?",
        "What is the price of bitcoin today?",
        "What is the exchange rate of the euro to the dollar?",
        "Who won the football game last night?",
        "What's the score of the match tonight?",
        "What is in the news?",
        "How much does a Tesla cost?",
    ],
)
def test_live_questions_get_no_invented_numbers(question: str) -> None:
    assert is_live_question(question)
    for invented in (
        "It will be sunny with a high of 25 degrees.",
        "The current price of Bitcoin is $1,983.40.",
        "Manchester United lost two to one.",
        "The weather today is quite pleasant,",
    ):
        assert invents_live_fact(question, invented)
        verdict = ReplyGuard(question).check(invented)
        assert (verdict.action, verdict.reason) == ("refuse", "live-fact")
    assert ReplyGuard(question).check("Sorry, I can't check that because I work offline.").action == "speak"


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("How many legs does a spider have?", "A spider has eight legs."),
        ("What is the boiling point of water?", "Water boils at 100 degrees Celsius."),
        ("What temperature does water freeze at?", "Water freezes at zero degrees Celsius."),
        ("Who won the World Cup in 1966?", "England won the World Cup in 1966."),
        ("How many players are in a football match?", "A football team has eleven players."),
        ("How are you today?", "I'm doing well, thank you."),
        ("What is rain?", "Rain is water that falls from clouds."),
    ],
)
def test_numbers_in_answers_to_timeless_questions_pass(question: str, answer: str) -> None:
    assert not is_live_question(question)
    assert ReplyGuard(question).check(answer).action == "speak"


def test_refused_after_a_good_sentence_counts_what_was_spoken() -> None:
    guard = ReplyGuard("What is the capital of Italy?")
    assert guard.check("Rome is the capital of Italy.").action == "speak"
    verdict = guard.check("La capitale d'Italia è Roma.")
    assert verdict.action == "refuse"
    assert guard.spoken == 1 and guard.sentences == 1


def test_the_rest_of_a_first_clause_is_judged_with_it() -> None:
    # the chunker's phrase break speaks "The chemical symbol for gold" first; "is Au." alone looks French
    # ("au"), so the answer was cut after its first clause (session 15, a new user's trial)
    guard = ReplyGuard("What is the chemical symbol for gold?")
    assert guard.check("The chemical symbol for gold").action == "speak"
    assert guard.check("is Au.") == guard.check("is Au.").__class__("speak", "is Au.")
    french = ReplyGuard("What is the capital of France?")
    assert french.check("La capitale de la France").action == "refuse"
    after = ReplyGuard("What is the capital of France?")
    assert after.check("The capital of France").action == "speak"
    verdict = after.check("est Paris, c'est une belle ville.")
    assert (verdict.action, verdict.reason) == ("refuse", "foreign:french")


@pytest.mark.parametrize(
    ("question", "reply"),
    [
        ("who wrote romeo and juliet", "Who wrote Romeo and Juliet?"),
        ("Who painted the Mona Lisa?", "Who was that?"),
        ("How many legs does a spider have?", "How many legs does a spider have?"),
    ],
)
def test_a_question_for_an_answer_is_refused(question: str, reply: str) -> None:
    verdict = ReplyGuard(question).check(reply)
    assert (verdict.action, verdict.reason) == ("refuse", "question")


def test_a_question_back_to_a_statement_is_spoken() -> None:
    assert ReplyGuard("I'm bored.").check("What would you like to do?").action == "speak"
    assert ReplyGuard("Hello.").check("How can I help you?").action == "speak"
