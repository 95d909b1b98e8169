"""Spoken test material made on the spot: Piper and espeak-ng speech, silence, noise, mixing at an SNR,
and clips assembled from parts with the sample offset of every part recorded.

Used by the tests, the benchmarks and ``make demo`` (no recorded audio ships with the project).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.audio.resample import resample
from edge_voice.audio.wavio import read_wav
from edge_voice.core.messages import SAMPLE_RATE, Pcm


@functools.lru_cache(maxsize=2)
def _piper_voice(model: str) -> Any:
    from piper import PiperVoice  # lazy: onnxruntime + espeak data

    from edge_voice.models import registry

    path = registry.resolve(model)
    return PiperVoice.load(path, config_path=f"{path}.json")


def piper_speech(
    text: str, length_scale: float = 1.0, voice: str = "piper-joe", seed_noise: bool = False
) -> Pcm:
    """Deterministic Piper speech at 16 kHz (noise 0 unless ``seed_noise``)."""
    from piper import SynthesisConfig

    v = _piper_voice(voice)
    syn = SynthesisConfig(
        length_scale=length_scale,
        noise_scale=0.667 if seed_noise else 0.0,
        noise_w_scale=0.8 if seed_noise else 0.0,
    )
    parts = [c.audio_int16_array for c in v.synthesize(text, syn_config=syn)]
    pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
    return resample(pcm.astype(np.int16), int(v.config.sample_rate), SAMPLE_RATE)


ESPEAK_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+m3")


def espeak_speech(
    text: str, voice: str = "en-us", words_per_minute: int = 165, pitch: int | None = None
) -> Pcm:
    """espeak-ng speech at 16 kHz (Debian package ``espeak-ng``); ``pitch`` 0–99 (espeak's default 50).
    The text goes through stdin: a text starting with "-" is never read as an option, and a long one
    is not limited by the command line."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng; `make setup` does it)")
    args = [exe, "-v", voice, "-s", str(words_per_minute)]
    if pitch is not None:
        args += ["-p", str(pitch)]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "s.wav"
        subprocess.run(
            [*args, "-w", str(out), "--stdin"],
            input=text.encode(),
            check=True,
            capture_output=True,
            timeout=300,
        )
        pcm, rate = read_wav(out)
    return resample(pcm, rate, SAMPLE_RATE)


def silence(ms: int) -> Pcm:
    return np.zeros(SAMPLE_RATE * ms // 1000, np.int16)


def noise(ms: int, dbfs: float = -50.0, seed: int = 0, kind: str = "white") -> Pcm:
    """Gaussian noise at ``dbfs`` RMS; ``kind="pink"`` for a rumble-like 1/f spectrum."""
    rng = np.random.default_rng(seed)
    n = SAMPLE_RATE * ms // 1000
    x = rng.standard_normal(n)
    if kind == "pink" and n > 0:
        spec = np.fft.rfft(x)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        x = np.fft.irfft(spec / np.sqrt(f), n)
    rms = float(np.sqrt(np.mean(x**2))) if n else 1.0
    scaled = x / max(rms, 1e-12) * 32768.0 * 10 ** (dbfs / 20)
    return np.clip(np.round(scaled), -32768, 32767).astype(np.int16)


def rms_dbfs(pcm: Pcm) -> float:
    if len(pcm) == 0:
        return -120.0
    rms = float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))
    return float(20 * np.log10(max(rms, 1e-9) / 32768.0))


def mix_at_snr(speech: Pcm, snr_db: float, seed: int = 0, kind: str = "white") -> Pcm:
    """Add noise so that speech power / noise power = ``snr_db`` (speech power over its voiced part)."""
    x = speech.astype(np.float64)
    voiced = x[np.abs(x) > 0.02 * 32768] if np.any(np.abs(x) > 0.02 * 32768) else x
    p_speech = float(np.mean(voiced**2)) if len(voiced) else 0.0
    n = noise(len(speech) * 1000 // SAMPLE_RATE + 1, 0.0, seed, kind)[: len(speech)].astype(np.float64)
    p_noise = float(np.mean(n**2)) or 1.0
    n *= np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10)))
    return np.clip(np.round(x + n), -32768, 32767).astype(np.int16)


@dataclass(frozen=True, slots=True)
class Part:
    label: str
    start_sample: int
    end_sample: int


@dataclass(frozen=True, slots=True, eq=False)
class Clip:
    pcm: Pcm
    parts: tuple[Part, ...]

    def part(self, label: str) -> Part:
        return next(p for p in self.parts if p.label == label)


def compose(segments: Sequence[tuple[str, Pcm]], floor_dbfs: float | None = -60.0, seed: int = 1) -> Clip:
    """Concatenate labelled segments; optional low noise floor so the stream is not digital silence."""
    parts, pos, arrays = [], 0, []
    for label, pcm in segments:
        parts.append(Part(label, pos, pos + len(pcm)))
        arrays.append(pcm)
        pos += len(pcm)
    pcm = np.concatenate(arrays) if arrays else np.zeros(0, np.int16)
    if floor_dbfs is not None and len(pcm):
        pcm = np.clip(
            pcm.astype(np.int32) + noise(len(pcm) * 1000 // SAMPLE_RATE + 1, floor_dbfs, seed)[: len(pcm)],
            -32768,
            32767,
        ).astype(np.int16)
    return Clip(pcm, tuple(parts))


def voiced_bounds(pcm: Pcm, threshold_dbfs: float = -40.0, win: int = 160) -> tuple[int, int]:
    """First and last sample of the part louder than ``threshold_dbfs`` (10 ms windows)."""
    n = len(pcm) // win
    if n == 0:
        return 0, 0
    frames = pcm[: n * win].astype(np.float64).reshape(n, win)
    level = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) / 32768.0 + 1e-12)
    loud = np.nonzero(level > threshold_dbfs)[0]
    if len(loud) == 0:
        return 0, 0
    return int(loud[0] * win), int((loud[-1] + 1) * win)
