"""Home Assistant's conversation agent as the device-command backend (``intents.backend =
"home_assistant"``): the words go to ``POST /api/conversation/process``, HA acts on its own exposed
entities (names, aliases, areas; its LLM agent if one is configured) and its spoken reply comes back to
be said by our Piper.

Bounded like every remote: one deadline (``home_assistant.timeout_ms``) for connect and the whole answer
(per request, not per read: a server dripping bytes ends at it), at most ``MAX_RESPONSE_BYTES`` read, the
spoken reply cut at ``MAX_SPEECH_CHARS``. The token is read from the environment at each request, stripped
and checked (never logged, never in an event, never in an error: http.client echoes a header value it
refuses). A failure raises ``RemoteError`` (``RemoteTimeout`` at the deadline: HA may have acted); the
caller (``LlmWorker``) then speaks the fast path's confirmation and applies its intent.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import HomeAssistantConfig
from edge_voice.core.redact import redact_url
from edge_voice.engines.base import RemoteError, RemoteTimeout

MAX_RESPONSE_BYTES = 64 * 1024  # HA's answer is ~1 KB; a larger body is a wrong server, not an answer
MAX_SPEECH_CHARS = 500  # as mqtt's say: ~30 s of speech
# Home Assistant 2024.3's English replies to device commands (home-assistant-intents' response templates
# "Turned on the {{ state.domain }}", …): synthesised ahead like our confirmations, since a reply synthesised
# when it arrives costs Piper's whole first sentence (bench home: ~600 ms on this loaded box vs 38 ms hop)
AGENT_PHRASES = (
    *(f"Turned {s} the {d}" for s in ("on", "off") for d in ("light", "switch", "fan", "lights", "fans")),
    "Turned off all of the lights",
    "Brightness set",
    "Color set",
)
# HA's "I could not understand": the fast path's intent applies instead (only what HA parses is sent)
NO_MATCH_CODES = frozenset({"no_intent_match"})


@dataclass(frozen=True, slots=True)
class AgentReply:
    speech: str  # what HA says ("Turned on the light"), cut to MAX_SPEECH_CHARS
    response_type: str  # "action_done" | "query_answer" | "error"
    code: str = ""  # an error's code ("no_intent_match", "no_valid_targets", …)
    conversation_id: str = ""

    @property
    def understood(self) -> bool:
        return not (self.response_type == "error" and self.code in NO_MATCH_CODES)


def parse_reply(body: bytes) -> AgentReply:
    """HA's ``ConversationResult`` JSON → ``AgentReply``; ``RemoteError`` if it is not one."""
    try:
        doc = json.loads(body.decode("utf-8"))
        response = doc["response"]
        speech = response.get("speech", {}).get("plain", {}).get("speech", "")
        kind = str(response.get("response_type", ""))
        code = str((response.get("data") or {}).get("code", "")) if kind == "error" else ""
        conversation_id = doc.get("conversation_id") or ""
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RemoteError(f"home assistant: not a conversation result ({type(exc).__name__})") from None
    if not isinstance(speech, str) or not isinstance(conversation_id, str):
        raise RemoteError("home assistant: not a conversation result (speech is not text)")
    return AgentReply(" ".join(speech.split())[:MAX_SPEECH_CHARS], kind, code, conversation_id)


READ_CHUNK = 16 * 1024


def read_token(token_env: str) -> str:
    """The long-lived token from ``$token_env``, stripped (a trailing newline from ``echo >`` is common);
    ``RemoteError`` if unset or not a token — the message never contains the value."""
    token = os.environ.get(token_env, "").strip()
    if not token:
        raise RemoteError(f"home assistant: no token (${token_env} is not set)")
    if not all(33 <= ord(ch) <= 126 for ch in token):
        raise RemoteError(
            f"home assistant: ${token_env} is not a token (spaces, control or non-ASCII characters; "
            "the value is not shown)"
        )
    return token


def check_token(token_env: str) -> None:
    """At start-up: a set but malformed token is a configuration error (exit 78), naming the variable
    only. Unset is not: the fast path serves and each request says why."""
    from edge_voice.core.config import ConfigError

    if not os.environ.get(token_env, "").strip():
        return
    try:
        read_token(token_env)
    except RemoteError as exc:
        raise ConfigError("home_assistant.token_env", str(exc).removeprefix("home assistant: ")) from None


def bounded_request(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    deadline: float,
    limit: int,
) -> tuple[int, bytes]:
    """One request against an absolute ``deadline`` (monotonic): a watchdog shuts the socket down at it,
    so neither slow headers nor a body dripping a byte at a time outlive it. ``limit + 1`` bytes at most."""

    def expire() -> None:
        sock = conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), expire)
    watchdog.daemon = True
    watchdog.start()
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = bytearray()
        while len(data) <= limit:
            if conn.sock is not None:
                conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = resp.read(min(READ_CHUNK, limit + 1 - len(data)))
            if not chunk:
                break
            data += chunk
            if time.monotonic() > deadline:
                raise TimeoutError
    except (OSError, http.client.HTTPException):
        if time.monotonic() >= deadline:  # the watchdog's shutdown surfaces as whatever the read saw
            raise TimeoutError from None
        raise
    finally:
        watchdog.cancel()
    if time.monotonic() > deadline:
        raise TimeoutError
    return resp.status, bytes(data)


class HomeAssistantAgent:
    """One HA instance's conversation API. Used by the LLM thread only."""

    def __init__(self, cfg: HomeAssistantConfig) -> None:
        self.cfg = cfg
        u = urllib.parse.urlsplit(cfg.url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"home_assistant.url: not an http(s) URL: {redact_url(cfg.url)!r}")
        self._https = u.scheme == "https"
        self._host, self._port = u.hostname, u.port or (443 if self._https else 80)
        self._path = u.path.rstrip("/") + "/api/conversation/process"
        self.backend = f"home_assistant {redact_url(cfg.url)}"  # logged and published: no credential
        self.last_ms: float | None = None  # the last request's round trip (the bench reads it)

    def ask(self, text: str, cancel: CancelToken) -> AgentReply:
        token = read_token(self.cfg.token_env)
        body: dict[str, Any] = {"text": text, "language": self.cfg.language}
        if self.cfg.agent_id:
            body["agent_id"] = self.cfg.agent_id
        timeout_s = self.cfg.timeout_ms / 1000
        deadline = time.monotonic() + timeout_s
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=timeout_s)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        t0 = time.perf_counter()
        try:
            status, data = bounded_request(
                conn, "POST", self._path, json.dumps(body).encode(), headers, deadline, MAX_RESPONSE_BYTES
            )
        except TimeoutError:
            raise RemoteTimeout(f"home assistant: no answer within {self.cfg.timeout_ms} ms") from None
        except ConnectionRefusedError:
            raise RemoteError("home assistant: connection refused (is it running?)") from None
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteError(f"home assistant: {type(exc).__name__}: {exc}") from None
        except ValueError:  # http.client refusing a header value would echo it: never the message
            raise RemoteError("home assistant: the request could not be sent (a header value)") from None
        finally:
            conn.close()
        self.last_ms = (time.perf_counter() - t0) * 1000
        if status != 200:
            hint = " (check the token)" if status in (401, 403) else ""
            raise RemoteError(f"home assistant: HTTP {status}{hint}")
        if len(data) > MAX_RESPONSE_BYTES:
            raise RemoteError(f"home assistant: answer larger than {MAX_RESPONSE_BYTES} bytes")
        if cancel.cancelled:
            raise RemoteError("cancelled")
        return parse_reply(data)
