"""SentenceChunker: incremental splitting of streamed LLM text into speakable chunks."""

from __future__ import annotations

import pytest

from edge_voice.core.chunker import SentenceChunker, clean


def run(text: str, step: int = 3, first_words: int = 50, drop_incomplete: bool = False) -> list[str]:
    """Feed ``text`` in ``step``-character pieces (as an LLM would) and collect every chunk."""
    chunker = SentenceChunker(first_words)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += chunker.push(text[i : i + step])
    return out + chunker.flush(drop_incomplete=drop_incomplete)


@pytest.mark.parametrize("step", [1, 2, 5, 1000])
def test_splits_sentences_whatever_the_piece_size(step: int) -> None:
    text = "The capital of France is Paris. It is on the Seine! Have you been there? I hope so."
    assert run(text, step) == [
        "The capital of France is Paris.",
        "It is on the Seine!",
        "Have you been there?",
        "I hope so.",
    ]


def test_chunk_is_emitted_as_soon_as_the_next_whitespace_arrives() -> None:
    chunker = SentenceChunker(50)
    assert chunker.push("The capital of France is Paris.") == []  # "." might be "Paris.5" or "Paris.com"
    assert chunker.push(" ") == ["The capital of France is Paris."]
    assert chunker.push("It is big") == []
    assert chunker.flush() == ["It is big"]


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Dr. Smith is a doctor here. He works daily.", ["Dr. Smith is a doctor here.", "He works daily."]),
        (
            "Mr. and Mrs. Jones came over. They stayed late.",
            ["Mr. and Mrs. Jones came over.", "They stayed late."],
        ),
        (
            "Take fruit, e.g. apples or pears. They are good.",
            ["Take fruit, e.g. apples or pears.", "They are good."],
        ),
        (
            "It weighs 3.5 kilograms in total. That is heavy.",
            ["It weighs 3.5 kilograms in total.", "That is heavy."],
        ),
        (
            "The shop opens at 9 a.m. every day. Come early.",
            ["The shop opens at 9 a.m. every day.", "Come early."],
        ),
        ("The shop opens at 9 a.m. Then it gets busy.", ["The shop opens at 9 a.m.", "Then it gets busy."]),
        (
            "J. K. Rowling wrote the books. They sold well.",
            ["J. K. Rowling wrote the books.", "They sold well."],
        ),
        ("He lives in the U.S. now, I think. Not sure.", ["He lives in the U.S. now, I think.", "Not sure."]),
        ("Wait for it… The answer is yes.", ["Wait for it…", "The answer is yes."]),
        ("Really?! That is surprising to me.", ["Really?! That is surprising to me."]),
    ],
)
def test_abbreviations_decimals_and_initials(text: str, expected: list[str]) -> None:
    assert run(text) == expected


def test_short_fragments_merge_into_the_next_chunk() -> None:
    assert run("Yes. Sure. The capital of France is Paris. Ok.") == [
        "Yes. Sure. The capital of France is Paris.",
        "Ok.",
    ]


def test_first_chunk_may_end_at_a_clause_after_enough_words() -> None:
    text = (
        "Paris is the capital of France, and it is famous for its museums, food and art. "
        "Lyon is smaller, but it is lovely too."
    )
    assert run(text, first_words=6) == [
        "Paris is the capital of France,",
        "and it is famous for its museums, food and art.",
        "Lyon is smaller, but it is lovely too.",  # later chunks split only at sentence ends
    ]


def test_first_clause_needs_the_minimum_word_count() -> None:
    text = "Well, Paris is the capital of France and the largest city in it."
    assert run(text, first_words=6) == ["Well, Paris is the capital of France", "and the largest city in it."]
    assert run(text, first_words=20) == ["Well, Paris is the capital of France and the largest city in it."]


@pytest.mark.parametrize("conj", ["and", "but"])
def test_first_clause_breaks_before_and_or_but(conj: str) -> None:
    text = f"You can cook pasta in salted boiling water {conj} stir it often. Enjoy."
    assert run(text, first_words=6)[0] == "You can cook pasta in salted boiling water"


@pytest.mark.parametrize(
    ("text", "first"),
    [
        (
            "The number of days in a week can vary greatly depending on the calendar you use.",
            "The number of days in a week can vary greatly",
        ),
        (
            "The moon is a very special place that has been orbiting us for ages.",
            "The moon is a very special place",
        ),
        ("It is cold outside because the wind comes from the north today.", "It is cold outside"),
    ],
)
def test_a_long_first_sentence_breaks_before_a_phrase_opener(text: str, first: str) -> None:
    assert run(text, first_words=4)[0] == first
    assert run(text, first_words=30) == [text]  # not before the minimum word count


def test_phrase_openers_inside_words_do_not_break() -> None:
    text = "Withdrawals thatch and whichever forms are fine here."
    assert run(text, first_words=1)[0] == "Withdrawals thatch"  # only the real " and "


def test_numbers_with_commas_are_not_clauses() -> None:
    assert run("It is about 384,400 kilometres from the Earth to it.", first_words=2) == [
        "It is about 384,400 kilometres from the Earth to it."
    ]


def test_markdown_lists_and_headings_are_stripped() -> None:
    text = (
        "## Tips\n\nHere are **three** tips for `sleep`:\n\n1. Go to bed at the same time.\n"
        "2. Avoid *screens* late.\n- Keep the room cool and dark.\n"
    )
    assert run(text) == [
        "Tips Here are three tips for sleep:",
        "Go to bed at the same time.",
        "Avoid screens late.",
        "Keep the room cool and dark.",
    ]


def test_bold_after_the_full_stop_still_ends_the_sentence() -> None:
    assert run("**The answer is yes.** It always was.") == ["The answer is yes.", "It always was."]


def test_emoji_are_removed_but_degrees_stay() -> None:
    assert run("Water boils at 100°C 🔥. Have fun 😀👍🏽!") == ["Water boils at 100°C.", "Have fun!"]


def test_links_keep_their_text() -> None:
    assert clean("See [the docs](https://example.com) now") == "See the docs now"


def test_only_markup_or_emoji_gives_nothing() -> None:
    assert run("** 😀 **\n\n") == []


def test_a_run_without_punctuation_is_cut_at_a_space() -> None:
    chunker = SentenceChunker(50, max_chars=40)
    out = chunker.push("word " * 20)
    assert out and all(len(c) <= 40 for c in out)
    assert " ".join(out + chunker.flush()).split() == ["word"] * 20


def test_flush_can_drop_a_fragment_cut_off_by_max_tokens() -> None:
    assert run("Paris is the capital of France. It has many famous", drop_incomplete=True) == [
        "Paris is the capital of France."
    ]
    # ... but never the only thing there is to say
    assert run("Paris is the capital of", drop_incomplete=True) == ["Paris is the capital of"]


def test_flush_resets_for_the_next_reply() -> None:
    chunker = SentenceChunker(3)
    chunker.push("One two three four, five six seven eight. ")
    assert chunker.chunks_emitted == 2
    chunker.flush()
    assert chunker.chunks_emitted == 0
    assert chunker.push("Alpha beta gamma, delta epsilon. ") == ["Alpha beta gamma,", "delta epsilon."]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        SentenceChunker(0)


def _breaks(text: str, first_words: int = 4, step: int = 3) -> list[str]:
    chunker = SentenceChunker(first_words, phrase_breaks=True)
    out: list[str] = []
    for i in range(0, len(text), step):
        out += chunker.push(text[i : i + step])
    return out + chunker.flush()


@pytest.mark.parametrize(
    ("text", "first"),
    [
        ("The capital of France is Paris.", "The capital of France"),
        ("The largest planet in the solar system is Jupiter.", "The largest planet in the solar system"),
        ("Water is made of hydrogen and oxygen.", "Water is made of hydrogen"),  # " and " as before
        ("The moon's phases are so special!", "The moon's phases are so special!"),  # no break word
    ],
)
def test_phrase_breaks_end_a_comma_less_first_sentence_before_a_preposition_or_verb(
    text: str, first: str
) -> None:
    assert _breaks(text)[0] == first
    assert " ".join(_breaks(text)) == text  # nothing lost or repeated
    assert run(text, first_words=4)[0] == (first if " and " in text else text)  # off: only clause breaks


def test_phrase_breaks_only_in_the_first_chunk_and_after_the_minimum_words() -> None:
    text = "It is in the north. The road to the town is long."
    assert _breaks(text) == ["It is in the north.", "The road to the town is long."]  # "It is" < 4 words
    assert _breaks("A spider has eight legs.") == ["A spider has eight legs."]  # "has" after 2 words


def test_phrase_break_words_inside_words_do_not_break() -> None:
    assert _breaks("The island isotopes often tofu fort.", first_words=1) == [
        "The island isotopes often tofu fort."
    ]
