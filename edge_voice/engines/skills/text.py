"""Transcript → the plain text the skills match on: the intents' ``normalise`` (lower case, digits,
contractions, fillers), after splitting what whisper glues to numbers ("5km", "100°F")."""

from __future__ import annotations

import re

from edge_voice.engines.intents import normalise

_DEGREES = re.compile(r"\s*[°º]\s*([fck])\b", re.IGNORECASE)
_GLUED = re.compile(r"(\d)(?!(?:st|nd|rd|th)\b)([a-zA-Z])")  # "5km", not "4th"
_SCALE = {"f": " degrees fahrenheit", "c": " degrees celsius", "k": " kelvin"}


def skill_text(text: str) -> str:
    """ "Convert 5km to miles?" → "convert 5 km to miles"; "100°F in C" → "100 degrees fahrenheit in c"."""
    t = _DEGREES.sub(lambda m: _SCALE[m.group(1).lower()], text)
    t = t.replace("°", " degrees ")
    t = _GLUED.sub(r"\1 \2", t)
    # "minus 40" / "-40": keep the sign that normalise would turn into a word or drop
    t = re.sub(r"(?<![\w.])-(?=\d)", "minus ", t)
    out = normalise(t)
    return re.sub(r"\b(?:minus|negative) (?=\d)", "-", out)
