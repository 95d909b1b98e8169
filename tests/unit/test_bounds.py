"""Pure helpers of issue 19's bounds: URL redaction, the plain-http check, text split for synthesis,
the allowed duration of a remote reply."""

from __future__ import annotations

import pytest

from edge_voice.core.redact import plain_http_to_remote, redact_url
from edge_voice.engines.remote.wyoming import max_audio_s
from edge_voice.engines.tts import MAX_PIECE_CHARS, split_for_synthesis


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        ("http://user:pass@10.0.0.5:8080/v1", "http://***@10.0.0.5:8080/v1"),
        ("https://tok@host/v1", "https://***@host/v1"),
        ("http://host/v1?api_key=abc&x=1", "http://host/v1?api_key=***&x=1"),
        ("openai http://a:b@h/v1: HTTP 401", "openai http://***@h/v1: HTTP 401"),
        ("http://10.0.0.5:8080/v1", "http://10.0.0.5:8080/v1"),
        ("no url here, user@example.com", "no url here, user@example.com"),
    ],
)
def test_redact_url(text: str, redacted: str) -> None:
    assert redact_url(text) == redacted


def test_plain_http_to_remote() -> None:
    assert plain_http_to_remote("http://10.0.0.5/v1")
    assert not plain_http_to_remote("https://10.0.0.5/v1")
    assert not plain_http_to_remote("http://127.0.0.2:8080/v1")
    assert not plain_http_to_remote("http://localhost/v1")
    assert not plain_http_to_remote("http://[::1]:8080/v1")


def test_short_text_is_one_unchanged_piece() -> None:
    text = "The capital of France is Paris, on the Seine."
    assert split_for_synthesis(text) == [text]


def test_long_text_is_cut_at_sentence_then_clause_then_space() -> None:
    text = "One two three four five six seven eight nine ten. " * 6
    pieces = split_for_synthesis(text)
    assert all(len(p) <= MAX_PIECE_CHARS for p in pieces) and len(pieces) > 1
    assert all(p.endswith(".") for p in pieces)
    assert " ".join(pieces) == text.strip()


def test_digits_weigh_more_and_a_run_without_spaces_is_still_cut() -> None:
    spaced = " ".join("1234567890" * 50)
    pieces = split_for_synthesis(spaced)
    assert all(sum(c.isdigit() for c in p) * 3 + p.count(" ") <= MAX_PIECE_CHARS for p in pieces)
    assert "".join(pieces).replace(" ", "") == "1234567890" * 50
    solid = split_for_synthesis("7" * 500)
    assert "".join(solid) == "7" * 500 and max(len(p) for p in solid) <= MAX_PIECE_CHARS // 3


def test_max_audio_s() -> None:
    assert max_audio_s("Volume up.", 30.0) == 7.0
    assert max_audio_s("x" * 500, 30.0) == 30.0
