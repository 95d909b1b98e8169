"""WAV read/write through libsndfile (``soundfile``). Input of any rate or channel count is mixed to mono
and resampled to 16 kHz here.

libsndfile decodes every WAV a user is likely to have: 8/16/24/32-bit PCM, 32/64-bit float, plain or
``WAVE_FORMAT_EXTENSIBLE``, A-law/μ-law, IMA/MS ADPCM, GSM 6.10, big-endian RIFX and RF64. Its own error
texts are terse ("Format not recognised." for an empty file and for a directory alike), so this module
checks what it can name first (no file, unreadable, empty, not RIFF/WAVE) and words libsndfile's
refusals from the fmt chunk. Anything unusable is an ``AudioFormatError`` naming the file and problem.
"""

from __future__ import annotations

import logging
import re
import struct
from pathlib import Path

import numpy as np
import soundfile as sf

from edge_voice.audio.resample import resample
from edge_voice.core.messages import SAMPLE_RATE, Pcm

log = logging.getLogger(__name__)

PCM, FLOAT, EXTENSIBLE = 0x0001, 0x0003, 0xFFFE
_ENCODINGS = {
    0x0002: "MS ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MP3",
}
MIN_RATE_HZ, MAX_RATE_HZ = 4000, 384_000  # a rate outside this is a broken header, not audio
CONVERT_HINT = "convert it with e.g. `sox in.wav -b 16 out.wav`"
_HEAD_BYTES = 4096  # enough to find the fmt chunk behind the usual JUNK/LIST/bext chunks
_BLOCK_FRAMES = 1 << 18  # 16 s at 16 kHz per read
_FLOATS = {"FLOAT", "DOUBLE"}  # read as float: libsndfile's float → int conversion wraps past full scale


class AudioFormatError(ValueError):
    """A WAV file cannot be used; the message says which file and why."""


def _head(path: Path | str) -> bytes:
    """The first bytes, after the checks libsndfile cannot word: missing, unreadable, empty, not WAV."""
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD_BYTES)
    except FileNotFoundError:
        raise AudioFormatError(f"{path}: no such file") from None
    except OSError as exc:  # a directory, no permission, an I/O error
        raise AudioFormatError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(head) < 12:
        raise AudioFormatError(
            f"{path}: not a WAV file ({'empty' if not head else 'too short for a header'})"
        )
    if head[:4] not in (b"RIFF", b"RIFX", b"RF64") or head[8:12] != b"WAVE":
        raise AudioFormatError(f"{path}: not a WAV file (no RIFF/WAVE header)")
    return head


def _why(head: bytes, exc: sf.LibsndfileError) -> str:
    """Why libsndfile refused the file, from the fmt chunk when it tells more than libsndfile's text."""
    said = str(exc).split("': ", 1)[-1].rstrip(".")  # "Error opening '<path>': <reason>."
    at = head.find(b"fmt ", 12)
    if at < 0 or at + 8 > len(head):
        return f"no fmt chunk (file cut short?): {said}"
    endian = ">" if head[:4] == b"RIFX" else "<"
    size = struct.unpack(endian + "I", head[at + 4 : at + 8])[0]
    fmt = head[at + 8 : at + 8 + min(size, 40)]
    if len(fmt) < 16:
        return f"fmt chunk too short ({len(fmt)} bytes)"
    tag, channels, _, _, _, bits = struct.unpack(endian + "HHIIHH", fmt[:16])
    if tag == EXTENSIBLE and len(fmt) >= 26:
        tag = struct.unpack(endian + "H", fmt[24:26])[0]  # the SubFormat GUID starts with the format code
    if channels == 0:
        return "unusable channel count 0"
    if tag == FLOAT and bits not in (32, 64):
        return f"{bits}-bit float samples are not supported; {CONVERT_HINT}"
    if tag == PCM and bits > 32:
        return f"{bits}-bit PCM samples are not supported; {CONVERT_HINT}"
    if tag in _ENCODINGS or (tag not in (PCM, FLOAT) and "unimplemented" in said):
        name = _ENCODINGS.get(tag, f"format 0x{tag:04x}")
        return f"cannot decode its {name} data ({said}); {CONVERT_HINT}"
    if "No 'data' chunk" in said:
        return "no data chunk (file cut short?)"
    return f"{said}; {CONVERT_HINT}"


def _warn_if_cut(path: Path | str, log_text: str) -> None:
    """libsndfile reads a data chunk longer than the file (a recording cut off, a streamed header with size
    0xFFFFFFFF) to the file's end and notes it in its header log: say so, as the samples are fewer."""
    m = re.search(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", log_text, re.MULTILINE)
    if m:
        log.warning("%s: data chunk says %s bytes, the file holds %s; using those", path, *m.groups())


def _read_all(f: sf.SoundFile, dtype: str) -> np.ndarray:
    """Every frame, in blocks: some decoders (GSM 6.10) cannot seek, so libsndfile will not read "all"
    in one call, and a header's frame count is not trusted for an allocation."""
    blocks = []
    while True:
        block = f.read(_BLOCK_FRAMES, dtype=dtype, always_2d=True)
        blocks.append(block)
        if len(block) < _BLOCK_FRAMES:
            return np.concatenate(blocks)


def read_wav(path: Path | str) -> tuple[Pcm, int]:
    """Return (mono int16 samples, rate) exactly as stored (channels averaged)."""
    head = _head(path)
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            if f.subtype in _FLOATS:
                x = _read_all(f, "float64")
                data = np.clip(np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0) * 32767.0
            else:  # every integer format as left-justified int32: its top 16 bits are the int16 sample
                data = _read_all(f, "int32") >> 16
            _warn_if_cut(path, f.extra_info)
    except sf.LibsndfileError as exc:
        raise AudioFormatError(f"{path}: {_why(head, exc)}") from None
    except (sf.SoundFileError, RuntimeError, ValueError, OverflowError, MemoryError) as exc:
        raise AudioFormatError(f"{path}: cannot decode ({type(exc).__name__}: {exc})") from None
    if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
        raise AudioFormatError(f"{path}: sample rate {rate} Hz is outside {MIN_RATE_HZ}-{MAX_RATE_HZ} Hz")
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    return np.clip(np.round(mono), -32768, 32767).astype(np.int16), rate


def read_wav_16k(path: Path | str) -> Pcm:
    pcm, rate = read_wav(path)
    return resample(pcm, rate, SAMPLE_RATE) if rate != SAMPLE_RATE else pcm


def write_wav(path: Path | str, pcm: Pcm, rate: int = SAMPLE_RATE) -> None:
    """16-bit mono PCM in a plain 44-byte-header WAV (what every tool reads)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(pcm, dtype=np.int16), rate, subtype="PCM_16", format="WAV")
