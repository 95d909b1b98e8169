"""The remote LLM over the OpenAI-compatible API, against a REAL server: llama.cpp's own HTTP server
(``xllamacpp.Server`` with a port, i.e. llama-server) in a child process on 127.0.0.1 serving the same
SmolLM2 GGUF as the device. Failure modes use plain loopback sockets: nothing listening, a server that
accepts and never answers, one that stalls mid-stream, one that answers nonsense.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from edge_voice.audio.wavio import write_wav
from edge_voice.bench.asr import normalize
from edge_voice.bench.remote import LlmServer, free_port
from edge_voice.bench.turn import build_session
from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import LlmConfig
from edge_voice.core.conversation import prompt_prefix
from edge_voice.core.events import Event
from edge_voice.engines.base import RemoteError
from edge_voice.engines.llm import build_messages
from edge_voice.engines.remote.openai import OpenAiGenerator
from tests.e2e.test_spoken_turn import _fixed_facts, _turn_clip
from tests.integration.rig import BASE, heard_back

LLM = LlmConfig()
QUESTION = build_messages(prompt_prefix(LLM), [], "What is the capital of France?")


def remote_cfg(base_url: str, timeout_ms: int = 3000) -> LlmConfig:
    return replace(LLM, backend="openai", base_url=base_url, timeout_ms=timeout_ms)


@pytest.fixture(scope="module")
def server() -> Iterator[LlmServer]:
    with LlmServer(LLM) as s:
        yield s


# ------------------------------------------------------------------------------ the real server


@pytest.mark.engines
def test_streams_a_real_answer_from_the_server(server: LlmServer) -> None:
    gen = OpenAiGenerator(remote_cfg(server.base_url))
    gen.warm(prompt_prefix(LLM))
    assert gen.reachable is True
    before = server.metrics()["tokens_predicted_total"]
    pieces = list(gen.stream(QUESTION, CancelToken()))
    assert len(pieces) > 3  # streamed piece by piece, not one block
    assert "paris" in "".join(pieces).lower()
    assert gen.last is not None and gen.last.stopped in ("eos", "max_tokens")
    assert gen.last.text == "".join(pieces) and gen.last.ttft_ms > 0
    assert gen.last.cached_tokens > 100  # warm put the system prompt and examples in the server's cache
    assert server.metrics()["tokens_predicted_total"] >= before + len(pieces) - 1


@pytest.mark.engines
def test_cancel_stops_the_stream_and_the_server_stays_usable(server: LlmServer) -> None:
    gen = OpenAiGenerator(remote_cfg(server.base_url))
    cancel = CancelToken()
    got = []
    for piece in gen.stream(build_messages(prompt_prefix(LLM), [], "Tell me a long story."), cancel):
        got.append(piece)
        if len(got) == 2:
            cancel.cancel("barge_in")
    assert len(got) == 2
    assert gen.last is not None and gen.last.stopped == "cancelled"
    assert "paris" in "".join(gen.stream(QUESTION, CancelToken())).lower()


@pytest.mark.engines
def test_cli_run_answers_a_spoken_question_through_the_server(server: LlmServer, tmp_path: Path) -> None:
    clip = _turn_clip("how many legs does a spider have?", tail_ms=6000)  # the LLM's, not a skill's
    wav, events = tmp_path / "in.wav", tmp_path / "events.jsonl"
    write_wav(wav, clip.pcm)
    before = server.metrics()["tokens_predicted_total"]
    # greedy: the prompt ends with the real clock time, and sampled answers to it wandered ("le jura")
    env = dict(
        os.environ,
        EDGE_VOICE_LLM__BACKEND="openai",
        EDGE_VOICE_LLM__BASE_URL=server.base_url,
        EDGE_VOICE_LLM__TEMPERATURE="0",
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge_voice",
            "run",
            "--input",
            str(wav),
            "--output",
            str(tmp_path / "reply.wav"),
            "--fast",
            "--events",
            str(events),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    assert not [e for e in rows if e["type"] == "engine.fallback"], r.stderr[-2000:]
    done = [e for e in rows if e["type"] == "response.done"]
    reply = done[0]["reply"].lower() if done else ""
    # about what was asked; not necessarily right: the prompt ends with the real clock time (a subprocess
    # cannot pin it), and at some minutes even the greedy 135M answer wanders ("le jura (france) is ...")
    assert done[0]["route"] == "llm" and ("eight" in reply or "spider" in reply), reply
    # the answer came from the server: it predicted the reply's tokens (beyond the 1-token warm-up)
    assert server.metrics()["tokens_predicted_total"] - before > 3


class KillOnFirstAnswer:
    """Event sink that kills the server when the first reply is done: the next turn finds it gone."""

    def __init__(self, server: LlmServer) -> None:
        self.server = server
        self.events: list[Event] = []
        self.predicted_before_kill = 0.0

    def emit(self, event: Event) -> None:
        self.events.append(event)
        if event.type == "response.done" and len(self.of("response.done")) == 1:
            self.predicted_before_kill = self.server.metrics()["tokens_predicted_total"]
            self.server.kill()

    def state(self, state: str) -> None:
        pass

    def of(self, type_: str) -> list[Event]:
        return [e for e in self.events if e.type == type_]


@pytest.mark.engines
def test_server_killed_mid_session_next_turn_falls_back_and_still_speaks(tmp_path: Path) -> None:
    from edge_voice.audio.sinks import WavSink
    from edge_voice.audio.sources import InputClock, WavSource
    from edge_voice.runtime.daemon import Daemon, load_engines

    with LlmServer(LLM) as doomed:
        cfg = replace(  # BASE: Piper's deterministic voice and a roomy decode budget, so the check hears it
            BASE,
            llm=remote_cfg(doomed.base_url),
            conversation=replace(BASE.conversation, follow_up_window_ms=0),  # two independent turns
        )
        engines = load_engines(cfg)
        pcm, _ = build_session(
            10000,
            [
                ("what is the largest planet?", "question"),  # the LLM's (skills answer capitals)
                ("how many legs does a spider have?", "question"),
            ],
        )
        clock = InputClock()
        source = WavSource(pcm, pace="adaptive", clock=clock)
        sink = WavSink(tmp_path / "reply.wav", clock, engines.tts.sample_rate)
        events = KillOnFirstAnswer(doomed)
        # a fixed moment: the answers (heard back below) must not depend on the minute the test runs; with
        # the real clock the local model once answered the spider question in French
        Daemon(cfg, engines, source, sink, [events], clock, facts=_fixed_facts).run()
        sink.save(source.duration_samples)
        assert doomed.proc is not None and doomed.proc.returncode is not None  # really killed

    done = [e.data for e in events.of("response.done")]
    assert [d["status"] for d in done] == ["done", "done"]
    assert str(done[0]["reply"]).strip() and events.predicted_before_kill > 3  # turn 1: the server's
    fallback = events.of("engine.fallback")
    assert len(fallback) == 1 and fallback[0].data["using"] == "local"
    assert fallback[0].data["stage"] == "llm" and doomed.base_url in str(fallback[0].data["backend"])
    assert "refused" in str(fallback[0].data["reason"])
    # the fallback happened during the second turn, and that turn still got a spoken answer
    types = [e.type for e in events.events]
    assert types.index("engine.fallback") > types.index("response.done")
    assert fallback[0].turn_id == events.of("response.done")[1].turn_id
    assert done[1]["route"] == "llm" and str(done[1]["reply"]).strip()
    assert len(sink.replies) == 2
    # the local answer was spoken: its content words come back (half of them, at most 3 needed)
    heard, said = _content_words(heard_back(engines, sink, 1)), _content_words(str(done[1]["reply"]))
    assert said and len(heard & said) >= min(3, max(1, len(said) // 2)), (heard, said)


def _content_words(text: str) -> set[str]:
    """Words of 3+ letters, numbers spelt out (the WER normaliser): whisper writes "eight" or "8"."""
    return {w for w in normalize(text) if len(w) > 2}


# ------------------------------------------------------------------------------ failure modes


def test_nothing_listening_raises_remote_error() -> None:
    gen = OpenAiGenerator(remote_cfg(f"http://127.0.0.1:{free_port()}/v1", timeout_ms=500))
    with pytest.raises(RemoteError, match="refused"):
        list(gen.stream(QUESTION, CancelToken()))
    gen.warm(prompt_prefix(LLM))  # logs, never raises
    assert gen.reachable is False


class RawServer:
    """A loopback socket that accepts and then does what ``reply`` says with each connection."""

    def __init__(self, reply: Callable[[socket.socket], None]) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        self.requests: list[bytes] = []
        self.reply = reply
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            self.requests.append(_read_request(conn))
            self.reply(conn)

    def close(self) -> None:
        self.sock.close()
        for c in self.conns:
            c.close()


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += conn.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length:")[1].split()[0])
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


ERROR_BODY = b'{"error": {"message": "invalid api key"}}'
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"


def _chunk(text: str) -> bytes:
    return b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": text}}]}).encode() + b"\n\n"


@pytest.mark.parametrize(
    ("reply", "produced", "message"),
    [
        (lambda c: None, 0, "no first token within 400 ms"),  # accepts, never answers
        (lambda c: c.sendall(SSE_HEAD + _chunk("Paris")), 1, "no next token within 400 ms"),
        (lambda c: c.sendall(SSE_HEAD + b"data: {not json\n\n"), 0, "malformed JSON"),
        (lambda c: c.sendall(SSE_HEAD + b'data: {"error": {"message": "slot busy"}}\n\n'), 0, "slot busy"),
        (
            lambda c: c.sendall(
                b"HTTP/1.1 401 Unauthorized\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                % (len(ERROR_BODY), ERROR_BODY)
            ),
            0,
            "HTTP 401: invalid api key",
        ),
        (lambda c: (c.sendall(SSE_HEAD + _chunk("Par")), c.close()), 1, "closed the stream before"),
    ],
)
def test_broken_servers_raise_remote_error(
    reply: Callable[[socket.socket], None], produced: int, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = RawServer(reply)
    monkeypatch.setenv("EDGE_VOICE_LLM_API_KEY", "s3cret")
    gen = OpenAiGenerator(remote_cfg(f"http://127.0.0.1:{raw.port}/v1", timeout_ms=400))
    pieces: list[str] = []
    t = time.monotonic()
    try:
        with pytest.raises(RemoteError, match=message):
            for p in gen.stream(QUESTION, CancelToken()):
                pieces.append(p)
    finally:
        raw.close()
    if "within" in message:
        assert time.monotonic() - t >= 0.4  # waited the whole deadline: did not give up early
    assert len(pieces) == produced
    head, _, body = raw.requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /v1/chat/completions ")
    assert b"Authorization: Bearer s3cret" in head
    request = json.loads(body)
    assert request["stream"] is True and request["max_tokens"] == LLM.max_tokens
    assert request["messages"][-1] == {"role": "user", "content": "What is the capital of France?"}


def test_cancel_while_waiting_for_a_silent_server_returns_promptly_without_error() -> None:
    raw = RawServer(lambda c: None)
    gen = OpenAiGenerator(remote_cfg(f"http://127.0.0.1:{raw.port}/v1", timeout_ms=60000))
    cancel = CancelToken()
    threading.Timer(0.2, cancel.cancel).start()
    try:
        assert list(gen.stream(QUESTION, cancel)) == []
    finally:
        raw.close()
    assert gen.last is not None and gen.last.stopped == "cancelled"
