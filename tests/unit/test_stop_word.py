"""The stop-word check measured by ``bench stop``: short VAD-gated utterances and the phrase match."""

from __future__ import annotations

from edge_voice.listen.stop import ShortUtterances, StopWindow, is_stop

F = 512  # one VAD frame


def windows(pattern: str) -> list[StopWindow]:
    """``pattern``: one character per VAD frame, '#' voiced, '.' silent."""
    gate = ShortUtterances(min_ms=200, max_ms=1200, gap_ms=250)
    out = []
    for k, c in enumerate(pattern):
        w = gate.feed(c == "#", (k + 1) * F, F)
        if w is not None:
            out.append(w)
    return out


def test_a_short_utterance_between_silences_is_a_window() -> None:
    assert windows("." * 10 + "#" * 12 + "." * 10) == [StopWindow(10 * F, 22 * F)]


def test_too_short_too_long_or_not_bounded_by_silence_is_not() -> None:
    assert windows("." * 10 + "#" * 3 + "." * 10) == []  # 96 ms: a click
    assert windows("." * 10 + "#" * 60 + "." * 10) == []  # 1.9 s: a sentence
    assert windows("#" * 40 + "." * 4 + "#" * 12 + "." * 10) == []  # speech just before (128 ms gap)
    assert windows("." * 10 + "#" * 12 + "." * 3) == []  # not over yet
    assert windows("." * 10 + "#" * 20 + "." * 200) == [StopWindow(10 * F, 30 * F)]


def test_a_brief_dip_inside_the_word_does_not_split_it() -> None:
    assert windows("." * 10 + "#" * 6 + ".." + "#" * 6 + "." * 10) == [StopWindow(10 * F, 24 * F)]


def test_stop_phrases() -> None:
    for text in ("Stop.", "stop!", "Stop it.", "STOP THAT", " okay, stop ", "Okay, stop it now."):
        assert is_stop(text), text
    # whisper's renderings seen in bench stop: the word after "stop" misheard, "stop" as a non-word
    for text in ("Stop, nerd.", "Stop bed.", "Stop alerting.", "Ston.", "Stob!", "Hey, stop the timer."):
        assert is_stop(text), text
    for text in (
        "",
        "Start.",
        "Stop the music and play jazz.",
        "Don't stop",
        "top",
        "The bus stop.",
        "Okay.",
    ):
        assert not is_stop(text), text


def test_session_12_phrases_are_still_stops() -> None:
    from edge_voice.core.stop_word import STOP_PHRASES, is_stop_phrase

    for text in STOP_PHRASES:
        assert is_stop(text) and is_stop_phrase(text), text
    assert not is_stop_phrase("Stop, nerd.")
