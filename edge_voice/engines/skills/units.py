"""Unit conversions with pint: "how many centimeters in an inch", "convert 5 miles to kilometers",
"what is 100 fahrenheit in celsius" → "5 miles is about 8.05 kilometers."

Only the spoken units listed here are recognised (a curated table, not pint's parser), so "how many
people in a room" never reaches pint. Months and years are the calendar skill's: pint's year is 365.25
days, not what "how many days in a year" asks."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, NamedTuple

from edge_voice.engines.skills.base import SkillAnswer
from edge_voice.engines.skills.numbers import is_exact, speakable
from edge_voice.engines.skills.text import skill_text

if TYPE_CHECKING:
    import pint


class Unit(NamedTuple):
    pint_name: str
    singular: str
    plural: str


def _u(pint_name: str, singular: str, plural: str = "", *aliases: str) -> tuple[Unit, tuple[str, ...]]:
    plural = plural or singular + "s"
    return Unit(pint_name, singular, plural), (singular, plural, *aliases)


# (unit, the words and abbreviations whisper writes for it). Single letters ("m", "g", "l", "in") are left
# out: they are words or ambiguous in a transcript.
_TABLE = (
    # length
    _u("millimeter", "millimeter", "", "millimetre", "millimetres", "mm"),
    _u("centimeter", "centimeter", "", "centimetre", "centimetres", "cm", "cms"),
    _u("meter", "meter", "", "metre", "metres"),
    _u("kilometer", "kilometer", "", "kilometre", "kilometres", "km", "kms", "klicks"),
    _u("inch", "inch", "inches"),
    _u("foot", "foot", "feet", "ft"),
    _u("yard", "yard", "", "yd", "yds"),
    _u("mile", "mile"),
    _u("nautical_mile", "nautical mile"),
    _u("light_year", "light year"),
    # mass
    _u("milligram", "milligram", "", "milligramme", "milligrammes", "mg"),
    _u("gram", "gram", "", "gramme", "grammes"),
    _u("kilogram", "kilogram", "", "kilogramme", "kilogrammes", "kilo", "kilos", "kg", "kgs"),
    _u("ounce", "ounce", "", "oz"),
    _u("pound", "pound", "", "lb", "lbs"),
    _u("stone", "stone", "stone", "stones"),
    _u("short_ton", "ton", "", "short ton", "short tons", "us ton", "us tons"),
    _u("metric_ton", "metric ton", "", "tonne", "tonnes", "metric tonne", "metric tonnes"),
    # volume
    _u("milliliter", "milliliter", "", "millilitre", "millilitres", "ml"),
    _u("liter", "liter", "", "litre", "litres"),
    _u("fluid_ounce", "fluid ounce", "", "fl oz"),
    _u("teaspoon", "teaspoon", "", "tsp"),
    _u("tablespoon", "tablespoon", "", "tbsp"),
    _u("cup", "cup"),
    _u("pint", "pint"),
    _u("quart", "quart"),
    _u("gallon", "gallon"),
    # time (no month or year: see the module docstring)
    _u("millisecond", "millisecond", "", "ms"),
    _u("second", "second", "", "secs"),
    _u("minute", "minute", "", "mins"),
    _u("hour", "hour", "", "hrs"),
    _u("day", "day"),
    _u("week", "week"),
    _u("fortnight", "fortnight"),
    # speed
    _u("mile / hour", "mile per hour", "miles per hour", "mph", "miles an hour"),
    _u(
        "kilometer / hour",
        "kilometer per hour",
        "kilometers per hour",
        "kph",
        "kmh",
        "km per hour",
        "kilometres per hour",
        "kilometers an hour",
        "kilometres an hour",
        "km an hour",
    ),
    _u("meter / second", "meter per second", "meters per second", "metres per second"),
    _u("knot", "knot"),
    # temperature
    _u(
        "degC",
        "degree Celsius",
        "degrees Celsius",
        "celsius",
        "degrees celsius",
        "degree celsius",
        "centigrade",
        "degrees centigrade",
        "c",
        "degrees c",
    ),
    _u(
        "degF",
        "degree Fahrenheit",
        "degrees Fahrenheit",
        "fahrenheit",
        "degrees fahrenheit",
        "degree fahrenheit",
        "f",
        "degrees f",
    ),
    _u("kelvin", "kelvin", "kelvin", "kelvins"),
    # area
    _u("centimeter ** 2", "square centimeter", "", "square centimetre", "square centimetres"),
    _u("meter ** 2", "square meter", "", "square metre", "square metres"),
    _u("kilometer ** 2", "square kilometer", "", "square kilometre", "square kilometres"),
    _u("inch ** 2", "square inch", "square inches"),
    _u("foot ** 2", "square foot", "square feet"),
    _u("yard ** 2", "square yard"),
    _u("mile ** 2", "square mile"),
    _u("acre", "acre"),
    _u("hectare", "hectare"),
    # data (decimal, as SI and disk makers count)
    _u("byte", "byte"),
    _u("kilobyte", "kilobyte", "", "kb"),
    _u("megabyte", "megabyte", "", "mb", "megs"),
    _u("gigabyte", "gigabyte", "", "gb", "gigs"),
    _u("terabyte", "terabyte", "", "tb"),
    # pressure, energy, power
    _u("psi", "pound per square inch", "pounds per square inch", "psi"),
    _u("bar", "bar"),
    _u("kilocalorie", "kilocalorie", "", "kcal", "calorie", "calories"),  # food calories are kcal
    _u("kilojoule", "kilojoule", "", "kj"),
    _u("horsepower", "horsepower", "horsepower"),
    _u("kilowatt", "kilowatt", "", "kw"),
)
_BY_WORD: dict[str, Unit] = {}
for _unit, _words in _TABLE:
    for _w in _words:
        _BY_WORD.setdefault(_w.lower(), _unit)
# "c" and "f" only count as temperatures after "degrees" or in "N c in f" forms: still listed, but never
# matched alone as the target of "how many" (see _answer)
_LETTERS = frozenset({"c", "f"})

_U = "|".join(sorted((re.escape(w) for w in _BY_WORD), key=len, reverse=True))
_NUM = r"(?P<n>-?\d+(?:\.\d+)?|an?|half an?|a half|a quarter of an?|a quarter|quarter of an?)"
_HOW_MANY = re.compile(
    rf"^(?:how many|how much) (?P<to>{_U}) (?:are )?(?:there )?"
    rf"(?:is |are |in |make |makes |make up |to |equals? )"
    rf"(?:(?:in |to )?(?:a |an |one |1 )|{_NUM} )?(?P<from>{_U})$"
)
_CONVERT = re.compile(
    rf"^(?:convert |change |turn |what is |what are |how much is |how many is |how much are |whats |"
    rf"how (?:far|long|heavy|big|fast|hot|cold|tall|much) is )?"
    rf"{_NUM} (?P<from>{_U}) (?:in|to|into|in to|as|is how many|equals how many|is what in|in terms of) "
    rf"(?P<to>{_U})$"
)
_CONVERT_BARE = re.compile(rf"^(?:convert|change) (?:a |an )?(?P<from>{_U}) (?:in|to|into) (?P<to>{_U})$")
_FRACTIONS = {"a half": 0.5, "a quarter": 0.25}


def _amount(raw: str | None) -> float:
    if not raw or raw in ("a", "an"):
        return 1.0
    if raw.startswith("half"):
        return 0.5
    if raw.startswith(("a quarter", "quarter")):
        return 0.25
    return _FRACTIONS.get(raw) or float(raw)


def _name(unit: Unit, amount: float) -> str:
    return unit.singular if abs(amount) == 1 else unit.plural


class UnitsSkill:
    name = "units"

    def __init__(self) -> None:
        import pint  # lazy: ~0.35 s import and ~30 MB, paid once at start-up

        self._ureg: pint.UnitRegistry[float] = pint.UnitRegistry()
        self._errors: tuple[type[Exception], ...] = (pint.DimensionalityError, pint.UndefinedUnitError)

    def answer(self, text: str) -> SkillAnswer | None:
        t = skill_text(text)
        m = _HOW_MANY.match(t) or _CONVERT.match(t) or _CONVERT_BARE.match(t)
        if m is None:
            return None
        src, dst = m.group("from"), m.group("to")
        if m.re is _HOW_MANY and (dst in _LETTERS or src in _LETTERS):
            return None  # "how many c in a f": not a real question
        n_raw = m.groupdict().get("n")
        try:
            amount = _amount(n_raw)
        except ValueError:
            return None
        reply = self.convert(amount, _BY_WORD[src], _BY_WORD[dst])
        return SkillAnswer(self.name, reply=reply) if reply else None

    def convert(self, amount: float, src: Unit, dst: Unit) -> str | None:
        """One spoken sentence, or None when pint cannot say (never a guess)."""
        if src == dst:
            return None
        ureg = self._ureg
        try:
            q = ureg.Quantity(amount, src.pint_name)
            try:
                value = float(q.to(dst.pint_name).magnitude)
            except self._errors:
                # "how many ounces in a cup" means fluid ounces: retry the volume reading
                if {src.pint_name, dst.pint_name} & {"ounce"}:
                    alt = _BY_WORD["fluid ounce"]
                    src, dst = (alt if u.pint_name == "ounce" else u for u in (src, dst))
                    value = float(ureg.Quantity(amount, src.pint_name).to(dst.pint_name).magnitude)
                else:
                    raise
        except self._errors:
            return (
                f"{src.plural.capitalize()} and {dst.plural} measure different things: I can't convert them."
            )
        except (ValueError, ArithmeticError):
            return None
        about = "" if is_exact(value) else "about "
        said = speakable(value)
        reply = f"{speakable(amount)} {_name(src, amount)} is {about}{said} {_name(dst, value)}."
        return reply[0].upper() + reply[1:]
