"""Numbers as a reply says them: 3 significant figures, plain digits (TTS reads them), no exponent."""

from __future__ import annotations

import math

_BIG = ((1e12, "trillion"), (1e9, "billion"), (1e6, "million"))


def _trim(x: float, decimals: int) -> str:
    s = f"{x:.{max(decimals, 0)}f}"
    return s.rstrip("0").rstrip(".") if "." in s else s


def round_sig(x: float, digits: int = 3) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return round(x, digits - 1 - math.floor(math.log10(abs(x))))


def speakable(x: float) -> str:
    """-40.0 → "minus 40" (said the same way by every TTS voice); the magnitude as ``speakable_abs``."""
    return ("minus " if x < 0 and speakable_abs(x) != "0" else "") + speakable_abs(x)


def speakable_abs(x: float) -> str:
    """8.04672 → "8.05"; 26400.0 → "26400"; 8766.0 → "8766"; 9.46e12 → "9.46 trillion";
    0.0000621 → "0.0000621". Whole numbers under a million are said exactly."""
    x = abs(x)
    if not math.isfinite(x):
        return str(x)
    if abs(x - round(x)) < 1e-9 * max(1.0, abs(x)) and abs(x) < 1e6:
        return str(round(x))
    for scale, word in _BIG:
        if abs(x) >= scale:
            return f"{_trim(round_sig(x / scale), 2)} {word}"
    if abs(x) >= 100:
        return str(round(x))
    r = round_sig(x)
    return _trim(r, 2 - math.floor(math.log10(abs(r)))) if r else "0"


def is_exact(x: float) -> bool:
    """Does ``speakable(x)`` say x exactly (up to float noise)? Else a reply says "about"."""
    words = speakable_abs(x).split()
    try:
        said = float(words[0]) * dict((w, s) for s, w in _BIG).get(words[-1], 1.0)
    except ValueError:
        return False
    return abs(said - abs(x)) <= 1e-9 * max(1.0, abs(x))
