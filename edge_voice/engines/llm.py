"""On-device chat LLM: llama.cpp through xllamacpp (prebuilt x86_64 + aarch64 wheels, no 6-minute source
build as with llama-cpp-python; same llama.cpp speed).

xllamacpp wraps llama.cpp's *server* in-process: ``Server(params)`` loads the model and runs llama.cpp's
slot loop on its own C++ thread; ``handle_chat_completions(request, callback)`` blocks the caller and calls
``callback(chunk)`` per streamed OpenAI-style chunk; returning True from the callback drops the request
(llama.cpp cancels the task). ``stream`` turns that push API into an iterator with a small per-request
bridge thread and a queue, so the caller (the LLM thread) can stop at any token.

Latency: one long-lived Server with one slot; llama.cpp reuses the longest common prefix of the previous
prompt that is still in the slot's KV cache. ``warm(prefix)`` fills it once at start-up with the fixed
start of every request (system prompt and example exchanges), so the first turn is as fast as later ones
— as long as every request starts with that prefix and anything that changes (clock time, device
states) goes at the END (see ``build_messages``).

Decoding is greedy (``temperature`` 0 → top_k 1) and ends at the configured stop strings: a 135M model
sampled at 0.2 wandered into French and Italian; greedy gives its most likely answer, the same each time.

No open port: xllamacpp always starts llama.cpp's HTTP listener (even with port 0 it binds a random
127.0.0.1 port that any local process could use; an empty ``hostnames`` crashes it). So the listener goes
on a Unix socket in a private 0700 directory (no TCP socket at all) and every HTTP request needs a random
per-process API key that is never stored; in-process ``handle_*`` calls bypass the HTTP layer.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import shutil
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Generator, Sequence
from pathlib import Path
from typing import Any

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import LlmConfig
from edge_voice.core.messages import ChatMessage
from edge_voice.engines.base import NATIVE_THREADS, GenerationStats, Stopped
from edge_voice.models import registry

log = logging.getLogger(__name__)

SEED = 1234  # fixed sampling seed: the same prompt gives the same reply (tests, benches, bug reports)
REPEAT_PENALTY = 1.1  # the 135M model loops ("A funny joke. A funny joke.") without it
_POLL_S = 0.02  # how often a waiting consumer re-checks the cancel token (prefill sends no chunks)
_JOIN_S = 5.0


class LlmError(RuntimeError):
    """llama.cpp rejected or failed a request (the message is llama.cpp's)."""


def build_messages(
    prefix: Sequence[ChatMessage], history: Sequence[ChatMessage], user_text: str, facts: str = ""
) -> list[ChatMessage]:
    """The request for one turn: the fixed prefix first (system prompt and examples, see
    ``conversation.prompt_prefix``; its KV cache is reused), then history, then the user's words with
    today's changing facts just before them, so nothing early in the prompt changes."""
    content = f"({facts.strip()})\n{user_text}" if facts.strip() else user_text
    return [*prefix, *history, ChatMessage("user", content)]


class LlamaGenerator:
    """``Generator`` on llama.cpp. Construct (loads the model, ~0.3 s) and ``warm`` at start-up; then
    ``stream`` from the LLM thread only. ``last`` holds the stats of the most recent ``stream``."""

    def __init__(self, cfg: LlmConfig, models_dir: Path | None = None, threads: int | None = None) -> None:
        import xllamacpp  # lazy: only when the local LLM is chosen

        self.cfg = cfg
        self.threads = threads or cfg.threads
        self.model_path = registry.resolve(cfg.model, models_dir)
        params = xllamacpp.CommonParams()
        params.model.path = str(self.model_path)
        params.n_ctx = cfg.context_tokens
        params.n_parallel = 1  # one slot: every turn lands on the slot holding the warm system prompt
        params.cpuparams.n_threads = self.threads
        # Prompt evaluation runs right after ASR, with TTS idle: both cores cut TTFT. Generation keeps
        # ``threads`` (1), because it overlaps Piper and 2 spinning threads then collapse (see README).
        params.cpuparams_batch.n_threads = cfg.batch_threads or self.threads
        params.cache_ram_mib = 0  # one fixed system prompt needs no RAM prompt cache (keeps RSS flat)
        params.endpoint_metrics = False
        params.verbosity = 3 if log.isEnabledFor(logging.DEBUG) else -1  # llama.cpp logs to stderr
        # the unavoidable HTTP listener: private Unix socket + random key (see the module docstring)
        socket_dir = Path(tempfile.mkdtemp(prefix="edge-voice-llm-"))  # mode 0700: only this user
        self._cleanup = weakref.finalize(self, shutil.rmtree, socket_dir, True)
        self.socket_path = socket_dir / "llm.sock"
        params.hostnames = [str(self.socket_path)]  # a path ending in .sock = AF_UNIX, no TCP port
        params.api_keys = [secrets.token_urlsafe(32)]  # nobody needs it: we never call over HTTP
        params.ui = False
        params.endpoint_slots = False
        params.n_threads_http = 1  # no idle HTTP worker pool
        t0 = time.monotonic()
        try:
            self._server: Any = _start_server(lambda: xllamacpp.Server(params), cfg.nice)
        except RuntimeError as exc:
            self._cleanup()
            raise registry.ModelError(f"llama.cpp could not load {self.model_path}: {exc}") from exc
        self.load_ms = (time.monotonic() - t0) * 1000
        self.last: GenerationStats | None = None
        self.warm_stats: GenerationStats | None = None
        self.primed: GenerationStats | None = None  # stats of the last ``prime``
        log.info("llm: loaded %s in %.0f ms (%d threads)", self.model_path.name, self.load_ms, self.threads)

    def warm(self, prefix: Sequence[ChatMessage]) -> None:
        """Evaluate the fixed prefix (system prompt, examples) once so its KV cache is in the slot before
        the first turn."""
        msgs = [*prefix, ChatMessage("user", "Hello.")]
        for _ in self._generate(msgs, NEVER, max_tokens=1):
            pass
        self.warm_stats = self.last
        log.info(
            "llm: warmed the prompt prefix (%d tokens) in %.0f ms",
            self.last.prompt_tokens if self.last else -1,
            self.last.total_ms if self.last else -1.0,
        )

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Evaluate ``messages`` into the slot's KV cache (one token is generated and thrown away), so the
        turn's request, which extends them, evaluates only what is new. Called at the wake word with the
        history and the facts: the ~20 tokens of facts then cost nothing after the user stops speaking."""
        last = self.last
        try:
            for _ in self._generate(messages, NEVER, max_tokens=1):
                pass
        except LlmError as exc:  # the turn's own request will report a real failure
            log.warning("llm: prime failed: %s", exc)
        self.primed, self.last = self.last, last  # ``last`` stays the stats of the last ``stream``

    def stream(self, messages: Sequence[ChatMessage], cancel: CancelToken) -> Generator[str, None, None]:
        """Yield text pieces (about one token each) as llama.cpp produces them; stop within one token (or
        ``_POLL_S`` during prompt evaluation) once ``cancel`` is set or the iterator is closed. Raises
        ``LlmError`` if llama.cpp reports an error."""
        return self._generate(messages, cancel, self.cfg.max_tokens)

    def close(self) -> None:
        """Stop llama.cpp's loop thread, free the model and remove the socket directory (also happens when
        the object is collected)."""
        self._server = None
        self._cleanup()

    # ------------------------------------------------------------------------------------- internals

    def _request(self, messages: Sequence[ChatMessage], max_tokens: int) -> dict[str, Any]:
        return {
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "max_tokens": max_tokens,
            "temperature": self.cfg.temperature,
            **({"top_k": 1} if self.cfg.temperature == 0 else {}),  # greedy
            "repeat_penalty": REPEAT_PENALTY,
            "stop": list(self.cfg.stop),
            "seed": SEED,
            "stream": True,
            "cache_prompt": True,
        }

    def _generate(
        self, messages: Sequence[ChatMessage], cancel: CancelToken, max_tokens: int
    ) -> Generator[str, None, None]:
        if self._server is None:
            raise LlmError("the LLM was closed")
        server = self._server
        request = self._request(messages, max_tokens)
        chunks: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        abandon = threading.Event()

        def on_chunk(chunk: Any) -> bool:  # runs on the bridge thread, once per streamed chunk
            if abandon.is_set() or cancel.cancelled:
                return True  # True = llama.cpp drops the request (frees the slot at once)
            chunks.put(("chunk", chunk))
            return False

        def run() -> None:
            try:
                server.handle_chat_completions(request, on_chunk)
            except Exception as exc:  # surfaced to the consumer below
                chunks.put(("error", exc))
            finally:
                chunks.put(("end", None))

        t0 = time.monotonic()
        first_s = -1.0
        pieces: list[str] = []
        stopped: Stopped = "eos"
        timings: dict[str, Any] = {}
        bridge = threading.Thread(target=run, name="llm-request", daemon=True)
        NATIVE_THREADS.add(bridge)  # it may still be inside llama.cpp when a cancelled stream returns
        bridge.start()
        try:
            while True:
                if cancel.cancelled:
                    stopped = "cancelled"
                    break
                try:
                    kind, payload = chunks.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if kind == "end":
                    if cancel.cancelled:  # the callback saw the cancel first and dropped the request
                        stopped = "cancelled"
                    break
                if kind == "error":
                    stopped = "error"
                    raise LlmError(str(payload))
                if not isinstance(payload, dict) or "error" in payload or "choices" not in payload:
                    stopped = "error"
                    raise LlmError(f"llama.cpp: {_error_text(payload)}")
                timings = payload.get("timings") or timings
                for choice in payload["choices"]:
                    if choice.get("finish_reason") == "length":
                        stopped = "max_tokens"
                    text = (choice.get("delta") or {}).get("content")
                    if text:
                        if first_s < 0:
                            first_s = time.monotonic() - t0
                        pieces.append(text)
                        yield text
                        if cancel.cancelled:
                            stopped = "cancelled"
                            return
        except GeneratorExit:
            stopped = "cancelled"  # the consumer closed the iterator
            raise
        finally:
            abandon.set()
            bridge.join(timeout=_JOIN_S)
            if bridge.is_alive():
                log.warning("llm: request thread still busy %.1f s after stop", _JOIN_S)
            self.last = GenerationStats.from_timings(timings, pieces, stopped, first_s, t0)


def _start_server(make: Callable[[], Any], nice: int) -> Any:
    """Create the llama.cpp server; with ``nice`` > 0, from a helper thread that first lowers its own
    priority, so every thread llama.cpp starts from it (the decode loop, its thread pool) inherits the
    lower priority while the rest of the process keeps its own. Linux thread nice; elsewhere ignored."""
    if nice <= 0 or sys.platform != "linux":
        return make()
    box: dict[str, Any] = {}

    def create() -> None:
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)  # this thread only on Linux
        except OSError as exc:
            log.warning("llm: could not set nice %d: %s", nice, exc)
        try:
            box["server"] = make()
        except BaseException as exc:  # re-raised on the caller's thread
            box["error"] = exc

    loader = threading.Thread(target=create, name="llm-load")
    loader.start()
    loader.join()
    if "error" in box:
        raise box["error"]
    return box["server"]


def _error_text(payload: Any) -> str:
    if isinstance(payload, dict):
        err = payload.get("error", payload)
        if isinstance(err, dict):
            return str(err.get("message", err))
        return str(err)
    return repr(payload)
