"""The listening stage: wake word + VAD + endpointer over one stream of ``AudioFrame``s.

Everything is decided on sample positions (the input clock), never wall time: the wake detector is fed
in pieces cut at its 80 ms hop boundaries and the VAD in 512-sample frames on a fixed grid, so frames of
any size — and a WAV replayed at any speed — give exactly the same events. Wall-clock marks
(``captured_ns``) are only attached to events, interpolated from the frames' capture stamps.

The wake phrase is kept out of the utterance: after a detection at sample W neither speech nor pre-roll
may start before W, and if the VAD is still in the wake phrase at W, the utterance starts at the next
voiced onset — unless the voice runs on unbroken for ``endpoint.wake_tail_ms`` (the user went straight on
speaking), in which case the speech started at W.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Literal

import numpy as np

from edge_voice.core.config import Config, ConfigError
from edge_voice.core.messages import (
    SAMPLE_RATE,
    AudioFrame,
    ListenEvent,
    NoSpeech,
    Pcm,
    ShortUtterance,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    WakeDetected,
)
from edge_voice.engines.base import VoiceActivityDetector, WakeDetector
from edge_voice.listen.double_talk import WIN, NearLevels, utterance_is_echo, window_db
from edge_voice.listen.endpoint import (
    Endpointer,
    EndpointEvent,
    EndpointSamples,
    Paused,
    Resumed,
    Started,
    Stopped,
    TimedOut,
)
from edge_voice.listen.stop import STOP_PAD, ShortUtterances
from edge_voice.listen.verifier import FeatureDetector, Verifier, VerifierError, verifiers_for
from edge_voice.listen.wake import HOP_SAMPLES, WakeGate

log = logging.getLogger(__name__)

MAX_ZERO_FILL = 2 * SAMPLE_RATE  # a gap in the input up to this long is filled with silence
MAX_CHUNK = SAMPLE_RATE  # long frames are processed in pieces so the ring never overruns
_NS_PER_SAMPLE = 1_000_000_000 / SAMPLE_RATE


class _AudioRing:
    """The last ``capacity`` samples of the stream, addressed by absolute sample position."""

    def __init__(self, capacity: int) -> None:
        self.buf: Pcm = np.zeros(capacity, np.int16)
        self.capacity = capacity
        self.end = 0  # absolute position after the newest sample
        self.first = 0  # the stream (re)started here: nothing older is valid

    def reset(self, position: int) -> None:
        self.end = self.first = position

    @property
    def oldest(self) -> int:
        return max(self.first, self.end - self.capacity)

    def write(self, samples: Pcm) -> None:
        n = len(samples)
        if n > self.capacity:
            samples, n = samples[-self.capacity :], self.capacity
            self.end += len(samples) - n
        i = self.end % self.capacity
        first = min(n, self.capacity - i)
        self.buf[i : i + first] = samples[:first]
        self.buf[: n - first] = samples[first:]
        self.end += n

    def read(self, start: int, end: int) -> Pcm:
        start = max(start, self.oldest)
        n = max(0, end - start)
        i = start % self.capacity
        first = min(n, self.capacity - i)
        return np.concatenate([self.buf[i : i + first], self.buf[: n - first]])


_END_WIN = 160  # 10 ms windows for the acoustic end of speech
_END_SEARCH = 3 * 512  # how far back from Silero's last voiced frame the end may move
_END_DROP_DB = 35.0
# a hop counts as "during playback" when sound was played up to this long before its end: the echo
# reaches the microphone up to 150 ms later and rings for the room's tail
PLAYBACK_HOLD = SAMPLE_RATE // 2
_LOUD_SPAN = 4 * SAMPLE_RATE  # the utterance's loud level, for the early decode, from its last 4 s


def _load_verifiers(cfg: Config, wake: WakeDetector) -> Mapping[str, Verifier]:
    """The configured per-user verifiers (``wake.verifier``) for the enabled words: checked at start-up."""
    if not cfg.wake.verifier:
        return {}
    try:
        got = verifiers_for(cfg.wake.verifier, wake.words)
    except VerifierError as exc:
        raise ConfigError("wake.verifier", str(exc)) from None
    if not got:
        raise ConfigError("wake.verifier", f"no verifier for any of {', '.join(wake.words)} in the file")
    if not isinstance(wake, FeatureDetector):
        raise ConfigError("wake.verifier", "the wake detector does not expose its features")
    dims = {w: v.dim for w, v in got.items() if v.dim != len(wake.features(w).reshape(-1))}
    if dims:
        raise ConfigError("wake.verifier", f"made for another model ({dims}): run `wake enroll` again")
    log.info("wake: verifier for %s (grey zone from %.2f)", ", ".join(got), cfg.wake.verifier_floor)
    return got


class Listener:
    """Wake + VAD + endpointer. ``feed`` is called from the listen thread only; ``open``/``close`` may be
    called from any thread and take effect at the start of the next frame fed."""

    def __init__(self, cfg: Config, wake: WakeDetector, vad: VoiceActivityDetector) -> None:
        self._wake = wake
        self._vad = vad
        # One threshold, no hysteresis: silero already trails speech by 1–2 frames, and a lower "off"
        # threshold moved t0 (the last voiced sample) another frame past the real end of speech.
        self._vad_threshold = cfg.vad.threshold
        self._ep = EndpointSamples.from_config(cfg.endpoint)
        self._patience = cfg.wake.patience
        # while the device's own sound plays (``follow_playback``), a wake word needs only this many hops
        # over the threshold: the canceller's leftover makes the user's scores cross in bursts (note 190)
        self._playback_patience = cfg.wake.playback_patience or cfg.wake.patience
        self._playing: Callable[[int, int], bool] | None = None
        self._near: NearLevels | None = None  # the raw microphone's levels (in front of the canceller)
        self._origin = 0  # where the detectors' grids (re)started
        self._verifiers = _load_verifiers(cfg, wake)
        self._verify = self._check_grey if self._verifiers else None
        self._verifier_threshold = cfg.wake.verifier_threshold
        self._gate = WakeGate(
            cfg.wake.threshold_for,
            cfg.wake.patience,
            cfg.wake.refractory_ms * SAMPLE_RATE // 1000,
            {w: cfg.wake.verifier_floor for w in self._verifiers},
        )
        self._warmup = cfg.wake.warmup_ms * SAMPLE_RATE // 1000
        self._frame = vad.frame_samples
        ep = self._ep
        self._ring = _AudioRing(ep.pre_roll + ep.max_utterance + ep.silence_end + 2 * MAX_CHUNK)
        self._endpointer = Endpointer(ep)
        self._vad_buf: Pcm = np.zeros(self._frame, np.int16)
        # open(timeout samples), close, carry on after a sample (timeout samples), arm/disarm the stop word
        self._pending: list[int | Literal["close", "arm", "disarm"] | tuple[int, int | None] | None] = []
        self._short: ShortUtterances | None = None  # armed: short utterances go out (the stop word)
        self._lock = threading.Lock()
        self._anchors: deque[tuple[int, int]] = deque(maxlen=256)  # (end_sample, captured_ns)
        self._position = 0  # next expected input sample
        self._started = False  # the first frame sets the origin of every grid
        self._resync(0)

    # ------------------------------------------------------------------------------------- control

    @property
    def is_open(self) -> bool:
        return self._endpointer.is_open

    @property
    def position(self) -> int:
        return self._position

    def open(self, timeout_ms: int | None = None) -> None:
        """Listen for an utterance without the wake word (button, MQTT ``listen``, follow-up window).
        The pre-roll may reach before the open: speech often starts with the press. ``timeout_ms``:
        give up (NoSpeech) after this long without speech (default ``endpoint.no_speech_timeout_ms``)."""
        with self._lock:
            self._pending.append(None if timeout_ms is None else timeout_ms * SAMPLE_RATE // 1000)

    def close(self) -> None:
        """Stop listening (turn ended or cancelled); speech is ignored until the next wake / open."""
        with self._lock:
            self._pending.append("close")

    def carry_on(self, after_sample: int, timeout_ms: int | None = None) -> None:
        """The turn was committed in the pause at ``after_sample``: listen on for what the user says
        next, as a new utterance (see ``Endpointer.carry_on``)."""
        timeout = None if timeout_ms is None else timeout_ms * SAMPLE_RATE // 1000
        with self._lock:
            self._pending.append((after_sample, timeout))

    def follow_playback(self, playing: Callable[[int, int], bool] | None) -> None:
        """``playing(start, end)``: whether the device played sound in that input-clock span (the echo
        path's ``PlaybackReference.playing``). Set once, before the first frame; None: never playing."""
        self._playing = playing

    def follow_near(self, near: NearLevels | None) -> None:
        """The raw microphone's levels, in front of the canceller: with ``follow_playback`` an utterance
        heard while the device plays is checked against them (``SpeechPaused/Stopped.echo``). Set once,
        before the first frame."""
        self._near = near

    @property
    def follows_playback(self) -> bool:
        """Whether the wake gate knows when the device plays (``wake.playback_patience`` can apply)."""
        return self._playing is not None

    def arm_stop(self, on: bool) -> None:
        """While armed (the device speaks or a timer rings), every short voiced run bounded by silence
        goes out as a ``ShortUtterance`` for the stop-word check; wake word and endpointer are untouched."""
        with self._lock:
            self._pending.append("arm" if on else "disarm")

    def _apply_pending(self) -> list[ListenEvent]:
        with self._lock:
            pending, self._pending = self._pending, []
        events: list[ListenEvent] = []
        for op in pending:
            if op == "close":
                self._endpointer.close()
            elif op == "arm":
                if self._short is None:
                    self._short = ShortUtterances()
                    # a voice already running at the arm is not "bounded by silence": it yields nothing
                    self._short.reset(self._position, voiced=self._voiced)
            elif op == "disarm":
                self._short = None
            elif isinstance(op, tuple):
                events.extend(self._convert(self._endpointer.carry_on(op[0], op[1])))
            else:
                self._endpointer.open(None, timeout=op)
        return events

    # ------------------------------------------------------------------------------------ the stream

    def _resync(self, position: int) -> None:
        """(Re)start every detector's grid at ``position`` (first frame, or after a long input gap)."""
        self._wake.reset()
        self._vad.reset()
        self._vad_fill = 0
        self._vad_next = position + self._frame  # end of the VAD frame being filled
        self._wake_next = position + HOP_SAMPLES  # end of the wake hop being filled
        self._wake_ready_at = position + self._warmup
        self._gate.reset()
        self._voiced = False
        self._voiced_since = position  # where the current voiced run began (valid while _voiced)
        self._origin = position
        self._early_end: int | None = None  # the acoustic end an early SpeechPaused was sent for
        self._reported: tuple[int, int] | None = None  # (VAD's last voiced, end sent) of this pause
        self._early_floor = 0.0  # dB: quieter than this is the quiet after speech (early decode)
        if self._short is not None:
            self._short.reset(position)
        self._ring.reset(position)
        was_open = self._endpointer.is_open
        self._endpointer = Endpointer(self._ep, position)
        if was_open:
            self._endpointer.open(position)
        self._position = position

    def feed(self, frame: AudioFrame) -> list[ListenEvent]:
        """Process one frame (any length). Returns the events it completed, in sample order."""
        events = self._apply_pending()
        if not self._started:
            self._started = True
            self._resync(frame.start_sample)
        samples, start = frame.samples, frame.start_sample
        if start < self._position:  # overlap (should not happen): drop what was already processed
            log.warning("listen: frame at %d overlaps the stream at %d; trimmed", start, self._position)
            samples, start = samples[self._position - start :], self._position
        elif start > self._position:
            gap = start - self._position
            log.warning("listen: %d samples missing before %d (dropped frames)", gap, start)
            gap_end_ns = frame.captured_ns - round(len(frame.samples) * _NS_PER_SAMPLE)
            if gap <= MAX_ZERO_FILL:
                self._anchors.append((start, gap_end_ns))
                self._process(np.zeros(gap, np.int16), events)
            else:  # too long to replay: count it as silence for the endpointer, restart the detectors
                self._anchors.append((start, gap_end_ns))
                events.extend(self._skip(start))
        if len(samples):
            self._anchors.append((start + len(samples), frame.captured_ns))
            self._process(samples, events)
        return events

    def _skip(self, start: int) -> list[ListenEvent]:
        out: list[ListenEvent] = []
        ep = self._endpointer
        pos = self._position
        while pos < start:
            n = min(self._frame, start - pos)
            out.extend(self._convert(ep.feed(False, n)))
            pos += n
        self._resync(start)
        return out

    def _process(self, samples: Pcm, events: list[ListenEvent]) -> None:
        for c in range(0, len(samples), MAX_CHUNK):
            chunk = samples[c : c + MAX_CHUNK]
            self._ring.write(chunk)
            base = pos = self._position
            end = base + len(chunk)
            while pos < end:
                cut = min(end, self._vad_next, self._wake_next)
                seg = chunk[pos - base : cut - base]
                self._vad_buf[self._vad_fill : self._vad_fill + len(seg)] = seg
                self._vad_fill += len(seg)
                scores = self._wake.process(seg)
                if cut == self._vad_next:  # VAD before wake at a shared boundary (fixed order)
                    self._vad_fill = 0
                    self._vad_next += self._frame
                    events.extend(self._on_vad(self._vad.process(self._vad_buf), cut))
                if cut == self._wake_next:
                    self._wake_next += HOP_SAMPLES
                    events.extend(self._on_wake(scores, cut))
                pos = cut
            self._position = end

    # ----------------------------------------------------------------------------------- decisions

    def _on_vad(self, prob: float, end: int) -> list[ListenEvent]:
        voiced = prob >= self._vad_threshold
        if voiced and not self._voiced:
            self._voiced_since = end - self._frame
        self._voiced = voiced
        events = self._convert(self._endpointer.feed(self._voiced, self._frame))
        if self._short is not None:
            w = self._short.feed(voiced, end, self._frame)
            if w is not None:
                a = max(w.start - STOP_PAD, self._ring.oldest)
                audio = self._ring.read(a, min(w.end + STOP_PAD, end))
                events.append(ShortUtterance(audio, w.start, w.end, self._ns(w.end)))
        if self._ep.early_quiet:
            events.extend(self._early(end))
        return events

    def _early(self, end: int) -> list[ListenEvent]:
        """The early decode: Silero lets go of speech ~70 ms after its acoustic end, and the speculative
        decode waits ``speculative_silence`` more. When the energy of the last ``early_quiet`` samples is
        already far under the utterance's loud part, a ``SpeechPaused`` (unsettled) goes out now for that
        acoustic end. If the voice comes back before the VAD paused, a ``SpeechResumed`` drops it; if the
        VAD pauses with nothing loud since, its pause reports the same end, so the attempt goes on."""
        ep = self._endpointer
        if not ep.in_speech:
            self._early_end = None
            return []
        if ep.paused and self._early_end is None:
            return []  # the VAD's own pause started the decode
        if self._early_end is not None:
            if self._quiet_since(self._early_end, end):
                return []
            self._early_end = None  # the voice came back
            return [] if ep.paused else [SpeechResumed(end, self._ns(end))]
        quiet_from = self._quiet_from(ep.speech_start, end)
        if quiet_from is None or end - quiet_from < self._ep.early_quiet:
            return []
        self._early_end = quiet_from
        a = max(ep.audio_start, self._ring.oldest)
        return [SpeechPaused(self._ring.read(a, end), a, quiet_from, end, self._ns(end), False)]

    def _levels(self, start: int, end: int) -> np.ndarray:
        """dB of each 10 ms window of [start, end), the last one ending at ``end``."""
        n = (end - start) // _END_WIN
        return window_db(self._ring.read(end - n * _END_WIN, end).reshape(n, _END_WIN))

    def _quiet_from(self, speech_start: int, end: int) -> int | None:
        """Where the quiet that ``end`` is in began (the end of the last loud 10 ms window; loud as in
        ``_acoustic_end``), or None if the last window is loud or the speech is too short to judge. The
        loud level is kept: later windows are judged against the same one (``_quiet_since``)."""
        start = max(speech_start, self._ring.oldest, end - _LOUD_SPAN)
        if (end - start) // _END_WIN < 16:
            return None
        level = self._levels(start, end)
        self._early_floor = float(np.percentile(level, 90)) - _END_DROP_DB
        loud = np.nonzero(level > self._early_floor)[0]
        if len(loud) == 0 or loud[-1] == len(level) - 1:
            return None
        return end - (len(level) - 1 - int(loud[-1])) * _END_WIN

    def _quiet_since(self, since: int, end: int) -> bool:
        """Nothing louder than the early decode's floor from ``since`` to ``end``."""
        if end - since < _END_WIN:
            return True
        return bool(np.all(self._levels(since, end) <= self._early_floor))

    def _on_wake(self, scores: dict[str, float], at: int) -> list[ListenEvent]:
        if at < self._wake_ready_at or not scores:
            return []
        patience = self._patience
        if self._playing is not None and self._playing(at - PLAYBACK_HOLD, at):
            patience = self._playback_patience
        fired = self._gate.update(scores, at, self._verify, patience)
        if not fired:
            return []
        score, word = max(fired)
        # With patience the decision comes (patience - 1) hops after the phrase was recognised; the wake
        # sample is where it was, so a command said straight after is not clipped by the late decision.
        wake = max(self._origin, at - (patience - 1) * HOP_SAMPLES)
        log.info("wake: %s %.3f at sample %d (decided at %d)", word, score, wake, at)
        since = max(wake, self._voiced_since) if self._voiced else None
        self._endpointer.open(wake, since)
        return [WakeDetected(word, score, wake, self._ns(wake))]

    def _check_grey(self, word: str) -> bool:
        """A grey-zone hop of ``word``: does the enrolled user's verifier accept the head's window?"""
        det = self._wake
        assert isinstance(det, FeatureDetector)  # checked when the verifiers were loaded
        p = self._verifiers[word].prob(det.features(word))
        log.debug("wake: %s grey-zone check %.3f", word, p)
        return p >= self._verifier_threshold

    def _convert(self, evs: list[EndpointEvent]) -> list[ListenEvent]:
        out: list[ListenEvent] = []
        for e in evs:
            match e:
                case Started():
                    self._early_end = self._reported = None
                    out.append(SpeechStarted(e.speech_start, self._ns(e.speech_start)))
                case Paused():
                    a = max(e.audio_start, self._ring.oldest)
                    end = self._end_of(e.speech_start, e.last_voiced)
                    audio = self._ring.read(a, e.at)
                    echo = self._own_echo(e.speech_start, e.last_voiced)
                    out.append(SpeechPaused(audio, a, end, e.at, self._ns(e.at), e.settled, e.question, echo))
                case Resumed():
                    self._early_end = self._reported = None
                    out.append(SpeechResumed(e.at, self._ns(e.at)))
                case Stopped():
                    a = max(e.audio_start, self._ring.oldest)
                    end = self._end_of(e.speech_start, e.last_voiced)
                    self._early_end = self._reported = None
                    out.append(
                        SpeechStopped(
                            self._ring.read(a, e.at),
                            a,
                            e.speech_start,
                            end,
                            e.at,
                            e.reason,
                            self._ns(e.at),
                            self._ns(end),
                            self._own_echo(e.speech_start, e.last_voiced),
                        )
                    )
                case TimedOut():
                    out.append(NoSpeech(e.at))
        return out

    def _own_echo(self, speech_start: int, last_voiced: int) -> bool:
        """The utterance was heard while the device played and is only what the canceller left of it
        (``double_talk``). False when the listener does not know the playback or the raw levels."""
        if self._playing is None or self._near is None:
            return False
        echo, user = utterance_is_echo(
            self._near, self._window_db, self._playing, PLAYBACK_HOLD, speech_start, last_voiced
        )
        log.debug("listen: %d-%d: %d user windows; own echo %s", speech_start, last_voiced, user, echo)
        return echo

    def _window_db(self, first: int, last: int) -> np.ndarray:
        """dB of the ring's 10 ms windows ``first .. last - 1`` (absolute window indices); -200 where the
        ring no longer holds them."""
        out = np.full(last - first, -200.0)
        lo = max(first, -(-self._ring.oldest // WIN))
        hi = min(last, self._ring.end // WIN)
        if hi > lo:
            x = self._ring.read(lo * WIN, hi * WIN).reshape(hi - lo, WIN)
            out[lo - first : hi - first] = window_db(x)
        return out

    def _end_of(self, speech_start: int, last_voiced: int) -> int:
        """t0 of the pause the VAD reports: the early decode's acoustic end if nothing was loud since
        (so the orchestrator keeps that attempt), else ``_acoustic_end``; the same for every event of
        one pause."""
        if self._reported is not None and self._reported[0] == last_voiced:
            return self._reported[1]
        end = self._early_end
        if end is None or end > last_voiced:
            end = self._acoustic_end(speech_start, last_voiced)
        self._reported = (last_voiced, end)
        return end

    def _acoustic_end(self, speech_start: int, last_voiced: int) -> int:
        """t0, the end of speech. Silero's decision trails the acoustic end by 2–3 frames (50–85 ms
        measured), which would understate every latency measured from t0. So: the end of the last 10 ms
        window, within the final ``_END_SEARCH`` samples, louder than the utterance's loud windows minus
        ``_END_DROP_DB``. It only ever moves t0 earlier, and does nothing in steady noise."""
        start = max(speech_start, self._ring.oldest)
        n = (last_voiced - start) // _END_WIN
        k = min(n, _END_SEARCH // _END_WIN)
        if n < 8:
            return last_voiced
        level = self._levels(start, last_voiced)
        loud = np.nonzero(level[-k:] > np.percentile(level, 90) - _END_DROP_DB)[0]
        if len(loud) == 0:
            return last_voiced - k * _END_WIN
        return last_voiced - (k - 1 - int(loud[-1])) * _END_WIN

    def _ns(self, sample: int) -> int:
        """Capture time of ``sample``: a frame's ``captured_ns`` is when its last sample arrived (that is
        how the capture thread stamps it); inside a frame, interpolate at 16 kHz."""
        if not self._anchors:
            return 0
        end, ns = self._anchors[-1]
        for a_end, a_ns in self._anchors:
            if a_end >= sample:
                end, ns = a_end, a_ns
                break
        return ns - round((end - sample) * _NS_PER_SAMPLE)
