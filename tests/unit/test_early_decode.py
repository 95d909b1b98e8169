"""The early decode (``endpoint.early_decode_ms``): the listener sends an unsettled ``SpeechPaused`` once the
voice's energy is quiet, before a VAD that trails the acoustic end lets go; the VAD's own pause and stop
then report the same end, or a ``SpeechResumed`` drops it. Sample counts only, no clock, fake detectors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from edge_voice.core.config import Config
from edge_voice.core.messages import AudioFrame, ListenEvent, SpeechPaused, SpeechResumed, SpeechStopped
from edge_voice.listen.listener import Listener

MS = 16  # samples per ms


class NoWake:
    words = ("hey_jarvis",)

    def process(self, samples: np.ndarray) -> dict[str, float]:
        return {}

    def reset(self) -> None:
        pass


class TrailingVad:
    """Voiced while any of the last three frames was loud: lets go ~2 frames (64 ms) after the voice,
    as Silero does."""

    frame_samples = 512

    def __init__(self) -> None:
        self.recent = [False, False, False]

    def process(self, frame: np.ndarray) -> float:
        rms = float(np.sqrt(np.mean(frame.astype(np.float64) ** 2)))
        self.recent = [*self.recent[1:], rms > 2000]
        return 1.0 if any(self.recent) else 0.0

    def reset(self) -> None:
        self.recent = [False, False, False]


def voice(ms: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(-8000, 8000, ms * MS).astype(np.int16)


def quiet(ms: int) -> np.ndarray:
    return np.zeros(ms * MS, np.int16)


def listen(pcm: np.ndarray, early_ms: int = 32) -> list[ListenEvent]:
    cfg = Config()
    cfg = replace(cfg, endpoint=replace(cfg.endpoint, early_decode_ms=early_ms))
    listener = Listener(cfg, NoWake(), TrailingVad())
    listener.open()  # push-to-talk: no wake word
    events: list[ListenEvent] = []
    block = 512
    for i in range(0, len(pcm), block):
        events += listener.feed(AudioFrame(pcm[i : i + block], i, 0))
    return events


def of(events: list[ListenEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def test_the_decode_starts_at_the_quiet_and_the_vad_keeps_its_end() -> None:
    start, end = 300 * MS, 1300 * MS
    events = listen(np.concatenate([quiet(300), voice(1000), quiet(800)]))
    paused = of(events, SpeechPaused)
    early, vad = paused[0], paused[1:]
    assert not early.settled and end <= early.last_voiced_sample < end + 10 * MS
    assert early.at_sample - end <= 64 * MS  # 32 ms quiet, seen at the next 32 ms frame end
    assert early.start_sample <= start and early.at_sample == early.start_sample + len(early.audio)
    # the VAD's pauses (unsettled, then settled) and its stop come later and say the same end
    assert [(p.settled, p.question) for p in vad] == [(False, False), (True, False), (True, True)]
    assert all(p.at_sample > early.at_sample for p in vad)
    assert {p.last_voiced_sample for p in vad} == {early.last_voiced_sample}
    (stop,) = of(events, SpeechStopped)
    assert stop.last_voiced_sample == early.last_voiced_sample
    assert not of(events, SpeechResumed)


def test_a_voice_that_comes_back_before_the_vad_let_go_drops_the_early_decode() -> None:
    # 80 ms without voice inside the utterance: the trailing VAD never pauses, the energy does
    events = listen(np.concatenate([quiet(300), voice(1000), quiet(80), voice(600, 1), quiet(800)]))
    seq = [e for e in events if isinstance(e, SpeechPaused | SpeechResumed)]
    assert [type(e).__name__ for e in seq[:3]] == ["SpeechPaused", "SpeechResumed", "SpeechPaused"]
    first, resumed = seq[0], seq[1]
    assert isinstance(first, SpeechPaused) and isinstance(resumed, SpeechResumed)
    assert 1300 * MS <= first.last_voiced_sample < 1310 * MS
    assert resumed.at_sample <= 1380 * MS + 512  # at the first frame end with the voice back
    final_end = 1980 * MS
    (stop,) = of(events, SpeechStopped)
    assert final_end <= stop.last_voiced_sample < final_end + 10 * MS
    assert {p.last_voiced_sample for p in of(events, SpeechPaused)[1:]} == {stop.last_voiced_sample}


def test_off_or_in_steady_noise_only_the_vad_pauses() -> None:
    pcm = np.concatenate([quiet(300), voice(1000), quiet(800)])
    off = listen(pcm, early_ms=0)
    assert [p.settled for p in of(off, SpeechPaused)] == [False, True, True]
    assert of(off, SpeechPaused)[0].at_sample >= 1300 * MS + 64 * MS + 64 * MS  # VAD trail + 64 ms
    # a noise floor 20 dB under the voice: never 35 dB quiet, so the VAD decides as before
    noise = np.random.default_rng(2).integers(-800, 800, len(pcm)).astype(np.int16)
    noisy = listen(np.clip(pcm.astype(np.int32) + noise, -32768, 32767).astype(np.int16))
    assert [p.settled for p in of(noisy, SpeechPaused)] == [False, True, True]
    assert of(noisy, SpeechPaused)[0].at_sample == of(off, SpeechPaused)[0].at_sample
