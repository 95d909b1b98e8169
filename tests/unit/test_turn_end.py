"""Smart Turn's whisper log-mel features in numpy (edge_voice/engines/turn_end.py), no model needed.

The reference values were computed with ``transformers.WhisperFeatureExtractor(chunk_length=8)``
(transformers 5.25.0, numpy path) on the same input: that extractor is what the model was trained with."""

from __future__ import annotations

import numpy as np
import pytest

from edge_voice.engines import turn_end
from edge_voice.engines.turn_end import N_FRAMES, N_MELS, WINDOW_SAMPLES, features, fit_window, log_mel


def _tones(seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    x = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.1 * np.sin(2 * np.pi * 3000 * t)
    return np.round(x * 32767).astype(np.int16)


def test_features_shape_and_dtype() -> None:
    f = features(_tones())
    assert f.shape == (1, N_MELS, N_FRAMES) == (1, 80, 800)
    assert f.dtype == np.float32


def test_fit_window_pads_at_the_start_and_keeps_the_end() -> None:
    short = np.arange(1, 1001, dtype=np.float32)
    w = fit_window(short)
    assert w.shape == (WINDOW_SAMPLES,)
    assert not w[:-1000].any()
    assert np.array_equal(w[-1000:], short)
    long = np.arange(WINDOW_SAMPLES + 5000, dtype=np.float32)
    assert np.array_equal(fit_window(long), long[-WINDOW_SAMPLES:])
    assert not fit_window(np.zeros(0, np.float32)).any()


def test_a_long_utterance_is_judged_on_its_last_8_seconds() -> None:
    rng = np.random.default_rng(3)
    tail = (rng.standard_normal(WINDOW_SAMPLES) * 2000).astype(np.int16)
    head = (rng.standard_normal(3 * 16000) * 8000).astype(np.int16)
    assert np.array_equal(features(np.concatenate([head, tail])), features(tail))


def test_padding_region_shortcut_gives_the_same_numbers() -> None:
    rng = np.random.default_rng(4)
    for n in (0, 1, 200, 201, 360, 361, 16000, 50001, WINDOW_SAMPLES):
        pcm = (rng.standard_normal(n) * 3000).astype(np.int16)
        window = fit_window(pcm.astype(np.float32) / 32768.0)
        assert np.array_equal(features(pcm)[0], log_mel(window)), n


def test_silence_is_the_floor_everywhere() -> None:
    # zeros → power floor 1e-10 → log10 -10 everywhere → (-10 + 4) / 4
    assert np.array_equal(features(np.zeros(8000, np.int16)), np.full((1, 80, 800), -1.5, np.float32))


def test_known_values_match_transformers() -> None:
    f = features(_tones())[0]  # 1 s of 440 Hz + 3 kHz at the end of the 8 s window
    reference = {
        (0, 0): -0.11451005935668945,
        (10, 750): 1.7960243225097656,
        (10, 799): 1.7977356910705566,
        (40, 760): -0.11451005935668945,
        (79, 700): 0.4177417755126953,
    }
    for (mel, frame), value in reference.items():
        assert f[mel, frame] == pytest.approx(value, abs=1e-5), (mel, frame)
    assert int(f[:, 750].argmax()) == 11  # 440 Hz
    assert float(f.max()) == pytest.approx(1.8854899406433105, abs=1e-5)


def test_mel_filters_are_whispers_slaney_bank() -> None:
    bank = turn_end.mel_filters()
    assert bank.shape == (80, 201)
    # (mel, fft bin) → value, and each filter's sum, from transformers' mel_filter_bank(norm="slaney")
    for mel, fft_bin, peak, total in (
        (0, 1, 0.024862593984176087, 0.024862593984176087),
        (10, 10, 0.019908218880980738, 0.0248625939841761),
        (40, 43, 0.014735565741439168, 0.026664860534783265),
        (79, 192, 0.003164711739176461, 0.024925339738858847),
    ):
        assert int(bank[mel].argmax()) == fft_bin
        assert bank[mel, fft_bin] == pytest.approx(peak, rel=1e-9)
        assert bank[mel].sum() == pytest.approx(total, rel=1e-9)


def test_log_mel_wants_exactly_8_seconds() -> None:
    with pytest.raises(ValueError, match="128000"):
        log_mel(np.zeros(16000, np.float32))
