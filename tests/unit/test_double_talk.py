"""The double-talk check: an utterance heard while the device plays is the user's only where the canceller
let it through (its output near its input), or where nothing played."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edge_voice.listen.double_talk import WIN, NearLevels, own_echo, utterance_is_echo


def _db(x: np.ndarray) -> np.ndarray:
    w = x.astype(np.float64).reshape(-1, WIN)
    return np.asarray(10 * np.log10(np.mean(w * w, axis=1) + 1.0))


def test_near_levels_keep_10_ms_windows_across_reads_of_any_size() -> None:
    near = NearLevels(seconds=1.0)
    pcm = np.repeat(np.array([100, 1000, 10000, 30], np.int16), WIN)
    near.record(0, pcm[:70])
    near.record(70, pcm[70:400])
    near.record(400, pcm[400:])
    assert np.allclose(near.levels(0, 4), _db(pcm))
    assert near.levels(4, 5)[0] == -200.0  # not yet recorded
    near.record(20 * WIN, np.zeros(200 * WIN, np.int16))  # the ring wrapped (1 s = 100 windows)
    assert near.levels(0, 1)[0] == -200.0  # too old


def test_a_leak_is_the_devices_own_voice_and_the_user_over_it_is_not() -> None:
    playing = np.ones(60, bool)
    raw = np.full(60, 70.0)  # the echo at the microphone
    leak = raw - 25.0  # what the canceller left of it
    assert own_echo(leak, raw, playing)[0]
    user = leak.copy()
    user[20:40] = raw[20:40] - 4.0  # the user's 200 ms: the canceller kept them
    assert not own_echo(user, raw, playing)[0]
    short = leak.copy()
    short[20:25] = raw[20:25] - 4.0  # 50 ms kept: a burst of the canceller's, not a user's words
    assert own_echo(short, raw, playing)[0]


def test_a_canceller_that_adds_the_devices_voice_makes_it_the_devices_not_the_users() -> None:
    """After a barge-in AEC3 subtracted a misaligned estimate: its output was louder than its input
    over much of the confirmation (heard as "Hurry, walk"); the user's words over it are not."""
    playing = np.ones(60, bool)
    raw = np.full(60, 60.0)
    out = raw.copy()
    out[::3] = raw[::3] + 20.0  # a third of it added by the canceller
    assert own_echo(out, raw, playing)[0]
    out = raw.copy()
    out[::10] = raw[::10] + 20.0  # a tenth: the user speaks over a small leak of it
    assert not own_echo(out, raw, playing)[0]


def test_nothing_playing_is_never_echo_and_speech_after_the_playback_is_the_users() -> None:
    raw = np.full(60, 70.0)
    leak = raw - 25.0
    assert not own_echo(leak, raw, np.zeros(60, bool))[0]
    after = np.arange(60) >= 30  # the playback ended in the middle: the rest is the user's
    assert not own_echo(leak, raw, ~after)[0]


def test_the_cancelled_stream_is_compared_with_the_raw_one_a_frame_earlier() -> None:
    near = NearLevels(seconds=2.0)
    rng = np.random.default_rng(0)
    raw = (rng.standard_normal(100 * WIN) * 3000).astype(np.int16)
    near.record(0, raw)
    out = np.concatenate([np.zeros(WIN, np.int16), raw[:-WIN]])  # what passes, one frame late
    leak = (out * 0.03).astype(np.int16)  # −30 dB: a canceller at work

    def level(x: np.ndarray) -> Callable[[int, int], np.ndarray]:
        return lambda first, last: _db(x[first * WIN : last * WIN])

    always = lambda _a, _b: True  # noqa: E731
    assert not utterance_is_echo(near, level(out), always, 0, 10 * WIN, 90 * WIN)[0]  # double talk
    assert utterance_is_echo(near, level(leak), always, 0, 10 * WIN, 90 * WIN)[0]
