"""Dates as people say them and as a reply says them: "the 4th of july" ↔ "Sunday, July 4"."""

from __future__ import annotations

import calendar
import re
from datetime import date

MONTHS = {name.lower(): i for i, name in enumerate(calendar.month_name) if name}
MONTHS |= {"sept": 9, "jan": 1, "feb": 2, "aug": 8, "oct": 10, "nov": 11, "dec": 12}
_ORDINALS = (
    "first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth thirteenth "
    "fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"
)
_ORDINAL_WORDS = {w: i + 1 for i, w in enumerate(_ORDINALS.split())} | {"thirtieth": 30}
MONTH_RE = "|".join(sorted(MONTHS, key=len, reverse=True))
_DAY = (
    r"(?:\d{1,2}(?:st|nd|rd|th)?|(?:20 |30 )?(?:first|second|third|fourth|fifth|sixth|seventh|eighth|ninth)"
    r"|[a-z]+(?:th|st))"
)
# "july 4", "july the 4th", "the 4th of july", "4 july", with an optional year
DATE_RE = (
    rf"(?:(?P<m1>{MONTH_RE}) (?:the )?(?P<d1>{_DAY})|(?:the )?(?P<d2>{_DAY}) (?:of )?(?P<m2>{MONTH_RE}))"
    rf"(?: (?P<y>\d{{4}}))?"
)


def day_number(raw: str) -> int | None:
    """ "4th" → 4, "fourth" → 4, "20 first" (words_to_digits made "twenty first" so) → 21."""
    m = re.fullmatch(r"(\d{1,2})(?:st|nd|rd|th)?", raw)
    if m:
        return int(m.group(1))
    parts = raw.split()
    tens = int(parts[0]) if len(parts) == 2 and parts[0].isdigit() else 0
    word = _ORDINAL_WORDS.get(parts[-1])
    return None if word is None else tens + word


def parse_date(m: re.Match[str], today: date) -> date | None:
    """A date from a DATE_RE match; without a year, its next occurrence from ``today``."""
    month = MONTHS[m.group("m1") or m.group("m2")]
    day = day_number(m.group("d1") or m.group("d2"))
    if day is None:
        return None
    year = int(m.group("y")) if m.group("y") else today.year
    try:
        when = date(year, month, day)
        if not m.group("y") and when < today:
            when = date(year + 1, month, day)
    except ValueError:
        return None
    return when


def say_date(d: date, today: date, weekday: bool = True) -> str:
    """ "Thursday, November 26" (this year) or "Friday, January 1, 2027"."""
    s = f"{calendar.month_name[d.month]} {d.day}"
    if d.year != today.year:
        s += f", {d.year}"
    return f"{calendar.day_name[d.weekday()]}, {s}" if weekday else s


def is_leap(year: int) -> bool:
    return calendar.isleap(year)
