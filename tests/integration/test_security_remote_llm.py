"""Issue 19, item 2: a hostile OpenAI-compatible server cannot exhaust memory or stream forever, and
credentials in ``llm.base_url`` never reach a log line or an event. Hostile servers are raw loopback
sockets (``RawServer`` of test_remote_llm) whose loops stop by themselves (a byte budget, or the client
hanging up)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Iterator, Sequence

import pytest

from edge_voice.core.cancel import CancelToken
from edge_voice.core.messages import ChatMessage, EngineFallback
from edge_voice.engines.base import RemoteError
from edge_voice.engines.remote.fallback import FallbackGenerator
from edge_voice.engines.remote.openai import (
    MAX_LINE_BYTES,
    MAX_REPLY_BYTES,
    OpenAiGenerator,
    max_pieces,
)
from tests.integration.test_remote_llm import LLM, QUESTION, SSE_HEAD, RawServer, _chunk, remote_cfg

MB = 1 << 20


def rss_mb(field: str = "VmRSS") -> float:
    """Resident memory of this process from /proc (no psutil): VmRSS now, VmHWM the peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as f:  # "5" resets VmHWM to the current RSS (Linux >= 4.0)
        f.write("5")


def send_until_hung_up(conn: socket.socket, head: bytes, block: bytes, budget: int) -> None:
    """``head``, then ``block`` repeated until ``budget`` bytes went out or the client hung up."""
    try:
        conn.sendall(head)
        sent = 0
        while sent < budget:
            conn.sendall(block)
            sent += len(block)
        conn.close()
    except OSError:
        pass  # the client closed: what a bounded client does


def hostile(reply: Callable[[socket.socket], None]) -> Iterator[RawServer]:
    raw = RawServer(reply)
    try:
        yield raw
    finally:
        raw.close()


HUGE_LINE = (
    128 * MB
)  # the review's was 1.5 GB (RSS 0.56 → 7.67 GB); 128 MB shows the same without a swap storm


def test_one_endless_sse_line_is_refused_at_the_line_limit_with_bounded_memory() -> None:
    block = b"a" * MB
    for raw in hostile(lambda c: send_until_hung_up(c, SSE_HEAD + b"data: ", block, HUGE_LINE)):
        gen = OpenAiGenerator(remote_cfg(f"http://127.0.0.1:{raw.port}/v1", timeout_ms=20000))
        before = rss_mb()
        reset_peak_rss()
        with pytest.raises(RemoteError, match=f"line longer than {MAX_LINE_BYTES} bytes"):
            list(gen.stream(QUESTION, CancelToken()))
        growth = rss_mb("VmHWM") - before
        print(f"endless line: RSS {before:.0f} MB, peak +{growth:.1f} MB")
        assert growth < 32, f"RSS peak grew by {growth:.0f} MB for one hostile line"


def test_a_server_that_never_stops_talking_is_cut_at_the_token_bound() -> None:
    # 20,000 pieces and no [DONE]: before the bound, all 20,000 reached the chunker (and the speaker)
    for raw in hostile(
        lambda c: send_until_hung_up(c, SSE_HEAD, _chunk("word "), 20000 * len(_chunk("word ")))
    ):
        gen = OpenAiGenerator(remote_cfg(f"http://127.0.0.1:{raw.port}/v1", timeout_ms=20000))
        pieces = list(gen.stream(QUESTION, CancelToken()))
        assert 0 < len(pieces) <= max_pieces(LLM.max_tokens)
        assert gen.last is not None and gen.last.stopped == "max_tokens"


def test_a_stream_of_padding_is_cut_at_the_byte_bound() -> None:
    comment = b":" + b" " * (60 << 10) + b"\n"  # comments carry no token, so no token bound applies
    for raw in hostile(lambda c: send_until_hung_up(c, SSE_HEAD, comment, 64 * MB)):
        gen = OpenAiGenerator(remote_cfg(f"http://127.0.0.1:{raw.port}/v1", timeout_ms=20000))
        with pytest.raises(RemoteError, match=f"past {MAX_REPLY_BYTES} bytes"):
            list(gen.stream(QUESTION, CancelToken()))


class LocalLlm:
    """The on-device engine's stand-in: answers every question with the same words."""

    last: object = None

    def warm(self, system_prompt: str) -> None:
        pass

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        pass

    def stream(self, messages: Sequence[ChatMessage], cancel: CancelToken) -> Iterator[str]:
        yield from ("Paris ", "is the capital.")


def test_hostile_reply_falls_back_to_the_device_and_credentials_are_never_logged_or_published(
    caplog: pytest.LogCaptureFixture,
) -> None:
    block = b"a" * MB
    for raw in hostile(lambda c: send_until_hung_up(c, SSE_HEAD + b"data: ", block, 16 * MB)):
        base_url = f"http://alice:s3cret-pw@127.0.0.1:{raw.port}/v1?api_key=k3y"
        caplog.set_level(logging.DEBUG)
        client = OpenAiGenerator(remote_cfg(base_url, timeout_ms=20000))
        gen = FallbackGenerator(client, LocalLlm(), f"openai {base_url}")  # even a careless caller
        events: list[EngineFallback] = []
        gen.notify = events.append
        answer = "".join(gen.stream(QUESTION, CancelToken()))
        assert answer == "Paris is the capital."  # the turn is served on the device
        assert [e.using for e in events] == ["local"]
        published = f"{events[0].backend} {events[0].reason}"
        assert "line longer than" in published and "***@127.0.0.1" in published
        logged = caplog.text
        for secret in ("s3cret-pw", "alice", "k3y"):
            assert secret not in published and secret not in logged
        assert b"Authorization: Basic " in raw.requests[0]  # the URL's credentials are used, as Basic auth


@pytest.mark.parametrize(
    ("url", "key", "warned"),
    [
        ("http://10.0.0.5:8080/v1", "sk-1", True),
        ("http://bob:pw@192.168.1.10/v1", "", True),
        ("https://10.0.0.5:8080/v1", "sk-1", False),
        ("http://127.0.0.1:8080/v1", "sk-1", False),
        ("http://localhost:8080/v1", "sk-1", False),
        ("http://10.0.0.5:8080/v1", "", False),  # nothing secret to leak
    ],
)
def test_credentials_over_plain_http_to_another_host_are_warned_about(
    url: str, key: str, warned: bool, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(LLM.api_key_env, key)
    caplog.set_level(logging.WARNING)
    gen = OpenAiGenerator(remote_cfg(url))
    assert gen.credentials_in_clear() is warned
    assert ("plain http://" in caplog.text) is warned
    assert "pw@" not in caplog.text and "sk-1" not in caplog.text
