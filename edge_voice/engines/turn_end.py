"""Acoustic end of turn: Smart Turn v3.2 (ONNX, no torch, no transformers) — from the audio of the utterance
so far, the probability that the user has finished their turn.

The model (``smart-turn-v3.2`` in the manifest, from the ``pipecat-ai`` wheel, BSD-2-Clause) is a whisper
encoder with a classifier head. Its input is exactly what ``transformers.WhisperFeatureExtractor(
chunk_length=8)`` gives for 8 s of 16 kHz audio, as pipecat's own ``LocalSmartTurnAnalyzerV3`` feeds it:

1. the last 8 s of the utterance (128 000 samples), zero-padded at the *start* when shorter, so the end
   of the speech — what the model judges — is always at the end of the window;
2. zero-mean, unit-variance normalisation over that whole window (padding included, as pipecat does);
3. a centred STFT (n_fft 400, hop 160, periodic Hann, reflect padding), power spectrum;
4. 80 Slaney mel filters (librosa's ``mel(norm="slaney", htk=False)``, 0–8000 Hz), floor 1e-10, log10;
5. the last frame dropped (801 → 800 frames), clamp to (max − 8), then (x + 4) / 4.

Input ``input_features`` float32 [batch, 80, 800]; output float32 [batch, 1], already a sigmoid
probability. ``log_mel`` below is checked against transformers' extractor (max abs difference ~1e-6).
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.models import registry

log = logging.getLogger(__name__)

WINDOW_S = 8
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE  # 128 000
N_FFT = 400
HOP = 160
N_MELS = 80
N_FRAMES = WINDOW_SAMPLES // HOP  # 800
MEL_FLOOR = 1e-10
NORM_EPS = 1e-7

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


# ------------------------------------------------------------------------------------------ features


def _hz_to_mel(hz: F64) -> F64:
    """Slaney mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above."""
    mel = 3.0 * hz / 200.0
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, mel)


def _mel_to_hz(mel: F64) -> F64:
    hz = 200.0 * mel / 3.0
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, hz)


@functools.cache
def mel_filters(n_mels: int = N_MELS, n_fft: int = N_FFT, sample_rate: int = SAMPLE_RATE) -> F64:
    """[n_mels, n_fft // 2 + 1] triangular filters on the Slaney mel scale from 0 Hz to Nyquist, each
    scaled to unit area (``norm="slaney"``): whisper's filter bank, computed rather than shipped."""
    fft_hz = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    edges = _mel_to_hz(
        np.linspace(_hz_to_mel(np.array(0.0)), _hz_to_mel(np.array(sample_rate / 2)), n_mels + 2)
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]  # [n_mels + 2, bins]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    bank *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    bank.setflags(write=False)
    return bank


@functools.cache
def _hann() -> F64:
    """Periodic Hann window of N_FFT samples (torch.hann_window / scipy's ``sym=False``)."""
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(N_FFT) / N_FFT)
    w.setflags(write=False)
    return w


def fit_window(audio: F32) -> F32:
    """The last ``WINDOW_SAMPLES`` of ``audio``, zero-padded at the start when shorter."""
    if len(audio) >= WINDOW_SAMPLES:
        return np.ascontiguousarray(audio[-WINDOW_SAMPLES:], dtype=np.float32)
    out = np.zeros(WINDOW_SAMPLES, np.float32)
    if len(audio):
        out[-len(audio) :] = audio
    return out


def log_mel(window: F32, lead: int = 0) -> F32:
    """Whisper log-mel features [N_MELS, N_FRAMES] of exactly ``WINDOW_SAMPLES`` float samples, normalised
    to zero mean and unit variance first (transformers' ``do_normalize=True``).

    ``lead``: how many leading samples are known to be zero padding. Every STFT frame inside that stretch
    sees the same constant, so its spectrum is computed once and repeated (the same numbers, less work for
    a short utterance)."""
    if window.shape != (WINDOW_SAMPLES,):
        raise ValueError(f"turn_end: need {WINDOW_SAMPLES} samples (got shape {window.shape})")
    x = window.astype(np.float32, copy=False)
    x = (x - x.mean()) / np.sqrt(x.var() + NORM_EPS)  # float32, as the reference does
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:N_FRAMES]  # the 801st is dropped
    # frame k covers samples [HOP*k - N_FFT/2, HOP*k + N_FFT/2) of x, reflected at the start
    same = min(N_FRAMES, (lead - N_FFT // 2) // HOP + 1) if lead > N_FFT // 2 else 0
    first = max(0, same - 1)  # the last constant frame stands for all of them
    spec = np.fft.rfft(frames[first:] * _hann(), axis=-1)
    power = spec.real**2 + spec.imag**2  # [frames, 201]
    mel = np.empty((N_MELS, N_FRAMES), np.float64)
    mel[:, first:] = np.log10(np.maximum(mel_filters() @ power.T, MEL_FLOOR))
    mel[:, :first] = mel[:, first : first + 1]
    mel = np.maximum(mel, mel.max() - 8.0)
    out: F32 = ((mel + 4.0) / 4.0).astype(np.float32)
    return out


def features(audio: Pcm) -> F32:
    """16 kHz int16 utterance → the model's input [1, N_MELS, N_FRAMES] (last 8 s, padded at the start)."""
    window = fit_window(audio.astype(np.float32) / 32768.0)
    out: F32 = log_mel(window, lead=WINDOW_SAMPLES - len(audio))[None]
    return out


# ------------------------------------------------------------------------------------------ engine


@dataclass(frozen=True, slots=True)
class SmartTurnSettings:
    """How the model is run. Not a daemon config section: measured, it does not separate finished from
    unfinished sentences well enough to end or hold a turn (README, ``bench turn-end``); the daemon uses
    the words (``core/endofturn.py``). Kept for the bench and for a re-measure on human recordings."""

    model: str = "smart-turn-v3.2"  # a manifest model name or a path to a Smart Turn v3 .onnx
    threshold: float = 0.5  # probability at or above which the turn counts as complete
    threads: int = 1


class SmartTurnDetector:
    """``TurnEndDetector`` on Smart Turn v3.2 (onnxruntime, ``threads`` intra-op threads).
    Loads and warms up in the constructor (~0.2 s); one call is ~feature extraction + one 8 s whisper-tiny
    encoder pass. Used by one thread at a time."""

    def __init__(self, cfg: SmartTurnSettings, models_dir: Path | None = None) -> None:
        import onnxruntime as ort  # lazy: heavy native runtime

        self.threshold = cfg.threshold
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = cfg.threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        t0 = time.monotonic()
        self.path = registry.resolve(cfg.model, models_dir)
        self._session: Any = ort.InferenceSession(
            str(self.path), sess_options=opts, providers=["CPUExecutionProvider"]
        )
        inputs = self._session.get_inputs()
        expected = ["input_features", N_MELS, N_FRAMES]
        if len(inputs) != 1 or [inputs[0].name, *inputs[0].shape[1:]] != expected:
            shapes = [(i.name, i.shape) for i in inputs]
            raise ValueError(f"turn_end: {self.path} is not a Smart Turn v3 model (inputs {shapes})")
        self.complete(np.zeros(SAMPLE_RATE, np.int16))  # warm-up: first run allocates and plans
        log.info(
            "turn_end: %s, %d thread(s), threshold %.2f, loaded in %.0f ms",
            self.path.name,
            cfg.threads,
            cfg.threshold,
            (time.monotonic() - t0) * 1000,
        )

    def complete(self, audio: Pcm) -> float:
        """P(the user has finished their turn) from 16 kHz int16 audio of the utterance so far (its speech
        and the silence after it; only the last 8 s are used)."""
        (out,) = self._session.run(None, {"input_features": features(audio)})
        return float(np.asarray(out).reshape(-1)[0])

    def is_complete(self, audio: Pcm) -> bool:
        """``complete(audio) >= threshold``."""
        return self.complete(audio) >= self.threshold
