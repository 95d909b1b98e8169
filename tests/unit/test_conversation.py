"""The LLM request: system prompt, then the example exchanges (the warm, KV-cached prefix), then history,
then the facts and the words; ``llm.examples`` is config data, checked at start-up."""

from __future__ import annotations

import pytest

from edge_voice.core.config import DEFAULT_EXAMPLES, ConfigError, LlmConfig, LlmExample, from_mapping
from edge_voice.core.conversation import Conversation, prompt_prefix
from edge_voice.core.messages import ChatMessage
from edge_voice.core.reply_guard import language_of


def test_the_prefix_is_the_system_prompt_then_each_example_as_a_chat_exchange() -> None:
    cfg = LlmConfig(system_prompt="Be brief.", examples=(LlmExample("Q1?", "A1."), LlmExample("Q2?", "A2.")))
    assert prompt_prefix(cfg) == (
        ChatMessage("system", "Be brief."),
        ChatMessage("user", "Q1?"),
        ChatMessage("assistant", "A1."),
        ChatMessage("user", "Q2?"),
        ChatMessage("assistant", "A2."),
    )
    assert prompt_prefix(LlmConfig(system_prompt="S", examples=())) == (ChatMessage("system", "S"),)


def test_every_request_and_prime_starts_with_the_prefix_that_warm_evaluates() -> None:
    cfg = LlmConfig()
    conv = Conversation(cfg, lambda: 0.0, lambda: "It is 10:42.")
    prefix = prompt_prefix(cfg)
    user, first = conv.request("What is the capital of France?")
    assert first == (*prefix, ChatMessage("user", "(It is 10:42.)\nWhat is the capital of France?"))
    conv.history.add(0.0, user, "Paris is the capital of France.")
    _, second = conv.request("And of Spain?")
    assert second[: len(first)] == first  # history goes after the examples: the prefix stays cached
    assert second[len(prefix) + 1] == ChatMessage("assistant", "Paris is the capital of France.")
    primed = conv.prime_request()
    assert primed is not None and primed[: len(prefix)] == prefix


def test_default_examples_are_short_english_answers_of_each_kind() -> None:
    assert len(DEFAULT_EXAMPLES) >= 6
    for ex in DEFAULT_EXAMPLES:
        assert language_of(ex.assistant) == "english"
        assert (
            ex.assistant.count(".") + ex.assistant.count("?") + ex.assistant.count("!") == 1
        )  # one sentence
        assert len(ex.assistant.split()) <= 14
    answers = " ".join(ex.assistant for ex in DEFAULT_EXAMPLES)
    assert "offline" in answers  # one honest "I cannot know that here"
    assert "capital" in answers


def test_examples_come_from_toml_tables() -> None:
    cfg = from_mapping({"llm": {"examples": [{"user": "Hi?", "assistant": "Hello."}], "stop": ["\n"]}})
    assert cfg.llm.examples == (LlmExample("Hi?", "Hello."),)
    assert cfg.llm.stop == ("\n",)
    assert from_mapping({"llm": {"examples": []}}).llm.examples == ()  # examples off


@pytest.mark.parametrize(
    ("llm", "key"),
    [
        ({"examples": [{"user": "Hi?"}]}, "llm.examples[0]"),  # no assistant answer
        ({"examples": [{"user": "Hi?", "assistant": ""}]}, "llm.examples[0].assistant"),
        (
            {"examples": [{"user": "Q?", "assistant": "A."}, {"user": "a\nb", "assistant": "B."}]},
            "llm.examples[1].user",
        ),
        ({"examples": [{"user": "Q?", "assistant": "A.", "extra": 1}]}, "llm.examples[0].extra"),
        ({"examples": "Q? A."}, "llm.examples"),
        ({"stop": [""]}, "llm.stop[0]"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "llm.stop"),
        ({"max_sentences": -1}, "llm.max_sentences"),
    ],
)
def test_a_bad_example_or_stop_fails_at_start_up_naming_the_key(llm: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping({"llm": llm})
    assert err.value.key == key
