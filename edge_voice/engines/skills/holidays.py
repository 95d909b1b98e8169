"""Public holidays from the ``holidays`` package (and, where it has them, observances such as Easter,
Mother's Day, Halloween): "when is Thanksgiving", "how many days until Christmas", "is today a holiday",
"what is the next holiday". ``today`` is injected so tests are deterministic."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date

from edge_voice.core.config import ConfigError
from edge_voice.engines.skills.base import SkillAnswer
from edge_voice.engines.skills.dates import say_date
from edge_voice.engines.skills.text import skill_text

_KIND = r"(?:a |an )?(?:public |bank |national |federal |legal )?holiday"
_WHEN = re.compile(
    r"^(?:when|what day|what date|which day|on what day|what day of the week) (?:is|was|will be|does|do) "
    r"(?:it )?(?P<h>.+?)(?: (?:fall|falls|land|be|happen))?(?: on)?"
    r"(?: (?P<this>this year)| (?P<next>next year)|(?: in)? (?P<y>\d{4}))?(?: fall| be)?(?: on)?$"
)
_UNTIL = re.compile(
    r"^(?:how many (?:days|sleeps) (?:are there |is it |are left |left )?"
    r"(?:until|till|til|to|before|is it until)"
    r"|how long (?:is it |is left )?(?:until|till|before)) (?P<h>.+?)(?: (?:this year|from today|from now))?$"
)
_TODAY = re.compile(
    rf"^is (?P<day>today|tomorrow|it) {_KIND}(?: today| tomorrow)?$"
    rf"|^is there {_KIND} (?P<day2>today|tomorrow)$"
)
_NEXT = re.compile(rf"^(?:what|when) is the next {_KIND}$|^what {_KIND} is (?:next|coming up)$")

# what people say → the package's name (normalised); the package's own names are indexed too
_ALIASES = {
    "christmas": "christmas day",
    "xmas": "christmas day",
    "thanksgiving": "thanksgiving day",
    "new years": "new years day",
    "new year": "new years day",
    "the fourth of july": "independence day",
    "fourth of july": "independence day",
    "4th of july": "independence day",
    "july 4th": "independence day",
    "july 4": "independence day",
    "presidents day": "washingtons birthday",
    "mlk day": "martin luther king jr day",
    "martin luther king day": "martin luther king jr day",
    "juneteenth": "juneteenth national independence day",
    "easter": "easter sunday",
    "st patricks day": "saint patricks day",
    "st paddys day": "saint patricks day",
    "valentines": "valentines day",
    "labour day": "labor day",
}


def _key(name: str) -> str:
    return skill_text(name.replace("Jr.", "Jr"))


def _spoken(name: str) -> str:
    return name.replace("Jr.", "Junior")


class HolidaysSkill:
    name = "holidays"

    def __init__(
        self, country: str = "US", today: Callable[[], date] = date.today, subdiv: str | None = None
    ) -> None:
        import holidays  # lazy: ~0.2 s and ~17 MB

        self._holidays = holidays
        self.country = country
        self.subdiv = subdiv
        self._today = today
        self._years: dict[tuple[int, bool], dict[date, str]] = {}
        self._indexes: dict[int, dict[str, tuple[str, date]]] = {}
        try:  # an unknown country fails at start-up, naming the key, not mid-turn
            holidays.country_holidays(country, subdiv=subdiv)
        except NotImplementedError:
            raise ConfigError("skills.country", f"the holidays package has no country {country!r}") from None

    def _year(self, year: int, public_only: bool) -> Mapping[date, str]:
        key = (year, public_only)
        if key not in self._years:  # a few years over the daemon's life: no eviction needed
            self._years[key] = self._load_year(year, public_only)
        return self._years[key]

    def _load_year(self, year: int, public_only: bool) -> dict[date, str]:
        h = self._holidays
        if public_only:
            return dict(h.country_holidays(self.country, subdiv=self.subdiv, years=year))
        try:
            got = h.country_holidays(
                self.country, subdiv=self.subdiv, years=year, categories=("public", "unofficial")
            )
        except (ValueError, NotImplementedError):  # no unofficial category for this country
            got = h.country_holidays(self.country, subdiv=self.subdiv, years=year)
        out = dict(got)
        if not any("Easter" in n for n in out.values()):
            from dateutil.easter import easter  # type: ignore[import-untyped]  # holidays' own dependency

            out[easter(year)] = "Easter Sunday"
        return out

    def _index(self, year: int) -> dict[str, tuple[str, date]]:
        """normalised name → (spoken name, date) in ``year``; "(observed)" days are not the holiday."""
        if year in self._indexes:
            return self._indexes[year]
        out: dict[str, tuple[str, date]] = {}
        for when, names in sorted(self._year(year, public_only=False).items()):
            for name in names.split("; "):
                if "observed" in name.lower():
                    continue
                out.setdefault(_key(name), (_spoken(name), when))
        self._indexes[year] = out
        return out

    def find(self, said: str, year: int) -> tuple[str, date] | None:
        key = re.sub(r"^(?:the |this |next )", "", said)
        index = self._index(year)
        key = key if key in index else _ALIASES.get(key, key)
        if key not in index and not key.endswith(" day"):
            key += " day"
        return index.get(key)

    def answer(self, text: str) -> SkillAnswer | None:
        t = skill_text(text)
        today = self._today()
        reply = self._reply(t, today)
        return SkillAnswer(self.name, reply=reply) if reply else None

    def _next(self, said: str, today: date) -> tuple[str, date] | None:
        for year in (today.year, today.year + 1):
            found = self.find(said, year)
            if found and found[1] >= today:
                return found
        return None

    def _reply(self, t: str, today: date) -> str | None:
        if m := _TODAY.match(t):
            which = m.group("day") or m.group("day2")
            day = today if which in ("today", "it") else date.fromordinal(today.toordinal() + 1)
            word = "today" if day == today else "tomorrow"
            public = self._year(day.year, public_only=True).get(day)
            if public:
                return f"Yes, {word} is {_spoken(public)}."
            other = self._year(day.year, public_only=False).get(day)
            if other:
                return f"{word.capitalize()} is {_spoken(other)}, but it is not a public holiday."
            return f"No, {word} is not a public holiday."
        if _NEXT.match(t):
            for year in (today.year, today.year + 1):
                days = sorted((d, n) for d, n in self._year(year, public_only=True).items() if d > today)
                if days:
                    when, name = days[0]
                    return f"The next public holiday is {_spoken(name)}, on {say_date(when, today)}."
            return None
        if m := _UNTIL.match(t):
            found = self._next(m.group("h"), today)
            if found is None:
                return None
            name, when = found
            left = (when - today).days
            if left == 0:
                return f"{name} is today."
            if left == 1:
                return f"{name} is tomorrow."
            return f"There are {left} days until {name}."
        if m := _WHEN.match(t):
            said = m.group("h")
            if m.group("y") or m.group("this") or m.group("next"):
                year = int(m.group("y")) if m.group("y") else today.year + (1 if m.group("next") else 0)
                found = self.find(said, year)
            else:
                found = self._next(said, today)
            if found is None:
                return None
            name, when = found
            if when == today:
                return f"{name} is today."
            verb = "was" if when < today else "is"
            return f"{name} {verb} on {say_date(when, today)}."
        return None
