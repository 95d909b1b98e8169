"""The real LLM (SmolLM2-135M on llama.cpp via xllamacpp): streaming, cancel, warm-up (prefix reuse)."""

from __future__ import annotations

import dataclasses
import http.client
import os
import socket
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import LlmConfig
from edge_voice.core.conversation import prompt_prefix
from edge_voice.core.messages import ChatMessage
from edge_voice.engines.llm import LlamaGenerator, build_messages

pytestmark = pytest.mark.engines

CFG = LlmConfig()  # greedy, with the default examples and stop strings: what the daemon sends
PREFIX = prompt_prefix(CFG)
STORY = "Tell me a long story about a dragon who lives in a castle."


@pytest.fixture(scope="module")
def llm() -> Iterator[LlamaGenerator]:
    gen = LlamaGenerator(CFG)
    gen.warm(PREFIX)
    yield gen
    gen.close()


def ask(llm: LlamaGenerator, question: str) -> list[str]:
    return list(llm.stream(build_messages(PREFIX, [], question), NEVER))


def test_streams_an_answer_to_two_plus_two(llm: LlamaGenerator) -> None:
    pieces = ask(llm, "What is two plus two?")
    text = "".join(pieces).lower()
    assert len(pieces) > 1  # streamed, not one blob
    assert "four" in text or "4" in text
    assert llm.last is not None and llm.last.stopped in ("eos", "max_tokens")
    assert llm.last.text == "".join(pieces)


def test_capital_of_france(llm: LlamaGenerator) -> None:
    assert "paris" in "".join(ask(llm, "What is the capital of France?")).lower()


def test_max_tokens_bounds_the_answer() -> None:
    cfg = dataclasses.replace(CFG, stop=(), examples=(), max_tokens=16)  # nothing else ends the story
    gen = LlamaGenerator(cfg)
    list(gen.stream(build_messages(prompt_prefix(cfg), [], STORY), NEVER))
    assert gen.last is not None
    assert gen.last.stopped == "max_tokens"
    assert gen.last.tokens == cfg.max_tokens
    gen.close()


def test_a_stop_string_ends_the_answer_without_being_spoken(llm: LlamaGenerator) -> None:
    llm.cfg = dataclasses.replace(CFG, stop=("Paris",))  # read per request
    try:
        text = "".join(ask(llm, "What is the capital of France?"))
    finally:
        llm.cfg = CFG
    assert "Paris" not in text and "capital" in text  # generation ended where "Paris" began
    assert llm.last is not None and llm.last.stopped == "eos"


def test_greedy_decoding_gives_the_same_answer_every_time(llm: LlamaGenerator) -> None:
    first = "".join(ask(llm, "What is the capital of France?"))
    ask(llm, "What is two plus two?")
    assert "".join(ask(llm, "What is the capital of France?")) == first
    assert "paris" in first.lower()


def test_cancel_stops_the_stream_early(llm: LlamaGenerator) -> None:
    cancel = CancelToken()
    pieces = []
    for piece in llm.stream(build_messages(PREFIX, [], STORY), cancel):
        pieces.append(piece)
        if len(pieces) == 3:
            cancel.cancel("barge-in")
    assert len(pieces) == 3
    assert llm.last is not None and llm.last.stopped == "cancelled"
    # the slot is free again: the next turn answers normally
    assert "paris" in "".join(ask(llm, "What is the capital of France?")).lower()


def test_closing_the_iterator_stops_generation(llm: LlamaGenerator) -> None:
    it = llm.stream(build_messages(PREFIX, [], STORY), NEVER)
    first = next(it)
    it.close()
    assert first
    assert llm.last is not None and llm.last.stopped == "cancelled" and llm.last.tokens == 1


def test_already_cancelled_yields_nothing(llm: LlamaGenerator) -> None:
    cancel = CancelToken()
    cancel.cancel()
    assert list(llm.stream(build_messages(PREFIX, [], STORY), cancel)) == []


def test_warm_up_puts_the_system_prompt_and_the_examples_in_the_kv_cache() -> None:
    cold = LlamaGenerator(CFG)
    ask(cold, "What is the capital of Japan?")
    assert cold.last is not None and cold.last.cached_tokens == 0  # nothing to reuse on the first turn
    cold.close()

    warm = LlamaGenerator(CFG)
    warm.warm(PREFIX)
    examples_chars = sum(len(m.content) for m in PREFIX[1:])
    assert warm.warm_stats is not None and warm.warm_stats.prompt_tokens > 40 + examples_chars // 6
    ask(warm, "What is the capital of Japan?")
    assert warm.last is not None
    # the first real turn evaluates only the new user turn: system prompt and examples come from the cache
    assert warm.last.cached_tokens >= warm.warm_stats.prompt_tokens - 8
    assert warm.last.prompt_tokens < warm.last.cached_tokens
    warm.close()


def test_changing_facts_at_the_end_keep_the_prefix_cached(llm: LlamaGenerator) -> None:
    msgs = build_messages(PREFIX, [], "What day is it today?", facts="It is Tuesday, 3 November.")
    assert msgs[-1].content.startswith("(It is Tuesday, 3 November.)")
    text = "".join(llm.stream(msgs, NEVER))
    assert (
        llm.last is not None and llm.last.cached_tokens >= len(PREFIX) * 5
    )  # the prefix came from the cache
    # the 135M model does not reliably read the day from the facts line (greedy, with the examples, it
    # says "Monday" here): date and time questions are answered by the fast path, never by the LLM
    assert "day" in text.lower()


def test_prime_leaves_only_the_words_to_evaluate(llm: LlamaGenerator) -> None:
    """The orchestrator primes with the user message up to the words (facts) at the wake word; the
    turn's request then evaluates only the transcript and the chat template's closing tokens."""
    history = [
        ChatMessage("user", "(It is 09:15.)\nHi."),
        ChatMessage("assistant", " Hello! How can I help?"),
    ]
    facts = "It is 10:42 on Tuesday, 3 November 2026."
    question = "What is the capital of Japan?"
    full = build_messages(PREFIX, history, question, facts)
    unprimed = "".join(llm.stream(full, NEVER))
    assert llm.last is not None
    unprimed_new = llm.last.prompt_tokens
    other = "".join(ask(llm, "What is two plus two?"))  # the slot now holds another prompt

    llm.prime(build_messages(PREFIX, history, "", facts))
    assert llm.primed is not None and llm.primed.prompt_tokens > 20  # history + facts were evaluated
    assert llm.last is not None and llm.last.text == other  # ``last`` stays the last answer's stats
    primed = "".join(llm.stream(full, NEVER))
    assert llm.last is not None
    assert primed == unprimed  # the same answer, from a shorter evaluation
    assert "tokyo" in primed.lower()
    assert llm.last.prompt_tokens <= 16 < unprimed_new


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice is Linux behaviour")
def test_nice_lowers_only_llama_cpp_threads() -> None:
    def nice_of(tid: str) -> int:
        fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[16])  # field 19 of stat: nice

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    before = set(os.listdir("/proc/self/task"))
    gen = LlamaGenerator(dataclasses.replace(CFG, nice=10))
    gen.warm(PREFIX)
    started = set(os.listdir("/proc/self/task")) - before
    assert started and any(nice_of(t) == 10 for t in started)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine  # the caller keeps its own
    assert "paris" in "".join(ask(gen, "What is the capital of France?")).lower()
    gen.close()


def tcp_listeners_of_this_process() -> list[str]:
    """Local addresses of TCP sockets in LISTEN state (0A) whose inode is one of this process's fds."""
    mine = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue  # the fd of the listdir itself, gone by now
        if target.startswith("socket:["):
            mine.add(target[len("socket:[") : -1])
    found = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in mine:
                found.append(fields[1])
    return found


def http_status(sock_path: Path, path: str, headers: dict[str, str]) -> int:
    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(sock_path))

    conn = UnixConnection("localhost", timeout=30)
    body = '{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}'
    conn.request("POST", path, body, {"Content-Type": "application/json", **headers})
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_loading_the_llm_opens_no_tcp_listening_socket(llm: LlamaGenerator) -> None:
    assert tcp_listeners_of_this_process() == []
    assert "paris" in "".join(ask(llm, "What is the capital of France?")).lower()  # still serves in-process


def test_llama_cpp_http_socket_is_private_and_refuses_requests_without_the_key(llm: LlamaGenerator) -> None:
    assert llm.socket_path.is_socket()
    assert stat.S_IMODE(llm.socket_path.parent.stat().st_mode) == 0o700  # only this user can even connect
    assert http_status(llm.socket_path, "/v1/chat/completions", {}) == 401
    assert http_status(llm.socket_path, "/v1/chat/completions", {"Authorization": "Bearer guess"}) == 401


def test_close_removes_the_socket_directory() -> None:
    gen = LlamaGenerator(CFG)
    sock_dir = gen.socket_path.parent
    assert sock_dir.is_dir()
    # serve one request first: closing a Server whose loop has not started yet can hang in xllamacpp
    # (llama.cpp's start_loop overrides an earlier terminate)
    gen.warm(PREFIX)
    gen.close()
    assert not sock_dir.exists()
