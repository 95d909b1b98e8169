"""The fast path: commands a home user says most, matched by a small rule table — no LLM.

``RuleIntentMatcher.match(text)`` normalises a transcript (whisper writes "Turn on the kitchen light."),
tries the rules in order and returns an ``IntentResult`` (name, slots, short spoken reply) or None, in
which case the text goes to the LLM. ``match`` never changes state, so it is safe on a speculative
transcript; ``apply`` commits the side effects (timers, a question asked back) once the turn is final.

Intents and their slots (slots may repeat a key, e.g. two ``device`` slots):
  turn_on / turn_off        device, kind            "turn on the kitchen light", "lights off in the bedroom"
  set_brightness            device, brightness(0–100) "set the living room light to 40 percent"
  step_brightness           device, step(±25)       "dim the bedroom light", "turn the kitchen light up"
  set_color                 device, color, rgb      "make the bedroom light blue"
  unknown_device            device, state           "turn on the television" (no such device in config)
  clarify                   action, heard, candidate*, understood*, + the command's other slots
                                                    "turn on the copy machine" → "Did you mean the coffee
                                                    machine?"; the next turn's answer completes it
  timer_set                 seconds                 "set a timer for five minutes", "10 minute timer"
  timer_cancel              [seconds]               "cancel the timer"
  timer_status              —                       "how long is left on the timer"
  time / date               —                       "what time is it", "what's the date"
  volume_up / volume_down   —                       "louder", "turn the volume down"
  volume_set                level(0–100)            "set the volume to 5" (0–10 scale) or "to 40 percent"
  arithmetic                a, op, b, result        "what is seven times eight" (the 135M LLM fumbles these)
  stop                      —                       "stop", "never mind"     reply "" = say nothing
  repeat                    —                       "what did you say"       reply "" = replay the last reply
  answer                    skill                   "how many ounces in a pound", "when is Thanksgiving",
                                                    "what is the capital of Australia", "define ephemeral"
  decline                   skill (= boundary)      "what's the weather tomorrow": what needs the internet

Device names come from ``IntentsConfig.devices`` (with aliases); a name said or heard a little wrong is
matched by edit distance, and asked about when unsure (design note 50); one whose letters are far but
whose sounds are near a device ("turn on the hand") is asked about, never taken (``phonemes``, note
220). ``match(text, previous=…)`` continues the previous device command ("and the fan"). ``Timers`` is
the pure timer book the orchestrator polls with ``due(now_s)``; ``confirmation_phrases`` lists every
fixed reply so TTS can pre-synthesise them; ``command_mentions_device`` guards LLM-derived commands.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

from edge_voice.core.config import HA_DOMAINS, DeviceEntry, IntentsConfig
from edge_voice.core.intent import ALL_LIGHTS, DEVICE_INTENTS, IntentOutcome
from edge_voice.core.intent import norm_device_name as _norm_name
from edge_voice.engines.phonetic import MAX_TEXT, Phonemizer, SoundsLike

if TYPE_CHECKING:
    from edge_voice.engines.ha_sentences import HaMatch, HaSentences
    from edge_voice.engines.skills import Skills

Slots = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class IntentResult:
    name: str
    slots: Slots
    reply: str  # short spoken confirmation; "" = nothing to say (stop) or replay the last reply (repeat)
    # the other commands of a sentence that gave several ("turn on the light and turn off the fan"); then
    # ``reply`` confirms them all, and each part is applied and published on its own
    also: tuple[IntentResult, ...] = ()

    def slot(self, key: str) -> str | None:
        return next((v for k, v in self.slots if k == key), None)

    def slot_values(self, key: str) -> list[str]:
        return [v for k, v in self.slots if k == key]


# ------------------------------------------------------------------------------------------ numbers

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_SCALES = {"hundred": 100, "thousand": 1000}
_NUMBER_WORDS = set(_UNITS) | set(_TENS) | set(_SCALES)


def _fits(current: int, total: int, tok: str) -> bool:
    """May number word ``tok`` extend the number read so far ("twenty" + "five" yes, "five" + "ten" no)?"""
    last = current % 100
    if tok == "zero":
        return current == 0 and total == 0
    if tok in _UNITS:
        value = _UNITS[tok]
        return last == 0 if value >= 10 else (last == 0 or (last >= 20 and last % 10 == 0))
    if tok in _TENS:
        return last == 0
    if tok == "hundred":
        return current < 100
    return total == 0  # thousand


def words_to_digits(text: str) -> str:
    """Replace runs of number words with digits: "twenty five minutes" → "25 minutes", "one hundred and
    five" → "105", "five ten" → "5 10". "and" joins only after hundred/thousand, so "one hour and thirty
    seconds" keeps its "and". "a"/"an" are left alone (only durations read them as one)."""
    tokens = text.split()
    out: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] not in _NUMBER_WORDS:
            out.append(tokens[i])
            i += 1
            continue
        total = current = 0
        while i < len(tokens):
            tok = tokens[i]
            if (
                tok == "and"
                and i > 0
                and tokens[i - 1] in _SCALES
                and i + 1 < len(tokens)
                and (tokens[i + 1] in _UNITS or tokens[i + 1] in _TENS)
            ):
                i += 1
                continue
            if tok not in _NUMBER_WORDS or not _fits(current, total, tok):
                break
            if tok == "hundred":
                current = max(current, 1) * 100
            elif tok == "thousand":
                total, current = max(current, 1) * 1000, 0
            else:
                current += _UNITS.get(tok, 0) + _TENS.get(tok, 0)
            i += 1
        out.append(str(total + current))
    return " ".join(out)


ONES_WORDS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
TENS_WORDS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """Spoken English for an integer (negative and up to 999 999): 42 → "forty two"."""
    if n < 0:
        return "minus " + number_words(-n)
    if n < 20:
        return ONES_WORDS[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return TENS_WORDS[tens] + (f" {ONES_WORDS[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{ONES_WORDS[hundreds]} hundred" + (f" and {number_words(rest)}" if rest else "")
    if n < 1_000_000:
        thousands, rest = divmod(n, 1000)
        sep = " and " if 0 < rest < 100 else " "
        return f"{number_words(thousands)} thousand" + (f"{sep}{number_words(rest)}" if rest else "")
    return str(n)


def _decimal_words(x: float) -> str:
    if abs(x - round(x)) < 1e-9:
        return number_words(round(x))
    whole, frac = f"{x:.2f}".rstrip("0").split(".")
    return f"{number_words(int(whole))} point {' '.join(ONES_WORDS[int(d)] for d in frac)}"


def duration_words(seconds: int) -> str:
    """3630 → "one hour and thirty seconds"; 300 → "five minutes"."""
    hours, rest = divmod(max(0, int(seconds)), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [
        f"{number_words(v)} {unit}{'' if v == 1 else 's'}"
        for v, unit in ((hours, "hour"), (minutes, "minute"), (secs, "second"))
        if v
    ]
    if not parts:
        return "zero seconds"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _duration_adjective(seconds: int) -> str:
    """300 → "five minute" (as in "your five minute timer")."""
    words = duration_words(seconds)
    return re.sub(r"(hour|minute|second)s\b", r"\1", words)


# -------------------------------------------------------------------------------------- normalising

_CONTRACTIONS = {
    "what's": "what is",
    "that's": "that is",
    "it's": "it is",
    "how's": "how is",
    "there's": "there is",
    "who's": "who is",
    "where's": "where is",
    "i'd": "i would",
    "didn't": "did not",
    "don't": "do not",
    "can't": "cannot",
    "won't": "will not",
}
_LEADING_FILLERS = re.compile(
    r"^(?:hey jarvis|jarvis|hey|okay|ok|alright|so|um|uh|please|kindly|just|now|"
    r"(?:can|could|would|will) you(?: please)?|i want you to|i would like you to|go ahead and|"
    # the continuation of a paused command: "and turn off the fan" is "turn off the fan"
    r"and|also|then)\s+"
)
_TRAILING_FILLERS = re.compile(r"\s+(?:please|for me|thanks|thank you|now|right now)$")


def normalise(text: str) -> str:
    """Lower-case words and digits only: "Turn on the kitchen light, please." → "turn on the kitchen
    light"; "Set a 10-minute timer." → "set a 10 minute timer"; "40%" → "40 percent"."""
    t = text.lower().replace("’", "'").replace("‘", "'")
    t = re.sub(r"(\d)\s*%", r"\1 percent", t)
    t = re.sub(r"(\d)\s*\+\s*(?=\d)", r"\1 plus ", t)
    t = re.sub(r"(\d)\s*[x×*]\s*(?=\d)", r"\1 times ", t)
    t = re.sub(r"(\d)\s*[÷/]\s*(?=\d)", r"\1 divided by ", t)
    t = re.sub(r"(\d)\s+-\s+(?=\d)", r"\1 minus ", t)
    t = re.sub(r"(\d),(?=\d{3}\b)", r"\1", t)  # 1,000 → 1000
    t = re.sub(r"[-–—]", " ", t)  # "twenty-five", "10-minute"
    t = re.sub(r"\.(?!\d)|(?<!\d)\.", " ", t)  # keep decimal points only
    for short, full in _CONTRACTIONS.items():
        t = re.sub(rf"\b{re.escape(short)}\b", full, t)
    t = t.replace("'", "")
    t = re.sub(r"[^\w\s.]", " ", t)
    t = " ".join(t.split())
    t = words_to_digits(t)
    # whisper writes a clipped "off" as "of": "Turn of the kitchen light", "Turn the bedroom light of"
    t = re.sub(r"^(turn|switch) of\b", r"\1 off", t)
    t = re.sub(r"^((?:turn|switch) .+) of$", r"\1 off", t)
    while True:  # fillers can stack: "okay jarvis could you please ..."
        stripped = _TRAILING_FILLERS.sub("", _LEADING_FILLERS.sub("", t))
        if stripped == t:
            return t
        t = stripped


# ----------------------------------------------------------------------------------------- durations

_AMOUNT = r"(?:\d+(?:\.\d+)?|an?)"
_UNIT = r"(?:hours?|hrs?|minutes?|mins?|seconds?|secs?)"
_PART = rf"(?:{_AMOUNT} {_UNIT}(?: and a half)?|half an? (?:hour|minute))"
DURATION = rf"{_PART}(?:(?: and| ,)? {_PART})*"
_PART_RE = re.compile(
    rf"(?P<half>half an? (?P<hunit>hour|minute))"
    rf"|(?P<amount>{_AMOUNT}) (?P<unit>{_UNIT})(?P<andhalf> and a half)?"
)
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1}


def parse_duration(text: str) -> int | None:
    """Normalised duration text → seconds: "1 hour and 30 seconds" → 3630, "an hour and a half" → 5400."""
    total = 0.0
    found = False
    for m in _PART_RE.finditer(text):
        found = True
        if m.group("half"):
            total += _UNIT_SECONDS[m.group("hunit")[0]] / 2
            continue
        raw = m.group("amount")
        amount = 1.0 if raw in ("a", "an") else float(raw)
        if m.group("andhalf"):
            amount += 0.5
        total += amount * _UNIT_SECONDS[m.group("unit")[0]]
    return round(total) if found and total > 0 else None


# -------------------------------------------------------------------------------------------- timers


@dataclass(frozen=True, slots=True)
class Timer:
    id: int
    duration_s: int
    due_s: float  # on the caller's clock (use a monotonic one: wall time jumps when NTP syncs a Pi)

    @property
    def name(self) -> str:
        return f"{_duration_adjective(self.duration_s)} timer"

    def done_phrase(self) -> str:
        return f"Your {self.name} is done."


MAX_TIMER_S = 24 * 3600


@dataclass
class Timers:
    """Pure timer book: every method takes ``now_s`` from the caller's (monotonic) clock."""

    max_timers: int = 10
    _timers: list[Timer] = field(default_factory=list)
    _next_id: int = 1

    def __len__(self) -> int:
        return len(self._timers)

    def add(self, duration_s: int, now_s: float) -> Timer:
        if duration_s <= 0:
            raise ValueError("timer duration must be positive")
        if len(self._timers) >= self.max_timers:
            self._timers.pop(0)  # oldest goes; a kitchen never needs more than a handful
        timer = Timer(self._next_id, int(duration_s), now_s + duration_s)
        self._next_id += 1
        self._timers.append(timer)
        return timer

    def cancel(self, duration_s: int | None = None) -> list[Timer]:
        """Cancel every timer, or only those of ``duration_s``. Returns the cancelled ones."""
        gone = [t for t in self._timers if duration_s is None or t.duration_s == duration_s]
        self._timers = [t for t in self._timers if t not in gone]
        return gone

    def remaining(self, now_s: float) -> list[tuple[Timer, float]]:
        """(timer, seconds left) for every running timer, soonest first."""
        return sorted(((t, max(0.0, t.due_s - now_s)) for t in self._timers), key=lambda p: p[1])

    def due(self, now_s: float) -> list[Timer]:
        """Remove and return the timers that have run out (say ``timer.done_phrase()`` for each)."""
        done = [t for t in self._timers if t.due_s <= now_s]
        self._timers = [t for t in self._timers if t.due_s > now_s]
        return done

    def next_due_s(self) -> float | None:
        return min((t.due_s for t in self._timers), default=None)


# -------------------------------------------------------------------------------------------- colours

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (255, 0, 0),
    "orange": (255, 128, 0),
    "yellow": (255, 220, 0),
    "green": (0, 200, 0),
    "blue": (0, 0, 255),
    "purple": (128, 0, 200),
    "violet": (140, 80, 255),
    "pink": (255, 100, 180),
    "cyan": (0, 220, 220),
    "turquoise": (64, 224, 208),
    "teal": (0, 128, 128),
    "magenta": (255, 0, 255),
    "white": (255, 255, 255),
    "warm white": (255, 200, 140),
    "cool white": (200, 220, 255),
}
_COLOUR_ALT = "|".join(sorted(COLOURS, key=len, reverse=True))

# ---------------------------------------------------------------------------------------- the grammar

_MY = r"(?:the |my )?"
_NEW_TIMER = r"(?:(?:set|start|create|make|give me|put on|add) )?"
_ON_OFF_VERB = r"(?:turn|switch|put|flip)"

# Each intent lists its phrasings; they are tried top to bottom, intents in this order. Rules that need a
# device use a (?P<target>...) group resolved against the configured devices; an unresolved target makes
# that phrasing not match, so "what is going on" never becomes a command.
_TIMER_SET = [
    rf"{_NEW_TIMER}(?:a |an |the |my )?(?:new )?timer (?:for |of |to )?(?P<dur>{DURATION})",
    rf"{_NEW_TIMER}(?:a |an )?(?P<dur>{DURATION}) timer",
    rf"(?:remind|alert|tell|wake) me in (?P<dur>{DURATION})",
    rf"(?:set|start) (?:a |an )?(?:countdown|alarm) (?:for )?(?P<dur>{DURATION})",
]
_TIMER_CANCEL = [
    r"(?:cancel|stop|delete|remove|clear|turn off|end|dismiss|kill|reset) "
    rf"(?:the |my |all |all the |all my )?(?:(?P<dur>{DURATION}) )?timers?",
]
_TIMER_STATUS = [
    rf"how (?:much time|long) (?:is |has |do i have )?(?:left|remaining)(?: on {_MY}(?:\w+ \w+ )?timers?)?",
    rf"how long (?:is )?(?:left )?on {_MY}timers?",
    rf"(?:what is )?(?:the )?time (?:left|remaining)(?: on {_MY}timers?)?",
    rf"(?:what is the |check {_MY})?timers? status|check {_MY}timers?|how is {_MY}timer(?: doing)?",
    rf"how long until {_MY}timer(?: goes off| is done| ends| rings)?",
    rf"what is (?:left )?on {_MY}timers?",
]
_TIME = [
    r"(?:what time is it|what is the(?: current)? time|tell me the time|do you (?:have|know) the time|"
    r"what time do you have|time please|the time)(?: now| right now)?"
]
_DATE = [
    r"what (?:is )?(?:the |todays )?date(?: today| is it)?(?: today)?",
    r"what day is (?:it|today)(?: today)?",
    r"(?:tell me )?(?:the |todays )date",
    r"what is today",
    r"which day is it(?: today)?",
    r"what day of the week is it(?: today)?",
]
# the LLM guessed these from the facts line: "The year is 2028.", "… in the month of Dec 21." (session 15)
_CALENDAR_NOW = [
    r"(?:what|which) (?P<unit>year|month) is it(?: now| today)?",
    r"(?:what|which) (?P<unit>year|month) (?:are we in|is this)(?: now)?",
    r"what (?:is|was|will be) (?:the date |the day )?(?P<unit>tomorrow|yesterday)",
    r"what day (?:is|was|will it be|will be) (?:it )?(?P<unit>tomorrow|yesterday)",
]
_VOLUME_UP = [
    r"(?:turn|crank) (?:the )?(?:volume|sound|it) up|(?:turn|crank) up the (?:volume|sound)|volume up|"
    r"louder|(?:a bit |a little |much )louder|(?:increase|raise) the (?:volume|sound)|"
    r"(?:speak|talk) (?:a bit |a little )?louder|more volume"
]
_VOLUME_DOWN = [
    r"(?:turn) (?:the )?(?:volume|sound|it) down|turn down the (?:volume|sound)|volume down|"
    r"(?:a bit |a little |much )?(?:quieter|softer)|(?:decrease|lower|reduce) the (?:volume|sound)|"
    r"(?:speak|talk) (?:a bit |a little )?(?:quieter|softer|more quietly)|less volume"
]
_VOLUME_SET = [
    r"(?:set|change|turn|put) (?:the )?(?:volume|sound) (?:to |at )(?P<n>\d+)(?P<pct> percent)?",
    r"volume (?:to |at )?(?P<n>\d+)(?P<pct> percent)?",
]
_ARITHMETIC = [
    r"(?:what is|whats|what|how much is|calculate) (?:an? )?(?P<a>\d+(?:\.\d+)?) (?P<op>plus|minus|times|"
    r"multiplied by|divided by|over|x) (?:an? )?(?P<b>\d+(?:\.\d+)?)"
]
_POWER = [  # the LLM said "The square root of 144 is approximately 3.58" (session 15)
    r"(?:what is|whats|what|how much is|calculate) (?:the )?square root of (?:an? )?(?P<b>\d+(?:\.\d+)?)",
    r"(?:what is|whats|what|how much is|calculate) (?P<b>\d+(?:\.\d+)?) (?P<power>squared|cubed)",
]
_PART_OF = [
    r"(?:what is|whats|how much is|calculate) (?P<part>half|a half|a third|a quarter|twice|double|"
    r"(?P<pct>\d+(?:\.\d+)?) percent)(?: of)? (?:an? )?(?P<b>\d+(?:\.\d+)?)"
]
_STOP = [
    r"stop|cancel|never ?mind|forget (?:it|about it)|be quiet|quiet|shut up|stop (?:it|talking|that)|"
    r"enough|that is enough|silence|shush|hush|abort|cancel that|no stop|okay stop|nothing"
]
_REPEAT = [
    r"what did you (?:just )?say|say (?:that|it) again|repeat(?: that| it| yourself| please)?|"
    r"(?:can|could) you (?:say that again|repeat (?:that|it))|come again|pardon(?: me)?|sorry|what|"
    r"sorry what|i did not (?:hear|catch|get) (?:that|you|it)|what was that"
]
_SET_COLOUR = [
    rf"(?:make|turn|set|change|switch|put) (?P<target>.+?) (?:to )?(?:the colou?r )?(?P<colour>{_COLOUR_ALT})"
    r"(?: colou?r)?",
    rf"(?:set|change|make) (?:the )?colou?r of (?P<target>.+?) (?:to )?(?P<colour>{_COLOUR_ALT})",
]
_SET_COLOUR_BARE = [rf"(?P<target>.+?) (?:to )?(?P<colour>{_COLOUR_ALT})"]
_SET_BRIGHTNESS = [
    r"(?:set|turn|put|change|dim|brighten|make) (?P<target>.+?) (?:brightness )?(?:to|at) (?P<n>\d+)"
    r"(?: percent)?(?: brightness)?",
    r"(?:set |change )?(?:the )?brightness (?:of |in |for )(?P<target>.+?) (?:to|at) (?P<n>\d+)(?: percent)?",
]
_SET_BRIGHTNESS_BARE = [r"(?P<target>.+?) (?:brightness )?(?:to )?(?P<n>\d+) percent"]
_STEP_BRIGHTNESS = [
    r"(?P<dir>dim|brighten)(?: up| down)? (?P<target>.+)",
    r"make (?P<target>.+?) (?P<dir>dimmer|brighter|darker|lighter)",
    r"turn (?P<target>.+?) (?P<dir>up|down)",
    r"turn (?P<dir>up|down) (?P<target>.+)",
]
_ON_OFF = [
    rf"{_ON_OFF_VERB} (?P<state>on|off) (?P<target>.+)",
    rf"{_ON_OFF_VERB} (?P<target>.+?) (?P<state>on|off)",
    r"(?P<lights>lights?|lamps?) (?P<state>on|off) in (?:the )?(?P<room>.+)",
    r"(?P<state>shut off|shut down|kill) (?P<target>.+)",
    rf"{_ON_OFF_VERB} (?P<state>on|off)(?P<target>)",  # the device is missing: ask which
]
# Without a verb a phrase is a command only with an exact name: "is the kitchen light on" is a question.
_ON_OFF_BARE = [r"(?P<target>.+?) (?P<state>on|off)"]
# whisper mishears the verb ("Pern on the kitchen light", "Twitch off the fan"): one word, then on/off and
# an exact device name, is still that command (a fuzzy name on top of a misheard verb would be a guess)
_ON_OFF_ANY_VERB = [
    r"(?P<verb>\w+) (?P<state>on|off) (?P<target>.+)",
    r"(?P<verb>\w+) (?P<target>(?:the|my) .+?) (?P<state>on|off)",  # "Purn the kitchen light on."
]
# a device verb and an exact name, but on/off lost or misheard ("Switch the fan up."): ask which
_ON_OFF_UNSAID = [
    rf"{_ON_OFF_VERB} (?P<target>.+?)(?: (?P<rest>\w+))?",
    # … or heard as another word before the name ("Switch after the coffee machine."): ask the same
    rf"{_ON_OFF_VERB} (?P<lost>\w+) (?P<named>(?:the|my) .+)",
]
_NOT_VERBS = frozenset(
    {"is", "was", "are", "were", "what", "who", "why", "how", "where", "when", "not", "left", "stay", "still"}
)
_UNKNOWN_DEVICE = [
    rf"{_ON_OFF_VERB} (?P<state>on|off) (?P<target>.+)",
    rf"{_ON_OFF_VERB} (?P<target>.+?) (?P<state>on|off)",
]
# A verbless continuation of the previous device command: "and the fan", "the bedroom light too".
_CONTINUATION = [r"(?P<target>.+?)(?: too| as well| also)?"]
_YES = frozenset({"yes", "yeah", "yep", "yes please", "sure", "correct", "right", "that one", "it"})
_BOTH = frozenset({"both", "both of them", "all of them", "all", "all of those"})
_NO = frozenset({"no", "neither", "none", "no thanks", "none of them", "neither of them"})


def _compile(patterns: Iterable[str]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p) for p in patterns)


# ---------------------------------------------------------------------------------------- the matcher

# Fuzzy names (difflib's ratio on the normalised strings: 1.0 = identical). Measured on whisper's
# mishearings of the default devices: "valeway light" → hallway light 0.85, "kitchen lite" 0.88, "bed room
# light" 0.96, "copy machine" → coffee machine 0.77, "van" → fan 0.67; unrelated words ("television", "some
# music", "the spider") stay under 0.5. A name is taken at ACCEPT when no other device is within MARGIN;
# from NEAR up the user is asked ("Did you mean the coffee machine?"); below NEAR it is not a device.
FUZZY_ACCEPT = 0.84
FUZZY_NEAR = 0.6
FUZZY_MARGIN = 0.06
FUZZY_ANSWER = 0.65  # an answer to "which device?": "coffee" 0.67, "fun" 0.67, "good night" 0.61 (no)
CLARIFY_WINDOW_S = 15.0  # how long an open question ("Which light?") waits for its answer
# Rooms and appliances a home has that are real words: heard in a name that is not configured, they were
# said on purpose ("dining room light" is not a mishearing of "living room light", 0.88), so such a name is
# asked about, never taken.
_OTHER_THINGS = (
    "bathroom dining garage office study basement attic garden porch nursery laundry closet toilet den "
    "patio cellar loft landing guest kids hall hallway kitchen bedroom lounge living front back "
    "tv television radio heater oven stove kettle toaster dishwasher washer dryer fridge freezer computer "
    "printer speaker music door window blinds curtains heating thermostat air conditioner aircon"
)
OTHER_THINGS = frozenset(_OTHER_THINGS.split())
# Sounds-like (phonemes, design note 220): a name whose letters are not near any device but whose sounds
# are ("hand" → fan 0.81, "pen" 0.75, "met room guide" → bedroom light 0.82, "kitchen mike" 0.86) is asked
# about, never taken. Real things a home has, configured or not, stay refused: besides the rooms and
# appliances above, these sound like a default device ("phone" → fan 0.90, "washing machine" → coffee
# machine 0.72). Unrelated words stay under SOUNDS_NEAR: "garage door" 0.56, "heat" 0.57, "end" 0.50.
SOUNDS_NEAR = 0.7
SOUNDS_MARGIN = 0.06
SOUNDS_MEMO = 256  # pieces of transcripts already compared by sound (cleared when full)
_MORE_THINGS = (
    "phone telephone mobile washing microwave vacuum hoover boiler projector camera alarm car laptop console "
    "game games news podcast shower pump sprinkler sprinklers fireplace humidifier dehumidifier purifier "
    "charger tree candle candles heat water gas engine sun moon stars world"
)
NOT_MISHEARD = OTHER_THINGS | frozenset(_MORE_THINGS.split())
_DEVICE_ACTIONS = frozenset(DEVICE_INTENTS)
_ON_OR_OFF = "turn_on_or_off"  # a question's action when the device was sure and on/off was not
# words whisper inserts before a device name ("switch off from the fan"); never part of a name
_STRAY_WORDS = frozenset({"from", "of", "to", "at", "for", "with", "by"})
_PRONOUNS = frozenset({"it", "that", "this", "them", "those", "these", "everything"})


@dataclass(frozen=True, slots=True)
class _Device:
    name: str
    kind: str


@dataclass(frozen=True, slots=True)
class _Resolved:
    """What a spoken target names: ``devices`` for sure, and at most one part ``heard`` that is not (its
    ``candidates`` are the devices it may be; none = any device, as in "turn off the")."""

    devices: tuple[_Device, ...]
    heard: str | None = None
    candidates: tuple[_Device, ...] = ()


@dataclass(frozen=True, slots=True)
class _Pending:
    """A question asked back: the command waits for the user to name one of ``candidates``."""

    action: str
    understood: tuple[_Device, ...]
    candidates: tuple[_Device, ...]
    extras: Slots  # the command's other slots (brightness, colour, step)
    until_s: float


def _strip_det(text: str) -> str:
    """ "all of the kitchen lights" → "kitchen lights"; "the" → "" (a target cut short)."""
    t = text.strip()
    for _ in range(2):
        t = re.sub(r"^(?:all of |all )?(?:(?:the|my|our|a|an)(?: |$))?", "", t).strip()
    return t


class RuleIntentMatcher:
    """Rule-based intent matcher. ``clock`` (wall time, for "what time is it") and ``mono`` (timers, open
    questions) are injected so tests are exact. Called from the orchestrator's intent step (cheap: well
    under 1 ms)."""

    def __init__(
        self,
        cfg: IntentsConfig,
        timers: Timers | None = None,
        clock: Callable[[], datetime] = datetime.now,
        mono: Callable[[], float] = time.monotonic,
        skills: Skills | None = None,
        sentences: HaSentences | None = None,
        phonemes: Phonemizer | None = None,
    ) -> None:
        self.enabled = cfg.enabled
        # "en": the rules, then HA's templates and the skills; another language: HA's templates alone,
        # answered with HA's response sentences (the rules, replies and skills are English)
        self.language = cfg.language
        self.skills = skills  # asked when no rule matches, before the LLM
        self.sentences = sentences  # Home Assistant's sentence templates: after the rules, before skills
        self.devices = cfg.devices
        self.timers = timers if timers is not None else Timers()
        self._clock = clock
        self._mono = mono
        self._pending: _Pending | None = None
        self._by_alias: dict[str, _Device] = {}
        self._light_rooms: dict[str, _Device] = {}
        for entry in cfg.devices:
            dev = _Device(_norm_name(entry.name), entry.kind)
            for alias in (entry.name, *entry.aliases):
                key = _norm_name(alias)
                self._by_alias.setdefault(key, dev)
                words = key.split()
                if (
                    entry.kind == "light"
                    and len(words) > 1
                    and words[-1] in ("light", "lights", "lamp", "lamps")
                ):
                    self._light_rooms.setdefault(" ".join(words[:-1]), dev)
        self._by_name = {d.name: d for d in self._by_alias.values()}
        # HA's areas (learned, or ``area`` in the config): "the lights in the kitchen" → every light there
        self._by_entity: dict[str, _Device] = {}
        self._entry: dict[_Device, DeviceEntry] = {}  # HA's ``state`` of a device, for its responses
        self._areas: dict[str, list[_Device]] = {}
        for entry in cfg.devices:
            dev = self._by_alias[_norm_name(entry.name)]
            self._by_entity.setdefault(entry.ha_entity_id, dev)
            self._entry.setdefault(dev, entry)
            if entry.area and dev not in self._areas.setdefault(_norm_name(entry.area), []):
                self._areas[_norm_name(entry.area)].append(dev)
        self._vocabulary = {w for key in self._by_alias for w in key.split()}
        # names compared by sound when their letters are far (None: by letters only, e.g. Piper kept out)
        self._sounds = SoundsLike(phonemes) if phonemes is not None and cfg.enabled else None
        self._sounds_memo: dict[str, _Resolved | None] = {}
        if self._sounds is not None:
            for alias in self._by_alias:  # phonemized at start-up, not on the first misheard command
                self._sounds.of(alias)
        self._lights = [d for d in dict.fromkeys(self._by_alias.values()) if d.kind == "light"]
        self._rules: tuple[
            tuple[tuple[re.Pattern[str], ...], Callable[[re.Match[str]], IntentResult | None]], ...
        ] = (
            (_compile(_TIMER_CANCEL), self._timer_cancel),
            (_compile(_TIMER_STATUS), self._timer_status),
            (_compile(_TIMER_SET), self._timer_set),
            (_compile(_STOP), lambda m: IntentResult("stop", (), "")),
            (_compile(_REPEAT), lambda m: IntentResult("repeat", (), "")),
            (_compile(_TIME), self._time),
            (_compile(_DATE), self._date),
            (_compile(_CALENDAR_NOW), self._calendar_now),
            (_compile(_VOLUME_UP), lambda m: IntentResult("volume_up", (), "Volume up.")),
            (_compile(_VOLUME_DOWN), lambda m: IntentResult("volume_down", (), "Volume down.")),
            (_compile(_VOLUME_SET), self._volume_set),
            (_compile(_ARITHMETIC), self._arithmetic),
            (_compile(_PART_OF), self._part_of),
            (_compile(_POWER), self._power),
            (_compile(_SET_COLOUR), self._set_colour),
            (_compile(_SET_COLOUR_BARE), lambda m: self._set_colour(m, fuzzy=False)),
            (_compile(_SET_BRIGHTNESS), self._set_brightness),
            (_compile(_SET_BRIGHTNESS_BARE), lambda m: self._set_brightness(m, fuzzy=False)),
            (_compile(_STEP_BRIGHTNESS), self._step_brightness),
            (_compile(_ON_OFF), self._on_off),
            (_compile(_ON_OFF_BARE), lambda m: self._on_off(m, fuzzy=False)),
            (_compile(_ON_OFF_ANY_VERB), self._misheard_verb),
            (_compile(_UNKNOWN_DEVICE), self._unknown_device),
            (_compile(_ON_OFF_UNSAID), self._on_or_off),
        )
        self._continuation = _compile(_CONTINUATION)[0]
        self._it = re.compile(
            rf"{_ON_OFF_VERB} (?:(?P<s1>on|off) (?:it|them|that|those)|(?:it|them|that|those) (?P<s2>on|off))"
        )

    # ------------------------------------------------------------------------------------ public API

    def match(self, text: str, previous: IntentOutcome | None = None) -> IntentResult | None:
        """A transcript → an intent with its spoken reply, or None (the LLM answers). Changes no state.

        A device verb with a name that is not sure gives ``clarify`` (a short question, e.g. "Which light,
        the hallway or the bedroom?"); its answer, said within ``CLARIFY_WINDOW_S`` of ``apply``-ing the
        question, completes the command ("the hallway" → turn_off hallway light). ``previous``: the
        intent of the turn just before, when this transcript may continue it: a verbless "and the fan"
        after "turn on the kitchen light" → turn_on fan; "turn it off" → its devices.

        No rule: the skills answer offline knowledge (``answer``) or say honestly what the device cannot
        do (``decline``), the ``skill`` slot naming which."""
        if not self.enabled:
            return None
        if self.language != "en":
            return self._from_ha(text) if self.sentences is not None else None
        result = self._match_rules(text, previous)
        if result is None and self.sentences is not None:
            result = self._from_ha(text)
        if result is not None or self.skills is None:
            return result
        got = self.skills.answer(text)
        if got is None or not got.reply:
            return None
        return IntentResult(
            "decline" if got.skill == "boundary" else "answer", (("skill", got.skill),), got.reply
        )

    def _match_rules(self, text: str, previous: IntentOutcome | None) -> IntentResult | None:
        norm = normalise(text)
        if not norm:
            return None
        whole = self._match_one(norm, previous)
        # "turn the kitchen light on and the fan off" matched whole as one "off" for both devices
        two_states = _STATE_CLAUSE.search(norm) is not None
        if whole is not None and whole.name not in ("unknown_device", "clarify") and not two_states:
            return whole
        clauses = [c for c in _CLAUSE.split(norm) if c]
        if len(clauses) < 2:
            return whole
        parts: list[IntentResult] = []
        for i, clause in enumerate(clauses):  # "turn on the light and turn off the fan": one command each
            part = self._match_one(clause, parts[-1] if parts else previous)
            unsure = part is not None and part.name in ("unknown_device", "clarify")
            if part is None or part.also or not part.reply or (unsure and (i == 0 or i < len(clauses) - 1)):
                return whole
            parts.append(part)
        asked = parts.pop() if parts[-1].name in ("unknown_device", "clarify") else None
        replies = [p.reply.rstrip(".") for p in parts if p.reply]
        reply = (
            ", ".join(replies[:-1]) + " and " + _lower_first(replies[-1])
            if len(replies) > 1
            else "".join(replies)
        )
        reply = f"{reply}." if reply else ""
        if asked is not None:  # the commands it understood are done; the last part is asked about
            parts.append(asked)
            reply = f"{reply} {asked.reply}".strip()
        return replace(parts[0], reply=reply, also=tuple(parts[1:]))

    def _match_one(self, norm: str, previous: IntentOutcome | None) -> IntentResult | None:
        question: IntentResult | None = None
        for patterns, build in self._rules:
            for pattern in patterns:
                m = pattern.fullmatch(norm)
                if m is None or (result := build(m)) is None:
                    continue
                if result.name != "clarify" and (question is None or result.name != "unknown_device"):
                    return result
                question = question or result  # a later phrasing may still name the device exactly
        if question is not None:
            return question
        if (answer := self._answer(norm)) is not None:
            return answer
        return self._continue(norm, previous) if previous is not None else None

    def prepare(self, text: str) -> None:
        """Match ``text`` with HA's templates ahead, on the calling (ASR) thread, so that ``match`` on the
        loop finds it in the memo: another language than English only (there every text goes to hassil,
        5-25 ms; in English the rules answer first and hassil's gated cost stays under 5 ms)."""
        if self.enabled and self.language != "en" and self.sentences is not None:
            self.sentences.recognize(text)

    def apply(self, result: IntentOutcome) -> None:
        """Commit an intent's side effects once the turn is final (timers, the question asked back;
        devices go out over MQTT)."""
        seconds = next((v for k, v in result.slots if k == "seconds"), None)
        if result.name == "timer_set":
            self.timers.add(int(seconds or 0), self._mono())
        elif result.name == "timer_cancel":
            self.timers.cancel(int(seconds) if seconds else None)
        self._pending = self._question(result)

    def command_mentions_device(self, device: str, transcript: str) -> bool:
        """True if ``device`` (a configured name, or any of its aliases) is named in ``transcript``.
        An LLM-derived device command is only carried out when this holds."""
        return command_mentions_device(device, transcript, self.devices)

    def resolve_devices(self, target: str) -> list[_Device] | None:
        """A spoken target → devices ("the kitchen light", "lights in the bedroom", "the fan and the
        kitchen lamp", "the lights" = every light, "the valeway light" = the hallway light). None if any
        part is unknown or not sure."""
        res = self._resolve(target, fuzzy=True)
        return list(res.devices) if res is not None and res.heard is None else None

    # ----------------------------------------------------------------------------------- device names

    def _area_lights(self, area: str) -> list[_Device] | None:
        lights = [d for d in self._areas.get(area, ()) if d.kind == "light"]
        return lights or None

    def _exact(self, t: str) -> list[_Device] | None:
        if t in self._by_alias:
            return [self._by_alias[t]]
        m = re.fullmatch(r"(?:lights?|lamps?) in (?:the )?(?P<room>.+)", t)
        if m and (lit := self._area_lights(m.group("room"))) is not None:
            return lit  # HA's area: every light in it
        if m and m.group("room") in self._light_rooms:
            return [self._light_rooms[m.group("room")]]
        m = re.fullmatch(r"(?P<room>.+) (?:lights|lamps)", t)
        if m and (lit := self._area_lights(m.group("room"))) is not None:
            return lit  # "the kitchen lights", when no device is called that
        if (lit := self._area_lights(t)) is not None:  # "turn off the kitchen" → the lights there
            return lit
        if t in self._light_rooms:  # "turn on the kitchen" → its light
            return [self._light_rooms[t]]
        if t in ("lights", "lamps", "all lights", "every light", "all lamps"):
            return [_Device(ALL_LIGHTS, "light")] if self._lights else None
        if t in ("light", "lamp") and len(self._lights) == 1:
            return [self._lights[0]]
        return None

    def _run_together(self, t: str) -> tuple[_Device, ...] | None:
        """Exact names whose separators were lost: normalising drops the commas of "the kitchen light,
        the coffee machine and …" ("kitchen light the coffee machine"), and whisper puts a stray
        preposition before a name ("switch off from the fan"). Only when every piece is a name for sure."""
        pieces = re.split(r" (?=(?:the|my) )", t)
        if len(pieces) < 2:
            return None
        if pieces[0] in _STRAY_WORDS:
            pieces = pieces[1:]
        found: list[_Device] = []
        for piece in pieces:
            if (exact := self._exact(_strip_det(piece))) is None:
                return None
            found += exact
        return tuple(dict.fromkeys(found))

    def _scores(self, t: str, among: Iterable[_Device] | None = None) -> list[tuple[float, _Device]]:
        """Every device (or those ``among``) with its best alias similarity to ``t``, best first."""
        best: dict[_Device, float] = {}
        allowed = None if among is None else set(among)
        for alias, dev in self._by_alias.items():
            if allowed is None or dev in allowed:
                best[dev] = max(best.get(dev, 0.0), SequenceMatcher(None, t, alias).ratio())
        if allowed is not None:  # an answer may name just the room: "the hallway"
            for room, dev in self._light_rooms.items():
                if dev in allowed:
                    best[dev] = max(best[dev], SequenceMatcher(None, t, room).ratio())
        return sorted(((s, d) for d, s in best.items()), key=lambda p: -p[0])

    def _part(self, p: str, fuzzy: bool) -> _Resolved | None:
        """One name: exact, or (``fuzzy``) the closest configured name — sure, or a question."""
        t = _strip_det(p)
        if not t:
            return _Resolved((), "", ()) if fuzzy else None  # "turn off the": which device?
        if (exact := self._exact(t)) is not None:
            return _Resolved(tuple(exact))
        if (listed := self._run_together(t)) is not None:
            return _Resolved(listed)
        if not fuzzy or t in _PRONOUNS:
            return None
        if t in ("light", "lamp"):  # one of several lights: which?
            return _Resolved((), t, tuple(self._lights))
        ranked = self._scores(t)
        if not ranked or ranked[0][0] < FUZZY_NEAR:
            return self._sounds_like(t)
        top = ranked[0][0]
        close = tuple(d for s, d in ranked if s >= max(FUZZY_NEAR, top - FUZZY_MARGIN))[:3]
        said_on_purpose = any(w in OTHER_THINGS and w not in self._vocabulary for w in t.split())
        if top >= FUZZY_ACCEPT and len(close) == 1 and not said_on_purpose:
            return _Resolved(close)
        return _Resolved((), t, close)

    def _sounds_like(self, t: str) -> _Resolved | None:
        """A name whose letters are far from every device but whose sounds are near one (or a few): a
        question ("Did you mean the fan?", "Which light, the hallway or the bedroom?"), never a device
        taken. None: no device sounds like it, or it names a real thing the home may have."""
        if self._sounds is None or len(t) > MAX_TEXT or any(c.isdigit() for c in t):
            return None
        if any(w in NOT_MISHEARD and w not in self._vocabulary for w in t.split()):
            return None  # "turn on the phone", "the garden light": said on purpose, refused as unknown
        # one transcript asks about the same piece from several rules, and the final transcript repeats
        # the speculative one: the comparison with every name is done once per piece
        if t in self._sounds_memo:
            return self._sounds_memo[t]
        if len(self._sounds_memo) >= SOUNDS_MEMO:
            self._sounds_memo.clear()
        got = self._sounds_memo[t] = self._closest_sounds(self._sounds, t)
        return got

    def _closest_sounds(self, sounds: SoundsLike, t: str) -> _Resolved | None:
        best: dict[_Device, float] = {}
        for alias, dev in self._by_alias.items():
            best[dev] = max(best.get(dev, 0.0), sounds.similarity(t, alias))
        ranked = sorted(((s, d) for d, s in best.items()), key=lambda p: -p[0])
        top = ranked[0][0] if ranked else 0.0
        if top < SOUNDS_NEAR:
            return None
        close = tuple(d for s, d in ranked if s >= max(SOUNDS_NEAR, top - SOUNDS_MARGIN))[:3]
        return _Resolved((), t, close)

    def _resolve(self, target: str, fuzzy: bool) -> _Resolved | None:
        """A spoken target → what it names (see ``_Resolved``), or None if some part is no device."""
        # a command cut after its conjunction ("the kitchen light and") names what it has named so far;
        # holding the turn open for the rest is the endpointer's job, not a reason to guess a device
        t = re.sub(r" (?:and|or|also)$", "", _strip_det(target))
        if (exact := self._exact(t)) is not None:
            return _Resolved(tuple(exact))
        parts = [p for p in re.split(r",? and (?:then |also )?|, ", t) if p]
        if len(parts) == 1 and fuzzy and " in " in t:
            # whisper hears "and" as "in" between two names: "kitchen light in the fan" (the "lights in
            # the bedroom" form was tried above); only when both sides name devices for sure
            halves = t.split(" in ")
            named = [self._part(h, fuzzy) for h in halves]
            if all(
                r is not None and r.heard is None and _strip_det(h) not in self._light_rooms
                for r, h in zip(named, halves, strict=True)
            ):
                parts = halves
        if len(parts) <= 1:
            return self._part(t, fuzzy)
        found: list[_Device] = []
        unsure: _Resolved | None = None
        for part in parts:
            r = self._part(part, fuzzy)
            if r is None:
                return None
            if r.heard is not None and unsure is None:
                unsure = r  # ask about the first unsure name; a second one is asked about next time
            found += r.devices
        devices = tuple(dict.fromkeys(found))
        return _Resolved(devices) if unsure is None else _Resolved(devices, unsure.heard, unsure.candidates)

    # ---------------------------------------------------------------------------- asking back, and on

    def _question(self, result: IntentOutcome) -> _Pending | None:
        """The question ``result`` asks the user, to be answered in the next turn (or None)."""
        if result.name not in ("clarify", "unknown_device"):
            return None
        slots = result.slots
        get = self._by_name.get
        action = next((v for k, v in slots if k == "action"), "")
        if result.name == "unknown_device":  # "I don't know a device called television": "the fan" then
            action = next((v for k, v in slots if k == "state"), "")
            action = f"turn_{action}" if action in ("on", "off") else ""
        if action not in _DEVICE_ACTIONS and action != _ON_OR_OFF:
            return None
        return _Pending(
            action,
            tuple(d for k, v in slots if k == "understood" and (d := self._device(v)) is not None),
            tuple(d for k, v in slots if k == "candidate" and (d := get(v)) is not None),
            tuple((k, v) for k, v in slots if k not in _QUESTION_KEYS),
            self._mono() + CLARIFY_WINDOW_S,
        )

    def _device(self, name: str) -> _Device | None:
        return _Device(ALL_LIGHTS, "light") if name == ALL_LIGHTS else self._by_name.get(name)

    def _answer(self, norm: str) -> IntentResult | None:
        """The answer to the question asked in the last turn, if one is open: "the hallway", "yes"."""
        q = self._pending
        if q is None or self._mono() > q.until_s:
            return None
        t = re.sub(r" (?:one|please)$", "", _strip_det(norm))
        cands = q.candidates
        if q.action == _ON_OR_OFF:  # "Turn the fan on or off?" → "on", "off please", "turn it off"
            said = re.fullmatch(rf"(?:{_ON_OFF_VERB} (?:it |them )?)?(?P<s>on|off)(?: it| them)?", t)
            return self._command(f"turn_{said.group('s')}", cands, ()) if said else None
        chosen: tuple[_Device, ...] | None = None
        if t in _NO:
            return IntentResult("stop", (), "")
        if (t in _YES and len(cands) == 1) or (t in _BOTH and len(cands) > 1):
            chosen = cands
        elif (res := self._resolve(t, fuzzy=True)) is not None and res.heard is None:
            chosen = res.devices  # a device named outright (even one not offered)
        elif (
            len(t.split()) <= 3  # a name, not a sentence about it ("the coffee machine is broken")
            and (ranked := self._scores(t, cands or None))
            and ranked[0][0] >= FUZZY_ANSWER
            and (len(ranked) == 1 or ranked[1][0] < ranked[0][0] - FUZZY_MARGIN)
        ):
            chosen = (ranked[0][1],)
        if not chosen:
            return None
        return self._command(q.action, tuple(dict.fromkeys((*q.understood, *chosen))), q.extras)

    def _continue(self, norm: str, previous: IntentOutcome) -> IntentResult | None:
        """A verbless continuation of ``previous`` ("and the fan" — "and" is gone in ``norm``)."""
        if previous.name not in _DEVICE_ACTIONS:
            return None
        m = self._continuation.fullmatch(norm)
        if m is None:
            return None
        extras = tuple((k, v) for k, v in previous.slots if k not in ("device", "kind"))
        if (it := self._it.fullmatch(norm)) is not None:  # "turn it off": the devices just named
            devs = tuple(d for k, v in previous.slots if k == "device" and (d := self._device(v)) is not None)
            state = it.group("s1") or it.group("s2")
            return self._command(f"turn_{state}", devs, ()) if devs else None
        room = re.fullmatch(r"in (?:the )?(?P<room>.+)", m.group("target"))
        if room is not None and ("device", ALL_LIGHTS) in previous.slots:
            # "turn off the lights" ⟨pause⟩ "in the bedroom": the room narrows what was just said; a room
            # not heard for sure is asked about, not handed to the LLM
            if (lit := self._exact(f"lights in {room.group('room')}")) is not None:
                return self._command(previous.name, lit, extras)
            return _clarify(previous.name, _Resolved((), room.group("room"), tuple(self._lights)), extras)
        res = self._resolve(m.group("target"), fuzzy=True)
        if res is None or res.heard is not None:
            return None  # without a verb only a sure name continues: "good night" is not "bedroom light?"
        return self._command(previous.name, res.devices, extras)

    def _device_intent(self, action: str, res: _Resolved | None, extras: Slots) -> IntentResult | None:
        """The command, or a question when a name is not sure."""
        if res is None or (res.heard is None and not res.devices):
            return None
        if res.heard is None:
            return self._command(action, res.devices, extras)
        return _clarify(action, res, extras)

    def _command(self, action: str, devs: Sequence[_Device], extras: Slots) -> IntentResult:
        spoken, get = _spoken(devs), dict(extras).get
        if action == "set_brightness":
            reply = f"Setting {spoken} to {number_words(int(get('brightness', '0')))} percent."
        elif action == "step_brightness":
            reply = f"{'Dimming' if get('step', '').startswith('-') else 'Brightening'} {spoken}."
        elif action == "set_color":
            reply = f"Making {spoken} {get('color', '')}."
        else:
            reply = f"Turning {'on' if action == 'turn_on' else 'off'} {spoken}."
        return IntentResult(action, (*_device_slots(devs), *extras), reply)

    # ----------------------------------------------------------------- Home Assistant's sentences

    def _from_ha(self, text: str) -> IntentResult | None:
        """What HA's templates (and our sentence file) make of a transcript the rules did not match,
        as our intent: HassTurnOn → turn_on, HassLightSet → set_brightness / set_color, HassStartTimer →
        timer_set, … (README "With Home Assistant" has the table). None when it names nothing we know."""
        assert self.sentences is not None
        got = self.sentences.recognize(text)
        if got is None:
            return None
        result = self._ha_result(got)
        if result is None or self.language == "en":
            return result
        return replace(result, reply=self._ha_reply(got, result))

    def _ha_result(self, got: HaMatch) -> IntentResult | None:
        name = got.intent
        if name in ("HassTurnOn", "HassTurnOff"):
            devs = self._ha_targets(got)
            return (
                self._command("turn_on" if name == "HassTurnOn" else "turn_off", devs, ()) if devs else None
            )
        if name in ("HassLightSet", "EdgeVoiceStepBrightness"):
            devs = self._ha_targets(got, lights=True)
            if not devs:
                return None
            if name == "EdgeVoiceStepBrightness":
                return self._command("step_brightness", devs, (("step", got.slot("step") or "+25"),))
            if (level := got.slot("brightness")) is not None and level.isdigit():
                return self._command("set_brightness", devs, (("brightness", str(min(int(level), 100))),))
            if (colour := (got.slot("color") or "").lower()) in COLOURS:
                rgb = ",".join(str(c) for c in COLOURS[colour])
                return self._command("set_color", devs, (("color", colour), ("rgb", rgb)))
            return None
        if name == "HassStartTimer":
            try:
                seconds = sum(int(float(got.slot(k) or 0)) * f for k, f in _HA_DURATION)
            except ValueError:
                return None
            if not 0 < seconds <= 24 * 3600:
                return None
            return IntentResult(
                "timer_set", (("seconds", str(seconds)),), f"Timer set for {duration_words(seconds)}."
            )
        if name in ("HassCancelTimer", "HassCancelAllTimers"):
            return self._timer_cancel_for(None)
        if name == "HassTimerStatus":
            return self._timer_status()
        if name == "HassGetCurrentTime":
            return self._time()
        if name == "HassGetCurrentDate":
            return self._date()
        if name == "HassNevermind":
            return IntentResult("stop", (), "")
        if name == "EdgeVoiceVolumeUp":
            return IntentResult("volume_up", (), "Volume up.")
        if name == "EdgeVoiceVolumeDown":
            return IntentResult("volume_down", (), "Volume down.")
        if name == "EdgeVoiceRepeat":
            return IntentResult("repeat", (), "")
        return None

    def _ha_reply(self, got: HaMatch, result: IntentResult) -> str:
        """HA's response sentence for a match in another language than English, with what HA's intent
        handler would add to its slots; our English reply only where HA has no template for it."""
        assert self.sentences is not None
        extra: dict[str, Any] = {}
        states: list[dict[str, str]] = []
        if result.name in _DEVICE_ACTIONS:
            on = "off" if result.name == "turn_off" else "on"
            for v in result.slot_values("device"):
                for dev in self._lights if v == ALL_LIGHTS else [d for d in [self._by_name.get(v)] if d]:
                    e = self._entry[dev]
                    states.append({"entity_id": e.ha_entity_id, "domain": HA_DOMAINS[e.kind], "name": e.name})
                    states[-1]["state"] = on
        elif got.intent in ("HassCancelTimer", "HassCancelAllTimers"):
            running = len(self.timers.remaining(self._mono()))
            if got.intent == "HassCancelTimer" and running == 0:
                return self.sentences.error("timer_not_found") or result.reply
            if running > 1:  # we cancel them all (HA would ask which): say so as HA's "cancel all" does
                got = replace(got, intent="HassCancelAllTimers", response="default")
            extra["canceled"] = running
        elif got.intent == "HassTimerStatus":
            extra["timers"] = [timer_status(t, left) for t, left in self.timers.remaining(self._mono())]
        elif got.intent == "HassGetCurrentTime":
            extra["time"] = self._clock().time()
        elif got.intent == "HassGetCurrentDate":
            extra["date"] = self._clock().date()
        said = self.sentences.render(got, extra, states)
        return result.reply if said is None else said

    def _ha_targets(self, got: HaMatch, lights: bool = False) -> tuple[_Device, ...]:
        """HA's ``name`` (an entity id) or ``area`` (+ ``domain``) slots → our devices; () if none."""
        if (entity := got.slot("name")) is not None:
            dev = self._by_entity.get(entity)
            return (dev,) if dev is not None and (not lights or dev.kind == "light") else ()
        domain = got.slot("domain") or "light"
        kind = next((k for k, d in HA_DOMAINS.items() if d == domain), None)
        if lights and kind != "light":
            return ()
        if (area := got.slot("area")) is not None:
            return tuple(d for d in self._areas.get(_norm_name(area), ()) if d.kind == kind)
        if kind == "light" and self._lights:  # "turn off all the lights"
            return (_Device(ALL_LIGHTS, "light"),)
        return ()

    # -------------------------------------------------------------------------------------- builders
    def _timer_set(self, m: re.Match[str]) -> IntentResult | None:
        seconds = parse_duration(m.group("dur"))
        if seconds is None or seconds > MAX_TIMER_S:
            # said honestly here: the LLM answered "Set a timer for 100 hours" with "I'll make sure to set
            # it up as soon as possible" and set nothing (session 15)
            return IntentResult(
                "decline", (("skill", "timers"),), "I can set timers from one second to twenty four hours."
            )
        if len(self.timers) >= self.timers.max_timers:
            # the book dropped the oldest running timer while the reply said "Timer set" (session 15)
            most = number_words(self.timers.max_timers)
            return IntentResult(
                "decline", (("skill", "timers"),), f"You already have {most} timers. Cancel one first."
            )
        return IntentResult(
            "timer_set", (("seconds", str(seconds)),), f"Timer set for {duration_words(seconds)}."
        )

    def _timer_cancel(self, m: re.Match[str]) -> IntentResult:
        return self._timer_cancel_for(parse_duration(m.group("dur")) if m.group("dur") else None)

    def _timer_cancel_for(self, seconds: int | None) -> IntentResult:
        slots: Slots = (("seconds", str(seconds)),) if seconds else ()
        running = [
            t for t, _ in self.timers.remaining(self._mono()) if seconds is None or t.duration_s == seconds
        ]
        if not running:
            return IntentResult(
                "timer_cancel",
                slots,
                "You have no timers."
                if not len(self.timers)
                else f"You have no {_duration_adjective(seconds or 0)} timer.",
            )
        return IntentResult(
            "timer_cancel", slots, "Timer cancelled." if len(running) == 1 else "Timers cancelled."
        )

    def _timer_status(self, m: re.Match[str] | None = None) -> IntentResult:
        left = self.timers.remaining(self._mono())
        if not left:
            return IntentResult("timer_status", (), "You have no timers.")
        phrases = [f"your {t.name} has {duration_words(round(s))} left" for t, s in left]
        text = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        return IntentResult("timer_status", (), text[0].upper() + text[1:] + ".")

    def _time(self, m: re.Match[str] | None = None) -> IntentResult:
        now = self._clock()
        return IntentResult("time", (("time", now.strftime("%H:%M")),), time_reply(now))

    def _date(self, m: re.Match[str] | None = None) -> IntentResult:
        now = self._clock()
        return IntentResult("date", (("date", now.strftime("%Y-%m-%d")),), date_reply(now))

    def _calendar_now(self, m: re.Match[str]) -> IntentResult:
        now, unit = self._clock(), m.group("unit")
        if unit == "year":
            reply = f"It's {number_words(now.year)}."
        elif unit == "month":
            reply = f"It's {now.strftime('%B')}."
        elif unit == "tomorrow":
            reply = f"Tomorrow is {date_words(now + timedelta(days=1))}."
        else:
            reply = f"Yesterday was {date_words(now - timedelta(days=1))}."
        return IntentResult("date", (("date", now.strftime("%Y-%m-%d")),), reply)

    def clock_phrases(self) -> tuple[str, str, str]:
        """The time replies of this minute and the next and today's date reply: what the TTS thread
        keeps synthesised while idle, so "what time is it?" is answered as fast as a fixed confirmation."""
        now = self._clock()
        if self.language != "en" and self.sentences is not None:
            from edge_voice.engines.ha_sentences import HaMatch

            said = self.sentences.render
            return (
                said(HaMatch("HassGetCurrentTime", ()), {"time": now.time()}) or time_reply(now),
                said(HaMatch("HassGetCurrentTime", ()), {"time": (now + timedelta(minutes=1)).time()})
                or time_reply(now + timedelta(minutes=1)),
                said(HaMatch("HassGetCurrentDate", ()), {"date": now.date()}) or date_reply(now),
            )
        return time_reply(now), time_reply(now + timedelta(minutes=1)), date_reply(now)

    def _volume_set(self, m: re.Match[str]) -> IntentResult | None:
        n = int(m.group("n"))
        level = n if m.group("pct") or n > 10 else n * 10  # "volume 5" is on a 0–10 scale
        if level > 100:
            return None
        return IntentResult(
            "volume_set", (("level", str(level)),), f"Volume set to {number_words(level)} percent."
        )

    def _arithmetic(self, m: re.Match[str]) -> IntentResult | None:
        a, b, op = float(m.group("a")), float(m.group("b")), m.group("op")
        symbol = {
            "plus": "+",
            "minus": "-",
            "times": "*",
            "multiplied by": "*",
            "x": "*",
            "divided by": "/",
            "over": "/",
        }[op]
        if symbol == "/" and b == 0:
            return IntentResult("arithmetic", (), "You can't divide by zero.")
        result = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else 0.0}[symbol]
        spoken_op = {"+": "plus", "-": "minus", "*": "times", "/": "divided by"}[symbol]
        reply = f"{_decimal_words(a)} {spoken_op} {_decimal_words(b)} is {_decimal_words(round(result, 2))}."
        slots: Slots = (("a", m.group("a")), ("op", symbol), ("b", m.group("b")), ("result", f"{result:g}"))
        return IntentResult("arithmetic", slots, reply[0].upper() + reply[1:])

    def _power(self, m: re.Match[str]) -> IntentResult | None:
        """ "the square root of 144", "12 squared", "3 cubed"."""
        b, power = float(m.group("b")), m.groupdict().get("power")
        if power is None:
            exact = math.sqrt(b)
            said, op = f"The square root of {_decimal_words(b)}", "sqrt"
        else:
            exact = b ** (2 if power == "squared" else 3)
            said, op = f"{_decimal_words(b)} {power}", "^2" if power == "squared" else "^3"
        if exact >= 1e15:
            return None  # (past a million the number is said in digits, as "5000 times 5000" is)
        result = round(exact, 2)
        about = "" if abs(result - exact) < 1e-9 else "about "
        reply = f"{said} is {about}{_decimal_words(result)}."
        slots: Slots = (("a", m.group("b")), ("op", op), ("b", m.group("b")), ("result", f"{exact:g}"))
        return IntentResult("arithmetic", slots, reply[0].upper() + reply[1:])

    def _part_of(self, m: re.Match[str]) -> IntentResult | None:
        """ "half of 50", "a quarter of 200", "10 percent of 80", "twice 7"."""
        b, part = float(m.group("b")), m.group("part")
        factor = {
            "half": 0.5,
            "a half": 0.5,
            "a third": 1 / 3,
            "a quarter": 0.25,
            "twice": 2.0,
            "double": 2.0,
        }.get(part)
        if factor is None:
            factor = float(m.group("pct")) / 100
            said = f"{_decimal_words(float(m.group('pct')))} percent of"
        else:
            said = part if part in ("twice", "double") else f"{part} of"
        result = round(b * factor, 2)
        reply = f"{said} {_decimal_words(b)} is {_decimal_words(result)}."
        slots: Slots = (("a", f"{factor:g}"), ("op", "*"), ("b", m.group("b")), ("result", f"{result:g}"))
        return IntentResult("arithmetic", slots, reply[0].upper() + reply[1:])

    def _lights_only(self, target: str, fuzzy: bool) -> _Resolved | None:
        res = self._resolve(target, fuzzy)
        if res is None or not all(d.kind == "light" for d in res.devices):
            return None
        cands = tuple(d for d in res.candidates if d.kind == "light")
        if res.heard and not cands:
            return None  # "dim the coffee machine": no light near that name
        return _Resolved(res.devices, res.heard, cands)

    def _set_colour(self, m: re.Match[str], fuzzy: bool = True) -> IntentResult | None:
        colour = m.group("colour")
        rgb = ",".join(str(c) for c in COLOURS[colour])
        res = self._lights_only(m.group("target"), fuzzy)
        return self._device_intent("set_color", res, (("color", colour), ("rgb", rgb)))

    def _set_brightness(self, m: re.Match[str], fuzzy: bool = True) -> IntentResult | None:
        level = min(int(m.group("n")), 100)
        res = self._lights_only(m.group("target"), fuzzy)
        return self._device_intent("set_brightness", res, (("brightness", str(level)),))

    def _step_brightness(self, m: re.Match[str]) -> IntentResult | None:
        down = m.group("dir") in ("dim", "dimmer", "darker", "down")
        res = self._lights_only(m.group("target"), fuzzy=True)
        return self._device_intent("step_brightness", res, (("step", "-25" if down else "+25"),))

    def _on_off(self, m: re.Match[str], fuzzy: bool = True) -> IntentResult | None:
        groups = m.groupdict()
        if groups.get("room") is not None:
            target = f"{groups['lights']} in {groups['room']}"
        else:
            target = groups["target"]
        name = "turn_on" if groups["state"] == "on" else "turn_off"
        return self._device_intent(name, self._resolve(target, fuzzy), ())

    def _misheard_verb(self, m: re.Match[str]) -> IntentResult | None:
        verb = m.group("verb")
        # "pern" 0.5 from "turn", "twitch" 0.83 from "switch"; "right" (for "brighten") is 0.36: not on/off
        like = max(SequenceMatcher(None, verb, v).ratio() for v in ("turn", "switch"))
        if verb in _NOT_VERBS:
            return None
        if like >= 0.5:
            return self._on_off(m, fuzzy=False)
        # a verb heard too wrong to guess ("Sledge on the living room light"), before one device named
        # exactly: ask "Turn on the living room light?" (a yes acts) rather than hand it to the LLM
        res = self._resolve(m.group("target"), fuzzy=False)
        if res is None or res.heard is not None or len(res.devices) != 1:
            return None
        action = "turn_on" if m.group("state") == "on" else "turn_off"
        return _clarify(action, _Resolved((), verb, res.devices), (), confirm=True)

    def _on_or_off(self, m: re.Match[str]) -> IntentResult | None:
        groups = m.groupdict()
        if groups.get("named") is not None:  # the word lost before an exact name: "switch after the fan"
            if groups["lost"] in _NOT_VERBS or groups["lost"] in ("on", "off"):
                return None
            target, rest = groups["named"], None
        else:
            target, rest = groups["target"], groups["rest"]
        if rest in ("on", "off"):
            return None  # an on/off command whose device is unknown: _UNKNOWN_DEVICE's reply
        # the whole phrase names the devices ("turn the fan"), or all but a misheard last word ("… up")
        for said in (f"{target} {rest}", target) if rest else (target,):
            res = self._resolve(said, fuzzy=False)
            if res is not None and res.heard is None and res.devices:
                break
        else:
            return None
        reply = f"Turn {_spoken(res.devices)} on or off?"
        return IntentResult(
            "clarify", (("action", _ON_OR_OFF), *(("candidate", d.name) for d in res.devices)), reply
        )

    def _unknown_device(self, m: re.Match[str]) -> IntentResult | None:
        target = re.sub(r"^(?:the |my |our )", "", m.group("target"))
        if target in _PRONOUNS:
            return None
        parts = [p for p in re.split(r",? and |, ", target) if p]
        unknown = [p for p in parts if self._resolve(p, fuzzy=True) is None] or parts
        name = _strip_det(unknown[0]) or target  # the part that is no device, not the whole phrase
        state = "on" if m.group("state") == "on" else "off"
        return IntentResult(
            "unknown_device",
            (("device", name), ("state", state)),
            f"Sorry, I don't know a device called {name}.",
        )


_HA_DURATION = (("hours", 3600), ("minutes", 60), ("seconds", 1))  # HassStartTimer's slots
_QUESTION_KEYS = frozenset({"action", "heard", "candidate", "understood", "state", "device", "kind"})


def _clarify(action: str, res: _Resolved, extras: Slots, confirm: bool = False) -> IntentResult:
    """Ask back, briefly: "Did you mean the coffee machine?", "Which light, the hallway or the bedroom?",
    "Turn off which device?"; ``confirm``: the verb was not sure, "Turn on the fan?"."""
    cands = res.candidates
    if confirm and len(cands) == 1 and action in ("turn_on", "turn_off"):
        reply = f"Turn {'on' if action == 'turn_on' else 'off'} {_spoken(cands)}?"
    elif not cands:
        verb = {"turn_on": "Turn on", "turn_off": "Turn off"}.get(action)
        reply = f"{verb} which device?" if verb else "Which light?"
    elif len(cands) == 1:
        reply = f"Did you mean {_spoken(cands)}?"
    elif len(cands) > 3:  # too many to list in a short question
        reply = "Which light?" if all(d.kind == "light" for d in cands) else "Which one?"
    else:
        lights = all(d.kind == "light" and d.name.split()[-1] in ("light", "lamp") for d in cands)
        names = [" ".join(d.name.split()[:-1]) if lights else d.name for d in cands]
        listed = ", the ".join(names[:-1]) + f" or the {names[-1]}"
        reply = f"Which {'light' if lights else 'one'}, the {listed}?"
    slots: Slots = (
        ("action", action),
        ("heard", res.heard or ""),
        *(("candidate", d.name) for d in cands),
        *(("understood", d.name) for d in res.devices),
        *extras,
    )
    return IntentResult("clarify", slots, reply)


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:] if text[:2] != "I " else text


# a sentence of several commands splits before each command's verb ("…, and then switch off the fan")
_CLAUSE = re.compile(
    r",? (?:and then|and|then|also) (?=(?:please )?(?:turn|switch|set|dim|brighten|make|start|cancel)\b)"
    r"|(?<= on|off),? (?:and then|and|then|also) (?=(?:the|my) )"  # "… light on and the fan off"
    r"|(?<= on|off) in (?=(?:the|my) .+ (?:on|off)$)"  # whisper's "and" heard "in": "… on in the fan off"
)
# a device's state said before another device: each part is its own command
_STATE_CLAUSE = re.compile(
    r"\b(?:on|off),? (?:and then|and|then|also) (?:the|my) |\b(?:on|off) in (?:the|my) .+ (?:on|off)$"
)


def _device_slots(devs: Sequence[_Device]) -> Slots:
    return tuple(pair for d in devs for pair in (("device", d.name), ("kind", d.kind)))


def _spoken(devs: Sequence[_Device]) -> str:
    names = ["all the lights" if d.name == ALL_LIGHTS else f"the {d.name}" for d in devs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


# --------------------------------------------------------------------------------- time and date words

_ORDINALS = {
    1: "first",
    2: "second",
    3: "third",
    5: "fifth",
    8: "eighth",
    9: "ninth",
    12: "twelfth",
    20: "twentieth",
    30: "thirtieth",
}


def _round_left(hours: int, minutes: int, seconds: int) -> tuple[int, int, int]:
    """Time left as HA's timer status says it: hours to the half hour, minutes to the half minute,
    seconds exact below 10, else to the ten (and a minute from 51 s)."""
    if hours:
        if minutes > 45:
            return hours + 1, 0, 0
        return hours, 0 if minutes < 15 else 30, 0
    if minutes:
        if seconds > 45:
            return 0, minutes + 1, 0
        return 0, minutes, 0 if seconds < 15 else 30
    if seconds > 50:
        return 0, 1, 0
    return 0, 0, seconds if seconds < 10 else seconds - seconds % 10


def timer_status(timer: Timer, left_s: float) -> dict[str, Any]:
    """A running timer as HA's HassTimerStatus hands it to its response template (``slots.timers``)."""
    total = max(0, round(left_s))
    m, sec = divmod(total, 60)
    h, m = divmod(m, 60)
    start_m, start_s = divmod(timer.duration_s, 60)
    start_h, start_m = divmod(start_m, 60)
    rh, rm, rs = _round_left(h, m, sec)
    return {
        "id": str(timer.id),
        "name": "",
        "area": "",
        "start_hours": start_h,
        "start_minutes": start_m,
        "start_seconds": start_s,
        "is_active": True,
        "hours_left": h,
        "minutes_left": m,
        "seconds_left": sec,
        "rounded_hours_left": rh,
        "rounded_minutes_left": rm,
        "rounded_seconds_left": rs,
        "total_seconds_left": total,
    }


def ordinal_words(n: int) -> str:
    if n in _ORDINALS:
        return _ORDINALS[n]
    if n > 20 and n % 10:
        return f"{TENS_WORDS[n // 10]} {ordinal_words(n % 10)}"
    word = number_words(n)
    return word[:-1] + "ieth" if word.endswith("y") else word + "th"


def time_words(now: datetime) -> str:
    """10:42 → "ten forty two in the morning"; 15:00 → "three o'clock in the afternoon"."""
    hour12 = now.hour % 12 or 12
    if now.minute == 0:
        clock = f"{number_words(hour12)} o'clock"
    elif now.minute < 10:
        clock = f"{number_words(hour12)} oh {number_words(now.minute)}"
    else:
        clock = f"{number_words(hour12)} {number_words(now.minute)}"
    if now.hour < 12:
        part = "in the morning" if now.hour >= 5 else "at night"
    elif now.hour < 18:
        part = "in the afternoon"
    elif now.hour < 22:
        part = "in the evening"
    else:
        part = "at night"
    if now.hour == 12 and now.minute == 0:
        return "twelve noon"
    if now.hour == 0 and now.minute == 0:
        return "midnight"
    return f"{clock} {part}"


def time_reply(now: datetime) -> str:
    return f"It's {time_words(now)}."


def date_reply(now: datetime) -> str:
    return f"Today is {date_words(now)}."


def date_words(now: datetime) -> str:
    """→ "Tuesday, the third of November"."""
    return f"{now.strftime('%A')}, the {ordinal_words(now.day)} of {now.strftime('%B')}"


# --------------------------------------------------------------------------------------------- helpers


def command_mentions_device(device: str, transcript: str, devices: Sequence[DeviceEntry]) -> bool:
    """Is ``device`` a configured device named in the transcript — by its name or an alias (case and
    punctuation ignored, whole words only)?"""
    text = f" {_norm_name(transcript)} "
    wanted = _norm_name(device)
    for entry in devices:
        names = [_norm_name(n) for n in (entry.name, *entry.aliases)]
        if wanted in names:
            return any(f" {n} " in text for n in names)
    return False  # not a configured device: nothing to carry out


COMMON_TIMER_SECONDS = (60, 120, 180, 300, 600, 900, 1200, 1800, 3600)


def confirmation_phrases(cfg: IntentsConfig) -> tuple[str, ...]:
    """Every fixed reply the fast path can give, for the TTS phrase cache to synthesise at start-up. In
    another language than English the replies are HA's, rendered per match: only the timer's English
    "done" remains fixed."""
    if cfg.language != "en":
        return tuple(f"Your {_duration_adjective(s)} timer is done." for s in COMMON_TIMER_SECONDS)
    phrases = ["Volume up.", "Volume down.", "Timer cancelled.", "Timers cancelled.", "You have no timers."]
    lights = [d for d in cfg.devices if d.kind == "light"]
    for entry in cfg.devices:
        name = f"the {_norm_name(entry.name)}"
        phrases += [f"Turning on {name}.", f"Turning off {name}."]
        if entry.kind == "light":
            phrases += [f"Dimming {name}.", f"Brightening {name}."]
        phrases.append(f"Did you mean {name}?")  # a name heard a little wrong
        phrases += [f"Turn on {name}?", f"Turn off {name}?"]  # a verb heard wrong
    phrases += ["Turn on which device?", "Turn off which device?", "Which light?"]
    if lights:
        phrases += ["Turning on all the lights.", "Turning off all the lights."]
    phrases += [f"Timer set for {duration_words(s)}." for s in COMMON_TIMER_SECONDS]
    phrases += [f"Your {_duration_adjective(s)} timer is done." for s in COMMON_TIMER_SECONDS]
    return tuple(dict.fromkeys(phrases))


def ha_sentences(cfg: IntentsConfig) -> HaSentences | None:
    """HA's sentence templates for the matcher when ``intents.ha_sentences`` is on (imports hassil)."""
    if not (cfg.enabled and cfg.ha_sentences):
        return None
    from edge_voice.models.registry import ModelError

    try:
        from edge_voice.engines.ha_sentences import HaSentences

        return HaSentences(cfg.devices, cfg.language)
    except ImportError as exc:  # a start-up failure (exit 78), not a crash
        raise ModelError(
            f"intents.ha_sentences: {exc.name or exc} is not installed (requirements/runtime.txt)"
        ) from None
