"""The wake-word bench's audio, made offline: hours of negatives and a varied set of positives.

Nothing here is recorded or downloaded at bench time except what Debian packages ship: speech comes from
espeak-ng (many voices, variants, speeds, pitches) and the project's Piper voice (speeds, noise seeds,
resampled pitch), reading text that is on any Debian machine (licence texts, manual pages, Python
docstrings), plus confusable phrases ("hey Travis", "Jarvis" inside sentences). Music and effects come
from game data packages fetched with ``apt-get download`` and unpacked into the cache (never installed).
Segments are deterministic recipes; each is written once as a 16 kHz WAV named by a hash of its recipe
under ``~/.cache/edge-voice/wake-corpus`` so a rerun only reads them. Large, so never committed.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import logging
import os
import random
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.core.messages import SAMPLE_RATE, Pcm

log = logging.getLogger(__name__)

VERSION = 2  # bump when a recipe's meaning changes: old cached segments are then not reused
# Per-kind recipe revisions (part of the segment's cache key). 3: mixes are espeak-ng only — Piper ran at
# 2× real time on the shared, loaded box, so it reads only its own ("piper") segments.
KIND_VERSION = {"conversation": 3, "tv": 3, "confusable": 3}
PIPER_IN_MIXES = 0.0
SEGMENT_S = 30.0
# Debian packages whose music/effects feed the negatives (small: ≈ 45 MB of .debs in all).
AUDIO_DEBS = ("extremetuxracer-data", "chromium-bsu-data", "lbreakout2-data", "sound-theme-freedesktop")
ALSA_SOUNDS = Path("/usr/share/sounds/alsa")  # alsa-utils: real human voice prompts ("front left")

WAKE_PHRASES: dict[str, tuple[str, ...]] = {
    "hey_jarvis": ("Hey Jarvis", "Hey Jarvis,"),
    "hey_mycroft": ("Hey Mycroft", "Hey Mycroft,"),
    "alexa": ("Alexa", "Alexa,"),
    "hey_rhasspy": ("Hey Rhasspy", "Hey Raspy,"),
    "okay_nabu": ("Okay Nabu", "Okay Nahboo,"),
}
COMMANDS = ("turn on the kitchen light", "what time is it", "set a timer for five minutes", "stop")

# Near misses of the shipped wake words, alone and inside sentences (the usual sources of false wakes).
CONFUSABLES = (
    "Hey Travis, can you pass me the salt?",
    "Hey jar, where did you put the lid?",
    "I told Jarvis about the meeting yesterday.",
    "Jarvis Cocker sang with Pulp in the nineties.",
    "They drove down to Jervis Bay for the weekend.",
    "The conference is at the Javits Center in New York.",
    "Hey, Harvey's coming over tonight.",
    "Hey service desk, my password expired again.",
    "Is that Mister Jarvis from accounts?",
    "Hey Marcus, have you seen my charger?",
    "Hey jazz fans, welcome back to the show.",
    "A jar of jam and a jar of honey.",
    "Hey there, nice to meet you.",
    "Hey Mike, grab the microphone.",
    "Microsoft released an update today.",
    "My craft project is almost done.",
    "Alex, say hello to your aunt.",
    "Alexandra and Alexis went to the lake.",
    "Alexander the Great conquered Persia.",
    "I bought a Lexus last spring.",
    "Hey, raspberry pie for dessert?",
    "Rhapsody in blue is playing on the radio.",
    "Okay, now you try it.",
    "Okay, but not before lunch.",
    "Stop it, that tickles!",
    "The bus stop is around the corner.",
    "Hey Jay, is Vis coming too?",
    "Hey, are you serious?",
    "Travis, hey, over here!",
    "Jarred vegetables keep for a year.",
)

ESPEAK_VOICES = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
ESPEAK_VARIANTS = ("", "+f1", "+f2", "+f3", "+f4", "+m1", "+m2", "+m3", "+m4", "+klatt", "+klatt2", "+croak")


def cache_dir() -> Path:
    from edge_voice import cache

    return cache.cache_dir("wake-corpus")


# ------------------------------------------------------------------------------------------- text


def _clean_sentences(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text)
    out = []
    for s in re.split(r"(?<=[.!?;:])\s+", text):
        s = re.sub(r"[^A-Za-z0-9 ,.'?!-]", " ", s)
        s = re.sub(r"\s+", " ", s).strip()
        words = s.split()
        if 5 <= len(words) <= 40 and sum(w.isalpha() for w in words) >= 0.7 * len(words):
            out.append(s)
    return out


def _man_text(path: Path) -> str:
    try:
        with gzip.open(path, "rt", errors="replace") as f:
            raw = f.read(60000)
    except (OSError, EOFError):
        return ""
    lines = [ln for ln in raw.splitlines() if not ln.startswith((".", "'"))]
    return re.sub(r"\\f[A-Z]|\\\(..|\\[-&e|^]|\\.", " ", "\n".join(lines))


@functools.lru_cache(maxsize=1)
def text_pool() -> tuple[str, ...]:
    """Sentences from text on any Debian box: licences, manual pages, Python docstrings (sorted, so
    the same machine gives the same pool)."""
    sentences: list[str] = []
    lic = Path("/usr/share/common-licenses")
    for p in sorted(lic.glob("*")) if lic.is_dir() else []:
        if p.is_file():
            sentences += _clean_sentences(p.read_text(errors="replace"))
    man = Path("/usr/share/man/man1")
    pages = sorted(man.glob("*.1.gz")) if man.is_dir() else []
    for p in pages[:: max(1, len(pages) // 400)]:
        sentences += _clean_sentences(_man_text(p))
    import importlib

    for name in (
        "os",
        "json",
        "pathlib",
        "asyncio",
        "collections",
        "itertools",
        "logging",
        "email",
        "argparse",
        "subprocess",
        "threading",
        "random",
        "statistics",
        "datetime",
        "string",
        "textwrap",
        "http.client",
        "urllib.request",
        "sqlite3",
        "csv",
        "zipfile",
        "tarfile",
    ):
        try:
            mod = importlib.import_module(name)
        except ImportError:
            continue
        for attr in sorted(dir(mod)):
            doc = getattr(getattr(mod, attr, None), "__doc__", None)
            if isinstance(doc, str):
                sentences += _clean_sentences(doc)
    seen: set[str] = set()
    uniq = [s for s in sentences if not (s in seen or seen.add(s))]  # type: ignore[func-returns-value]
    if not uniq:
        uniq = [c for c in CONFUSABLES]
    return tuple(uniq)


def _read_text(rng: random.Random, words: int, confusable_every: int) -> str:
    """About ``words`` words of running text, with a confusable phrase every ``confusable_every``
    sentences (0: none)."""
    pool = text_pool()
    out: list[str] = []
    n = 0
    k = 0
    while n < words:
        k += 1
        s = rng.choice(CONFUSABLES if confusable_every and k % confusable_every == 0 else pool)
        out.append(s)
        n += len(s.split())
    return " ".join(out)


# ------------------------------------------------------------------------------------------ audio


def espeak(text: str, voice: str, wpm: int, pitch: int) -> Pcm:
    from edge_voice.audio.clips import espeak_speech

    return espeak_speech(text, voice, wpm, pitch)


def piper(text: str, length_scale: float, pitch: float, seed: int) -> Pcm:
    """The Piper voice with sampling noise on (each call a slightly different rendition: the noise is
    drawn inside the ONNX graph, so ``seed`` only names the recipe) and a crude pitch/speed shift by
    resampling (``pitch`` > 1 = higher and faster)."""
    from piper import SynthesisConfig

    from edge_voice.audio.clips import _piper_voice
    from edge_voice.audio.resample import resample

    v = _piper_voice("piper-joe")
    syn = SynthesisConfig(length_scale=length_scale, noise_scale=0.667, noise_w_scale=0.8)
    parts = [c.audio_int16_array for c in v.synthesize(text, syn_config=syn)]
    pcm = np.concatenate(parts) if parts else np.zeros(0, np.int16)
    rate = int(v.config.sample_rate)
    return resample(pcm.astype(np.int16), round(rate * pitch), SAMPLE_RATE)


def _f(pcm: Pcm) -> np.ndarray:
    return pcm.astype(np.float64)


def _i16(x: np.ndarray) -> Pcm:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def _rms(x: np.ndarray) -> float:
    loud = x[np.abs(x) > 0.02 * 32768]
    y = loud if len(loud) > len(x) // 20 else x
    return float(np.sqrt(np.mean(y**2))) if len(y) else 0.0


def set_level(pcm: Pcm, dbfs: float) -> Pcm:
    x = _f(pcm)
    r = _rms(x)
    return _i16(x * (32768.0 * 10 ** (dbfs / 20) / r)) if r > 0 else pcm


def reverb(pcm: Pcm, rt60_s: float, wet: float, seed: int) -> Pcm:
    """A synthetic room: exponentially decaying noise as the impulse response (RT60 ``rt60_s``), mixed
    ``wet`` with the dry signal, level kept."""
    rng = np.random.default_rng(seed)
    n = int(rt60_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60_s)
    ir[0] = 0.0
    ir /= np.sqrt(np.sum(ir**2))
    x = _f(pcm)
    m = len(x) + n - 1
    size = 1 << (m - 1).bit_length()
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(ir, size), size)[: len(x)]
    out = (1 - wet) * x + wet * y
    return _i16(out * (_rms(x) / max(_rms(out), 1e-9)))


def noise(n: int, kind: str, seed: int) -> np.ndarray:
    """Unit-RMS noise: white, pink (1/f), brown (1/f²) or babble-like (speech-shaped, modulated)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(max(n, 1))
    if kind in ("pink", "brown", "hum"):
        spec = np.fft.rfft(x)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0
        spec /= np.sqrt(f) if kind == "pink" else f
        x = np.fft.irfft(spec, len(x))
    if kind == "hum":  # a fan or fridge: mains hum and harmonics over brown noise
        t = np.arange(len(x)) / SAMPLE_RATE
        x = x / np.std(x) + sum(np.sin(2 * np.pi * 50 * k * t) / k for k in (1, 2, 3, 5))
    return x[:n] / max(float(np.std(x[:n])) if n else 1.0, 1e-12)


def add_noise(pcm: Pcm, snr_db: float, kind: str, seed: int) -> Pcm:
    x = _f(pcm)
    nz = noise(len(x), kind, seed) * _rms(x) / 10 ** (snr_db / 20)
    return _i16(x + nz)


def mix_under(speech: Pcm, bed: Pcm, snr_db: float) -> Pcm:
    """``speech`` over ``bed`` (looped to length) at speech-to-bed ratio ``snr_db``."""
    if len(bed) == 0:
        return speech
    reps = -(-len(speech) // len(bed))
    b = np.tile(_f(bed), reps)[: len(speech)]
    s = _f(speech)
    b *= _rms(s) / max(_rms(b), 1e-9) / 10 ** (snr_db / 20)
    return _i16(s + b)


def _audio_root() -> Path:
    return cache_dir() / "debs" / "x"


def ensure_audio_debs() -> Path:
    """Fetch and unpack the music/effects packages into the cache (``apt-get download``: nothing is
    installed); a no-op when already there or when apt is not available (then no music is used)."""
    root = _audio_root()
    if root.is_dir() and any(root.rglob("*.ogg")):
        return root
    debs = cache_dir() / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    if shutil.which("apt-get") and shutil.which("dpkg-deb"):
        subprocess.run(["apt-get", "download", *AUDIO_DEBS], cwd=debs, capture_output=True, timeout=600)
        for deb in sorted(debs.glob("*.deb")):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], capture_output=True, timeout=300)
    return root


@functools.lru_cache(maxsize=1)
def _sound_files() -> tuple[tuple[Path, ...], tuple[Path, ...], tuple[Path, ...]]:
    """(music tracks, short effects, human voice prompts)."""
    root = _audio_root()
    music = sorted(root.rglob("music/*.ogg")) + sorted(root.rglob("wav/music_*.wav"))
    effects = [p for p in sorted(root.rglob("*")) if p.suffix in (".wav", ".ogg", ".oga")]
    effects = [p for p in effects if p not in music]
    voices = sorted(ALSA_SOUNDS.glob("*.wav")) if ALSA_SOUNDS.is_dir() else []
    voices += [p for p in effects if p.stem in ("verygood", "excellent", "wontgiveup")]
    return tuple(music), tuple(effects), tuple(voices)


@functools.lru_cache(maxsize=64)
def _load(path: Path) -> Pcm:
    import soundfile as sf

    from edge_voice.audio.resample import resample

    data, rate = sf.read(str(path), dtype="int16", always_2d=True)
    mono = data.astype(np.int32).mean(axis=1).astype(np.int16)
    return resample(mono, int(rate), SAMPLE_RATE)


def _music(rng: random.Random, seconds: float) -> Pcm:
    music = _sound_files()[0]
    if not music:  # no apt: a synthetic bed (chords of sines) so the recipe still has a bed
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        f0 = rng.choice((110.0, 146.8, 196.0))
        x = sum(np.sin(2 * np.pi * f0 * r * t) for r in (1.0, 1.26, 1.5, 2.0))
        return _i16(x / 4 * 6000 * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t) ** 2))
    pcm = _load(rng.choice(music))
    n = int(seconds * SAMPLE_RATE)
    start = rng.randrange(max(1, len(pcm) - n))
    out = pcm[start : start + n]
    if len(out) < n:
        out = np.tile(pcm, -(-n // max(len(pcm), 1)))[:n]
    return out


# ---------------------------------------------------------------------------------------- recipes


@dataclass(frozen=True, slots=True)
class Segment:
    kind: str  # espeak, piper, conversation, tv, music, effects, confusable, human
    seed: int

    @property
    def key(self) -> str:
        rev = KIND_VERSION.get(self.kind, VERSION)
        return hashlib.sha256(f"v{rev}:{self.kind}:{self.seed}".encode()).hexdigest()[:16]

    @property
    def path(self) -> Path:
        return cache_dir() / "neg" / f"{self.kind}-{self.key}.wav"


def _espeak_voice(rng: random.Random) -> tuple[str, int, int]:
    return (
        rng.choice(ESPEAK_VOICES) + rng.choice(ESPEAK_VARIANTS),
        rng.randrange(120, 230),
        rng.randrange(20, 80),
    )


def _speech(rng: random.Random, text: str, piper_share: float) -> Pcm:
    if rng.random() < piper_share:
        return piper(
            text,
            rng.choice((0.8, 0.9, 1.0, 1.15, 1.3)),
            rng.choice((0.9, 0.95, 1.0, 1.06, 1.12)),
            rng.randrange(1 << 30),
        )
    v, wpm, pitch = _espeak_voice(rng)
    return espeak(text, v, wpm, pitch)


def _condition(rng: random.Random, pcm: Pcm) -> Pcm:
    """Room and noise: dry, a small or large room, and noise at 5–30 dB SNR; played at −35…−15 dBFS."""
    r = rng.random()
    if r < 0.4:
        pcm = reverb(pcm, rng.uniform(0.2, 0.9), rng.uniform(0.3, 0.8), rng.randrange(1 << 30))
    if rng.random() < 0.5:
        pcm = add_noise(
            pcm, rng.uniform(5, 30), rng.choice(("white", "pink", "brown", "hum")), rng.randrange(1 << 30)
        )
    return set_level(pcm, rng.uniform(-35, -15))


def _fit(pcm: Pcm, seconds: float) -> Pcm:
    n = int(seconds * SAMPLE_RATE)
    return pcm[:n] if len(pcm) >= n else np.concatenate([pcm, np.zeros(n - len(pcm), np.int16)])


def render(seg: Segment) -> Pcm:
    """One ~30 s negative segment from its recipe (deterministic but for Piper's noise seed, which is
    fixed too)."""
    rng = random.Random(f"{seg.kind}:{seg.seed}")
    words = int(SEGMENT_S * 2.6)
    if seg.kind in ("espeak", "piper"):
        text = _read_text(rng, words, confusable_every=rng.choice((0, 6, 12)))
        pcm = _speech(rng, text, 1.0 if seg.kind == "piper" else 0.0)
        return _condition(rng, _fit(pcm, SEGMENT_S))
    if seg.kind == "confusable":
        parts = []
        for _ in range(8):
            parts.append(_speech(rng, rng.choice(CONFUSABLES), PIPER_IN_MIXES))
            parts.append(np.zeros(int(rng.uniform(0.3, 1.5) * SAMPLE_RATE), np.int16))
        return _condition(rng, _fit(np.concatenate(parts), SEGMENT_S))
    if seg.kind == "conversation":  # two voices taking turns, sometimes overlapping a little
        speakers = [rng.random() for _ in range(2)]
        out = np.zeros(int(SEGMENT_S * SAMPLE_RATE) + SAMPLE_RATE * 10, np.float64)
        pos = 0
        turn = 0
        while pos < SEGMENT_S * SAMPLE_RATE:
            sub = random.Random(f"{seg.seed}:{turn % 2}:{speakers[turn % 2]}")
            text = _read_text(rng, rng.randrange(4, 25), confusable_every=rng.choice((0, 0, 3)))
            sp = _f(set_level(_speech(sub, text, PIPER_IN_MIXES), rng.uniform(-30, -18)))
            sp = sp[: len(out) - pos]
            out[pos : pos + len(sp)] += sp
            pos += len(sp) + int(rng.uniform(-0.3, 0.8) * SAMPLE_RATE)
            pos = max(pos, 0)
            turn += 1
        return _condition(rng, _fit(_i16(out), SEGMENT_S))
    if seg.kind == "tv":  # speech over music (a programme, an advert): 0–15 dB speech-to-music
        text = _read_text(rng, words, confusable_every=rng.choice((0, 8)))
        sp = _fit(_speech(rng, text, PIPER_IN_MIXES), SEGMENT_S)
        mixed = mix_under(sp, _music(rng, SEGMENT_S), rng.uniform(0, 15))
        if rng.random() < 0.5:
            mixed = reverb(mixed, rng.uniform(0.2, 0.6), 0.4, rng.randrange(1 << 30))
        return set_level(mixed, rng.uniform(-32, -14))
    if seg.kind == "music":
        m = _music(rng, SEGMENT_S)
        if rng.random() < 0.4:
            m = reverb(m, rng.uniform(0.2, 0.8), 0.5, rng.randrange(1 << 30))
        return set_level(_fit(m, SEGMENT_S), rng.uniform(-32, -12))
    if seg.kind == "effects":  # game effects, voice prompts and household noise
        _, effects, voices = _sound_files()
        bed = noise(
            int(SEGMENT_S * SAMPLE_RATE),
            rng.choice(("pink", "brown", "hum", "white")),
            rng.randrange(1 << 30),
        )
        out = bed * 32768 * 10 ** (rng.uniform(-60, -35) / 20)
        for _ in range(rng.randrange(6, 20)):
            pool = voices if (voices and rng.random() < 0.3) else effects
            if not pool:
                break
            e = _f(set_level(_load(rng.choice(pool)), rng.uniform(-30, -12)))[: 4 * SAMPLE_RATE]
            at = rng.randrange(max(1, len(out) - len(e)))
            out[at : at + len(e)] += e[: len(out) - at]
        return _i16(out)
    raise ValueError(f"unknown segment kind {seg.kind}")


# Share of the corpus per kind (sums to 1): read speech dominates, as in a living room with a TV.
MIX: tuple[tuple[str, float], ...] = (
    ("espeak", 0.35),
    ("piper", 0.03),  # one Piper voice, and 20× the CPU of espeak-ng per second: it is in the mixes too
    ("conversation", 0.16),
    ("tv", 0.22),
    ("confusable", 0.08),
    ("music", 0.09),
    ("effects", 0.07),
)


def plan(hours: float) -> list[Segment]:
    """The segments of a corpus of ``hours`` (a longer corpus extends a shorter one: same first
    segments)."""
    n = int(np.ceil(hours * 3600 / SEGMENT_S))
    counts = {k: 0 for k, _ in MIX}
    out: list[Segment] = []
    for _ in range(n):  # interleave kinds in proportion, so any prefix has the same mix
        kind = min(MIX, key=lambda km: (counts[km[0]] + 1) / km[1])[0]
        out.append(Segment(kind, counts[kind]))
        counts[kind] += 1
    return out


def _build_one(seg: Segment) -> tuple[str, float]:
    from edge_voice.audio.wavio import write_wav

    if not seg.path.exists():
        pcm = render(seg)
        tmp = seg.path.with_suffix(".tmp.wav")
        write_wav(tmp, pcm)
        tmp.replace(seg.path)
    return str(seg.path), SEGMENT_S


def _nice_worker() -> None:
    with contextlib.suppress(OSError):  # to nice +10 (not +10 more when started with `nice -n 10`)
        os.nice(max(0, 10 - os.nice(0)))


def build(
    segments: Sequence[Segment], jobs: int = 1, progress: Callable[[int, int], None] | None = None
) -> None:
    """Render the missing segments (``jobs`` worker processes at nice +10; 1 = in this process)."""
    (cache_dir() / "neg").mkdir(parents=True, exist_ok=True)
    if any(s.kind in ("tv", "music", "effects") for s in segments):
        ensure_audio_debs()  # fetch the packages once, before any worker starts
        _sound_files.cache_clear()
    todo = [s for s in segments if not s.path.exists()]
    if not todo:
        return
    if jobs <= 1:
        _nice_worker()
        for i, s in enumerate(todo):
            _build_one(s)
            if progress:
                progress(i + 1, len(todo))
        return
    import multiprocessing as mp

    with mp.get_context("fork").Pool(jobs, initializer=_nice_worker) as pool:
        for i, _ in enumerate(pool.imap_unordered(_build_one, todo)):
            if progress:
                progress(i + 1, len(todo))


def read_segment(seg: Segment) -> Pcm:
    from edge_voice.audio.wavio import read_wav

    pcm, _ = read_wav(seg.path)
    return pcm


def iter_negatives(segments: Sequence[Segment]) -> Iterator[tuple[Segment, Pcm]]:
    for s in segments:
        yield s, read_segment(s)


# -------------------------------------------------------------------------------------- positives


@dataclass(frozen=True, slots=True)
class Positive:
    word: str
    voice: str  # "piper ls=… p=…" or "espeak <voice> <wpm> <pitch>"
    condition: str  # clean, room, far, noise20, noise10, noise5, tv10, tv5
    pcm: Pcm  # lead-in, the phrase (+ sometimes a command), tail
    start: int  # first sample of the phrase within pcm
    end: int  # last sample of the phrase


CONDITIONS = ("clean", "room", "far", "noise20", "noise10", "noise5", "tv10", "tv5")


def _positive_voices(n_piper: int, n_espeak: int) -> list[tuple[str, Callable[[str], Pcm]]]:
    rng = random.Random("positive voices")
    out: list[tuple[str, Callable[[str], Pcm]]] = []
    for i in range(n_piper):
        ls, p = (0.85, 1.0, 1.15, 1.3)[i % 4], (1.0, 0.94, 1.07)[i % 3]
        out.append((f"piper ls={ls} p={p} s{i}", functools.partial(_piper_text, ls=ls, p=p, seed=1000 + i)))
    for i in range(n_espeak):
        v = ESPEAK_VOICES[i % len(ESPEAK_VOICES)] + ESPEAK_VARIANTS[(i * 5) % len(ESPEAK_VARIANTS)]
        wpm, pitch = rng.randrange(130, 200), rng.randrange(30, 70)
        out.append((f"espeak {v} {wpm} {pitch}", functools.partial(_espeak_text, v=v, wpm=wpm, pitch=pitch)))
    return out


def _piper_text(text: str, ls: float, p: float, seed: int) -> Pcm:
    return piper(text, ls, p, seed)


def _espeak_text(text: str, v: str, wpm: int, pitch: int) -> Pcm:
    return espeak(text, v, wpm, pitch)


def _trim(pcm: Pcm) -> Pcm:
    from edge_voice.audio.clips import voiced_bounds

    a, b = voiced_bounds(pcm, -50.0)
    return pcm[a:b] if b > a else pcm


def positives(words: Sequence[str], n_piper: int = 6, n_espeak: int = 10) -> list[Positive]:
    """Every word × voice × condition, cached as one .npz per word and voice."""
    out: list[Positive] = []
    pos_dir = cache_dir() / "pos"
    pos_dir.mkdir(parents=True, exist_ok=True)
    for word in words:
        phrases = WAKE_PHRASES.get(word, (word.replace("_", " "),))
        for vi, (vname, speak) in enumerate(_positive_voices(n_piper, n_espeak)):
            key = hashlib.sha256(f"v{VERSION}:{word}:{vname}".encode()).hexdigest()[:16]
            f = pos_dir / f"{word}-{key}.npz"
            if f.exists():
                with np.load(f) as z:
                    phrase, cmd = z["phrase"], z["cmd"]
            else:
                phrase = _trim(speak(phrases[vi % len(phrases)]))
                cmd = _trim(speak(COMMANDS[vi % len(COMMANDS)]))
                np.savez(f, phrase=phrase, cmd=cmd)
            for ci, cond in enumerate(CONDITIONS):
                rng = random.Random(f"{word}:{vname}:{cond}")
                lead = int(rng.uniform(0.5, 1.5) * SAMPLE_RATE)
                gap = int(rng.uniform(0.1, 0.4) * SAMPLE_RATE)
                with_cmd = ci % 2 == 1
                body = [np.zeros(lead, np.int16), phrase]
                if with_cmd:
                    body += [np.zeros(gap, np.int16), cmd]
                body.append(np.zeros(int(1.5 * SAMPLE_RATE), np.int16))
                pcm = np.concatenate(body)
                start, end = lead, lead + len(phrase)
                seed = rng.randrange(1 << 30)
                if cond == "room":
                    pcm = reverb(pcm, 0.4, 0.4, seed)
                elif cond == "far":
                    pcm = reverb(pcm, 0.8, 0.8, seed)
                elif cond.startswith("noise"):
                    pcm = add_noise(pcm, float(cond[5:]), rng.choice(("white", "pink", "hum")), seed)
                elif cond.startswith("tv"):
                    pcm = mix_under(pcm, _music(rng, len(pcm) / SAMPLE_RATE + 1), float(cond[2:]))
                pcm = set_level(pcm, rng.uniform(-30, -16))
                out.append(Positive(word, vname, cond, pcm, start, end))
    return out


# What an enrolling user reads besides the wake word (their "other speech": the verifier's negatives).
ENROLL_OTHER = (
    "The weather today is mild, with a light breeze from the west.",
    "Please remember to buy milk, bread and a dozen eggs on the way home.",
)
ENROLL_JITTER = ((0.95, -6, 3), (1.0, 6, -3), (1.05, 3, 0))  # (piper length ×, espeak wpm +, pitch +)


@dataclass(frozen=True, slots=True)
class Enrollment:
    """A synthetic user's ``wake enroll`` session: the wake phrase said ``len(ENROLL_JITTER)`` times —
    fresh renditions, none identical to a test clip (Piper samples anew each call; espeak-ng at other
    speeds and pitches) — dry and close to the microphone, plus ``ENROLL_OTHER`` in the same voice."""

    word: str
    voice: str
    positives: tuple[Pcm, ...]
    negatives: tuple[Pcm, ...]


def enrollments(words: Sequence[str], n_piper: int = 6, n_espeak: int = 10) -> list[Enrollment]:
    """One per word and positive voice (the voices of ``positives``), cached as one .npz each."""
    out: list[Enrollment] = []
    other: dict[tuple[str, str], Pcm] = {}  # the same sentences for every word: synthesised once
    d = cache_dir() / "enroll"
    d.mkdir(parents=True, exist_ok=True)
    for word in words:
        phrases = WAKE_PHRASES.get(word, (word.replace("_", " "),))
        for vi, (vname, speak) in enumerate(_positive_voices(n_piper, n_espeak)):
            key = hashlib.sha256(f"enroll{VERSION}:{word}:{vname}:{ENROLL_JITTER}".encode()).hexdigest()[:16]
            f = d / f"{word}-{key}.npz"
            if not f.exists():
                kw = dict(speak.keywords)  # type: ignore[attr-defined]
                pos, neg = [], []
                for j, (ls_k, wpm_d, pitch_d) in enumerate(ENROLL_JITTER):
                    text = phrases[(vi + j) % len(phrases)]
                    if "ls" in kw:
                        pcm = _piper_text(text, kw["ls"] * ls_k, kw["p"], kw["seed"] + 100 + j)
                    else:
                        pcm = _espeak_text(text, kw["v"], kw["wpm"] + wpm_d, kw["pitch"] + pitch_d)
                    lead = np.zeros(SAMPLE_RATE // 2, np.int16)
                    tail = np.zeros(SAMPLE_RATE, np.int16)
                    pos.append(set_level(np.concatenate([lead, _trim(pcm), tail]), -22.0))
                for text in ENROLL_OTHER:
                    if (vname, text) not in other:
                        other[vname, text] = set_level(_trim(speak(text)), -22.0)
                    neg.append(other[vname, text])
                arrays: dict[str, Any] = {f"p{i}": x for i, x in enumerate(pos)} | {
                    f"n{i}": x for i, x in enumerate(neg)
                }
                np.savez(f, **arrays)
            with np.load(f) as z:
                ps = tuple(z[k] for k in sorted(z.files) if k.startswith("p"))
                ns = tuple(z[k] for k in sorted(z.files) if k.startswith("n"))
            out.append(Enrollment(word, vname, ps, ns))
    return out


def describe(segments: Sequence[Segment]) -> dict[str, Any]:
    kinds: dict[str, int] = {}
    for s in segments:
        kinds[s.kind] = kinds.get(s.kind, 0) + 1
    return {
        "segments": len(segments),
        "hours": round(len(segments) * SEGMENT_S / 3600, 3),
        "seconds_by_kind": {k: v * SEGMENT_S for k, v in sorted(kinds.items())},
        "version": VERSION,
    }


def main() -> None:  # python -m edge_voice.bench.wake_corpus HOURS JOBS: build the cache only
    import sys
    import time

    logging.basicConfig(level=logging.INFO)
    hours = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    segs = plan(hours)
    t = time.monotonic()

    def prog(i: int, n: int) -> None:
        if i % 10 == 0 or i == n:
            log.info("wake corpus: %d/%d segments, %.0f s", i, n, time.monotonic() - t)

    build(segs, jobs, prog)
    print(json.dumps(describe(segs)))


if __name__ == "__main__":
    main()
