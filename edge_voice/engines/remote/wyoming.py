"""Remote speech → text and text → speech over the Wyoming protocol: what Home Assistant's
``wyoming-faster-whisper`` and ``wyoming-piper`` servers (and any other Wyoming peer) speak.

- One TCP connection per request (as Home Assistant does): connect, send, read the answer, close. A
  connection never outlives a turn, so a restarted server needs no reconnect logic.
- ASR: ``transcribe`` (+ language) → ``audio-start`` → ``audio-chunk``s (16 kHz int16 mono, 1 s each) →
  ``audio-stop``; the answer is one ``transcript``. The same non-speech guards as the on-device engine:
  audio with no voiced stretch is never sent, and whisper's silence phrases/tags are dropped.
- TTS: ``synthesize`` (+ voice name) → ``audio-start`` → ``audio-chunk``s → ``audio-stop``. Each chunk is
  converted from the format it declares (width 1/2/4 bytes, any channel count) to int16 mono. Servers send
  small chunks (wyoming-piper: 1024 samples = 46 ms) in one burst per sentence, written one event at a
  time (measured on loopback: our reader drains the socket between two chunks of a burst). Chunks are
  joined and yielded when nothing more arrives for ``BURST_GAP_S`` (10 ms): one yield per sentence, like
  local Piper, for 10 ms of extra latency. Sentence-sized pieces keep ``FallbackSynthesizer``'s
  chunk-by-chunk resampling free of audible edges and the TTS worker's message count low.
- ``WyomingSynthesizer.sample_rate`` is the server's rate, learnt from each reply's ``audio-start`` and set
  *before* that reply's first chunk is yielded (until then: the rate given to the constructor, i.e. the
  local voice's). Chunks are yielded at that rate, never resampled here: ``FallbackSynthesizer`` resamples
  to the local voice's rate, reading ``remote.sample_rate`` per chunk.
- Timeouts: the connect, and every awaited event, each get ``timeout_ms``: for ASR the transcript after
  the last audio, for TTS the ``audio-start`` and then each chunk after the previous one (events we do not
  use do not extend the wait). Refused/reset connections, timeouts, ``error`` events from the server and
  malformed events all raise ``RemoteError``; the fallback wrappers catch exactly that.
- Bounds (a hostile or broken server must not exhaust memory or talk forever): an event's header line is
  at most ``MAX_LINE_BYTES``, its body at most ``SMALL_BODY_BYTES`` until a reply's ``audio-start`` and then
  what the rest of the reply's allowed audio needs in the declared format; a reply to ``text`` may last
  ``max_audio_s(text, tts.max_reply_s)`` (0.5 s per character + 2 s, never above ``tts.max_reply_s``) and
  have ``MAX_EVENTS`` events. Past any bound: ``RemoteError`` before the body is read.
- Cancellation is not an error: with the turn's token set, the connection is closed within ~20 ms and
  ``transcribe`` returns "" / ``synthesize`` stops.

Why blocking sockets and not wyoming's ``AsyncClient`` on a private event loop: both protocols are
synchronous and called from one engine thread. wyoming's own (de)serialisers (``read_event``/``write_event``)
work on any object with ``readline``/``read``; our reader waits in 20 ms slices, so one loop checks both the
per-event deadline and the cancel token, with no loop, task or extra thread per request.

Threading: each instance is used by its stage's worker thread only (``warm`` at start-up, before that).
"""

from __future__ import annotations

import errno
import io
import logging
import os
import select
import socket
import time
import warnings
from collections.abc import Callable, Generator
from types import TracebackType
from typing import TypeVar

import numpy as np

from edge_voice.core.cancel import NEVER, CancelToken
from edge_voice.core.config import AsrConfig, TtsConfig, tcp_host_port
from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.engines.asr import MIN_AUDIO_MS, clean_transcript, has_voice
from edge_voice.engines.base import RemoteError, Transcription

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # wyoming.audio imports audioop (deprecated in 3.11)
    from wyoming.asr import Transcribe, Transcript
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.error import Error
    from wyoming.event import Event, read_event, write_event
    from wyoming.info import Describe, Info
    from wyoming.tts import Synthesize, SynthesizeVoice

log = logging.getLogger(__name__)

POLL_S = 0.02  # how often the cancel token is checked while waiting for the peer
SEND_CHUNK_SAMPLES = SAMPLE_RATE  # 1 s of audio per audio-chunk event (servers buffer the whole utterance)
MAX_LINE_BYTES = 64 << 10  # an event's JSON header line (a real one is ~100 bytes)
SMALL_BODY_BYTES = 64 << 10  # an event's data + payload outside reply audio (info, transcript, audio-start)
INFO_BODY_BYTES = 4 << 20  # a server's ``info`` (wyoming-piper may list hundreds of voices)
MAX_EVENTS = 20000  # per request (wyoming-piper sends ~22 audio-chunks per second of speech)
SECONDS_PER_CHAR = 0.5  # speech is ~0.06-0.15 s per character; this allows length_scale 3 and more
SLACK_S = 2.0
MAX_YIELD_S = 2.0  # never hold back more than this much received reply audio
BURST_GAP_S = 0.01  # no byte for this long after a chunk = the server finished a sentence
WARM_TEXT = "Ready."


class _Cancelled(Exception):
    """The turn's cancel token was set while we waited for the peer (not a failure)."""


class _Connection:
    """One request's TCP connection. ``send`` writes wyoming events; ``expect`` reads events with wyoming's
    own parser until one of the wanted type arrives, within one deadline. This object is the byte stream
    ``wyoming.event.read_event`` reads from (``readline``/``read``)."""

    def __init__(self, host: str, port: int, timeout_s: float, cancel: CancelToken, label: str) -> None:
        self.label = label
        self._timeout_s = timeout_s
        self._cancel = cancel
        self._deadline = 0.0
        self._what = "an answer"
        self._buf = bytearray()
        self.max_body = SMALL_BODY_BYTES  # raised by the TTS client once a reply's audio format is known
        self._events = 0
        try:
            self._sock = _connect(host, port, timeout_s, cancel)
        except OSError as exc:  # refused, unreachable, DNS failure, or the connect timed out
            raise RemoteError(f"{label}: cannot connect: {exc}") from exc
        # small events (the request header) are sent at once, not held back by Nagle's algorithm
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def __enter__(self) -> _Connection:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    # ----------------------------------------------------------------------------------------- sending

    def send(self, *events: Event) -> None:
        if self._cancel.cancelled:
            raise _Cancelled
        out = io.BytesIO()
        for event in events:
            write_event(event, out)
        self._sock.settimeout(self._timeout_s)
        try:
            self._sock.sendall(out.getvalue())
        except OSError as exc:  # reset, broken pipe, or the peer stopped reading (timeout)
            raise RemoteError(f"{self.label}: send failed: {exc}") from exc

    # --------------------------------------------------------------------------------------- receiving

    def expect(self, wanted: Callable[[str], bool], what: str) -> Event:
        """The next event whose type ``wanted`` accepts, within ``timeout_s`` from now. Events we do not
        use are skipped (they do not extend the wait); an ``error`` event raises ``RemoteError``."""
        self._deadline = time.monotonic() + self._timeout_s
        self._what = what
        while True:
            self._events += 1
            if self._events > MAX_EVENTS:
                raise RemoteError(f"{self.label}: more than {MAX_EVENTS} events in one answer")
            try:
                event = read_event(self)  # type: ignore[arg-type]
            except (KeyError, TypeError, AttributeError) as exc:  # JSON of the wrong shape
                raise RemoteError(
                    f"{self.label}: malformed event while waiting for {what}: {exc!r}"
                ) from None
            if event is None:  # end of stream, or a header/data block that is not JSON
                raise RemoteError(f"{self.label}: connection closed or bad event while waiting for {what}")
            if Error.is_type(event.type):
                err = _parse(Error.from_event, event, self.label)
                raise RemoteError(f"{self.label}: server error: {err.text} ({err.code or 'no code'})")
            if wanted(event.type):
                return event
            log.debug("%s: skipping %r while waiting for %s", self.label, event.type, what)

    def pending(self, wait_s: float) -> bool:
        """Bytes of a next event are here or arrive within ``wait_s``; nothing is consumed."""
        if self._buf:
            return True
        self._sock.settimeout(wait_s)
        try:
            self._sock.recv(1, socket.MSG_PEEK)  # b"" (end of stream) counts: the next read sees it
        except TimeoutError:
            return False
        except OSError:
            pass  # the next read reports the error
        return True

    def readline(self) -> bytes:
        while (end := self._buf.find(b"\n")) < 0:
            if len(self._buf) > MAX_LINE_BYTES:
                raise RemoteError(f"{self.label}: event header longer than {MAX_LINE_BYTES} bytes")
            if not self._fill():
                return self._take(len(self._buf))
        return self._take(end + 1)

    def read(self, n: int) -> bytes:
        if n > self.max_body:  # refused from the header, before a byte of it is read
            raise RemoteError(f"{self.label}: event body of {n} bytes (limit {self.max_body})")
        while len(self._buf) < n and self._fill():
            pass
        return self._take(min(n, len(self._buf)))

    def _take(self, n: int) -> bytes:
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def _fill(self) -> bool:
        """Wait for more bytes: False at end of stream. Past the deadline → RemoteError; cancel →
        _Cancelled. Waits in POLL_S slices so the cancel token is seen promptly."""
        while True:
            if self._cancel.cancelled:
                raise _Cancelled
            left = self._deadline - time.monotonic()
            if left <= 0:
                ms = round(self._timeout_s * 1000)
                raise RemoteError(f"{self.label}: no {self._what} within {ms} ms")
            self._sock.settimeout(min(left, POLL_S))
            try:
                data = self._sock.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError as exc:
                raise RemoteError(f"{self.label}: receive failed: {exc}") from exc
            if not data:
                return False
            self._buf += data
            return True


def _connect(host: str, port: int, timeout_s: float, cancel: CancelToken) -> socket.socket:
    """``socket.create_connection`` that also gives up when ``cancel`` is set: a server that is powered
    off typically makes the connect itself hang (no SYN-ACK) until the timeout."""
    deadline = time.monotonic() + timeout_s
    error: OSError = TimeoutError("timed out")
    for family, kind, proto, _, addr in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            sock.setblocking(False)
            code = sock.connect_ex(addr)
            poller = select.poll()
            poller.register(sock, select.POLLOUT)
            while code == errno.EINPROGRESS:
                if cancel.cancelled:
                    raise _Cancelled
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"timed out after {round(timeout_s * 1000)} ms")
                if poller.poll(max(1, round(min(left, POLL_S) * 1000))):
                    code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                raise OSError(code, os.strerror(code))
            return sock
        except BaseException as exc:
            sock.close()
            if not isinstance(exc, OSError) or isinstance(exc, TimeoutError):
                raise  # cancelled, or out of time: no other address gets a try
            error = exc
    raise error


T = TypeVar("T")


def max_audio_s(text: str, max_reply_s: float) -> float:
    """The longest reply audio ``text`` may need: ``SECONDS_PER_CHAR`` per character + ``SLACK_S``,
    never above ``max_reply_s`` ("Volume up." → 7 s, where one hostile 63 MB chunk was once 347 MB)."""
    return min(max_reply_s, SECONDS_PER_CHAR * len(text) + SLACK_S)


def _parse(from_event: Callable[[Event], T], event: Event, label: str) -> T:
    """wyoming's ``from_event`` with a missing/mistyped field → RemoteError."""
    try:
        return from_event(event)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RemoteError(f"{label}: malformed {event.type!r} event: {exc!r}") from None


def _frame_bytes(width: object, channels: object, label: str) -> int:
    """Bytes per sample frame of the format an ``audio-start`` declares (RemoteError if not PCM we read)."""
    if width not in (1, 2, 4) or not isinstance(channels, int) or not 1 <= channels <= 8:
        raise RemoteError(
            f"{label}: audio-start with an unsupported format: width={width!r} channels={channels!r}"
        )
    return int(width) * channels


def _address(uri: str, key: str) -> tuple[str, int]:
    addr = tcp_host_port(uri)
    if addr is None:
        raise ValueError(f"{key}: must be tcp://host:port (got {uri!r})")
    return addr


def to_int16_mono(audio: bytes, width: int, channels: int) -> Pcm:
    """Wyoming PCM (little-endian; 1 byte = unsigned, 2/4 bytes = signed; channels interleaved) → int16
    mono. Anything else → RemoteError."""
    if width not in (1, 2, 4) or channels < 1 or len(audio) % (width * channels):
        raise RemoteError(f"unsupported audio: width={width} channels={channels} bytes={len(audio)}")
    if width == 2:
        x = np.frombuffer(audio, "<i2").astype(np.int32)
    elif width == 1:
        x = (np.frombuffer(audio, np.uint8).astype(np.int32) - 128) << 8
    else:
        x = np.frombuffer(audio, "<i4").astype(np.int32) >> 16
    if channels > 1:
        x = np.round(x.reshape(-1, channels).mean(axis=1)).astype(np.int32)
    return np.ascontiguousarray(x, dtype=np.int16)


# ------------------------------------------------------------------------------------------------- ASR


class WyomingTranscriber:
    """``Transcriber`` on a Wyoming ASR server (``asr.uri``). Each call opens its own connection."""

    def __init__(self, cfg: AsrConfig) -> None:
        self.cfg = cfg
        self.host, self.port = _address(cfg.uri, "asr.uri")
        self.timeout_s = cfg.timeout_ms / 1000
        self.label = f"wyoming asr {cfg.uri}"

    def warm(self) -> None:
        """Start-up check: the server answers ``describe`` and offers speech-to-text (RemoteError if not).
        Servers load their model before listening, so there is nothing else to warm."""
        with self._connect(NEVER) as conn:
            conn.max_body = INFO_BODY_BYTES
            conn.send(Describe().event())
            info = _parse(Info.from_event, conn.expect(Info.is_type, "info"), self.label)
        models = [m.name for p in info.asr if p.installed for m in p.models if m.installed]
        if not models:
            raise RemoteError(f"{self.label}: the server offers no installed speech-to-text model")
        log.info("asr: %s serves %s", self.label, ", ".join(models))

    def transcribe(self, audio: Pcm, cancel: CancelToken) -> Transcription:
        if cancel.cancelled or len(audio) * 1000 < MIN_AUDIO_MS * SAMPLE_RATE or not has_voice(audio):
            return Transcription("")  # as the on-device engine: whisper only ever hears voiced audio
        t0 = time.perf_counter()
        pcm = np.ascontiguousarray(audio, dtype="<i2")
        try:
            with self._connect(cancel) as conn:
                conn.send(
                    Transcribe(language=self.cfg.language or None).event(),
                    AudioStart(SAMPLE_RATE, 2, 1).event(),
                )
                for i in range(0, len(pcm), SEND_CHUNK_SAMPLES):
                    piece = pcm[i : i + SEND_CHUNK_SAMPLES].tobytes()
                    conn.send(AudioChunk(SAMPLE_RATE, 2, 1, piece).event())
                conn.send(AudioStop().event())
                answer = _parse(
                    Transcript.from_event, conn.expect(Transcript.is_type, "transcript"), self.label
                )
        except _Cancelled:
            log.debug("asr: %s cancelled", self.label)
            return Transcription("", "cancelled")
        if not isinstance(answer.text, str):
            raise RemoteError(f"{self.label}: transcript text is {type(answer.text).__name__}, not a string")
        text = clean_transcript(answer.text)
        log.debug(
            "asr: %s → %r (raw %r) in %.0f ms",
            self.label,
            text,
            answer.text,
            (time.perf_counter() - t0) * 1e3,
        )
        return Transcription(text)

    def _connect(self, cancel: CancelToken) -> _Connection:
        if cancel.cancelled:
            raise _Cancelled
        return _Connection(self.host, self.port, self.timeout_s, cancel, self.label)


# ------------------------------------------------------------------------------------------------- TTS


class WyomingSynthesizer:
    """``Synthesizer`` on a Wyoming TTS server (``tts.uri``, voice ``tts.remote_voice`` or the server's
    default). ``sample_rate`` starts as the given rate (the local voice's) and becomes the server's rate
    from its first ``audio-start`` on (see the module docstring)."""

    def __init__(self, cfg: TtsConfig, sample_rate: int) -> None:
        self.cfg = cfg
        self.host, self.port = _address(cfg.uri, "tts.uri")
        self.timeout_s = cfg.timeout_ms / 1000
        self.label = f"wyoming tts {cfg.uri}"
        self.sample_rate: int = sample_rate
        self._expected_rate = sample_rate

    def warm(self) -> float:
        """Start-up: synthesise a short phrase (RemoteError if the server is down or refuses), which also
        loads the server's voice and teaches us its sample rate. Returns its duration in ms."""
        t0 = time.perf_counter()
        for _ in self.synthesize(WARM_TEXT, NEVER):
            pass
        ms = (time.perf_counter() - t0) * 1e3
        log.info("tts: %s warm-up synthesis took %.0f ms (%d Hz)", self.label, ms, self.sample_rate)
        return ms

    def synthesize(self, text: str, cancel: CancelToken) -> Generator[Pcm, None, None]:
        """Yield int16 mono chunks at ``sample_rate`` (the server's, set before the first chunk). Closing
        the generator or setting ``cancel`` closes the connection."""
        if cancel.cancelled or not text.strip():
            return
        voice = SynthesizeVoice(name=self.cfg.remote_voice) if self.cfg.remote_voice else None
        try:
            with _Connection(self.host, self.port, self.timeout_s, cancel, self.label) as conn:
                conn.send(Synthesize(text=text, voice=voice).event())
                first = conn.expect(
                    lambda t: AudioStart.is_type(t) or AudioStop.is_type(t) or AudioChunk.is_type(t),
                    "audio-start",
                )
                if AudioStop.is_type(first.type):
                    return  # nothing to say
                start = _parse(AudioStart.from_event, first, self.label)
                rate = self._start(start.rate)
                limit_s = max_audio_s(text, self.cfg.max_reply_s)
                samples_left = round(limit_s * rate)
                frame_bytes = _frame_bytes(start.width, start.channels, self.label)
                held: list[Pcm] = []
                held_samples = 0
                event: Event | None = first if AudioChunk.is_type(first.type) else None
                while True:
                    if event is None:
                        # a chunk's body may hold what is left of the allowed audio, and no more
                        conn.max_body = SMALL_BODY_BYTES + samples_left * frame_bytes
                        event = conn.expect(lambda t: AudioChunk.is_type(t) or AudioStop.is_type(t), "audio")
                    if AudioStop.is_type(event.type):
                        break
                    chunk = _parse(AudioChunk.from_event, event, self.label)
                    event = None
                    if chunk.rate != rate:
                        raise RemoteError(
                            f"{self.label}: audio-chunk at {chunk.rate} Hz after audio-start at {rate} Hz"
                        )
                    pcm = to_int16_mono(chunk.audio, chunk.width, chunk.channels)
                    samples_left -= pcm.size
                    if samples_left < 0:
                        raise RemoteError(
                            f"{self.label}: reply audio over {limit_s:.1f} s for {len(text)} characters"
                        )
                    if pcm.size:
                        held.append(pcm)
                        held_samples += pcm.size
                    # yield what has arrived once the stream pauses (≈ a sentence), or a long stretch
                    if held and (held_samples >= MAX_YIELD_S * rate or not conn.pending(BURST_GAP_S)):
                        yield np.concatenate(held) if len(held) > 1 else held[0]
                        held, held_samples = [], 0
                        if cancel.cancelled:
                            return
                if held and not cancel.cancelled:
                    yield np.concatenate(held) if len(held) > 1 else held[0]
        except _Cancelled:
            log.debug("tts: %s cancelled", self.label)

    def _start(self, rate: object) -> int:
        if not isinstance(rate, int) or not 4000 <= rate <= 192000:
            raise RemoteError(f"{self.label}: audio-start with a bad rate {rate!r}")
        if rate != self.sample_rate:
            log.info(
                "tts: %s speaks at %d Hz (local voice %d Hz): replies are resampled",
                self.label,
                rate,
                self._expected_rate,
            )
        self.sample_rate = rate
        return rate
