"""The echo path's pure parts: reference, simulated room, cancelling source, self-wake guard, config."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from edge_voice.audio.echo import (
    AEC_FRAME,
    CancelledSource,
    LinearCanceller,
    PlaybackReference,
    ReferencedSink,
    Room,
    RoomSource,
    add_room,
    load_room,
    make_canceller,
)
from edge_voice.audio.sources import SourceExhausted, WavSource
from edge_voice.core.config import AudioConfig, Config, ConfigError
from edge_voice.core.messages import SAMPLE_RATE, EchoPathChanged, Pcm, WakeDetected
from edge_voice.listen.echo_guard import EchoGuard
from edge_voice.runtime import echo_path


def _tone(n: int, hz: float = 440.0, amp: float = 8000.0, phase: int = 0) -> Pcm:
    t = (np.arange(n) + phase) / SAMPLE_RATE
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def _speechlike(n: int, seed: int = 0) -> Pcm:
    rng = np.random.default_rng(seed)
    env = 0.5 + 0.5 * np.sin(np.arange(n) / 800.0)
    return (rng.standard_normal(n) * 4000 * env).astype(np.int16)


def _drain(src: CancelledSource | RoomSource, block: int) -> Pcm:
    out = []
    while True:
        try:
            out.append(src.read(block))
        except SourceExhausted:
            return np.concatenate(out)


# ------------------------------------------------------------------------------------- the room


def test_room_is_deterministic_and_independent_of_block_size() -> None:
    far = _speechlike(3 * SAMPLE_RATE, seed=1)
    near = _speechlike(3 * SAMPLE_RATE, seed=2) // 4
    room = Room(delay_ms=37, echo_gain_db=3.0, rt60_ms=300, noise_dbfs=-60, seed=7)
    a = add_room(near, far, room)
    assert np.array_equal(a, add_room(near, far, room))
    outs = []
    for block in (512, 160, 1000):
        ref = PlaybackReference()
        ref.write(0, far)  # all played up front: 3 s is within the ring's write window
        outs.append(_drain(RoomSource(WavSource(near, pace="fast"), ref, room), block)[: len(near)])
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[0], outs[2])
    assert np.array_equal(outs[0], a)  # streaming == offline
    other = add_room(near, far, replace(room, seed=8))
    assert not np.array_equal(a, other)  # the seed is the room


def test_room_delays_and_scales_the_echo() -> None:
    far = np.zeros(SAMPLE_RATE, np.int16)
    far[1000] = 10000
    room = Room(delay_ms=50, echo_gain_db=-6.0, rt60_ms=0, noise_dbfs=-120)
    echo = add_room(np.zeros(SAMPLE_RATE, np.int16), far, room)
    assert int(np.argmax(np.abs(echo))) == 1000 + 50 * SAMPLE_RATE // 1000
    assert abs(int(echo.max()) - round(10000 * 10 ** (-6 / 20))) <= 1


def test_room_drift_moves_the_delay_within_bounds() -> None:
    room = Room(delay_ms=100, drift_ms_per_min=60)
    assert room.delay_samples(0) == 1600
    assert room.delay_samples(30 * SAMPLE_RATE) == 2080  # +30 ms after 30 s
    assert room.delay_samples(600 * SAMPLE_RATE) == 2400  # clamped at 150 ms


def test_room_file_rejects_bad_keys_and_values(tmp_path: Path) -> None:
    good = tmp_path / "room.toml"
    good.write_text("[room]\ndelay_ms = 80\necho_gain_db = 5.0\nseed = 3\n")
    assert load_room(good) == Room(delay_ms=80, echo_gain_db=5.0, seed=3)
    bad_key = tmp_path / "k.toml"
    bad_key.write_text("[room]\ndelay = 80\n")
    with pytest.raises(ConfigError, match=r"room\.delay"):
        load_room(bad_key)
    bad_value = tmp_path / "v.toml"
    bad_value.write_text("[room]\ndelay_ms = 500\n")
    with pytest.raises(ConfigError, match=r"room\.delay_ms"):
        load_room(bad_value)
    with pytest.raises(ConfigError, match="room"):
        load_room(tmp_path / "missing.toml")


# -------------------------------------------------------------------------------- the reference


def test_reference_moves_late_audio_to_the_present_and_forgets_old_audio() -> None:
    ref = PlaybackReference(capacity_s=4.0)
    ref.write(100, np.full(50, 1000, np.int16))
    assert np.array_equal(ref.read(100, 50), np.full(50, 1000, np.int16))
    assert ref.committed == 150
    ref.write(120, np.full(40, 2000, np.int16))  # too late for 120..149: played from 150 on
    assert ref.moved == 30
    assert np.array_equal(ref.read(150, 40), np.full(40, 2000, np.int16))
    # a long way on, the ring has been reused: old positions read as silence, new ones as written
    for pos in range(190, 20 * SAMPLE_RATE, 512):
        ref.read(pos, 512)
    assert not ref.read(100, 50).any()
    here = ref.committed
    ref.write(here, np.full(10, 7, np.int16))
    assert np.array_equal(ref.read(here, 10), np.full(10, 7, np.int16))


class _Sink:
    """An inner sink: records what it was given (a fake for orchestration of the wrapper)."""

    rate_hz = 16000

    def __init__(self) -> None:
        self.written: list[Pcm] = []
        self.at = 3200

    def begin(self, chime: bool = False) -> int:
        return self.at

    def write(self, pcm: Pcm) -> None:
        self.written.append(pcm)

    def end(self, interrupted: bool) -> None:
        pass

    def close(self) -> None:
        pass


def test_referenced_sink_puts_every_sound_where_the_sink_plays_it() -> None:
    ref = PlaybackReference()
    inner = _Sink()
    sink = ReferencedSink(inner, ref)
    assert sink.begin(chime=True) == 3200
    tone = _tone(800)
    sink.write(tone[:400])
    sink.write(tone[400:])
    sink.end(False)
    assert len(inner.written) == 2
    assert np.array_equal(ref.read(3200, 800), tone)  # the chime is in the reference, sample-aligned
    assert not ref.read(0, 3200).any()


# ----------------------------------------------------------------------- the cancelling source


class _Subtract:
    """A perfect canceller for a zero-delay, unit-gain echo (the contract, not an algorithm)."""

    def process(self, near: Pcm, far: Pcm) -> Pcm:
        assert len(near) == len(far) == AEC_FRAME
        return (near.astype(np.int32) - far).astype(np.int16)


class _Broken:
    def process(self, near: Pcm, far: Pcm) -> Pcm:
        raise RuntimeError("boom")


def test_cancelled_source_is_one_frame_late_and_uses_the_same_reference() -> None:
    far = _tone(2 * SAMPLE_RATE)
    ref = PlaybackReference()
    ref.write(0, far)
    src = CancelledSource(WavSource(far, pace="fast"), ref, _Subtract())  # the mic hears exactly `far`
    out = _drain(src, 512)
    assert len(out) % 512 == 0
    assert not out[: len(far)].any()  # all of it cancelled
    assert src.frames == len(out) // AEC_FRAME  # every complete 10 ms frame (the file is padded to a block)


def test_a_failing_canceller_passes_raw_audio_and_reports_it() -> None:
    mic = _tone(SAMPLE_RATE)
    seen: list[EchoPathChanged] = []
    src = CancelledSource(WavSource(mic, pace="fast"), PlaybackReference(), _Broken(), on_status=seen.append)
    out = _drain(src, 512)
    assert [s.cancelling for s in seen] == [False]
    assert "canceller failed" in seen[0].reason
    assert np.array_equal(out[AEC_FRAME : len(mic)], mic[: len(mic) - AEC_FRAME])  # raw, one frame late


def _four_seconds_cancelled(mic: Pcm, far: Pcm) -> tuple[CancelledSource, list[EchoPathChanged]]:
    """``mic`` through a perfect zero-delay canceller while the first 4 s of ``far`` play: the source and
    the echo path's status reports."""
    ref = PlaybackReference(capacity_s=20)
    ref.write(0, far[: 4 * SAMPLE_RATE])
    seen: list[EchoPathChanged] = []
    src = CancelledSource(WavSource(mic, pace="fast"), ref, _Subtract(), on_status=seen.append)
    for _ in range(4 * SAMPLE_RATE // 512):
        src.read(512)
    return src, seen


def test_a_misaligned_reference_is_reported_not_fatal_and_restored() -> None:
    n = 8 * SAMPLE_RATE
    far = _speechlike(n, seed=3)
    mic = np.concatenate([np.zeros(4000, np.int16), far[:-4000]])  # 250 ms later than the reference
    _, seen = _four_seconds_cancelled(mic, far)
    assert seen and not seen[0].cancelling and "misaligned" in seen[0].reason
    assert seen[0].erle_db is not None and seen[0].erle_db < 3


def test_a_user_talking_over_the_reply_is_not_echo_left() -> None:
    # a working canceller (the echo is removed), the user talking over the reply for half of every second:
    # their voice is kept, as it must be, and must not read as "echo not reduced" (session 15's trial)
    n = 8 * SAMPLE_RATE
    far = _speechlike(n, seed=3)
    user = _speechlike(n, seed=4).astype(np.int32) * 2  # louder than the echo at the microphone
    user[(np.arange(n) // (SAMPLE_RATE // 2)) % 2 == 1] = 0
    mic = (far.astype(np.int32) + user).clip(-32768, 32767).astype(np.int16)
    src, seen = _four_seconds_cancelled(mic, far)
    assert seen == []  # no alarm
    assert src.erle_db is not None and src.erle_db > 20  # the echo-only blocks: all of it removed


def test_guard_hears_the_reference_through_the_tap() -> None:
    taps: list[tuple[int, int]] = []
    far = _tone(SAMPLE_RATE)
    ref = PlaybackReference()
    ref.write(0, far)
    src = CancelledSource(WavSource(far, pace="fast"), ref, None, tap=lambda s, x: taps.append((s, len(x))))
    src.read(512)
    src.read(512)
    assert taps == [(0, 512), (512, 512)]


# --------------------------------------------------------------------------------------- guard


class _Wake:
    """Scores 0.9 for 'hey_jarvis' on any 80 ms hop louder than 1000 (a fake detector)."""

    words = ("hey_jarvis",)

    def __init__(self) -> None:
        self.resets = 0

    def process(self, samples: Pcm) -> dict[str, float]:
        return {"hey_jarvis": 0.9} if np.abs(samples).max() > 1000 else {"hey_jarvis": 0.0}

    def reset(self) -> None:
        self.resets += 1


def test_guard_drops_a_wake_word_the_device_just_played_and_keeps_the_users() -> None:
    wake = _Wake()
    guard = EchoGuard(wake, threshold=0.5, window_ms=1500)
    guard.hear(0, np.zeros(16000, np.int16))
    guard.hear(16000, _tone(1280))  # the device says the word, ending at 17280
    own = WakeDetected("hey_jarvis", 0.8, 17280 + 1600, 0)  # its echo, 100 ms later
    user = WakeDetected("hey_jarvis", 0.8, 17280 + 3 * SAMPLE_RATE, 0)  # long after: a person
    assert guard.is_echo(own)
    assert not guard.is_echo(user)
    assert not guard.is_echo(WakeDetected("alexa", 0.8, 17280 + 1600, 0))
    assert guard.suppressed == 1
    guard.hear(17280, np.zeros(2 * SAMPLE_RATE, np.int16))  # a long silence rests the detector
    assert wake.resets == 1


def test_guard_drops_its_own_word_detected_a_hop_before_the_reference_scored_it() -> None:
    # bench echo, session 12: the cancelled microphone crossed the threshold one hop before the
    # reference's detector did, and the listener dates a word at its first hop over the threshold
    guard = EchoGuard(_Wake(), threshold=0.5, window_ms=1500)
    guard.hear(0, np.zeros(16000, np.int16))
    guard.hear(16000, _tone(1280))  # the reference's hit ends at 17280
    assert guard.is_echo(WakeDetected("hey_jarvis", 0.9, 17280 - 1280, 0))
    assert not guard.is_echo(WakeDetected("hey_jarvis", 0.9, 17280 - SAMPLE_RATE, 0))  # a person, before


# --------------------------------------------------------------------------------------- config


def test_echo_config_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"audio\.echo_cancel"):
        AudioConfig(echo_cancel="maybe")
    with pytest.raises(ConfigError, match=r"audio\.echo_canceller"):
        AudioConfig(echo_canceller="speex")
    with pytest.raises(ConfigError, match=r"audio\.echo_delay_ms"):
        AudioConfig(echo_delay_ms=900)


def test_mode_on_without_the_canceller_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(echo_path, "canceller_available", lambda: "not installed")
    assert echo_path.choose_mode(Config(audio=AudioConfig(echo_cancel="on"))) == "process"  # linear
    on = Config(audio=AudioConfig(echo_cancel="on", echo_canceller="webrtc"))
    with pytest.raises(echo_path.EchoSetupError, match="echo_cancel"):
        echo_path.choose_mode(on)
    auto = Config(audio=AudioConfig(echo_cancel="auto", echo_canceller="webrtc"))
    assert echo_path.choose_mode(auto) == "off"


def test_auto_leaves_a_sound_servers_echo_cancelled_input_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(echo_path, "canceller_available", lambda: None)
    system = Config(audio=AudioConfig(input_device="echo-cancel-source"))
    assert echo_path.choose_mode(system) == "system"
    assert echo_path.choose_mode(Config()) == "process"
    assert echo_path.choose_mode(Config(audio=AudioConfig(echo_cancel="off"))) == "off"


def test_run_with_a_bad_room_file_exits_78_before_loading_models(tmp_path: Path) -> None:
    from edge_voice.audio.wavio import write_wav
    from edge_voice.cli.main import EXIT_CONFIG, main

    wav = tmp_path / "in.wav"
    write_wav(wav, _tone(SAMPLE_RATE), SAMPLE_RATE)
    room = tmp_path / "room.toml"
    room.write_text("[room]\ndelay_ms = 5\n")  # below 10 ms
    cfg = tmp_path / "c.toml"
    cfg.write_text("")
    assert (
        main(["--config", str(cfg), "run", "--input", str(wav), "--room", str(room), "--no-mqtt"])
        == EXIT_CONFIG
    )


# ------------------------------------------------------------------------------------- the linear filter


def _echo_scene(seconds: float, seed: int) -> tuple[Pcm, np.ndarray]:
    """A speech-like reference and its echo through a sparse room (30 ms delay, a short tail)."""
    n = int(seconds * SAMPLE_RATE)
    far = _speechlike(n, seed)
    h = np.zeros(800)
    h[480], h[520], h[700] = 0.8, -0.3, 0.1
    return far, np.convolve(far.astype(np.float64), h)[:n]


def _run(aec: LinearCanceller, near: np.ndarray, far: Pcm) -> np.ndarray:
    n = len(near) // AEC_FRAME * AEC_FRAME
    mic = np.clip(np.round(near[:n]), -32768, 32767).astype(np.int16)
    return np.concatenate(
        [aec.process(mic[i : i + AEC_FRAME], far[i : i + AEC_FRAME]) for i in range(0, n, AEC_FRAME)]
    ).astype(np.float64)


def _db(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10((np.sum(a * a) + 1.0) / (np.sum(b * b) + 1.0)))


def test_the_proportionate_step_converges_faster_on_a_sparse_echo_path() -> None:
    far, echo = _echo_scene(1.0, seed=5)
    late = slice(SAMPLE_RATE // 2, SAMPLE_RATE)  # ERLE over the second half-second
    uniform = _run(LinearCanceller(two_path=False, proportionate=False), echo, far)
    prop = _run(LinearCanceller(two_path=False, proportionate=True), echo, far)
    assert _db(echo[late], prop[late]) > _db(echo[late], uniform[late]) + 3.0


def test_two_paths_keep_cancelling_while_the_user_talks_over_the_reply() -> None:
    far, echo = _echo_scene(4.0, seed=6)
    user = np.zeros(len(echo))
    talk = slice(2 * SAMPLE_RATE, 3 * SAMPLE_RATE)  # the user, as loud as the echo, from 2 s to 3 s
    user[talk] = _speechlike(SAMPLE_RATE, seed=7).astype(np.float64) * 0.8
    for aec, floor in ((LinearCanceller(), 15.0), (LinearCanceller(two_path=False), None)):
        out = _run(aec, echo + user, far)
        left = out[talk] - user[talk]  # the echo still in the output while both talk
        erle = _db(echo[talk], left)
        if floor is not None:
            assert erle > floor, erle  # two paths: the double talk does not wreck the filter
            two_path_erle = erle
        else:
            assert erle < two_path_erle - 6.0, (erle, two_path_erle)  # one path: it does


def test_make_canceller_keeps_the_session_10_filter_for_the_baseline() -> None:
    assert isinstance(make_canceller("linear"), LinearCanceller)
    old = make_canceller("nlms")
    assert isinstance(old, LinearCanceller) and old._wf is None and not old._prop


def test_bench_summary_sets_the_new_filter_against_the_session_10_baseline() -> None:
    from edge_voice.bench.echo import RATIOS, summarize

    vs = ("linear", "nlms", "none")
    bi = []
    for ratio in RATIOS:
        for k in range(4):
            row: dict[str, object] = {"ratio_db": ratio, "command": "what time is it"}
            row["transcript_silence"] = "what time is it"
            for v, hit in (("linear", k < 4), ("nlms", k < 2), ("none", k < 1)):
                row |= {f"barge_in_{v}": hit, f"stop_ms_{v}": 40.0 if hit else None}
                row |= {f"transcript_{v}": "what time is it" if hit else "", f"false_wakes_{v}": 0}
                row |= {f"guard_refused_{v}": 0, f"cpu_ns_{v}": 1_000_000, f"frames_{v}": 10}
            bi.append(row)
    sw = [
        {
            **{f"self_wakes_{v}": 0 for v in vs},
            **{f"self_wakes_{v}_no_guard": 1 for v in vs},
            **{f"guard_suppressed_{v}": 1 for v in vs},
            **{f"erle_db_{v}": 12.0 for v in ("linear", "nlms")},
            **{f"cpu_ns_{v}": 1_000_000 for v in ("linear", "nlms")},
            **{f"frames_{v}": 10 for v in ("linear", "nlms")},
        }
    ]
    s = summarize(bi, sw, "linear", vs)
    assert (s["barge_in_rate_aec"], s["barge_in_rate_baseline"], s["barge_in_rate_no_aec"]) == (
        1.0,
        0.5,
        0.25,
    )
    assert s["per_ratio"]["+5dB"]["barge_in_rate_baseline"] == 0.5
    assert s["cancellers"]["linear"]["cpu_ms_per_10ms_frame"] == 0.1 and s["self_wakes_aec"] == 0
    assert set(s["cancellers"]) == set(vs)


def test_reference_knows_when_the_device_was_playing() -> None:
    ref = PlaybackReference()
    assert not ref.playing(0, 10 * SAMPLE_RATE)
    # a reply in 20 ms chunks with a 0.1 s hole is one stretch; a second sound 1 s later is another
    for at in range(1000, 1000 + SAMPLE_RATE, 320):
        ref.write(at, _tone(320))
    ref.write(1000 + SAMPLE_RATE + SAMPLE_RATE // 10, _tone(320))
    ref.write(4 * SAMPLE_RATE, _tone(160))
    assert ref.playing(0, 1001) and not ref.playing(0, 1000)
    assert ref.playing(1000 + SAMPLE_RATE, 1000 + SAMPLE_RATE + 10)  # inside the merged hole
    end = 1000 + SAMPLE_RATE + SAMPLE_RATE // 10 + 320
    assert not ref.playing(end, 4 * SAMPLE_RATE) and ref.playing(end - 1, 4 * SAMPLE_RATE)
    assert ref.playing(4 * SAMPLE_RATE + 159, 5 * SAMPLE_RATE)
    assert not ref.playing(4 * SAMPLE_RATE + 160, 5 * SAMPLE_RATE)
    # a late write lands at the capture's position, and is counted there
    ref.read(0, 6 * SAMPLE_RATE)
    ref.write(5 * SAMPLE_RATE, _tone(160))
    assert ref.playing(6 * SAMPLE_RATE, 6 * SAMPLE_RATE + 1) and not ref.playing(
        5 * SAMPLE_RATE, 6 * SAMPLE_RATE
    )


def test_the_listener_follows_playback_only_when_the_echo_is_cancelled_in_process(tmp_path: Path) -> None:
    from edge_voice.audio.sinks import WavSink
    from edge_voice.audio.sources import InputClock

    src = WavSource(_tone(SAMPLE_RATE), pace="fast")
    sink = WavSink(tmp_path / "out.wav", InputClock(), SAMPLE_RATE)
    path = echo_path.build(Config(), src, sink, Room(seed=1))
    assert path.mode == "process" and path.playing() is not None
    off = echo_path.build(Config(audio=AudioConfig(echo_cancel="off")), src, sink, Room())
    assert off.reference is not None and off.playing() is None  # a raw echo: the usual gate


def test_the_greeting_is_said_only_when_the_echo_is_cancelled_in_process(tmp_path: Path) -> None:
    from edge_voice.audio.sinks import WavSink
    from edge_voice.audio.sources import InputClock

    src = WavSource(_tone(SAMPLE_RATE), pace="fast")
    sink = WavSink(tmp_path / "out.wav", InputClock(), SAMPLE_RATE)
    cfg = Config()
    assert echo_path.build(cfg, src, sink, Room(seed=1)).greeting(cfg) == cfg.audio.echo_greeting
    silent = Config(audio=AudioConfig(echo_greeting="  "))
    assert echo_path.build(silent, src, sink, Room(seed=1)).greeting(silent) is None
    off = Config(audio=AudioConfig(echo_cancel="off"))
    assert echo_path.build(off, src, sink, Room(seed=1)).greeting(off) is None  # a raw echo: nothing learns
    assert echo_path.build(cfg, src, sink).greeting(cfg) is None  # a WAV with no room: no echo to learn
    with pytest.raises(ConfigError, match=r"audio\.echo_greeting"):
        AudioConfig(echo_greeting="x" * 501)


def test_the_default_greeting_is_long_enough_to_warm_the_canceller() -> None:
    # the start-up replay (design note 302): 5 s of speech made the first reply's barge-ins 100 % at
    # -5/0/+5 dB, 3 s left 92/100/92 %; the default must say at least 5 s (Piper speaks ~15 chars a second)
    assert len(Config().audio.echo_greeting) >= 5 * 15


def test_the_continuous_reply_goes_round_its_replies() -> None:
    from edge_voice.bench import echo_wakes as ew

    talk = ew.playback([np.ones(100, np.int16), 2 * np.ones(50, np.int16)], 20000, 99)
    gap = ew.REPLY_GAP
    assert len(talk) == 20000 and talk[0] == 1 and talk[1] == 0 and talk[gap + 1] == 2
    assert talk[2 * gap + 150 - 99] == 1  # round again


def test_the_negatives_room_by_fft_is_the_streamed_room() -> None:
    from edge_voice.bench import echo_wakes as ew

    near, far = _speechlike(3 * SAMPLE_RATE, 1) // 4, _speechlike(3 * SAMPLE_RATE, 2)
    far[: SAMPLE_RATE // 2] = 0
    room = Room(delay_ms=70, echo_gain_db=5.0, seed=3)
    src = RoomSource(WavSource(near, pace="fast"), ref := PlaybackReference(), room)
    ref.write(0, far)
    streamed = _drain(src, 512)[: len(near)]
    assert int(np.max(np.abs(streamed.astype(np.int32) - ew.mic_signal(near, far, room)))) <= 1


def test_the_gate_replay_fuses_microwakeword_votes_checks_the_near_end_and_guards() -> None:
    from edge_voice.bench import echo_wakes as ew

    hop, ref = 1280, 2 * SAMPLE_RATE
    h = np.zeros((400, len(ew.CHANNELS)), np.float32)
    h[:, 2], h[:, 4] = -40.0, -30.0  # the cancelled signal 10 dB under the echo estimate: residual only
    h[50:52, 0] = 0.9  # openWakeWord: two hops
    h[200, 1] = 0.95  # microWakeWord alone over its cutoff
    none = np.zeros((0, 2))
    r = ew.PlaybackRule("p2", 0.5, 2, micro_cutoff=0.93)
    assert ew.rule_fires(h, none, r, ref, 0.5, 3) == ([51, 201], 0)  # the latch holds the word 3 hops
    assert ew.rule_fires(h, none, ew.replace_rule(r, patience=3), ref, 0.5, 3) == ([202], 0)
    assert ew.rule_fires(h, none, ew.replace_rule(r, micro_cutoff=None), ref, 0.5, 3) == ([51], 0)
    # microWakeWord's vote: openWakeWord's burst counts only with some microWakeWord output near it
    voted = ew.replace_rule(r, micro_cutoff=None, micro_vote=0.2)
    assert ew.rule_fires(h, none, voted, ref, 0.5, 3) == ([], 0)
    h[45, 1] = 0.3  # within VOTE_HOPS up to hop 50, not hop 51: one hop left, patience 2 fails
    assert ew.rule_fires(h, none, voted, ref, 0.5, 3) == ([], 0)
    h[45, 1] = 0.0
    h[46, 1] = 0.3
    assert ew.rule_fires(h, none, voted, ref, 0.5, 3) == ([51], 0)
    # the near-end check: nobody louder than the echo estimate − 6 dB, nothing fires
    assert ew.rule_fires(h, none, ew.replace_rule(r, near_db=-6.0), ref, 0.5, 3) == ([], 0)
    h[50:52, 2] = -33.0
    assert ew.rule_fires(h, none, ew.replace_rule(r, near_db=-6.0), ref, 0.5, 3) == ([51], 0)
    # the guard: the reference scored 0.3 (≥ half of 0.5) one hop after the word's date → dropped
    g = np.array([[51 * hop, 0.3], [10 * hop, 0.9]])
    assert ew.rule_fires(h, g, ew.replace_rule(r, micro_cutoff=None), ref, 0.5, 3) == ([], 1)
    assert ew.rule_fires(h, g, ew.replace_rule(r, micro_cutoff=None, guard=False), ref, 0.5, 3) == ([51], 0)


def test_the_replayed_guard_is_echo_guard() -> None:
    from edge_voice.bench import echo_wakes as ew

    class Fixed:
        words = ("hey_jarvis",)

        def __init__(self) -> None:
            self.score = 0.0

        def reset(self) -> None:
            pass

        def process(self, samples: Pcm) -> dict[str, float]:
            return {"hey_jarvis": self.score}

    det = Fixed()
    guard = EchoGuard(det, 0.5)  # type: ignore[arg-type]
    rows = []
    for k, s in enumerate([0.0, 0.3, 0.0, 0.1, 0.0]):
        det.score = s
        guard.hear(k * 1280 * 10, np.full(1280, 1000, np.int16))
        rows.append((k * 12800 + 1280, s))
    g = np.asarray(rows)
    for at in range(0, 80000, 700):
        msg = WakeDetected("hey_jarvis", 0.9, at, 0)
        assert ew.guarded(at, g, 0.5) == guard.is_echo(msg), at


def test_hop_levels_are_dbfs_per_hop() -> None:
    from edge_voice.bench import echo_wakes as ew

    x = np.concatenate([np.full(1280, 32768 / 10), np.zeros(1280)])
    db = ew.hop_db(x, 3)
    assert db[0] == pytest.approx(-20.0, abs=1e-3) and db[1] < -100 and db[2] < -100
