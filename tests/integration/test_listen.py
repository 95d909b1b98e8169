"""The listening stage with the real models (openWakeWord on LiteRT, silero on onnxruntime) on speech
generated at test time (Piper, espeak-ng). Offsets are checked against where the clip's parts really are
(``clips.compose`` part offsets + ``clips.voiced_bounds``), ± 100 ms."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from edge_voice.audio import clips
from edge_voice.audio.wavio import read_wav_16k, write_wav
from edge_voice.core.config import Config, WakeConfig
from edge_voice.core.messages import (
    AudioFrame,
    ListenEvent,
    NoSpeech,
    Pcm,
    SpeechPaused,
    SpeechResumed,
    SpeechStarted,
    SpeechStopped,
    WakeDetected,
)
from edge_voice.listen.listener import Listener
from edge_voice.listen.vad import SileroVad
from edge_voice.listen.wake import OpenWakeWordDetector

pytestmark = pytest.mark.engines

TOL = 1600  # 100 ms at 16 kHz
NS_PER_SAMPLE = 62_500  # the fake capture clock below: sample n was captured at n * 62.5 µs
COMMAND = "turn on the kitchen light"


# ---------------------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def cfg() -> Config:
    return Config()


@pytest.fixture(scope="module")
def wake(cfg: Config) -> OpenWakeWordDetector:
    return OpenWakeWordDetector(cfg.wake)


@pytest.fixture(scope="module")
def vad(cfg: Config) -> SileroVad:
    return SileroVad(cfg.vad)


def frames(pcm: Pcm, sizes: Sequence[int]) -> Iterator[AudioFrame]:
    """Cut ``pcm`` into frames cycling through ``sizes``; captured_ns = capture time of the last sample."""
    pos, k = 0, 0
    while pos < len(pcm):
        n = sizes[k % len(sizes)]
        block = pcm[pos : pos + n]
        yield AudioFrame(block, pos, (pos + len(block)) * NS_PER_SAMPLE)
        pos += len(block)
        k += 1


def listen(
    cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad, pcm: Pcm, sizes: Sequence[int] = (1280,)
) -> list[ListenEvent]:
    listener = Listener(cfg, wake, vad)
    out: list[ListenEvent] = []
    for frame in frames(pcm, sizes):
        out.extend(listener.feed(frame))
    return out


def kinds(events: Sequence[ListenEvent]) -> list[str]:
    """Event names without the speculative hints (pauses and resumptions inside the speech)."""
    return [type(e).__name__ for e in events if not isinstance(e, SpeechPaused | SpeechResumed)]


T = TypeVar("T")


def of_type(events: Sequence[ListenEvent], cls: type[T]) -> list[T]:
    return [e for e in events if isinstance(e, cls)]


VOICED_DBFS = -50.0  # 10 dB above the -60 dBFS floor of compose(): quiet word endings are speech too


def bounds(clip: clips.Clip, label: str) -> tuple[int, int]:
    """Absolute first/last voiced sample of one part of a composed clip."""
    part = clip.part(label)
    a, b = clips.voiced_bounds(clip.pcm[part.start_sample : part.end_sample], VOICED_DBFS)
    return part.start_sample + a, part.start_sample + b


def speech(kind: str, text: str) -> Pcm:
    if kind == "piper":
        return clips.piper_speech(text)
    return clips.espeak_speech(text, voice=kind)


def wake_command_clip(
    kind: str, wake_text: str = "Hey Jarvis", command: str = COMMAND, pairs: int = 1
) -> clips.Clip:
    segments: list[tuple[str, Pcm]] = [("lead", clips.silence(1600))]
    for i in range(pairs):
        segments += [
            (f"wake{i}", speech(kind, wake_text)),
            (f"gap{i}", clips.silence(300)),
            (f"cmd{i}", speech(kind, command)),
            (f"tail{i}", clips.silence(2500)),
        ]
    return clips.compose(segments)


def assert_turn(events: Sequence[ListenEvent], clip: clips.Clip, i: int = 0) -> None:
    """Wake i, then speech start/stop around command i (± 100 ms), wake phrase kept out."""
    w = of_type(events, WakeDetected)[i]
    start = of_type(events, SpeechStarted)[i]
    stop = of_type(events, SpeechStopped)[i]
    wake_lo, _ = bounds(clip, f"wake{i}")
    cmd_lo, cmd_hi = bounds(clip, f"cmd{i}")
    assert wake_lo < w.at_sample <= cmd_lo + TOL, (w, wake_lo, cmd_lo)
    assert abs(start.at_sample - cmd_lo) <= TOL, (start.at_sample, cmd_lo)
    assert abs(stop.last_voiced_sample - cmd_hi) <= TOL, (stop.last_voiced_sample, cmd_hi)
    assert stop.reason == "silence"
    assert stop.speech_start_sample == start.at_sample
    assert w.at_sample <= stop.start_sample <= stop.speech_start_sample  # pre-roll, not the wake phrase
    assert stop.start_sample <= cmd_lo and stop.at_sample >= cmd_hi  # the whole command is in the audio
    assert len(stop.audio) == stop.at_sample - stop.start_sample
    assert np.array_equal(stop.audio, clip.pcm[stop.start_sample : stop.at_sample])
    assert stop.at_sample - stop.last_voiced_sample >= Config().endpoint.silence_end_ms * 16
    # captured_ns is interpolated on the capture clock
    assert w.captured_ns == w.at_sample * NS_PER_SAMPLE
    assert stop.voiced_captured_ns == stop.last_voiced_sample * NS_PER_SAMPLE


# ------------------------------------------------------------------------------------------ tests


@pytest.mark.parametrize("kind", ["piper", "en-us", "en-gb"])
def test_wake_then_command_is_endpointed_at_the_right_offsets(
    cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad, kind: str
) -> None:
    clip = wake_command_clip(kind)
    events = listen(cfg, wake, vad, clip.pcm)
    assert kinds(events) == ["WakeDetected", "SpeechStarted", "SpeechStopped"]
    w = of_type(events, WakeDetected)[0]
    assert w.word == "hey_jarvis" and w.score >= cfg.wake.threshold_for("hey_jarvis")
    assert_turn(events, clip)
    paused = of_type(events, SpeechPaused)
    assert paused and paused[-1].last_voiced_sample == of_type(events, SpeechStopped)[0].last_voiced_sample


def onset_after_first_pause(pcm: Pcm, min_pause: int = 800, win: int = 160) -> int:
    """First loud 10 ms window after the first quiet stretch (≥ ``min_pause``) inside the speech."""
    lo, hi = clips.voiced_bounds(pcm, VOICED_DBFS)
    quiet = 0
    for i in range(lo, hi - win, win):
        if clips.rms_dbfs(pcm[i : i + win]) < -40.0:
            quiet += win
        else:
            if quiet >= min_pause:
                return i
            quiet = 0
    raise AssertionError("no pause in the speech")


def test_one_piper_sentence_gives_wake_then_the_command(
    cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad
) -> None:
    """The done-criterion clip: "Hey Jarvis, turn on the kitchen light." in one breath."""
    clip = clips.compose(
        [
            ("lead", clips.silence(1600)),
            ("s", clips.piper_speech("Hey Jarvis, turn on the kitchen light.")),
            ("tail", clips.silence(2000)),
        ]
    )
    events = listen(cfg, wake, vad, clip.pcm)
    assert kinds(events) == ["WakeDetected", "SpeechStarted", "SpeechStopped"]
    w, start, stop = (
        of_type(events, WakeDetected)[0],
        of_type(events, SpeechStarted)[0],
        of_type(events, SpeechStopped)[0],
    )
    lo, hi = bounds(clip, "s")
    command = onset_after_first_pause(clip.pcm)  # after the comma
    assert lo + 8000 < w.at_sample < command  # "hey jarvis" takes > 0.5 s
    assert abs(start.at_sample - command) <= TOL
    assert abs(stop.last_voiced_sample - hi) <= TOL
    assert stop.start_sample >= w.at_sample  # the pre-roll stops at the wake sample


def test_command_run_on_after_the_wake_word_starts_at_the_wake_sample(
    cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad
) -> None:
    """No pause at all after the wake phrase: the utterance starts where the wake word was detected."""
    clip = clips.compose(
        [
            ("lead", clips.silence(1600)),
            ("s", clips.piper_speech("Hey Jarvis turn on the kitchen light")),
            ("tail", clips.silence(2000)),
        ]
    )
    events = listen(cfg, wake, vad, clip.pcm)
    assert kinds(events) == ["WakeDetected", "SpeechStarted", "SpeechStopped"]
    w, start, stop = (
        of_type(events, WakeDetected)[0],
        of_type(events, SpeechStarted)[0],
        of_type(events, SpeechStopped)[0],
    )
    assert start.at_sample == w.at_sample == stop.start_sample
    assert abs(stop.last_voiced_sample - bounds(clip, "s")[1]) <= TOL


@pytest.mark.parametrize(
    "name", ["piper speech", "espeak speech", "silence", "white noise", "pink noise", "noisy speech"]
)
def test_no_wake_without_the_wake_word(
    cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad, name: str
) -> None:
    text = "What is the weather like today? Please set a timer for ten minutes and play some jazz."
    pcm = {
        "piper speech": lambda: clips.piper_speech(text),
        "espeak speech": lambda: clips.espeak_speech(text, "en-gb"),
        "silence": lambda: clips.silence(8000),
        "white noise": lambda: clips.noise(8000, -30.0),
        "pink noise": lambda: clips.noise(8000, -25.0, kind="pink"),
        "noisy speech": lambda: clips.mix_at_snr(clips.espeak_speech(text, "en-us"), 10.0),
    }[name]()
    clip = clips.compose([("lead", clips.silence(1000)), ("x", pcm), ("tail", clips.silence(1000))])
    events = listen(cfg, wake, vad, clip.pcm)
    assert events == []  # no wake, and closed listening ignores the speech


def test_two_wake_command_pairs_give_two_utterances(
    cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad
) -> None:
    clip = wake_command_clip("piper", pairs=2)
    events = listen(cfg, wake, vad, clip.pcm)
    assert kinds(events) == ["WakeDetected", "SpeechStarted", "SpeechStopped"] * 2
    assert_turn(events, clip, 0)
    assert_turn(events, clip, 1)


def test_several_wake_words_at_once(cfg: Config, vad: SileroVad) -> None:
    multi = dataclasses.replace(
        cfg, wake=WakeConfig(words=("hey_jarvis", "hey_mycroft", "alexa"), thresholds={"alexa": 0.6})
    )
    detector = OpenWakeWordDetector(multi.wake)
    assert detector.words == ("hey_jarvis", "hey_mycroft", "alexa")
    clip = clips.compose(
        [
            ("lead", clips.silence(1600)),
            ("wake0", clips.piper_speech("Hey Mycroft")),
            ("gap0", clips.silence(300)),
            ("cmd0", clips.piper_speech(COMMAND)),
            ("tail0", clips.silence(2500)),
            ("wake1", clips.piper_speech("Hey Jarvis")),
            ("gap1", clips.silence(300)),
            ("cmd1", clips.piper_speech("what time is it")),
            ("tail1", clips.silence(2500)),
        ]
    )
    events = listen(multi, detector, vad, clip.pcm)
    assert [e.word for e in of_type(events, WakeDetected)] == ["hey_mycroft", "hey_jarvis"]
    assert kinds(events) == ["WakeDetected", "SpeechStarted", "SpeechStopped"] * 2
    assert_turn(events, clip, 0)
    assert_turn(events, clip, 1)


def test_frame_sizes_and_wav_replay_give_identical_events(
    cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad, tmp_path: Path
) -> None:
    clip = wake_command_clip("en-us", pairs=2)
    wav = tmp_path / "clip.wav"
    write_wav(wav, clip.pcm)
    pcm = read_wav_16k(wav)
    reference = listen(cfg, wake, vad, pcm, (1280,))
    assert kinds(reference) == ["WakeDetected", "SpeechStarted", "SpeechStopped"] * 2

    def key(events: Sequence[ListenEvent]) -> list[tuple[object, ...]]:
        out = []
        for e in events:
            values = [getattr(e, f.name) for f in dataclasses.fields(e)]
            out.append((type(e), *(v.tobytes() if isinstance(v, np.ndarray) else v for v in values)))
        return out

    for sizes in [(320,), (512,), (4000,), (48000,), (1280, 7, 333, 2048, 1)]:
        assert key(listen(cfg, wake, vad, pcm, sizes)) == key(reference), sizes


def test_dropped_frame_is_replayed_as_silence(
    cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad
) -> None:
    clip = wake_command_clip("piper")
    lead_end = clip.part("lead").end_sample
    drop = (lead_end // 1280 - 3) * 1280  # a frame in the lead silence goes missing
    listener = Listener(cfg, wake, vad)
    with_gap: list[ListenEvent] = []
    for f in frames(clip.pcm, (1280,)):
        if f.start_sample != drop:
            with_gap.extend(listener.feed(f))
    zeroed = clip.pcm.copy()
    zeroed[drop : drop + 1280] = 0
    reference = listen(cfg, wake, vad, zeroed)
    assert [(type(e), getattr(e, "at_sample", None)) for e in with_gap] == [
        (type(e), getattr(e, "at_sample", None)) for e in reference
    ]
    assert kinds(with_gap) == ["WakeDetected", "SpeechStarted", "SpeechStopped"]


def test_wake_without_a_command_times_out(cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad) -> None:
    clip = clips.compose(
        [
            ("lead", clips.silence(1600)),
            ("wake0", clips.piper_speech("Hey Jarvis")),
            ("tail", clips.silence(5000)),
        ]
    )
    events = listen(cfg, wake, vad, clip.pcm)
    assert kinds(events) == ["WakeDetected", "NoSpeech"]
    w, ns = of_type(events, WakeDetected)[0], of_type(events, NoSpeech)[0]
    timeout = cfg.endpoint.no_speech_timeout_ms * 16
    # the timeout runs from the decision, (patience - 1) hops after the reported wake sample
    assert timeout <= ns.at_sample - w.at_sample <= timeout + cfg.wake.patience * 1280


def test_refractory_period_and_warm_up(cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad) -> None:
    early = clips.compose([("wake0", clips.piper_speech("Hey Jarvis")), ("tail", clips.silence(2000))])
    assert of_type(listen(cfg, wake, vad, early.pcm), WakeDetected) == []  # inside the 1.5 s warm-up
    no_warmup = dataclasses.replace(cfg, wake=dataclasses.replace(cfg.wake, warmup_ms=0))
    assert len(of_type(listen(no_warmup, wake, vad, early.pcm), WakeDetected)) == 1

    clip = wake_command_clip("piper")
    assert len(of_type(listen(cfg, wake, vad, clip.pcm), WakeDetected)) == 1
    eager = dataclasses.replace(cfg, wake=dataclasses.replace(cfg.wake, refractory_ms=0))
    repeats = of_type(listen(eager, wake, vad, clip.pcm), WakeDetected)
    assert len(repeats) >= 2  # the score stays above threshold for several hops
    assert all(b.at_sample - a.at_sample == 1280 for a, b in itertools.pairwise(repeats))


def test_push_to_talk_opens_without_the_wake_word(
    cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad
) -> None:
    clip = clips.compose(
        [
            ("lead", clips.silence(1000)),
            ("cmd0", clips.piper_speech(COMMAND)),
            ("tail", clips.silence(1500)),
            ("more", clips.piper_speech(COMMAND)),
            ("tail2", clips.silence(1000)),
        ]
    )
    listener = Listener(cfg, wake, vad)
    events: list[ListenEvent] = []
    for f in frames(clip.pcm, (1280,)):
        if f.start_sample == 8 * 1280:  # the button is pressed at 0.64 s
            listener.open()
        events.extend(listener.feed(f))
    assert kinds(events) == ["SpeechStarted", "SpeechStopped"]  # the second command: closed again
    lo, hi = bounds(clip, "cmd0")
    start, stop = of_type(events, SpeechStarted)[0], of_type(events, SpeechStopped)[0]
    assert abs(start.at_sample - lo) <= TOL and abs(stop.last_voiced_sample - hi) <= TOL
    assert stop.start_sample == start.at_sample - cfg.endpoint.pre_roll_ms * 16


def test_close_cancels_a_running_utterance(cfg: Config, wake: OpenWakeWordDetector, vad: SileroVad) -> None:
    clip = wake_command_clip("piper")
    cmd_lo, _ = bounds(clip, "cmd0")
    listener = Listener(cfg, wake, vad)
    events: list[ListenEvent] = []
    for f in frames(clip.pcm, (1280,)):
        if f.start_sample >= cmd_lo + 8000 and listener.is_open:
            listener.close()
        events.extend(listener.feed(f))
    assert kinds(events) == ["WakeDetected", "SpeechStarted"]
    assert not listener.is_open
