"""WAV read/write. Input of any rate or channel count is mixed to mono and resampled to 16 kHz here.

Reads 8/16/24/32-bit PCM and 32/64-bit float, plain or ``WAVE_FORMAT_EXTENSIBLE`` (what sox, ffmpeg and
most editors write above 16 bits; Python 3.11's ``wave`` module rejects it, so the RIFF chunks are parsed
here). Anything else is an ``AudioFormatError`` naming the file and the problem.
"""

from __future__ import annotations

import logging
import os
import struct
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np

from edge_voice.audio.resample import resample
from edge_voice.core.messages import SAMPLE_RATE, Pcm

log = logging.getLogger(__name__)

PCM, FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_ENCODINGS = {0x0002: "MS ADPCM", 0x0006: "A-law", 0x0007: "mu-law", 0x0011: "IMA ADPCM", 0x0055: "MP3"}
MIN_RATE_HZ, MAX_RATE_HZ = 4000, 384_000  # beyond this the resampler's kernel would not fit in memory
MAX_CHANNELS = 64
CONVERT_HINT = "convert it with e.g. `sox in.wav -b 16 out.wav`"


class AudioFormatError(ValueError):
    """A WAV file cannot be used; the message says which file and why."""


def _chunks(f: BinaryIO, path: Path | str) -> tuple[bytes, bytes]:
    """(fmt chunk, data chunk) of a RIFF/WAVE file. A data chunk longer than the file (a recording cut
    off, or a streamed header with size 0xFFFFFFFF) is read to the end of the file."""
    head = f.read(12)
    if len(head) < 12:
        raise AudioFormatError(
            f"{path}: not a WAV file ({'empty' if not head else 'too short for a header'})"
        )
    riff, _, form = struct.unpack("<4sI4s", head)
    if riff in (b"RIFX", b"RF64") and form == b"WAVE":
        kind = "big-endian (RIFX)" if riff == b"RIFX" else "RF64 (over 4 GB)"
        raise AudioFormatError(f"{path}: {kind} WAV is not supported; {CONVERT_HINT}")
    if riff != b"RIFF" or form != b"WAVE":
        raise AudioFormatError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    file_size = os.fstat(f.fileno()).st_size
    fmt: bytes | None = None
    while True:
        header = f.read(8)
        if len(header) < 8:
            raise AudioFormatError(f"{path}: no {'data' if fmt else 'fmt'} chunk (file cut short?)")
        chunk_id, size = struct.unpack("<4sI", header)
        if chunk_id == b"data":
            if fmt is None:
                raise AudioFormatError(f"{path}: data chunk before the fmt chunk")
            left = file_size - f.tell()
            if size > left:
                log.warning("%s: data chunk says %d bytes, the file holds %d; using those", path, size, left)
            return fmt, f.read(min(size, left))
        if chunk_id == b"fmt ":
            fmt = f.read(min(size, 1024))
            if len(fmt) < 16:
                raise AudioFormatError(f"{path}: fmt chunk too short ({len(fmt)} bytes)")
            f.seek(size - len(fmt), os.SEEK_CUR)
        else:
            f.seek(size, os.SEEK_CUR)
        if size % 2:  # chunks are word-aligned
            f.seek(1, os.SEEK_CUR)


def _samples(path: Path | str, tag: int, width: int, raw: bytes) -> np.ndarray:
    """Interleaved samples as int32 (PCM, scaled to 16 bits) or float64 (float, scaled to int16 range)."""
    if tag == FLOAT:
        if width not in (4, 8):
            raise AudioFormatError(f"{path}: {8 * width}-bit float samples are not supported; {CONVERT_HINT}")
        x = np.frombuffer(raw, "<f4" if width == 4 else "<f8").astype(np.float64)
        return np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0) * 32767.0
    if width == 1:  # 8-bit WAV is unsigned
        return (np.frombuffer(raw, np.uint8).astype(np.int32) - 128) << 8
    if width == 2:
        return np.frombuffer(raw, "<i2").astype(np.int32)
    if width == 3:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.uint32)
        return (b[:, 0] << 8 | b[:, 1] << 16 | b[:, 2] << 24).view(np.int32) >> 16
    if width == 4:
        return (np.frombuffer(raw, "<i4") >> 16).astype(np.int32)
    raise AudioFormatError(f"{path}: {8 * width}-bit PCM samples are not supported; {CONVERT_HINT}")


def read_wav(path: Path | str) -> tuple[Pcm, int]:
    """Return (mono int16 samples, rate) exactly as stored (channels averaged)."""
    try:
        with open(path, "rb") as f:
            fmt, raw = _chunks(f, path)
    except FileNotFoundError:
        raise AudioFormatError(f"{path}: no such file") from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise AudioFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", fmt[:16])
    if tag == EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack("<H", fmt[24:26])[0]  # the SubFormat GUID starts with the format code
    if tag not in (PCM, FLOAT):
        name = _ENCODINGS.get(tag, f"format 0x{tag:04x}")
        raise AudioFormatError(
            f"{path}: {name} encoding is not supported (PCM or float only); {CONVERT_HINT}"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioFormatError(f"{path}: unusable channel count {channels}")
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise AudioFormatError(f"{path}: sample rate {rate} Hz is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz")
    width = block_align // channels
    if block_align % channels or not 1 <= width <= 8 or bits > 8 * width:
        raise AudioFormatError(
            f"{path}: inconsistent header ({channels} channels, {block_align}-byte frames)"
        )
    whole = len(raw) - len(raw) % block_align  # a frame cut off at the end is dropped
    data = _samples(path, tag, width, raw[:whole])
    mono = data.reshape(-1, channels).mean(axis=1) if channels > 1 else data
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
