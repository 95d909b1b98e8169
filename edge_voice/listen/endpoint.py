"""The endpointer: a pure state machine over VAD decisions. No I/O, no clock — it counts samples, so a WAV
replayed at any speed gives exactly the events a live microphone would.

States: ``closed`` (idle: speech is ignored) → ``open`` (listening after wake / button / follow-up, waiting
for speech) → ``speech`` (an utterance is running) → back to ``closed`` when it stops or times out.

Positions are absolute sample offsets on the input clock. An event's ``at`` is the end of the block in
which it was decided (when a live detector could first know it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from edge_voice.core.config import EndpointConfig
from edge_voice.core.messages import SAMPLE_RATE


@dataclass(frozen=True, slots=True)
class EndpointSamples:
    """``EndpointConfig`` converted to samples."""

    pre_roll: int
    min_speech: int
    silence_end: int
    speculative_silence: int  # 0 = no pause events
    settle_silence: int  # a pause this long is ``settled`` (≥ speculative_silence)
    max_utterance: int
    no_speech_timeout: int
    wake_tail: int  # a voiced run carried over from the wake phrase must last this long
    early_quiet: int = 0  # quiet by energy this long inside speech: the decode may start (0 = off)
    question_silence: int = 0  # a pause this long may end a complete question (0 = off)

    @classmethod
    def from_config(cls, cfg: EndpointConfig, rate_hz: int = SAMPLE_RATE) -> EndpointSamples:
        def s(ms: int) -> int:
            return ms * rate_hz // 1000

        return cls(
            s(cfg.pre_roll_ms),
            s(cfg.min_speech_ms),
            s(cfg.silence_end_ms),
            s(cfg.speculative_silence_ms),
            s(max(cfg.speculative_silence_ms, cfg.commit_silence_ms)),
            s(cfg.max_utterance_ms),
            s(cfg.no_speech_timeout_ms),
            s(cfg.wake_tail_ms),
            s(cfg.early_decode_ms),
            s(cfg.question_commit_silence_ms) if cfg.question_commit_silence_ms < cfg.silence_end_ms else 0,
        )


@dataclass(frozen=True, slots=True)
class Started:
    speech_start: int  # first voiced sample of the run that reached ``min_speech``
    audio_start: int  # speech_start - pre_roll, bounded by the open's floor
    at: int


@dataclass(frozen=True, slots=True)
class Paused:
    """``speculative_silence`` of silence inside an utterance, then again (``settled``) at
    ``settle_silence``: at most twice per pause, once if one block crosses both."""

    audio_start: int
    speech_start: int
    last_voiced: int  # end of the last voiced block
    at: int
    settled: bool = True
    question: bool = False  # the pause reached ``question_silence`` (sent once more, settled)


@dataclass(frozen=True, slots=True)
class Resumed:
    """Voice came back after a ``Paused``."""

    at: int


@dataclass(frozen=True, slots=True)
class Stopped:
    reason: Literal["silence", "max_length"]
    audio_start: int
    speech_start: int
    last_voiced: int
    at: int  # utterance audio = [audio_start, at)


@dataclass(frozen=True, slots=True)
class TimedOut:
    """Opened, but no speech started within ``no_speech_timeout``."""

    at: int


EndpointEvent = Started | Paused | Resumed | Stopped | TimedOut
State = Literal["closed", "open", "speech"]


class Endpointer:
    """Feed one VAD decision per block with ``feed(voiced, n_samples)``, for every block of the stream
    (also while closed: that is how it keeps the position)."""

    def __init__(self, cfg: EndpointConfig | EndpointSamples, start_sample: int = 0) -> None:
        self.cfg = cfg if isinstance(cfg, EndpointSamples) else EndpointSamples.from_config(cfg)
        self.position = start_sample
        self._origin = start_sample  # nothing exists before the stream's first sample
        self.state: State = "closed"
        self._opened_at = 0
        self._floor = start_sample
        self._run_start: int | None = None  # candidate voiced run while open
        self._run_need = 0  # its length that makes it speech
        self._speech_start = 0
        self._audio_start = 0
        self._last_voiced = 0
        self._paused = False
        self._settled = False
        self._question = False  # the pause in progress reached question_silence (Paused sent)
        self._voice_from: int | None = None  # start of the voiced run in progress (in any state)
        self._onsets: list[tuple[int, int]] = []  # this utterance's (onset, last voiced before it)
        # voiced runs (start, end) heard while closed: between an endpoint and the commit that carries on
        # from it the user may say a whole continuation (a slow decode: session 15)
        self._closed_runs: list[tuple[int, int]] = []

    @property
    def is_open(self) -> bool:
        return self.state != "closed"

    @property
    def in_speech(self) -> bool:
        return self.state == "speech"

    @property
    def paused(self) -> bool:
        """In speech, and a ``Paused`` was sent for the silence in progress."""
        return self.state == "speech" and self._paused

    @property
    def speech_start(self) -> int:
        return self._speech_start

    @property
    def audio_start(self) -> int:
        return self._audio_start

    def open(
        self, floor_sample: int | None = None, voiced_since: int | None = None, timeout: int | None = None
    ) -> None:
        """Listen from the current position.

        ``floor_sample``: no speech or pre-roll before it (the wake sample, so the wake phrase stays out of
        the utterance); None lets the pre-roll reach before the open (push-to-talk: speech often starts
        with the press). ``voiced_since``: the VAD is already in speech at the open (the end of the wake
        phrase): that run counts as the utterance only if it goes on without a break for ``wake_tail``
        (the user went straight on speaking); a break ends it, and the next onset starts the utterance.
        Opening again restarts listening (an utterance in progress is dropped without an event).
        ``timeout``: samples without speech before TimedOut (default ``no_speech_timeout``; the
        follow-up window after a reply uses its own)."""
        self.state = "open"
        self._closed_runs = []
        self._timeout = self.cfg.no_speech_timeout if timeout is None else timeout
        self._opened_at = self.position
        self._floor = self._origin if floor_sample is None else max(self._origin, floor_sample)
        self._run_start = None if voiced_since is None else max(voiced_since, self._floor)
        self._run_need = self.cfg.min_speech
        if self._run_start is not None:
            self._run_need = max(self.cfg.min_speech, self.cfg.wake_tail)
        self._paused = self._settled = self._question = False

    def carry_on(self, after: int, timeout: int | None = None) -> list[EndpointEvent]:
        """The turn was committed on the utterance that went quiet at sample ``after`` (a position inside
        that pause): whatever the user says next is a new utterance — a continuation — whose audio starts
        after the committed words. If the voice already came back after ``after`` (the commit raced the
        resumption) that utterance starts at once, from its onset, with a ``Started``; else listen, as
        ``open`` does, for ``timeout`` samples."""
        if self.state == "speech":
            onset = next(((o, prev) for o, prev in self._onsets if o >= after), None)
            if onset is None:
                floor = max(after - self.cfg.pre_roll, self._last_voiced)
                self.open(floor, timeout=timeout)
                return []
            self._speech_start = onset[0]
            self._audio_start = max(onset[0] - self.cfg.pre_roll, onset[1])
            self._onsets = [o for o in self._onsets if o[0] > onset[0]]
            return [Started(self._speech_start, self._audio_start, self.position)]
        if self.state == "closed":
            runs = [r for r in self._closed_runs if r[0] >= after]
            floor = max(after - self.cfg.pre_roll, self._last_voiced)
            self.open(floor, timeout=timeout)
            first = next((i for i, r in enumerate(runs) if r[1] - r[0] >= self.cfg.min_speech), None)
            if first is not None:
                # a whole utterance came (and maybe went) before this request arrived: it starts now, from
                # its onset, and ends as any utterance does (its silence is already counted)
                self.state = "speech"
                self._speech_start = runs[first][0]
                self._audio_start = max(self._speech_start - self.cfg.pre_roll, floor)
                self._last_voiced = self.position if self._voice_from is not None else runs[-1][1]
                self._onsets = [
                    (r[0], prev[1]) for prev, r in zip(runs[first:], runs[first + 1 :], strict=False)
                ]
                return [Started(self._speech_start, self._audio_start, self.position)]
            if self._voice_from is not None and self._voice_from >= after:
                self._run_start = self._voice_from  # the voice came back before this request arrived
        return []

    def close(self) -> None:
        """Stop listening without an event (turn ended, cancel)."""
        self.state = "closed"
        self._run_start = None
        self._paused = self._settled = self._question = False

    def feed(self, voiced: bool, n_samples: int) -> list[EndpointEvent]:
        if n_samples <= 0:
            raise ValueError(f"endpoint: block of {n_samples} samples")
        start = self.position
        self.position = end = start + n_samples
        was_voiced = self._voice_from is not None
        run_from = self._voice_from
        self._voice_from = (self._voice_from if was_voiced else start) if voiced else None
        if self.state == "speech" and voiced and not was_voiced:
            self._onsets = [*self._onsets[-31:], (start, self._last_voiced)]
        if self.state == "closed" and was_voiced and not voiced and run_from is not None:
            self._closed_runs = [*self._closed_runs[-7:], (run_from, start)]
        if self.state == "open":
            return self._feed_open(voiced, start, end)
        if self.state == "speech":
            return self._feed_speech(voiced, end)
        return []

    def _feed_open(self, voiced: bool, start: int, end: int) -> list[EndpointEvent]:
        c = self.cfg
        if voiced:
            if self._run_start is None:
                self._run_start = max(start, self._floor)
                self._run_need = c.min_speech
            if end - self._run_start >= self._run_need:
                self.state = "speech"
                self._speech_start = self._run_start
                self._audio_start = max(self._speech_start - c.pre_roll, self._floor)
                self._last_voiced = end
                self._paused = self._settled = self._question = False
                self._run_start = None
                self._onsets = []
                events: list[EndpointEvent] = [Started(self._speech_start, self._audio_start, end)]
                events.extend(self._check_max_length(end))
                return events
            return []
        self._run_start = None  # a blip shorter than min_speech: ignored
        # A run in progress defers the timeout: it either becomes speech or fails within min_speech.
        if end - self._opened_at >= self._timeout:
            self.close()
            return [TimedOut(end)]
        return []

    def _feed_speech(self, voiced: bool, end: int) -> list[EndpointEvent]:
        c = self.cfg
        events: list[EndpointEvent] = []
        if voiced:
            self._last_voiced = end
            if self._paused:
                self._paused = self._settled = self._question = False
                events.append(Resumed(end))
        else:
            silence = end - self._last_voiced
            if c.speculative_silence and silence >= c.speculative_silence and not self._settled:
                settled = silence >= c.settle_silence
                if not self._paused or settled:
                    events.append(
                        Paused(self._audio_start, self._speech_start, self._last_voiced, end, settled)
                    )
                self._paused, self._settled = True, settled
            if c.question_silence and self._settled and not self._question and silence >= c.question_silence:
                self._question = True
                events.append(
                    Paused(self._audio_start, self._speech_start, self._last_voiced, end, True, True)
                )
            if silence >= c.silence_end:
                self.close()
                events.append(
                    Stopped("silence", self._audio_start, self._speech_start, self._last_voiced, end)
                )
                return events
        events.extend(self._check_max_length(end))
        return events

    def _check_max_length(self, end: int) -> list[EndpointEvent]:
        if end - self._speech_start < self.cfg.max_utterance:
            return []
        self.close()
        return [Stopped("max_length", self._audio_start, self._speech_start, self._last_voiced, end)]
