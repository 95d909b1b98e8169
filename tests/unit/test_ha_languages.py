"""``intents.language`` other than English (real hassil + home-assistant-intents + Jinja2, no server): the
fast path is Home Assistant's templates for that language alone, mapped onto our intents with the same
slots, and it answers with HA's own response sentence for the match, rendered as HA's default agent does;
the English rules and skills do not run; a language HA lacks fails at start-up naming the key."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from edge_voice.core.config import (
    Config,
    ConfigError,
    DeviceEntry,
    IntentsConfig,
    load,
    still_english,
)
from edge_voice.core.replies import agent_parses
from edge_voice.engines.intents import IntentResult, RuleIntentMatcher, confirmation_phrases, ha_sentences

NOW = datetime(2026, 12, 7, 8, 5)  # a Monday
LIGHT = ("kind", "light")
DE = IntentsConfig(
    language="de",
    devices=(
        DeviceEntry("Küchenlicht", "light", ("Küchenlampe",), "light.kuechenlicht", "Küche"),
        DeviceEntry("Stehlampe", "light", (), "light.stehlampe", "Wohnzimmer"),
        DeviceEntry("Ventilator", "fan", (), "fan.ventilator", "Wohnzimmer"),
        DeviceEntry("kitchen light", "light", (), "light.kitchen_light"),  # an English name, for the rules
    ),
)
FR = IntentsConfig(
    language="fr",
    devices=(
        DeviceEntry("lumière de la cuisine", "light", (), "light.cuisine", "cuisine"),
        DeviceEntry("ventilateur", "fan", (), "fan.ventilateur", "salon"),
    ),
)


class Clock:
    def __init__(self) -> None:
        self.s = 0.0

    def __call__(self) -> float:
        return self.s


def build(cfg: IntentsConfig, mono: Clock | None = None, skills: object = None) -> RuleIntentMatcher:
    sentences = ha_sentences(cfg)
    assert sentences is not None
    return RuleIntentMatcher(
        cfg,
        clock=lambda: NOW,
        mono=mono or Clock(),
        skills=skills,
        sentences=sentences,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def german() -> RuleIntentMatcher:
    return build(DE)


@pytest.fixture(scope="module")
def french() -> RuleIntentMatcher:
    return build(FR)


@pytest.mark.parametrize(
    ("said", "name", "slots", "reply"),
    [
        ("Schalte das Küchenlicht ein", "turn_on", (("device", "küchenlicht"), LIGHT), "Licht eingeschaltet"),
        ("Küchenlampe aus", "turn_off", (("device", "küchenlicht"), LIGHT), "Licht ausgeschaltet"),
        (  # HA's area slot: every light there, not the fan
            "Schalte das Licht im Wohnzimmer aus",
            "turn_off",
            (("device", "stehlampe"), LIGHT),
            "Licht ausgeschaltet",
        ),
        (
            "Schalte alle Lichter aus",
            "turn_off",
            (("device", "all lights"), LIGHT),
            "Alle Lichter ausgeschaltet",
        ),
        (
            "Schalte den Ventilator ein",
            "turn_on",
            (("device", "ventilator"), ("kind", "fan")),
            "Ventilator eingeschaltet",
        ),
        (
            "Setze die Helligkeit vom Küchenlicht auf 40 Prozent",
            "set_brightness",
            (("device", "küchenlicht"), LIGHT, ("brightness", "40")),
            "Helligkeit eingestellt",
        ),
        (  # HA's template, rendered with the spoken slot texts as HA renders it
            "Stelle einen Timer für 5 Minuten",
            "timer_set",
            (("seconds", "300"),),
            "Timer für 5 Minuten gestartet",
        ),
        (
            "Timer für zwei Minuten und 30 Sekunden",
            "timer_set",
            (("seconds", "150"),),
            "Timer für zwei Minuten und 30 Sekunden gestartet",
        ),
        ("Wie spät ist es", "time", (("time", "08:05"),), "Es ist 08:05"),
        ("Welches Datum ist heute", "date", (("date", "2026-12-07"),), "Es ist Montag der 7. Dezember 2026"),
        ("Vergiss es", "stop", (), ""),
    ],
)
def test_german_commands_give_our_intent_and_home_assistants_sentence(
    german: RuleIntentMatcher, said: str, name: str, slots: tuple[tuple[str, str], ...], reply: str
) -> None:
    got = german.match(said)
    assert got is not None, said
    assert (got.name, got.slots, got.reply) == (name, slots, reply)


@pytest.mark.parametrize(
    ("said", "name", "slots", "reply"),
    [
        (
            "Allume la lumière de la cuisine",
            "turn_on",
            (("device", "lumière de la cuisine"), LIGHT),
            "Allumé",
        ),
        ("Éteins le ventilateur", "turn_off", (("device", "ventilateur"), ("kind", "fan")), "Éteint"),
        (
            "Règle la luminosité de la lumière de la cuisine à 40 %",
            "set_brightness",
            (("device", "lumière de la cuisine"), LIGHT, ("brightness", "40")),
            "Luminosité réglée",
        ),
        (
            "Mets la lumière de la cuisine en rouge",
            "set_color",
            (("device", "lumière de la cuisine"), LIGHT, ("color", "red"), ("rgb", "255,0,0")),
            "Couleur réglée",
        ),
        ("Quelle heure est-il", "time", (("time", "08:05"),), "Il est 08:05"),
        ("Quelle est la date", "date", (("date", "2026-12-07"),), "Nous sommes le 7 décembre 2026"),
    ],
)
def test_french_commands_give_our_intent_and_home_assistants_sentence(
    french: RuleIntentMatcher, said: str, name: str, slots: tuple[tuple[str, str], ...], reply: str
) -> None:
    got = french.match(said)
    assert got is not None, said
    assert (got.name, got.slots, got.reply) == (name, slots, reply)


def test_timers_answer_with_what_home_assistants_timer_handlers_give_their_templates() -> None:
    mono = Clock()
    m = build(DE, mono)
    cancel = m.match("Stoppe den Timer")
    assert cancel is not None and cancel.reply == "Diesen Timer konnte ich nicht finden"  # HA's error
    for said in ("Stelle einen Timer für 5 Minuten", "Stelle einen Timer für 2 Minuten"):
        got = m.match(said)
        assert got is not None
        m.apply(got)
    mono.s = 65.0  # 3:55 and 0:55 left: HA rounds to 4 minutes and 1 minute
    status = m.match("Wie lange läuft der Timer noch")
    assert status is not None and status.name == "timer_status"
    assert status.reply.startswith("2 laufende Timer. 1 Minute"), status.reply
    cancel = m.match("Stoppe den Timer")  # two running: we stop both and say so as HA's "cancel all"
    assert cancel is not None and (cancel.name, cancel.reply) == ("timer_cancel", "2 Timer gestoppt.")


def test_the_english_rules_and_skills_do_not_run_in_another_language() -> None:
    asked: list[str] = []

    class Skills:
        def answer(self, text: str) -> None:
            asked.append(text)

    m = build(DE, skills=Skills())
    assert m.match("turn on the kitchen light") is None  # a rule in English would have matched
    assert m.match("Wie ist das Wetter morgen") is None  # to the LLM
    assert asked == []
    english = RuleIntentMatcher(replace(DE, language="en"))
    assert english.match("turn on the kitchen light") is not None


def test_the_phrase_cache_and_clock_hold_home_assistants_sentences(german: RuleIntentMatcher) -> None:
    assert german.clock_phrases() == ("Es ist 08:05", "Es ist 08:06", "Es ist Montag der 7. Dezember 2026")
    phrases = confirmation_phrases(DE)
    assert phrases and not any(p.startswith(("Turning", "Which", "Did you")) for p in phrases)


def test_a_command_in_another_language_goes_to_home_assistants_agent_without_an_english_verb() -> None:
    said = "Küchenlicht aus"
    outcome = IntentResult("turn_off", (("device", "küchenlicht"), LIGHT), "Licht ausgeschaltet")
    assert not agent_parses(outcome, said, None)  # the English verb list
    assert agent_parses(outcome, said, None, ha_matched=True)
    assert not agent_parses(outcome, said, outcome, ha_matched=True)  # a follow-up stays ours


def test_a_bad_language_fails_at_start_up_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"intents\.language.*got 'xx'"):
        load(None, environ={"EDGE_VOICE_INTENTS__LANGUAGE": "xx"})
    with pytest.raises(ConfigError, match=r"intents\.ha_sentences"):
        IntentsConfig(language="de", ha_sentences=False)
    with pytest.raises(ConfigError, match=r"home_assistant\.language"):  # HA would parse it in English
        load(
            None,
            environ={"EDGE_VOICE_INTENTS__LANGUAGE": "de", "EDGE_VOICE_INTENTS__BACKEND": "home_assistant"},
        )
    env = {
        "EDGE_VOICE_INTENTS__LANGUAGE": "de",
        "EDGE_VOICE_INTENTS__BACKEND": "home_assistant",
        "EDGE_VOICE_HOME_ASSISTANT__LANGUAGE": "de",
    }
    assert load(None, environ=env).home_assistant.language == "de"


def test_what_stays_english_is_named() -> None:
    assert still_english(Config()) == ()
    cfg = Config(intents=IntentsConfig(language="de"))
    said = " ".join(still_english(cfg))
    assert "asr.model = whisper-tiny.en-q8_0" in said and "tts.voice = piper-joe" in said
    assert "llm.system_prompt" in said and "skills" in said
    multilingual = replace(cfg, asr=replace(cfg.asr, model="whisper-base-q8_0", language="de"))
    assert "asr." not in " ".join(still_english(multilingual))


def test_prepare_matches_ahead_so_the_loops_match_runs_no_hassil() -> None:
    m = build(DE)
    assert m.sentences is not None
    m.sentences.ran = 0
    m.prepare("Schalte den Ventilator ein")  # on the ASR thread, in the daemon
    assert m.sentences.ran == 1
    got = m.match("Schalte den Ventilator ein")
    assert got is not None and got.reply == "Ventilator eingeschaltet" and m.sentences.ran == 1
    english = RuleIntentMatcher(replace(DE, language="en"), sentences=m.sentences)
    english.prepare("Schalte den Ventilator ein")  # English: the rules answer first, nothing ahead
    assert m.sentences.ran == 1
