"""Calendar facts from the standard library: days in a month or year, leap years, week numbers, the
weekday of a date, days until a date. ``today`` is injected so tests are deterministic."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import date

from edge_voice.engines.skills.base import SkillAnswer
from edge_voice.engines.skills.dates import DATE_RE, MONTH_RE, MONTHS, is_leap, parse_date, say_date
from edge_voice.engines.skills.text import skill_text

_YEAR = r"(?P<year>\d{4}|this year|next year|last year)"
_DAYS_IN_MONTH = re.compile(
    rf"^how many days (?:are )?(?:there )?(?:in|does|has) (?P<month>{MONTH_RE})(?: have| got)?"
    rf"(?: (?:in )?{_YEAR}| in a (?P<leap>leap) year)?(?: have)?$"
)
_DAYS_IN_LEAP_YEAR = re.compile(
    r"^how many days (?:are )?(?:there )?(?:in|does) (?:a|one) leap year(?: have)?$"
)
_LEAP_HOW_OFTEN = re.compile(
    r"^how often (?:is there a|is a|do we have a|does a) leap year(?: happen| come| occur)?$"
)
_DAY_NAMES = "monday|tuesday|wednesday|thursday|friday|saturday|sunday"
_DAY_NEXT = re.compile(rf"^(?:what|which) day (?:comes |is )?(?P<rel>after|before) (?P<day>{_DAY_NAMES})$")
_MONTH_ORDINAL = re.compile(r"^(?:what|which) is the (?P<which>first|last) month of the year$")
_DAYS_IN_YEAR = re.compile(
    rf"^how many days (?:are )?(?:there )?(?:in|does) (?:(?P<a>a|one|the) year|(?:in )?{_YEAR})(?: have)?$"
)
_DAYS_IN_A_MONTH = re.compile(r"^how many days (?:are )?(?:there )?in (?:a|one|the) month$")
_WEEKS_IN_YEAR = re.compile(r"^how many weeks (?:are )?(?:there )?in (?:a|one|the) year$")
_MONTHS_IN_YEAR = re.compile(r"^how many months (?:are )?(?:there )?in (?:a|one|the) year$")
_DAYS_IN_WEEK = re.compile(r"^how many days (?:are )?(?:there )?in (?:a|one|the) week$")
_IS_LEAP = re.compile(rf"^is (?:it|this|{_YEAR}) (?:a )?leap year(?: (?P<year2>this year|next year))?$")
_NEXT_LEAP = re.compile(r"^(?:when|what) is the next leap year$|^when will the next leap year be$")
_LAST_LEAP = re.compile(r"^(?:when|what) was the last leap year$")
_DAYS_LEFT = re.compile(
    r"^how many days (?:are )?(?:there )?(?:left|remaining) (?:in|of) (?:the|this) year$"
    r"|^how many days (?:are there )?(?:left )?(?:until|till|to|before) the end of (?:the|this) year$"
)
_WEEK_NUMBER = re.compile(
    r"^(?:what|which) week (?:number )?(?:of the year )?is (?:it|this)(?: today)?$"
    r"|^what is the (?:current )?week number$"
)
_DAY_OF_YEAR = re.compile(r"^what day of the year is (?:it|today)$")
_WEEKDAY_OF = re.compile(
    rf"^what day (?:of the week )?(?:is|was|will be|does) {DATE_RE}(?: (?:on|fall on|be))?$"
)
_DAYS_UNTIL = re.compile(rf"^how many days (?:are there )?(?:left )?(?:until|till|til|to|before) {DATE_RE}$")


class CalendarSkill:
    name = "calendar"

    def __init__(self, today: Callable[[], date] = date.today) -> None:
        self._today = today

    def answer(self, text: str) -> SkillAnswer | None:
        reply = self._reply(skill_text(text), self._today())
        return SkillAnswer(self.name, reply=reply) if reply else None

    def _reply(self, t: str, today: date) -> str | None:
        if m := _DAYS_IN_MONTH.match(t):
            month = MONTHS[m.group("month")]
            name = calendar.month_name[month]
            if m.group("leap"):
                return f"{name} has {calendar.monthrange(2024, month)[1]} days in a leap year."
            if m.group("year") is None:
                if month == 2:
                    days = calendar.monthrange(today.year, 2)[1]
                    return f"February has {days} days this year; it has 29 in a leap year and 28 otherwise."
                return f"{name} has {calendar.monthrange(today.year, month)[1]} days."
            year = _year(m.group("year"), today)
            return f"{name} {year} has {calendar.monthrange(year, month)[1]} days."
        if m := _DAYS_IN_YEAR.match(t):
            if m.group("a"):
                return "A year has 365 days, or 366 in a leap year."
            year = _year(m.group("year"), today)
            return f"{year} has {366 if is_leap(year) else 365} days."
        if _DAYS_IN_LEAP_YEAR.match(t):
            return "A leap year has 366 days."
        if _LEAP_HOW_OFTEN.match(t):
            return "A leap year comes every four years, except most century years."
        if m := _DAY_NEXT.match(t):
            names = _DAY_NAMES.split("|")
            i = names.index(m.group("day")) + (1 if m.group("rel") == "after" else -1)
            return f"{names[i % 7].capitalize()} comes {m.group('rel')} {m.group('day').capitalize()}."
        if m := _MONTH_ORDINAL.match(t):
            return (
                "January is the first month of the year."
                if m.group("which") == "first"
                else ("December is the last month of the year.")
            )
        if _DAYS_IN_A_MONTH.match(t):
            return "A month has 28 to 31 days, depending on the month."
        if _WEEKS_IN_YEAR.match(t):
            return "A year has 52 weeks and 1 day, or 52 weeks and 2 days in a leap year."
        if _MONTHS_IN_YEAR.match(t):
            return "A year has 12 months."
        if _DAYS_IN_WEEK.match(t):
            return "A week has 7 days."
        if m := _IS_LEAP.match(t):
            raw = m.group("year") or m.group("year2") or "this year"
            year = _year(raw, today)
            return f"Yes, {year} is a leap year." if is_leap(year) else f"No, {year} is not a leap year."
        if _NEXT_LEAP.match(t):
            year = next(y for y in range(today.year + 1, today.year + 9) if is_leap(y))
            return f"The next leap year is {year}."
        if _LAST_LEAP.match(t):
            year = next(y for y in range(today.year - 1, today.year - 9, -1) if is_leap(y))
            return f"The last leap year was {year}."
        if _DAYS_LEFT.match(t):
            left = (date(today.year, 12, 31) - today).days
            return f"There {_are(left)} {_days(left)} left in {today.year} after today."
        if _WEEK_NUMBER.match(t):
            year, week, _ = today.isocalendar()
            return f"It is week {week} of {year}."
        if _DAY_OF_YEAR.match(t):
            return f"Today is day {today.timetuple().tm_yday} of {today.year}."
        if m := _WEEKDAY_OF.match(t):
            when = parse_date(m, today)
            if when is None:
                return None
            verb = "was" if when < today else "is"
            return f"{say_date(when, today, weekday=False)} {verb} a {calendar.day_name[when.weekday()]}."
        if m := _DAYS_UNTIL.match(t):
            when = parse_date(m, today)
            if when is None or when < today:
                return None
            days = (when - today).days
            if days == 0:
                return f"{say_date(when, today, weekday=False)} is today."
            return f"There {_are(days)} {_days(days)} until {say_date(when, today, weekday=False)}."
        return None


def _are(n: int) -> str:
    return "is" if n == 1 else "are"


def _days(n: int) -> str:
    return f"{n} day" if n == 1 else f"{n} days"


def _year(raw: str, today: date) -> int:
    return {"this year": today.year, "next year": today.year + 1, "last year": today.year - 1}.get(
        raw
    ) or int(raw)
