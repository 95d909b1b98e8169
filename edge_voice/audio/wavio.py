"""WAV read/write. Input of any rate or channel count is mixed to mono and resampled to 16 kHz here;
anything that is not 8/16/24/32-bit PCM is rejected with a clear message."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from edge_voice.audio.resample import resample
from edge_voice.messages import SAMPLE_RATE, Pcm


class AudioFormatError(ValueError):
    """A WAV file cannot be used; the message says why."""


def read_wav(path: Path | str) -> tuple[Pcm, int]:
    """Return (mono int16 samples, rate) exactly as stored (channels averaged)."""
    try:
        with wave.open(str(path), "rb") as w:
            channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except FileNotFoundError:
        raise AudioFormatError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from None
    if channels < 1 or rate < 4000:
        raise AudioFormatError(f"{path}: unusable format ({channels} channels, {rate} Hz)")
    if width == 1:
        data = (np.frombuffer(raw, np.uint8).astype(np.int32) - 128) << 8
    elif width == 2:
        data = np.frombuffer(raw, "<i2").astype(np.int32)
    elif width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        data = ((b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24) >> 16).astype(np.int32)
    elif width == 4:
        data = np.frombuffer(raw, "<i4").astype(np.int64) >> 16
    else:
        raise AudioFormatError(f"{path}: {8 * width}-bit samples are not supported")
    usable = len(data) - len(data) % channels
    mono = data[:usable].reshape(-1, channels).mean(axis=1)
    return np.clip(np.round(mono), -32768, 32767).astype(np.int16), rate


def read_wav_16k(path: Path | str) -> Pcm:
    pcm, rate = read_wav(path)
    return resample(pcm, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else pcm


def write_wav(path: Path | str, pcm: Pcm, rate: int = SAMPLE_RATE) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(pcm, dtype="<i2").tobytes())
