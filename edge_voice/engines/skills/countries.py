"""Country facts: capitals from ``countryinfo`` (MIT, data inside the wheel) with two corrections; names,
current currencies and official languages from ``babel`` (CLDR, kept current: Croatia's euro, Sierra
Leone's new leone). Population is left out: countryinfo's figures are a decade old.

"What is the capital of Australia" → "The capital of Australia is Canberra."; "Paris is the capital of
which country"; "what currency does Japan use"; "what language do they speak in Brazil"; "what continent
is Chad in". A country named without an attribute asked ("tell me about Japan") gives ``facts`` only."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any, cast

from edge_voice.engines.skills.base import SkillAnswer
from edge_voice.engines.skills.text import skill_text

# countryinfo's capitals that have changed since its data was collected
_CAPITAL_FIXES = {
    "KZ": "Astana",  # Astana again since 2022 (countryinfo: Nur-Sultan)
    "BI": "Gitega",  # since 2019 (countryinfo: Bujumbura)
    "US": "Washington, D.C.",
}
_SKIP = frozenset({"PS", "VA", "AN", "CS", "UM", "AQ", "BV", "HM"})  # disputed, merged, or unpopulated
_SPOKEN = {
    "CD": "Democratic Republic of the Congo",
    "CG": "Republic of the Congo",
    "CI": "Ivory Coast",
    "MM": "Myanmar",
    "HK": "Hong Kong",
    "MO": "Macao",
    "TR": "Turkey",
    "US": "United States",
}
_THE = frozenset({"US", "GB", "NL", "PH", "BS", "GM", "AE", "CF", "DO", "CD", "CG", "MV", "KM", "SC"})
_EXTRA_ALIASES = {
    "america": "US",
    "usa": "US",
    "the usa": "US",
    "the us": "US",
    "the united states of america": "US",
    "united states of america": "US",
    "uk": "GB",
    "the uk": "GB",
    "britain": "GB",
    "great britain": "GB",
    "holland": "NL",
    "czech republic": "CZ",
    "the czech republic": "CZ",
    "burma": "MM",
    "uae": "AE",
    "the uae": "AE",
    "south korea": "KR",
    "north korea": "KP",
    "russia": "RU",
    "vietnam": "VN",
    "laos": "LA",
    "iran": "IR",
    "syria": "SY",
    "turkiye": "TR",
    "swaziland": "SZ",
    "eswatini": "SZ",
    "macedonia": "MK",
    "north macedonia": "MK",
    "cape verde": "CV",
    "cabo verde": "CV",
    "east timor": "TL",
    "timor leste": "TL",
    "drc": "CD",
    "dr congo": "CD",
    "ivory coast": "CI",
    "cote divoire": "CI",
    "bolivia": "BO",
    "venezuela": "VE",
    "tanzania": "TZ",
    "moldova": "MD",
    "micronesia": "FM",
}
_SOUTH_AMERICA = frozenset(
    {"AR", "BO", "BR", "CL", "CO", "EC", "GY", "PY", "PE", "SR", "UY", "VE", "FK", "GF"}
)
_CONTINENTS = {"Africa": "Africa", "Asia": "Asia", "Europe": "Europe", "Oceania": "Oceania"}
# names that are everyday words too: only grounded when the question is plainly about the country
_AMBIGUOUS = frozenset(
    {"turkey", "chad", "jordan", "georgia", "china", "guinea", "niger", "jersey", "chile", "man", "wales"}
)


def fold(text: str) -> str:
    """Lower case without accents or punctuation: "Brasília" → "brasilia", "Côte d’Ivoire" → "cote
    divoire"."""
    t = unicodedata.normalize("NFKD", text)
    t = "".join(c for c in t if not unicodedata.combining(c)).lower().replace("’", "").replace("'", "")
    t = t.replace("&", " and ").replace("st.", "saint")
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", t).split())


@dataclass(frozen=True, slots=True)
class Country:
    code: str  # ISO 3166-1 alpha-2
    name: str  # as spoken, without an article
    capital: str
    region: str  # countryinfo's region: Africa, Americas, Asia, Europe, Oceania

    @property
    def spoken(self) -> str:
        return f"the {self.name}" if self.code in _THE or self.name.endswith(" Islands") else self.name

    @property
    def continent(self) -> str | None:
        if self.code in _SOUTH_AMERICA:
            return "South America"
        if self.region == "Americas":
            return "North America"  # Central America and the Caribbean belong to it too
        return _CONTINENTS.get(self.region)


_C = r"(?P<c>[a-z0-9 ]+?)"
_CAPITAL = [
    rf"^(?:what is |whats |what|tell me |do you know |which city is |name )?(?:the )?capital(?: city)? "
    rf"(?:of|for|in) {_C}$",
    rf"^(?:what is |whats |what )?{_C}s capital(?: city)?$",
    rf"^(?:what is |whats |what )?the capital of {_C} called$",
    rf"^(?:what|which) city is the capital of {_C}$",
]
_REVERSE = [
    rf"^{_C} is the capital (?:city )?of (?:what|which)(?: country)?$",
    rf"^(?:what|which) country is {_C} the capital (?:city )?of$",
    rf"^(?:what|which) country has {_C} as (?:its|the|their) capital$",
    rf"^(?:what|which) country(?:s| is the)? capital is {_C}$",
]
_CURRENCY = [
    rf"^what (?:is the )?(?:currency|money) (?:do they|do people|does one|do you|is) "
    rf"(?:use|used|spend|have) in {_C}$",
    rf"^what (?:currency|money) (?:does|do) (?:the )?{_C} (?:use|have|spend)$",
    rf"^what is the (?:currency|money)(?: called)? (?:of|in|used in|for) {_C}$",
    rf"^(?:what is )?(?:the )?{_C}s? currency(?: called)?$",
    rf"^what currency is used in {_C}$",
]
_LANGUAGE = [
    rf"^what (?:language|languages) (?:do they|do people|do you|is|are) "
    rf"(?:speak|spoken|speaking|talk|use) in {_C}$",
    rf"^what (?:language|languages) (?:is|are) (?:spoken|used) in {_C}$",
    rf"^what (?:language|languages) (?:does|do) (?:the )?{_C} speak$",
    rf"^what (?:is|are) the (?:official |main |national )?(?:language|languages) (?:of|in) {_C}$",
    rf"^what do (?:they|people) speak in {_C}$",
]
_CONTINENT = [
    rf"^(?:what|which) continent (?:is|does) {_C}(?: (?:in|on|belong to|part of))?$",
    rf"^(?:what|which) continent is {_C} (?:in|on)$",
    rf"^where is {_C}$",
    rf"^is {_C} in (?:africa|asia|europe|oceania|north america|south america)$",
]
_ABOUT = re.compile(
    rf"^(?:tell me (?:something |a bit |more )?about|what do you know about|(?:some )?facts about|"
    rf"(?:give me )?information about|describe) (?:the country (?:of )?)?{_C}$"
)


def _compile(patterns: list[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


class CountriesSkill:
    name = "countries"

    def __init__(self, today: Callable[[], date] = date.today) -> None:
        from babel import Locale  # lazy: CLDR data, ~50 ms and ~8 MB
        from countryinfo import CountryInfo  # lazy: ~80 ms, ~6 MB (keeps only what is used)

        self._today = today
        self._en = Locale("en")
        self.by_code: dict[str, Country] = {}
        aliases: dict[str, str] = {}
        capitals: dict[str, str] = {}
        for info in cast("dict[str, dict[str, Any]]", CountryInfo.all()).values():
            code = _alpha2(info)
            capital = _CAPITAL_FIXES.get(code, info.get("capital"))
            if not code or code in _SKIP or code in self.by_code or not isinstance(capital, str):
                continue
            if not capital or "/" in capital:
                continue
            territory = self._en.territories.get(code)
            if not territory:
                continue
            name = _SPOKEN.get(code) or re.sub(
                r"\s*\(.*\)", "", territory.replace("&", "and").replace("St. ", "Saint ")
            )
            self.by_code[code] = Country(code, name, capital, str(info.get("region") or ""))
            capitals.setdefault(fold(capital), code)
            for alias in (name, territory, info.get("name", ""), *info.get("altSpellings", [])):
                key = fold(str(alias))
                if len(key) > 3 and key.isascii():
                    aliases.setdefault(key, code)
        for alias, code in _EXTRA_ALIASES.items():
            aliases[alias] = code
        self._aliases = aliases
        self._capitals = capitals
        self._capital = _compile(_CAPITAL)
        self._reverse = _compile(_REVERSE)
        self._currency = _compile(_CURRENCY)
        self._language = _compile(_LANGUAGE)
        self._continent = _compile(_CONTINENT)
        names = sorted(aliases, key=len, reverse=True)
        self._mention = re.compile(r"\b(?:" + "|".join(re.escape(n) for n in names) + r")\b")

    def country(self, said: str) -> Country | None:
        key = fold(said)
        code = self._aliases.get(key) or self._aliases.get(re.sub(r"^the ", "", key))
        return self.by_code.get(code) if code else None

    def answer(self, text: str) -> SkillAnswer | None:
        t = fold(skill_text(text))
        if not t:
            return None
        reply = self._reply(t)
        if reply:
            return SkillAnswer(self.name, reply=reply)
        facts = self._grounding(t)
        return SkillAnswer(self.name, facts=facts) if facts else None

    def _match(self, patterns: tuple[re.Pattern[str], ...], t: str) -> Country | None:
        for p in patterns:
            m = p.match(t)
            if m and (found := self.country(m.group("c"))):
                return found
        return None

    def _reply(self, t: str) -> str | None:
        if c := self._match(self._capital, t):
            return _sentence(f"The capital of {c.spoken} is {c.capital}")
        for p in self._reverse:
            m = p.match(t)
            if m and (code := self._capitals.get(m.group("c"))):
                c = self.by_code[code]
                return f"{c.capital} is the capital of {c.spoken}."
        if c := self._match(self._currency, t):
            names = self.currencies(c)
            return f"{_cap(c.spoken)} uses {_join(names)}." if names else None
        if c := self._match(self._language, t):
            return self._languages_sentence(c)
        if c := self._match(self._continent, t):
            return f"{_cap(c.spoken)} is in {c.continent}." if c.continent else None
        return None

    def currencies(self, c: Country) -> list[str]:
        from babel.numbers import get_currency_name, get_territory_currencies

        codes = get_territory_currencies(c.code, self._today(), tender=True)
        return [f"the {_lower_last(get_currency_name(code, locale=self._en))}" for code in codes[:3]]

    def languages(self, c: Country) -> tuple[list[str], bool]:
        """(language names, official?): de jure official languages, else the de facto ones."""
        from babel.languages import get_official_languages

        official = True
        codes: tuple[str, ...] = get_official_languages(c.code)
        if not codes:
            official, codes = False, get_official_languages(c.code, de_facto=True)
        names = [n for n in (self._en.languages.get(code) for code in codes) if n]
        return list(dict.fromkeys(names))[:4], official

    def _languages_sentence(self, c: Country) -> str | None:
        names, official = self.languages(c)
        if not names:
            return None
        kind = "official" if official else "main"
        if len(names) == 1:
            return f"The {kind} language of {c.spoken} is {names[0]}."
        return f"The {kind} languages of {c.spoken} are {_join(names)}."

    def _grounding(self, t: str) -> str:
        m = _ABOUT.match(t)
        c = self.country(m.group("c")) if m else None
        if c is None:
            found = self._mention.search(t)
            if found is None or found.group(0) in _AMBIGUOUS:
                return ""
            c = self.country(found.group(0))
        return self.facts(c) if c else ""

    def facts(self, c: Country) -> str:
        parts = [f"capital {c.capital}"]
        if cur := self.currencies(c):
            parts.append("currency " + " and ".join(x.removeprefix("the ") for x in cur))
        names, official = self.languages(c)
        if names:
            kind = "official" if official else "main"
            parts.append(f"{kind} language{'s' if len(names) > 1 else ''} {', '.join(names)}")
        if c.continent:
            parts.append(f"continent {c.continent}")
        return f"{c.name}: {'; '.join(parts)}."


def _alpha2(info: dict[str, Any]) -> str:
    iso = info.get("ISO")
    code = iso.get("alpha2") if isinstance(iso, dict) else None
    return code if isinstance(code, str) and len(code) == 2 else ""


def _lower_last(name: str) -> str:
    """ "Japanese Yen" → "Japanese yen", "Euro" → "euro", "US Dollar" → "US dollar"."""
    head, _, last = name.rpartition(" ")
    return f"{head} {last.lower()}" if head else last.lower()


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _sentence(s: str) -> str:
    return s if s.endswith(".") else s + "."


def _cap(s: str) -> str:
    return s[0].upper() + s[1:]
