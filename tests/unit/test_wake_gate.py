"""The wake decision (threshold, patience, refractory on sample positions) and its vectorised twin used by
``bench wake``; the bench's corpus generator on a few seconds of audio."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_voice.bench import wake_corpus as corpus
from edge_voice.core.config import ConfigError, WakeConfig
from edge_voice.core.messages import SAMPLE_RATE
from edge_voice.listen.wake import HOP_SAMPLES, WakeGate, fire_hops
from tests.fakes import QuietVad, ScriptedWake


def gate_fires(scores: np.ndarray, thr: float, patience: int, refractory: int) -> list[int]:
    gate = WakeGate(lambda _w: thr, patience, refractory)
    return [k for k, s in enumerate(scores) if gate.update({"w": float(s)}, (k + 1) * HOP_SAMPLES)]


def test_patience_needs_consecutive_hops() -> None:
    s = np.array([0.9, 0.1, 0.9, 0.9, 0.1, 0.9, 0.9, 0.9])
    assert gate_fires(s, 0.5, 1, 0) == [0, 2, 3, 5, 6, 7]
    assert gate_fires(s, 0.5, 2, 0) == [3, 6, 7]
    assert gate_fires(s, 0.5, 3, 0) == [7]


def test_refractory_counts_samples() -> None:
    s = np.full(20, 0.9)
    # 2 s = 25 hops of 80 ms: one fire; 0.4 s = 5 hops: every fifth hop
    assert gate_fires(s, 0.5, 1, 2 * SAMPLE_RATE) == [0]
    assert gate_fires(s, 0.5, 1, 2 * SAMPLE_RATE // 5) == [0, 5, 10, 15]


def test_threshold_is_inclusive_and_per_word() -> None:
    gate = WakeGate({"a": 0.5, "b": 0.8}.__getitem__, 1, 0)
    assert gate.update({"a": 0.5, "b": 0.79}, HOP_SAMPLES) == [(0.5, "a")]


@pytest.mark.parametrize("seed", range(6))
def test_vectorised_twin_matches_the_gate(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # bursts of high scores in low noise, like a detector's output
    s = np.clip(rng.normal(0.05, 0.05, 3000) + (rng.random(3000) < 0.03) * rng.random(3000), 0, 1)
    s = np.convolve(s, np.ones(3) / 2, "same")
    for thr in (0.05, 0.2, 0.5):
        for patience in (1, 2, 3):
            for refractory in (0, 1280, 2000, 32000):
                assert fire_hops(s, thr, patience, refractory) == gate_fires(s, thr, patience, refractory)


def test_patience_is_checked() -> None:
    with pytest.raises(ConfigError, match=r"wake\.patience"):
        WakeConfig(patience=0)


def test_corpus_plan_keeps_the_mix_in_any_prefix() -> None:
    small, big = corpus.plan(0.5), corpus.plan(3.0)
    assert big[: len(small)] == small  # a longer corpus extends a shorter one: cached segments reused
    assert len(big) * corpus.SEGMENT_S >= 3 * 3600
    kinds = [s.kind for s in big]
    for kind, share in corpus.MIX:
        assert abs(kinds.count(kind) / len(kinds) - share) < 0.01, kind
    assert len({s.key for s in big}) == len(big)


def test_corpus_audio_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # no packages there: synthetic music, no apt
    corpus._sound_files.cache_clear()
    try:
        for kind in ("music", "effects"):
            a, b = corpus.render(corpus.Segment(kind, 3)), corpus.render(corpus.Segment(kind, 3))
            assert len(a) == int(corpus.SEGMENT_S * SAMPLE_RATE) and a.dtype == np.int16
            assert np.array_equal(a, b)  # deterministic recipe
            level = corpus._rms(corpus.set_level(a, -20.0).astype(np.float64))
            assert abs(20 * np.log10(level / 32768) + 20) < 2.0  # "loud" part moves with the gain
    finally:
        corpus._sound_files.cache_clear()
    tone = (np.sin(np.arange(SAMPLE_RATE) * 0.05) * 8000).astype(np.int16)
    wet = corpus.reverb(tone, 0.5, 0.6, seed=1)
    assert len(wet) == len(tone) and not np.array_equal(wet, tone)
    noisy = corpus.add_noise(tone, 10.0, "pink", seed=2)
    err = noisy.astype(float) - tone
    snr = 10 * np.log10(np.mean(tone.astype(float) ** 2) / np.mean(err**2))
    assert 8.5 < snr < 11.5


def test_text_pool_has_confusables_inserted() -> None:
    import random

    text = corpus._read_text(random.Random(1), 200, confusable_every=2)
    assert any(c in text for c in corpus.CONFUSABLES)
    assert len(text.split()) >= 200


def test_thresholds_user_then_measured_then_global() -> None:
    from edge_voice.core.config import MEASURED_WAKE_THRESHOLDS

    cfg = WakeConfig(threshold=0.7, thresholds={"alexa": 0.9})
    assert cfg.threshold_for("alexa") == 0.9
    assert cfg.threshold_for("hey_jarvis") == MEASURED_WAKE_THRESHOLDS["hey_jarvis"]
    assert cfg.threshold_for("my_custom_word") == 0.7


@pytest.mark.parametrize(("patience", "fires_at_hop"), [(1, 3), (2, 4), (3, None)])
def test_listener_applies_patience(patience: int, fires_at_hop: int | None) -> None:
    import dataclasses

    from edge_voice.core.config import Config
    from edge_voice.core.messages import AudioFrame, WakeDetected
    from edge_voice.listen.listener import Listener

    base = Config()
    cfg = dataclasses.replace(
        base, wake=dataclasses.replace(base.wake, warmup_ms=0, patience=patience, thresholds={"w": 0.5})
    )
    listener = Listener(cfg, ScriptedWake([0.1, 0.2, 0.3, 0.9, 0.8, 0.2, 0.1, 0.1]), QuietVad())
    events = []
    for k in range(20):  # 32 ms capture blocks, as the daemon delivers them
        events += listener.feed(AudioFrame(np.zeros(512, np.int16), k * 512, 0))
    wakes = [e for e in events if isinstance(e, WakeDetected)]
    # decided at the end of hop ``fires_at_hop``; the wake sample is where the run above threshold began
    wake_hop = None if fires_at_hop is None else fires_at_hop - (patience - 1)
    assert [e.at_sample for e in wakes] == ([] if wake_hop is None else [(wake_hop + 1) * HOP_SAMPLES])


def _burst_listener(playback_patience: int, playing: list[tuple[int, int]] | None) -> list[int]:
    """A two-hop burst over the threshold (hops 3 and 4) with patience 3: the wake samples the listener
    gives when the device played during ``playing`` (input-clock spans) and ``wake.playback_patience``."""
    import dataclasses

    from edge_voice.core.config import Config
    from edge_voice.core.messages import AudioFrame, WakeDetected
    from edge_voice.listen.listener import Listener

    base = Config()
    wake = dataclasses.replace(
        base.wake, warmup_ms=0, patience=3, playback_patience=playback_patience, thresholds={"w": 0.5}
    )
    listener = Listener(
        dataclasses.replace(base, wake=wake),
        ScriptedWake([0.1, 0.2, 0.3, 0.9, 0.8, 0.2] + [0.1] * 8),
        QuietVad(),
    )
    if playing is not None:
        spans = playing
        listener.follow_playback(lambda a, b: any(s < b and a < e for s, e in spans))
    assert listener.follows_playback == (playing is not None)
    events = []
    for k in range(30):
        events += listener.feed(AudioFrame(np.zeros(512, np.int16), k * 512, 0))
    return [e.at_sample for e in events if isinstance(e, WakeDetected)]


def test_listener_uses_the_playback_patience_only_while_the_device_plays() -> None:
    # the burst is hops 3–4 (samples 3·1280–5·1280): patience 2 fires at the end of hop 4, dated hop 3
    burst_start = 4 * HOP_SAMPLES
    assert _burst_listener(2, [(0, 10 * HOP_SAMPLES)]) == [burst_start]
    assert _burst_listener(2, None) == []  # no echo path: never "playing"
    assert _burst_listener(0, [(0, 10 * HOP_SAMPLES)]) == []  # 0 = wake.patience
    assert _burst_listener(3, [(0, 10 * HOP_SAMPLES)]) == []
    # the device stopped playing 0.5 s (PLAYBACK_HOLD) or more before the decision: the usual patience
    decided = 5 * HOP_SAMPLES
    assert _burst_listener(2, [(0, decided - SAMPLE_RATE // 2)]) == []
    assert _burst_listener(2, [(0, decided - SAMPLE_RATE // 2 + 1)]) == [burst_start]


def test_gate_takes_a_patience_per_hop_and_counts_the_run_the_same() -> None:
    gate = WakeGate(lambda w: 0.5, 3, 0)
    assert gate.update({"w": 0.9}, 1 * HOP_SAMPLES) == []
    assert gate.update({"w": 0.9}, 2 * HOP_SAMPLES, patience=2) == [(0.9, "w")]
    gate.reset()
    assert gate.update({"w": 0.9}, 1 * HOP_SAMPLES, patience=2) == []
    assert gate.update({"w": 0.9}, 2 * HOP_SAMPLES) == []  # only 2 in a row: patience 3 waits
    assert gate.update({"w": 0.9}, 3 * HOP_SAMPLES) == [(0.9, "w")]


def test_playback_patience_is_checked() -> None:
    assert WakeConfig().playback_patience >= 0
    with pytest.raises(ConfigError, match=r"wake\.playback_patience"):
        WakeConfig(playback_patience=11)


def test_an_unknown_wake_word_names_the_key_and_the_words() -> None:
    # it named the manifest's model ("unknown model 'wake-hey_siri'") and listed all 60 models
    from edge_voice.listen.wake import _model_sources

    with pytest.raises(ConfigError, match=r"wake\.words") as info:
        _model_sources(WakeConfig(words=("hey_siri",)))
    assert "'hey_siri'" in str(info.value) and "hey_jarvis" in str(info.value)
    assert "whisper" not in str(info.value)
