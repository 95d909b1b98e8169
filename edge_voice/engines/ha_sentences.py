"""Home Assistant's intent language on the fast path: its sentence templates (``home-assistant-intents``)
matched by its matcher (``hassil``), with our own small sentence file (``data/intents/<language>.yaml``)
for what HA's set lacks. ``engines/intents.RuleIntentMatcher`` asks it only when its own rules found
nothing, and maps what it gives onto our intents (``HA_TO_OURS``).

Only the intents the device serves are loaded (``SERVED`` and ours): hassil's time grows with the number
of templates, and HA's climate, covers, media, lists, vacuum… would match sentences we cannot act on.
Slot lists as HA's default agent builds them: ``name`` = every device name and alias (value: its entity
id, context: its domain), ``area`` = the devices' areas. Bounded: ``MAX_CHARS`` of text, and a small
memo, since a speculative transcript is often asked again (the commit re-matches the same words).
hassil and the templates are imported when this is built (``intents.ha_sentences``), not before.

Another language than English (``intents.language``): HA's templates for it alone (our sentence file only
where ``data/intents/<language>.yaml`` exists), and ``render`` speaks HA's own response template for the
match, rendered as HA's default agent renders it: Jinja2 in a sandbox, ``slots`` = each matched entity's
text (else its value) updated by what the intent handler adds (``canceled``, ``timers``, ``time``,
``date``), ``state``/``query`` = the entities acted on, whitespace collapsed.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from edge_voice.core.config import HA_DOMAINS, DeviceEntry
from edge_voice.core.intent import norm_device_name

# HA's intents the device acts on (its own timers, clock, the devices it names; "never mind" = stop)
SERVED = (
    "HassTurnOn",
    "HassTurnOff",
    "HassLightSet",
    "HassStartTimer",
    "HassCancelTimer",
    "HassCancelAllTimers",
    "HassTimerStatus",
    "HassGetCurrentTime",
    "HassGetCurrentDate",
    "HassNevermind",
)
OUR_LANGUAGES = ("en",)  # where our sentence file (and our rules and replies) exist
MAX_CHARS = 200  # a transcript longer than this is no command
MEMO = 64
# A speculative transcript cut mid-command ("turn", "set the living room light to") is hassil's slowest
# case (up to 25 ms: every template is tried as far as it goes) and can never match: no template of ours
# is one word or ends with one of these words, so such texts are not asked (bench home: fast_path)
_CUT_SHORT = frozenset(
    "the a an my our to of in at for and or with by from into turn switch set make".split()  # noqa: SIM905
)
# The words one of which every sentence of the served intents that names no device contains (the time,
# the date, timers, never mind, volume, repeat; checked over hassil's samples of the templates by
# tests/unit/test_ha_sentences.py), and a device intent needs a device, an area or the lights named
# (our mapping acts on nothing else): a text with none of them is not asked ("how many legs does a
# spider have?" cost up to 14 ms for nothing)
ANCHORS = frozenset(
    [
        "time",
        "date",
        "day",
        "today",
        "today's",
        "timer",
        "timers",
        "mind",
        "nevermind",
        "volume",
        "louder",
        "quieter",
        "softer",
        "repeat",
        "again",
        "say",
        "come",
        "light",
        "lights",
        "lamp",
        "lamps",
    ]
)


@dataclass(frozen=True, slots=True)
class HaMatch:
    """A sentence matched: HA's intent name and its slots by HA's names (``name`` is the entity id,
    ``name_text`` what was said; ``area``, ``domain``, ``brightness``, ``color``, ``hours``/``minutes``/
    ``seconds`` of a timer, ``step`` of ours)."""

    intent: str
    slots: tuple[tuple[str, str], ...]
    # the template's response key ("default", "light_all", "brightness", …) and HA's ``slots`` for its
    # response template: each entity's text as said, else its value ("Küchenlicht", 5, "zwei")
    response: str = "default"
    said: tuple[tuple[str, Any], ...] = ()

    def slot(self, key: str) -> str | None:
        return next((v for k, v in self.slots if k == key), None)


def sentence_file(language: str) -> str | None:
    """Our sentence file for ``language``, or None where we have none (every language but English)."""
    path = resources.files("edge_voice").joinpath("data", "intents", f"{language}.yaml")
    return path.read_text("utf-8") if path.is_file() else None


class HaSentences:
    """hassil over HA's templates + ours. ``recognize`` is pure apart from its memo; called on the event
    loop's intent step (its cost: ``bench home``'s ``fast_path`` section)."""

    def __init__(self, devices: Sequence[DeviceEntry], language: str = "en") -> None:
        import yaml
        from hassil import Intents
        from hassil.intents import TextSlotList
        from home_assistant_intents import get_intents

        data = get_intents(language)
        if data is None:
            raise ValueError(f"no sentences for language {language!r}")
        self.language = language
        ours_text = sentence_file(language)
        ours = yaml.safe_load(ours_text)["intents"] if ours_text is not None else {}
        data = {**data, "intents": {k: v for k, v in data["intents"].items() if k in SERVED} | ours}
        self._intents = Intents.from_dict(data)
        # HA's response templates, compiled now (a broken one fails the start, not a turn): only where our
        # own replies are not spoken, i.e. not for English
        self._responses: dict[tuple[str, str], Any] = {}
        if language not in OUR_LANGUAGES:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment()
            responses = data.get("responses", {})
            for intent, by_key in responses.get("intents", {}).items():
                if intent in SERVED:
                    for key, text in by_key.items():
                        self._responses[(intent, key)] = env.from_string(text)
            for key, text in responses.get("errors", {}).items():
                self._responses[("error", key)] = env.from_string(text)
        names: dict[str, tuple[str, str]] = {}
        for d in devices:
            for said in (d.name, *d.aliases):
                key = norm_device_name(said)
                if key:
                    names.setdefault(key, (d.ha_entity_id, HA_DOMAINS[d.kind]))
        areas = sorted({norm_device_name(d.area) for d in devices if d.area})
        spoken = sorted({*names, *areas}, key=len, reverse=True)
        self._named = re.compile(r"\b(?:" + "|".join(map(re.escape, spoken)) + r")\b") if spoken else None
        self._slots: dict[str, Any] = {
            "name": TextSlotList.from_tuples([(n, e, {"domain": dom}) for n, (e, dom) in names.items()]),
            "area": TextSlotList.from_strings(areas or ["\x00"]),  # an empty list would not compile
            "floor": TextSlotList.from_strings(["\x00"]),
        }
        self._memo: OrderedDict[str, HaMatch | None] = OrderedDict()
        self._lock = threading.Lock()  # the memo is filled from the ASR thread too (prepare)
        self.ran = 0  # texts hassil was run on (past the gates and the memo): for bench home
        self._recognize("turn on the light")  # hassil fills its caches on the first call (~250 ms)

    def recognize(self, text: str) -> HaMatch | None:
        if len(text) > MAX_CHARS:
            return None
        words = re.findall(r"[\w']+", text.lower())
        if not words or (self.language == "en" and not self._worth_asking(words)):
            return None  # the gates are English words: another language asks every text
        with self._lock:
            if text in self._memo:
                self._memo.move_to_end(text)
                return self._memo[text]
        found = self._recognize(text)
        with self._lock:
            self.ran += 1
            self._memo[text] = found
            if len(self._memo) > MEMO:
                self._memo.popitem(last=False)
        return found

    def _worth_asking(self, words: list[str]) -> bool:
        if len(words) < 2 or words[-1] in _CUT_SHORT:
            return False
        return not ANCHORS.isdisjoint(words) or (
            self._named is not None and bool(self._named.search(" ".join(words)))
        )

    def _recognize(self, text: str) -> HaMatch | None:
        from hassil import recognize_best

        # best_slot_name: HA's default agent prefers the reading that names an entity ("kitchen light" =
        # the light called that, not "the lights in the kitchen")
        r: Any = recognize_best(text, self._intents, slot_lists=self._slots, best_slot_name="name")
        if r is None:
            return None
        slots: list[tuple[str, str]] = []
        said: list[tuple[str, Any]] = []
        for key, ent in r.entities.items():
            value = ent.value
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            slots.append((key, str(value)))
            said.append((key, ent.text or value))  # as HA's default agent hands its response template
            if key == "name":
                slots.append(("name_text", str(ent.text).strip()))
        return HaMatch(r.intent.name, tuple(slots), r.response or "default", tuple(said))

    def render(
        self,
        got: HaMatch,
        slots: Mapping[str, Any] | None = None,
        states: Sequence[Mapping[str, Any]] = (),
    ) -> str | None:
        """HA's response sentence for ``got`` in this language (None: English, or no template for it):
        its response key's template, else the intent's "default". ``slots``: what HA's intent handler
        adds to the recognised ones; ``states``: the entities acted on (``state`` is the first)."""
        template = self._responses.get((got.intent, got.response)) or self._responses.get(
            (got.intent, "default")
        )
        if template is None:
            return None
        return self._render(template, {**dict(got.said), **(slots or {})}, states)

    def error(self, key: str, slots: Mapping[str, Any] | None = None) -> str | None:
        """HA's error sentence ``key`` (``timer_not_found``, …) in this language, or None."""
        template = self._responses.get(("error", key))
        return None if template is None else self._render(template, dict(slots or {}), ())

    @staticmethod
    def _render(template: Any, slots: dict[str, Any], states: Sequence[Mapping[str, Any]]) -> str:
        text = template.render(
            slots=slots, state=states[0] if states else None, query={"matched": list(states), "unmatched": []}
        )
        return " ".join(str(text).split())
