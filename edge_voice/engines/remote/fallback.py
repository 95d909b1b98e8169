"""Remote engine first, the on-device engine when the remote fails: one rule for every stage.

- A ``RemoteError`` before any output: notify ``EngineFallback(using="local")`` and serve THIS request
  on the device, so the user still gets an answer (one timeout late at worst).
- For the next ``retry_after_s`` seconds every request goes straight to the device (no timeout per turn
  while the server is down); after that the remote is tried again, and its first output after a failure
  notifies ``EngineFallback(using="remote")``.
- A ``RemoteError`` after some output was already handed on: notify and re-raise. The turn ends with an
  error (its first words came from the remote; mixing engines mid-answer would garble it) and the next
  turn starts on the device.

Backends and reasons are logged and published with credentials redacted (``core/redact.py``).

Each wrapper is used by its stage's worker thread only; ``notify`` must be thread-safe (the Daemon sets it
to the orchestrator's ``post``). Cancellation is never a failure: a cancelled request just ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import Any, Literal

import numpy as np

from edge_voice.audio.resample import StreamResampler
from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.messages import ChatMessage, EngineFallback, Pcm
from edge_voice.core.redact import redact_url
from edge_voice.engines.base import (
    GenerationStats,
    RemoteError,
    ReportsRetry,
    Synthesizer,
    Transcriber,
    Transcription,
)
from edge_voice.engines.base import Generator as LlmGenerator

log = logging.getLogger(__name__)

Stage = Literal["asr", "llm", "tts", "intent"]
Notify = Callable[[EngineFallback], None]


class _Switch:
    """Which engine serves next, the cool-down after a failure, and the notifications."""

    def __init__(
        self, stage: Stage, backend: str, retry_after_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if retry_after_s < 0:
            raise ValueError("retry_after_s must be >= 0")
        self.stage: Stage = stage
        self.backend = redact_url(backend)  # logged and published: never a credential
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.notify: Notify | None = None
        self.failed_at: float | None = None  # last remote failure; None = the remote is in use
        self.reason = ""
        self._pending: EngineFallback | None = None  # a failure seen before ``notify`` was set (warm)

    @property
    def using(self) -> Literal["local", "remote"]:
        return "remote" if self.use_remote() else "local"

    def use_remote(self) -> bool:
        self._flush()
        return self.failed_at is None or self.clock() - self.failed_at >= self.retry_after_s

    def failed(self, reason: str) -> None:
        reason = redact_url(reason)
        log.warning(
            "%s: remote %s failed (%s); on-device engine for the next %.0f s",
            self.stage,
            self.backend,
            reason,
            self.retry_after_s,
        )
        self.failed_at = self.clock()
        self.reason = reason
        self._send(EngineFallback(self.stage, self.backend, reason, using="local"))

    def succeeded(self) -> None:
        if self.failed_at is None:
            return
        log.info("%s: remote %s is back", self.stage, self.backend)
        self.failed_at = None
        self._pending = None
        self._send(EngineFallback(self.stage, self.backend, "remote answered again", using="remote"))

    def _send(self, msg: EngineFallback) -> None:
        if self.notify is None:
            self._pending = msg  # start-up: the Daemon sets notify later; deliver on the first request
            return
        self._pending = None
        try:
            self.notify(msg)
        except Exception:  # a notification must never break a turn
            log.exception("%s: fallback notification failed", self.stage)

    def _flush(self) -> None:
        if self._pending is not None and self.notify is not None:
            self._send(self._pending)


class _Wrapper:
    """Shared parts: ``notify`` is forwarded to the switch; ``warm`` warms both engines."""

    def __init__(
        self,
        stage: Stage,
        remote: Any,
        local: Any,
        backend: str,
        retry_after_s: float,
        clock: Callable[[], float],
    ) -> None:
        self.remote = remote
        self.local = local
        self.backend = backend
        self.switch = _Switch(stage, backend, retry_after_s, clock)

    @property
    def notify(self) -> Notify | None:
        return self.switch.notify

    @notify.setter
    def notify(self, fn: Notify | None) -> None:
        self.switch.notify = fn

    @property
    def using(self) -> Literal["local", "remote"]:
        """The engine the next request goes to."""
        return self.switch.using

    def _warm(self, *args: Any) -> None:
        local_warm = getattr(self.local, "warm", None)
        if local_warm is not None:
            local_warm(*args)
        remote_warm = getattr(self.remote, "warm", None)
        try:
            if remote_warm is not None:
                remote_warm(*args)
        except RemoteError as exc:
            self.switch.failed(str(exc))
            return
        if getattr(self.remote, "reachable", None) is False:
            # the remote logged why; start on the device instead of paying a timeout on the first turn
            self.switch.failed("unreachable at start-up")


def _fall_back_stream(
    switch: _Switch,
    remote: Callable[[], Iterator[Any]],
    local: Callable[[], Iterator[Any]],
    cancel: CancelToken,
) -> Generator[Any, None, None]:
    """The rule for streaming stages (LLM pieces, TTS chunks)."""
    if not switch.use_remote():
        yield from local()
        return
    produced = False
    it = remote()
    try:
        for item in it:
            if not produced:
                produced = True
                switch.succeeded()
            yield item
    except RemoteError as exc:
        switch.failed(str(exc))
        if produced:
            raise
        if cancel.cancelled:
            return
        yield from local()
        return
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
    if not cancel.cancelled:
        switch.succeeded()  # a complete (possibly empty) answer also counts


class FallbackGenerator(_Wrapper):
    """``Generator``: ``remote`` (e.g. ``OpenAiGenerator``) first, ``local`` (``LlamaGenerator``) when
    it fails. ``last`` is the stats of whichever engine served the last ``stream``."""

    def __init__(
        self,
        remote: LlmGenerator,
        local: LlmGenerator,
        backend: str,
        retry_after_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("llm", remote, local, backend, retry_after_s, clock)
        self._served: LlmGenerator = local

    @property
    def last(self) -> GenerationStats | None:
        return self._served.last

    def warm(self, prefix: Sequence[ChatMessage]) -> None:
        self._warm(prefix)

    def prime(self, messages: Sequence[ChatMessage]) -> None:
        """Only the engine about to serve is primed (the remote one does nothing)."""
        (self.remote if self.switch.use_remote() else self.local).prime(messages)

    def stream(self, messages: Sequence[ChatMessage], cancel: CancelToken) -> Generator[str, None, None]:
        def remote() -> Iterator[str]:
            self._served = self.remote
            return iter(self.remote.stream(messages, cancel))

        def local() -> Iterator[str]:
            self._served = self.local
            return iter(self.local.stream(messages, cancel))

        return _fall_back_stream(self.switch, remote, local, cancel)


class FallbackTranscriber(_Wrapper):
    """``Transcriber``: ``remote`` (e.g. a Wyoming ASR client) first, ``local`` when it fails."""

    remote: Transcriber
    local: Transcriber

    def __init__(
        self,
        remote: Transcriber,
        local: Transcriber,
        backend: str,
        retry_after_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("asr", remote, local, backend, retry_after_s, clock)

    @property
    def on_retry(self) -> Callable[[int], None] | None:
        """The on-device engine's retry report (``ReportsRetry``): the remote one does not retry."""
        return self.local.on_retry if isinstance(self.local, ReportsRetry) else None

    @on_retry.setter
    def on_retry(self, hook: Callable[[int], None] | None) -> None:
        if isinstance(self.local, ReportsRetry):
            self.local.on_retry = hook

    def warm(self) -> None:
        self._warm()

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
        if self.switch.use_remote():
            try:
                result = self.remote.transcribe(audio, cancel)
            except RemoteError as exc:
                self.switch.failed(str(exc))
                if cancel.cancelled:
                    return Transcription("", "cancelled")
            else:
                if not cancel.cancelled:
                    self.switch.succeeded()
                return result
        return self.local.transcribe(audio, cancel)


class FallbackSynthesizer(_Wrapper):
    """``Synthesizer``: ``remote`` (e.g. a Wyoming TTS client) first, ``local`` (Piper) when it fails.
    ``sample_rate`` is the local voice's; remote audio at another rate is resampled to it as it streams
    (``StreamResampler``: the same samples as resampling the whole utterance). The remote's
    ``sample_rate`` is read at its first chunk, so a client that learns it from the stream's header works."""

    def __init__(
        self,
        remote: Synthesizer,
        local: Synthesizer,
        backend: str,
        retry_after_s: float = 30.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__("tts", remote, local, backend, retry_after_s, clock)
        self.sample_rate: int = local.sample_rate

    def warm(self) -> None:
        self._warm()

    def synthesize(self, text: str, cancel: CancelToken) -> Generator[Pcm, None, None]:
        return _fall_back_stream(
            self.switch,
            lambda: self._at_local_rate(self.remote.synthesize(text, cancel)),
            lambda: iter(self.local.synthesize(text, cancel)),
            cancel,
        )

    def _at_local_rate(self, chunks: Iterator[Pcm]) -> Generator[Pcm, None, None]:
        rs: StreamResampler | None = None
        try:
            for pcm in chunks:
                src = int(self.remote.sample_rate)  # read at the first chunk: known by then
                if src == self.sample_rate:
                    yield pcm
                    continue
                rs = rs or StreamResampler(src, self.sample_rate)
                out = rs.push(pcm)
                if len(out):
                    yield out
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()  # stop the remote promptly when the caller stops
        if rs is not None:
            tail = rs.flush()
            if len(tail):
                yield tail

    def synthesize_all(self, text: str, cancel: CancelToken | None = None) -> Pcm:
        """The whole utterance at ``sample_rate`` (the phrase cache fills itself with this)."""
        chunks = list(self.synthesize(text, cancel or NEVER))
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


class NoVoice:
    """``Synthesizer`` that says nothing, at ``sample_rate``: the fallback of a remote-only voice
    (``tts.local_fallback = false``), so a server that is down gives an ``engine.fallback`` event and
    silence, never a Piper import."""

    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate

    def warm(self) -> None:
        pass

    def synthesize(self, text: str, cancel: CancelToken) -> Iterator[Pcm]:
        return iter(())
