"""Home Assistant's conversation API client (engines/remote/home_assistant.py): HA's answer parsed, and
every way it can fail bounded — on real loopback sockets (the happy path runs against a real HA in
tests/integration/test_home_assistant.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import ConfigError, HomeAssistantConfig
from edge_voice.engines.base import RemoteError
from edge_voice.engines.remote.home_assistant import (
    MAX_RESPONSE_BYTES,
    MAX_SPEECH_CHARS,
    HomeAssistantAgent,
    parse_reply,
)

DONE = {
    "response": {
        "speech": {"plain": {"speech": "Turned on the light", "extra_data": None}},
        "card": {},
        "language": "en",
        "response_type": "action_done",
        "data": {"targets": [], "success": [{"name": "Kitchen light", "type": "entity"}], "failed": []},
    },
    "conversation_id": None,
}
NO_MATCH = {
    "response": {
        "speech": {"plain": {"speech": "Sorry, I couldn't understand that", "extra_data": None}},
        "response_type": "error",
        "data": {"code": "no_intent_match"},
        "language": "en",
    },
    "conversation_id": "abc",
}


def test_parse_reply() -> None:
    done = parse_reply(json.dumps(DONE).encode())
    assert (done.speech, done.response_type, done.understood) == ("Turned on the light", "action_done", True)
    miss = parse_reply(json.dumps(NO_MATCH).encode())
    assert (miss.code, miss.understood, miss.conversation_id) == ("no_intent_match", False, "abc")
    long = {"response": {"speech": {"plain": {"speech": "word " * 400}}, "response_type": "query_answer"}}
    assert len(parse_reply(json.dumps(long).encode()).speech) == MAX_SPEECH_CHARS
    for bad in (
        b"",
        b"[]",
        b"{}",
        b'{"response": 3}',
        b"\xff",
        b'{"response": {"speech": {"plain": {"speech": 1}}}}',
    ):
        with pytest.raises(RemoteError, match="not a conversation result"):
            parse_reply(bad)


Serve = Callable[[socket.socket], None]


@pytest.fixture
def server() -> Iterator[Callable[[Serve], int]]:
    """A loopback TCP server whose one connection is handled by ``serve``; returns the port."""
    sockets: list[socket.socket] = []

    def start(serve: Serve) -> int:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        sockets.append(s)

        def run() -> None:
            try:
                conn, _ = s.accept()
            except OSError:
                return
            with conn:
                serve(conn)

        threading.Thread(target=run, daemon=True).start()
        return int(s.getsockname()[1])

    yield start
    for s in sockets:
        s.close()


def agent(port: int, timeout_ms: int = 300) -> HomeAssistantAgent:
    return HomeAssistantAgent(
        HomeAssistantConfig(url=f"http://127.0.0.1:{port}", token_env="TEST_HA_TOKEN", timeout_ms=timeout_ms)
    )


def answer(conn: socket.socket, status: str, body: bytes) -> None:
    head = f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    conn.sendall(head.encode() + body)


def respond(status: str, body: bytes) -> Serve:
    def serve(conn: socket.socket) -> None:
        conn.recv(65536)
        answer(conn, status, body)

    return serve


def test_the_token_comes_from_the_environment_and_never_in_an_error(
    server: Callable[[Serve], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_HA_TOKEN", raising=False)
    with pytest.raises(RemoteError, match=r"\$TEST_HA_TOKEN is not set"):
        agent(1).ask("turn on the light", CancelToken())
    monkeypatch.setenv("TEST_HA_TOKEN", "secret-token-123")
    with pytest.raises(RemoteError, match="HTTP 401 \\(check the token\\)") as err:
        agent(server(respond("401 Unauthorized", b"401: Unauthorized"))).ask("x", CancelToken())
    assert "secret-token-123" not in str(err.value)
    reply = agent(server(respond("200 OK", json.dumps(DONE).encode()))).ask("x", CancelToken())
    assert reply.speech == "Turned on the light"


def test_a_silent_or_oversized_home_assistant_is_a_bounded_failure(
    server: Callable[[Serve], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_HA_TOKEN", "t")

    def silent(conn: socket.socket) -> None:
        conn.recv(65536)
        time.sleep(2)

    with pytest.raises(RemoteError, match="no answer within 300 ms"):
        agent(server(silent)).ask("x", CancelToken())
    huge = b'{"response": "' + b"x" * (MAX_RESPONSE_BYTES + 10) + b'"}'
    with pytest.raises(RemoteError, match="larger than"):
        agent(server(respond("200 OK", huge)), timeout_ms=5000).ask("x", CancelToken())
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens there: HA stopped
    with pytest.raises(RemoteError, match="connection refused"):
        agent(port).ask("x", CancelToken())


def test_config_is_checked_at_start_up() -> None:
    with pytest.raises(ConfigError, match=r"home_assistant\.url"):
        HomeAssistantConfig(url="homeassistant.local:8123")
    with pytest.raises(ConfigError, match=r"home_assistant\.timeout_ms"):
        HomeAssistantConfig(timeout_ms=10)


def test_a_token_with_a_newline_is_stripped_and_a_malformed_one_never_echoed(
    server: Callable[[Serve], int], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """``echo $TOKEN > file`` leaves a "\\n": http.client refused the header with a ValueError quoting
    it, which reached the logs and the MQTT error event."""
    from edge_voice.engines.remote.home_assistant import check_token
    from edge_voice.integrations.ha_devices import fetch_states

    seen: list[bytes] = []

    def record(conn: socket.socket) -> None:
        seen.append(conn.recv(65536))  # headers and body may come in one read: no second recv
        answer(conn, "200 OK", json.dumps(DONE).encode())

    monkeypatch.setenv("TEST_HA_TOKEN", "tok\n")
    assert agent(server(record), 5000).ask("x", CancelToken()).speech == "Turned on the light"
    assert b"Authorization: Bearer tok\r\n" in seen[0]
    for bad in ("to\nk", "tök", "to k", "tok\x7f"):
        monkeypatch.setenv("TEST_HA_TOKEN", bad)
        with pytest.raises(RemoteError, match=r"\$TEST_HA_TOKEN is not a token") as err:
            agent(1).ask("x", CancelToken())
        assert bad.strip() not in str(err.value)
        cfg = HomeAssistantConfig(url="http://127.0.0.1:1", token_env="TEST_HA_TOKEN")
        with pytest.raises(RemoteError, match="is not a token") as err:
            fetch_states(cfg)
        assert bad.strip() not in str(err.value)
        with pytest.raises(ConfigError, match=r"home_assistant\.token_env: \$TEST_HA_TOKEN") as cerr:
            check_token("TEST_HA_TOKEN")  # at start-up: exit 78
        assert bad.strip() not in str(cerr.value)
    monkeypatch.setenv("TEST_HA_TOKEN", "tok\n")
    check_token("TEST_HA_TOKEN")  # stripped: fine
    assert "tok" not in caplog.text


def test_a_dripping_home_assistant_ends_at_the_requests_deadline(
    server: Callable[[Serve], int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline is the request's, not each read's: a byte every 50 ms never resets it."""
    from edge_voice.engines.base import RemoteTimeout

    monkeypatch.setenv("TEST_HA_TOKEN", "t")
    done = threading.Event()

    def drip(conn: socket.socket) -> None:
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 400\r\n\r\n")
        try:
            for _ in range(400):  # 20 s if nothing stops it
                conn.sendall(b" ")
                time.sleep(0.05)
        except OSError:
            pass
        done.set()

    t0 = time.monotonic()
    with pytest.raises(RemoteTimeout, match="no answer within 300 ms"):
        agent(server(drip)).ask("x", CancelToken())
    assert time.monotonic() - t0 < 5  # (not a timing assert: the server would drip for 20 s)


def test_the_url_is_checked_whole_and_the_timeout_fits_the_stage_deadline() -> None:
    from dataclasses import replace

    from edge_voice.core.config import Config, IntentsConfig, ServiceConfig

    for bad in ("http://", "http://ha:abc", "http://ha:99999", "ftp://ha", "http://:8123"):
        with pytest.raises(ConfigError, match=r"home_assistant\.url"):
            HomeAssistantConfig(url=bad)
    HomeAssistantConfig(url="https://ha.lan:8123/base")
    ha = IntentsConfig(backend="home_assistant")
    with pytest.raises(ConfigError, match=r"home_assistant\.timeout_ms.*stage_timeout_ms"):
        Config(
            intents=ha,
            home_assistant=HomeAssistantConfig(timeout_ms=5000),
            service=ServiceConfig(stage_timeout_ms=5000),
        )
    with pytest.raises(ConfigError, match=r"intents\.backend"):
        Config(intents=replace(ha, enabled=False))
    Config(home_assistant=HomeAssistantConfig(timeout_ms=5000), service=ServiceConfig(stage_timeout_ms=5000))
