"""Home Assistant's conversation agent as the device-command backend (``intents.backend =
"home_assistant"``): the words go to ``POST /api/conversation/process``, HA acts on its own exposed
entities (names, aliases, areas; its LLM agent if one is configured) and its spoken reply comes back to
be said by our Piper.

Bounded like every remote: one deadline (``home_assistant.timeout_ms``) for connect and the whole answer,
at most ``MAX_RESPONSE_BYTES`` read, the spoken reply cut at ``MAX_SPEECH_CHARS``. The token is read from
the environment at each request (never logged, never in an event). A failure raises ``RemoteError``; the
caller (``LlmWorker``) then speaks the fast path's confirmation and applies its intent.
"""

from __future__ import annotations

import http.client
import json
import os
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

from edge_voice.core.cancel import CancelToken
from edge_voice.core.config import HomeAssistantConfig
from edge_voice.core.redact import redact_url
from edge_voice.engines.base import RemoteError

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
# HA's "I could not understand": the local LLM answers instead (a question, not a command)
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
        token = os.environ.get(self.cfg.token_env, "")
        if not token:
            raise RemoteError(f"home assistant: no token (${self.cfg.token_env} is not set)")
        body: dict[str, Any] = {"text": text, "language": self.cfg.language}
        if self.cfg.agent_id:
            body["agent_id"] = self.cfg.agent_id
        timeout_s = self.cfg.timeout_ms / 1000
        deadline = time.monotonic() + timeout_s
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=timeout_s)
        t0 = time.perf_counter()
        try:
            conn.request(
                "POST",
                self._path,
                body=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )
            if conn.sock is not None:  # what is left of the one deadline, for the answer
                conn.sock.settimeout(max(0.01, deadline - time.monotonic()))
            resp = conn.getresponse()
            data = resp.read(MAX_RESPONSE_BYTES + 1)
        except TimeoutError:
            raise RemoteError(f"home assistant: no answer within {self.cfg.timeout_ms} ms") from None
        except ConnectionRefusedError:
            raise RemoteError("home assistant: connection refused (is it running?)") from None
        except (OSError, http.client.HTTPException) as exc:
            raise RemoteError(f"home assistant: {type(exc).__name__}: {exc}") from None
        finally:
            conn.close()
        self.last_ms = (time.perf_counter() - t0) * 1000
        if time.monotonic() > deadline:
            raise RemoteError(f"home assistant: no answer within {self.cfg.timeout_ms} ms")
        if resp.status != 200:
            hint = " (check the token)" if resp.status in (401, 403) else ""
            raise RemoteError(f"home assistant: HTTP {resp.status}{hint}")
        if len(data) > MAX_RESPONSE_BYTES:
            raise RemoteError(f"home assistant: answer larger than {MAX_RESPONSE_BYTES} bytes")
        if cancel.cancelled:
            raise RemoteError("cancelled")
        return parse_reply(data)
