"""Remote chat LLM over the OpenAI-compatible chat-completions API (llama.cpp's llama-server, Ollama,
vLLM), with the standard library only (``http.client``): no new dependency on the device.

``stream`` POSTs ``{base_url}/chat/completions`` with ``stream: true`` and yields
``choices[0].delta.content`` from the server-sent events until ``data: [DONE]``. The socket is read by a
small per-request bridge thread that hands parsed events to the caller through a queue, so the caller
(the LLM thread) can enforce the deadlines and the cancel token without blocking in a read: connect +
first token within ``timeout_ms``, then each further token within ``timeout_ms``; otherwise, or on a
refused connection, an HTTP error, an error event or malformed JSON, it raises ``RemoteError`` (the
fallback wrapper then serves the turn on the device). Cancelling shuts the socket down, which unblocks
the reader and tells the server to stop generating.

Everything the server sends is bounded (a hostile or broken server must not exhaust memory): an SSE line
longer than ``MAX_LINE_BYTES`` or a stream past ``MAX_REPLY_BYTES`` is a ``RemoteError`` (the reader stops
at the limit, the line is never held whole); an answer stops, as if at ``max_tokens``, after
``max_pieces(max_tokens)`` text pieces or ``max_chars(max_tokens)`` characters. Credentials in
``base_url`` (``http://user:pass@host/v1``) are sent as HTTP Basic auth and never logged: every message
quotes ``url``, which is redacted (``core/redact.py``).

Only standard request fields are sent (model, messages, max_tokens, temperature, stop, seed, stream), so
servers that reject unknown fields accept the request; sampling extras such as llama.cpp's
``repeat_penalty`` belong in the server's own defaults.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import queue
import socket
import threading
import time
import urllib.parse
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import LlmConfig
from edge_voice.core.messages import ChatMessage
from edge_voice.core.redact import plain_http_to_remote, redact_url
from edge_voice.engines.base import GenerationStats, RemoteError, Stopped
from edge_voice.engines.llm import SEED

log = logging.getLogger(__name__)

_POLL_S = 0.02  # how often the waiting caller re-checks the cancel token
_SOCKET_MARGIN_S = 1.0  # the socket's own timeout outlasts the caller's token deadline by this much
_JOIN_S = 2.0
_ERROR_BODY_BYTES = 2000  # enough of an error body for the message, never a whole page
MAX_LINE_BYTES = 64 << 10  # one SSE line: a token chunk is ~0.3 KB, llama-server's last (timings) ~1 KB
MAX_REPLY_BYTES = 1 << 20  # one whole streamed answer, every byte counted (comments and padding too)


def max_pieces(max_tokens: int) -> int:
    """Text pieces accepted per answer: one per token, twice over for servers that split tokens."""
    return 2 * max_tokens + 8


def max_chars(max_tokens: int) -> int:
    """Characters accepted per answer: 16 per token is far above any tokenizer's English average (~4)."""
    return 16 * max_tokens + 64


@dataclass(frozen=True, slots=True)
class Endpoint:
    """``base_url`` split for ``http.client``."""

    https: bool
    host: str
    port: int
    prefix: str  # path before /chat/completions, no trailing slash ("/v1" or "")
    basic_auth: str = ""  # "user:pass" from the URL, base64 (an Authorization: Basic value), or ""

    @classmethod
    def parse(cls, base_url: str) -> Endpoint:
        u = urllib.parse.urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"llm.base_url: not an http(s) URL: {redact_url(base_url)!r}")
        https = u.scheme == "https"
        auth = ""
        if u.username is not None:
            userinfo = f"{urllib.parse.unquote(u.username)}:{urllib.parse.unquote(u.password or '')}"
            auth = base64.b64encode(userinfo.encode()).decode()
        return cls(https, u.hostname, u.port or (443 if https else 80), u.path.rstrip("/"), auth)


class SseParser:
    """Server-sent events, one line at a time: returns the ``data`` payload of each completed event
    (multi-line data joined with newlines); comments, ``event:``/``id:`` fields are ignored."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        line = line.rstrip("\r\n")
        if not line:  # a blank line ends the event
            if not self._data:
                return None
            data, self._data = "\n".join(self._data), []
            return data
        if line.startswith(":"):
            return None
        field, _, value = line.partition(":")
        if field == "data":
            self._data.append(value.removeprefix(" "))
        return None

    def flush(self) -> str | None:
        """An event the server did not terminate with a blank line before closing."""
        return self.feed("")


def delta_text(chunk: Any) -> tuple[str, str | None]:
    """``(content, finish_reason)`` of one streamed chat-completion chunk. Raises ``ValueError`` for
    an error event or a chunk that is not a chat-completion chunk."""
    if not isinstance(chunk, dict):
        raise ValueError(f"not a JSON object: {chunk!r:.200}")
    if "error" in chunk:
        err = chunk["error"]
        raise ValueError(str(err.get("message", err)) if isinstance(err, dict) else str(err))
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        raise ValueError(f"no 'choices' in chunk: {json.dumps(chunk)[:200]}")
    if not choices:  # e.g. a usage-only chunk
        return "", None
    choice = choices[0]
    if not isinstance(choice, dict):
        raise ValueError(f"bad choice: {choice!r:.200}")
    delta = choice.get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    finish = choice.get("finish_reason")
    return (content if isinstance(content, str) else ""), (finish if isinstance(finish, str) else None)


class OpenAiGenerator:
    """``Generator`` against an OpenAI-compatible server. ``warm`` at start-up (never raises), then
    ``stream`` from the LLM thread only. ``last`` holds the stats of the most recent ``stream``;
    ``reachable`` is the result of the last ``warm`` check (None before it)."""

    def __init__(self, cfg: LlmConfig) -> None:
        self.cfg = cfg
        self.endpoint = Endpoint.parse(cfg.base_url)
        self.timeout_s = cfg.timeout_ms / 1000
        self.last: GenerationStats | None = None
        self.reachable: bool | None = None
        self.requests = 0  # chat requests sent (diagnostics, benches)
        if self.credentials_in_clear():
            log.warning(
                "llm: credentials for %s go over plain http:// to another host: anyone on the network "
                "can read them and the conversation; use https:// (or a tunnel)",
                self.url,
            )

    @property
    def url(self) -> str:
        """``base_url`` as it may be logged or published: credentials redacted."""
        return redact_url(self.cfg.base_url.rstrip("/"))

    def credentials_in_clear(self) -> bool:
        """An API key or URL credentials would be sent over plain http:// to a non-loopback host."""
        return bool(self._api_key() or self.endpoint.basic_auth) and plain_http_to_remote(self.cfg.base_url)

    def warm(self, prefix: Sequence[ChatMessage]) -> None:
        """Check that the server answers (GET /models), then ask for one token with the fixed prefix
        (system prompt, examples) so a llama.cpp server has it in its prompt cache before the first turn.
        Logs, never raises: the fallback wrapper covers an unreachable server."""
        try:
            status, body = self._get("/models")
            if status != 200:
                raise RemoteError(f"GET {self.url}/models: HTTP {status}: {_error_message(body)}")
            msgs = [*prefix, ChatMessage("user", "Hello.")]
            for _ in self._generate(msgs, NEVER, max_tokens=1):
                pass
        except RemoteError as exc:
            self.reachable = False
            log.warning(
                "llm: remote %s not usable at start-up (%s); the on-device LLM will answer", self.url, exc
            )
            return
        self.reachable = True
        log.info(
            "llm: remote %s reachable, prompt prefix sent (%.0f ms)",
            self.url,
            self.last.total_ms if self.last else -1.0,
        )

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Nothing: a round trip to a server that may be down would hold the LLM thread just before the
        turn's own request (the server's prompt cache still serves the system prompt)."""

    def stream(self, messages: Sequence[ChatMessage], cancel: CancelToken) -> Generator[str, None, None]:
        """Yield text pieces as the server streams them; stop within ``_POLL_S`` once ``cancel`` is set
        or the iterator is closed. Raises ``RemoteError`` (see the module docstring)."""
        return self._generate(messages, cancel, self.cfg.max_tokens)

    # ------------------------------------------------------------------------------------- internals

    def _connect(self) -> http.client.HTTPConnection:
        ep = self.endpoint
        cls = http.client.HTTPSConnection if ep.https else http.client.HTTPConnection
        # the socket timeout only bounds the bridge thread; the caller enforces the real deadlines, so
        # the socket's is longer and the caller's error ("no first token within …") is the one raised
        return cls(ep.host, ep.port, timeout=self.timeout_s + _SOCKET_MARGIN_S)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        key = self._api_key()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        elif self.endpoint.basic_auth:
            headers["Authorization"] = f"Basic {self.endpoint.basic_auth}"
        return headers

    def _api_key(self) -> str:
        return os.environ.get(self.cfg.api_key_env, "") if self.cfg.api_key_env else ""

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int) -> bytes:
        body: dict[str, Any] = {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": self.cfg.temperature,
            "stop": list(self.cfg.stop),
            "seed": SEED,
            "stream": True,
        }
        if self.cfg.remote_model:  # llama-server serves its one model without it; Ollama/vLLM need it
            body["model"] = self.cfg.remote_model
        return json.dumps(body).encode()

    def _get(self, path: str) -> tuple[int, bytes]:
        conn = self._connect()
        try:
            conn.request("GET", self.endpoint.prefix + path, headers=self._headers())
            resp = conn.getresponse()
            return resp.status, resp.read(_ERROR_BODY_BYTES)
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteError(f"GET {self.url}{path}: {_os_error(exc)}") from exc
        finally:
            conn.close()

    def _generate(
        self, messages: Sequence[ChatMessage], cancel: CancelToken, max_tokens: int
    ) -> Generator[str, None, None]:
        body = self._request(messages, max_tokens)
        conn = self._connect()
        events: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        abandon = threading.Event()
        path = self.endpoint.prefix + "/chat/completions"
        self.requests += 1

        def read() -> None:  # bridge thread: blocking socket reads, parsed events to the caller
            try:
                conn.request("POST", path, body=body, headers=self._headers())
                if abandon.is_set():
                    return
                resp = conn.getresponse()
                if resp.status != 200:
                    msg = _error_message(resp.read(_ERROR_BODY_BYTES))
                    events.put(("error", f"HTTP {resp.status}: {msg}"))
                    return
                parser = SseParser()
                total = 0
                while not abandon.is_set():
                    raw = resp.readline(MAX_LINE_BYTES + 1)  # never more than the limit in memory
                    total += len(raw)
                    if len(raw) > MAX_LINE_BYTES:
                        events.put(("error", f"an event line longer than {MAX_LINE_BYTES} bytes"))
                        return
                    if total > MAX_REPLY_BYTES:
                        events.put(("error", f"the answer went past {MAX_REPLY_BYTES} bytes"))
                        return
                    data = parser.feed(raw.decode("utf-8", "replace")) if raw else parser.flush()
                    if data is not None:
                        if data.strip() == "[DONE]":
                            events.put(("done", None))
                            return
                        try:
                            events.put(("chunk", json.loads(data)))
                        except ValueError:
                            events.put(("error", f"malformed JSON in the stream: {data[:200]!r}"))
                            return
                    if not raw:
                        events.put(("error", "the server closed the stream before [DONE]"))
                        return
            except (OSError, http.client.HTTPException) as exc:
                if not abandon.is_set():
                    events.put(("error", _os_error(exc)))
            finally:
                conn.close()

        t0 = time.monotonic()
        deadline = t0 + self.timeout_s
        first_s = -1.0
        pieces: list[str] = []
        pieces_left, chars_left = max_pieces(max_tokens), max_chars(max_tokens)
        stopped: Stopped = "eos"
        timings: dict[str, Any] = {}
        bridge = threading.Thread(target=read, name="llm-remote", daemon=True)
        bridge.start()
        try:
            while True:
                if cancel.cancelled:
                    stopped = "cancelled"
                    return
                now = time.monotonic()
                if now >= deadline:
                    stopped = "error"
                    what = "first token" if first_s < 0 else "next token"
                    raise RemoteError(f"{self.url}: no {what} within {self.cfg.timeout_ms} ms")
                try:
                    kind, payload = events.get(timeout=min(_POLL_S, deadline - now))
                except queue.Empty:
                    continue
                if kind == "done":
                    return
                if kind == "error":
                    stopped = "error"
                    raise RemoteError(f"{self.url}: {payload}")
                try:
                    text, finish = delta_text(payload)
                except ValueError as exc:
                    stopped = "error"
                    raise RemoteError(f"{self.url}: {exc}") from None
                if isinstance(payload.get("timings"), dict):  # llama-server's extension
                    timings = payload["timings"]
                if finish == "length":
                    stopped = "max_tokens"
                if text:
                    if first_s < 0:
                        first_s = time.monotonic() - t0
                    deadline = time.monotonic() + self.timeout_s
                    text = text[:chars_left]
                    pieces_left, chars_left = pieces_left - 1, chars_left - len(text)
                    pieces.append(text)
                    yield text
                    if cancel.cancelled:
                        stopped = "cancelled"
                        return
                    if pieces_left <= 0 or chars_left <= 0:  # a server that does not stop: we do
                        log.warning("llm: %s went on past max_tokens=%d; answer cut", self.url, max_tokens)
                        stopped = "max_tokens"
                        return
        except GeneratorExit:
            stopped = "cancelled"  # the consumer closed the iterator
            raise
        finally:
            abandon.set()
            _shutdown(conn)  # unblocks a read in progress; the server sees the client go away
            bridge.join(timeout=_JOIN_S)
            self.last = GenerationStats.from_timings(timings, pieces, stopped, first_s, t0)


def _shutdown(conn: http.client.HTTPConnection) -> None:
    sock = conn.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _os_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is the server running?)"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"


def _error_message(body: bytes) -> str:
    """The server's error text: OpenAI-style ``{"error": {"message": …}}`` or the start of the body."""
    text = body.decode("utf-8", "replace")
    with contextlib.suppress(ValueError):
        doc = json.loads(text)
        if isinstance(doc, dict) and "error" in doc:
            err = doc["error"]
            return str(err.get("message", err)) if isinstance(err, dict) else str(err)
    return text.strip()[:300] or "(empty body)"
