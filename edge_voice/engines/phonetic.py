"""Sounds-like for device names: whisper writes what it heard with the wrong letters ("turn on the hand"
for "the fan", "the pen", "the memory light" for "the bedroom light"), so letters alone miss names that
sound close. Here names are compared as espeak-ng phonemes with a small weighted edit distance.

The phonemes come from the espeak-ng that Piper's wheel already carries (``piper.espeakbridge``, the voice's
own phonemizer), under Piper's own lock: espeak-ng keeps one global voice, and the TTS thread phonemizes at
the same time as the loop matches. Nothing is installed for this and nothing is imported until the first
phonetic comparison; where Piper must stay out of the process (``tts.local_fallback = false``) the matcher
gets no phonemizer and names are matched by letters only.
"""

from __future__ import annotations

import importlib.util
import threading
import unicodedata
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge_voice.core.config import Config

Phonemes = tuple[str, ...]
Phonemizer = Callable[[str], str]  # English text → IPA (stress marks and spaces allowed)

MAX_TEXT = 80  # a device name, not a sentence: longer text is not phonemized (bounded input, bounded cost)
ESPEAK_VOICE = "en-us"

_own_lock = threading.Lock()


def espeak_phonemizer() -> Phonemizer:
    """Piper's espeak-ng as a phonemizer. Imports Piper on the first call (raises ImportError if absent)."""

    def phonemize(text: str) -> str:
        from piper import voice as piper_voice
        from piper.phonemize_espeak import EspeakPhonemizer

        # Piper phonemizes under this module lock with this one shared phonemizer; taking the same lock
        # keeps our set_voice/get_phonemes pair from interleaving with the TTS thread's
        lock = getattr(piper_voice, "_ESPEAK_PHONEMIZER_LOCK", _own_lock)
        with lock:
            shared = getattr(piper_voice, "_ESPEAK_PHONEMIZER", None)
            if shared is None:
                shared = EspeakPhonemizer()
                if hasattr(piper_voice, "_ESPEAK_PHONEMIZER"):
                    piper_voice._ESPEAK_PHONEMIZER = shared
            sentences = shared.phonemize(ESPEAK_VOICE, text)
        return " ".join("".join(s) for s in sentences)

    return phonemize


def for_config(cfg: Config) -> Phonemizer | None:
    """The matcher's phonemizer: Piper's espeak-ng, or None where Piper is kept out of the process
    (``tts.backend = "wyoming"`` with ``tts.local_fallback = false``, a licence choice) or not installed."""
    if cfg.tts.backend == "wyoming" and not cfg.tts.local_fallback:
        return None
    if importlib.util.find_spec("piper") is None:
        return None
    return espeak_phonemizer()


# Two-symbol units espeak writes for one sound
_UNITS = ("aɪ", "aʊ", "eɪ", "oʊ", "ɔɪ", "əʊ", "tʃ", "dʒ")
_VOWELS = frozenset("aeiouæɑɒɔəɛɪʊʌɜɐᵻɚɝɘɵʉy") | frozenset(u for u in _UNITS if u[0] not in "td")
# consonants as (place, manner, voiced): one differing feature is a near miss for whisper's ear
_CONSONANTS: dict[str, tuple[str, str, bool]] = {
    "p": ("lab", "stop", False),
    "b": ("lab", "stop", True),
    "t": ("alv", "stop", False),
    "d": ("alv", "stop", True),
    "ɾ": ("alv", "stop", True),
    "k": ("vel", "stop", False),
    "ɡ": ("vel", "stop", True),
    "g": ("vel", "stop", True),
    "ʔ": ("glot", "stop", False),
    "f": ("lab", "fric", False),
    "v": ("lab", "fric", True),
    "θ": ("dent", "fric", False),
    "ð": ("dent", "fric", True),
    "s": ("alv", "fric", False),
    "z": ("alv", "fric", True),
    "ʃ": ("post", "fric", False),
    "ʒ": ("post", "fric", True),
    "h": ("glot", "fric", False),
    "tʃ": ("post", "affr", False),
    "dʒ": ("post", "affr", True),
    "m": ("lab", "nasal", True),
    "n": ("alv", "nasal", True),
    "ŋ": ("vel", "nasal", True),
    "l": ("alv", "liquid", True),
    "ɹ": ("alv", "liquid", True),
    "r": ("alv", "liquid", True),
    "w": ("lab", "glide", True),
    "j": ("pal", "glide", True),
}
VOWEL_SUB = 0.3  # a vowel for another ("pen"/"pan"/"fun"): whisper's most common slip
VOICE_COST, PLACE_COST, MANNER_COST = 0.2, 0.35, 0.45
INDEL = 0.8  # a sound heard that was not said, or the reverse
WEAK_INDEL = 0.4  # h, schwa and a stop after a nasal ("hand"/"han") are easily lost or added


def tokens(ipa: str) -> Phonemes:
    """IPA from espeak → phoneme units: stress, length and combining marks dropped, "aɪ"/"tʃ" one unit."""
    flat = "".join(
        c
        for c in unicodedata.normalize("NFD", ipa)
        if not unicodedata.combining(c) and c not in "ˈˌːˑ.‿-_ ,;:!?'\"()"
    )
    out: list[str] = []
    i = 0
    while i < len(flat):
        if flat[i : i + 2] in _UNITS:
            out.append(flat[i : i + 2])
            i += 2
        else:
            out.append(flat[i])
            i += 1
    return tuple(out)


def _sub(a: str, b: str) -> float:
    if a == b:
        return 0.0
    va, vb = a in _VOWELS, b in _VOWELS
    if va and vb:
        return VOWEL_SUB
    if va or vb:
        return 0.7 if (a in "wj" or b in "wj") else 1.0  # a glide for a vowel ("way"/"we"), else no
    fa, fb = _CONSONANTS.get(a), _CONSONANTS.get(b)
    if fa is None or fb is None:
        return 1.0
    cost = (
        (PLACE_COST if fa[0] != fb[0] else 0.0)
        + (MANNER_COST if fa[1] != fb[1] else 0.0)
        + (VOICE_COST if fa[2] != fb[2] else 0.0)
    )
    return min(1.0, cost)


def _indel(seq: Sequence[str], i: int) -> float:
    p = seq[i]
    if p in ("h", "ə", "ɐ", "ᵻ"):
        return WEAK_INDEL
    if p in ("d", "t", "ɡ", "k", "b", "p") and i > 0 and _CONSONANTS.get(seq[i - 1], ("", ""))[1] == "nasal":
        return WEAK_INDEL
    return INDEL


def distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Weighted edit distance between two phoneme sequences."""
    prev = [0.0]
    for j in range(len(b)):
        prev.append(prev[-1] + _indel(b, j))
    for i in range(len(a)):
        cur = [prev[0] + _indel(a, i)]
        for j in range(len(b)):
            cur.append(min(prev[j] + _sub(a[i], b[j]), prev[j + 1] + _indel(a, i), cur[j] + _indel(b, j)))
        prev = cur
    return prev[-1]


def similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """1.0 = the same sounds; 0.0 = nothing alike (edit cost over the longer sequence's length)."""
    if not a or not b:
        return 0.0
    return max(0.0, 1.0 - distance(a, b) / max(len(a), len(b)))


class SoundsLike:
    """Phonemes of names and heard text, memoised (a home has a few dozen names; heard text repeats)."""

    def __init__(self, phonemize: Phonemizer, cache: int = 512) -> None:
        self._phonemize = phonemize
        self.of = lru_cache(maxsize=cache)(self._of)

    def _of(self, text: str) -> Phonemes:
        return tokens(self._phonemize(text[:MAX_TEXT]))

    def similarity(self, heard: str, name: str) -> float:
        return similarity(self.of(heard), self.of(name))
