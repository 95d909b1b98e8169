"""``edge-voice bench turn-taking``: is anything the user says lost, cut off or acted on twice? Spoken
multi-part commands with pauses through the real daemon (WAV in, WAV out, in-process), once per
*variant* of the config in the same run, scored on what the user gets (issue 23, "Benchmark").

The evaluation set is generated at run time, deterministically (``seed``), from our TTS voices: Piper joe
at two speeds and four espeak-ng voices. Each clip is "Hey Jarvis," (Piper, as in ``bench turn``) + the
utterance's parts with silences between them + a trailing silence long enough for the reply(s) and the
follow-up window to end, so clips are independent. Kinds of clip:

- ``two_part``: "turn on the kitchen light ⟨pause⟩ and turn off the fan" / "… ⟨pause⟩ and the coffee
  machine", pauses 150, 300, 600, 900 ms;
- ``during_reply``: the same with a pause ≥ 1200 ms: the second part starts while the confirmation plays;
- ``multi_device``: two or three devices named in one breath; ``three_devices`` adds a paused third;
- ``single``: one device (control);
- ``complete``: one complete sentence with an internal pause ≤ 300 ms ("turn off the lights ⟨300⟩ in the
  bedroom") — a turn that ends there is a *false cut-off*;
- ``question``: ``bench turn``'s questions (LLM answers, their voice-to-voice);
- a few clips again at 10 dB SNR white noise (``noisy``).

Scores per clip, then per variant and per category (pause, devices, voice, clean/noisy):
- parts acted on: the expected (intent, device) pairs found in ``intent.recognized`` events (``device``
  may be a string or a list of strings); wrong actions (an acted pair not asked for), duplicates; and, as
  a diagnostic, parts the spoken confirmation named (``parts_confirmed``: heard right, but maybe not in
  the payload);
- false cut-offs (complete sentences): a turn ended at an internal pause, or the sentence was spread over
  several transcribed turns (``unrepaired``: and the user did not get it right in the end either);
- clarifications (intent ``clarify``, or a reply starting "Which"); ``unknown_device`` refusals;
- lost parts: a spoken part no event covers (no speech event overlaps it, no transcript has its words);
- voice-to-voice p50/p95 (``response.done`` latency) of commands and of LLM answers.

Variants: ``VARIANTS`` below, a list of (name, {dotted config key: value}). An override whose key the
config does not have is skipped and reported (``skipped_overrides``), so the bench runs on a tree where a
key does not exist yet; the variants are then identical and the JSON says so (``variants_identical``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE, Pcm

# ------------------------------------------------------------------------------------------- variants

# (name, config overrides as dotted keys): edit freely. "baseline" = the two-stage commit as it was before
# issue 23 (no continuation, no wait on an unfinished transcript); "session10" = the turn-taking before the
# early decode and the question commit (``--opt variants=session10,new``); "session12" = before a
# continuation was decoded in its pauses while the first reply plays; "new" = the config's defaults.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("baseline", {"endpoint.continuation": False, "endpoint.unfinished_silence_ms": 0}),
    ("session10", {"endpoint.early_decode_ms": 0, "endpoint.question_commit_silence_ms": 0}),
    ("session12", {"endpoint.decode_continuation": False}),
    ("new", {}),
]


def apply_overrides(cfg: Config, overrides: Mapping[str, Any]) -> tuple[Config, dict[str, Any], list[str]]:
    """``cfg`` with each ``section.key = value`` whose key exists applied (validated by the section's
    ``__post_init__``); returns (config, applied, skipped keys)."""
    applied: dict[str, Any] = {}
    skipped: list[str] = []
    for key, value in overrides.items():
        section, _, name = key.partition(".")
        sec = getattr(cfg, section, None)
        if not name or sec is None or not dataclasses.is_dataclass(sec) or isinstance(sec, type):
            skipped.append(key)
            continue
        if name not in {f.name for f in dataclasses.fields(sec)}:
            skipped.append(key)
            continue
        new_section: dict[str, Any] = {section: dataclasses.replace(sec, **{name: value})}
        cfg = dataclasses.replace(cfg, **new_section)
        applied[key] = value
    return cfg, applied, skipped


# ------------------------------------------------------------------------------------------ clip set

VOICES = ("piper:1.0", "espeak:en-us", "piper:1.2", "espeak:en-gb", "espeak:en-us+f3", "espeak:en-gb+m3")
PAUSES_MS = (150, 300, 600, 900)
DURING_REPLY_PAUSES_MS = (1300, 1800)
SNR_DB = 10.0
DEVICE_INTENTS = frozenset({"turn_on", "turn_off", "set_brightness", "step_brightness", "set_color"})
# devices the commands name (the daemon's default intents.devices; see core/config.py DEFAULT_DEVICES)
DEVICES = ("kitchen light", "living room light", "bedroom light", "hallway light", "fan", "coffee machine")

# complete sentences with an internal pause (part texts, pause ms, expected pairs); several have a prefix
# that is itself a complete (or refusable) command: "turn off the lights" = all lights
COMPLETE: tuple[tuple[tuple[str, ...], int, tuple[tuple[str, str], ...]], ...] = (
    (("turn off the lights", "in the bedroom."), 300, (("turn_off", "bedroom light"),)),
    (("turn on the", "hallway light."), 300, (("turn_on", "hallway light"),)),
    (("turn off the light", "in the kitchen."), 250, (("turn_off", "kitchen light"),)),
    (("set the living room light", "to forty percent."), 300, (("set_brightness", "living room light"),)),
    (("make the bedroom light", "blue."), 200, (("set_color", "bedroom light"),)),
    (("turn on the coffee", "machine."), 150, (("turn_on", "coffee machine"),)),
    (("switch the fan", "off."), 300, (("turn_off", "fan"),)),
    (("what is the capital", "of Japan?"), 300, ()),
)


@dataclass(frozen=True, slots=True)
class ClipSpec:
    id: str
    kind: str  # two_part, during_reply, multi_device, three_devices, single, complete, question
    parts: tuple[str, ...]
    pauses_ms: tuple[int, ...]  # between consecutive parts
    expected: tuple[tuple[str, str], ...]  # (intent, device) pairs the user asked for
    voice: str
    noisy: bool = False

    @property
    def text(self) -> str:
        return " ".join(self.parts)

    @property
    def n_devices(self) -> int:
        return len({d for _, d in self.expected})

    @property
    def pause_label(self) -> str:
        if self.kind in ("two_part", "during_reply", "three_devices"):
            return str(max(self.pauses_ms))
        return self.kind if self.kind in ("complete", "question") else "none"


def _verb(on: bool, rng: random.Random) -> str:
    return rng.choice(("turn on", "switch on")) if on else rng.choice(("turn off", "switch off"))


def _names(devs: Sequence[str]) -> str:
    names = [f"the {d}" for d in devs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def make_specs(
    seed: int = 23,
    commands: int = 40,
    noisy: int = 6,
    questions: int = 10,
    complete: int = 8,
    voices: Sequence[str] = VOICES,
) -> list[ClipSpec]:
    """The evaluation set: ``commands`` device commands (two-part at each pause, during-reply, one to
    three devices), ``complete`` sentences with internal pauses, ``questions``, ``noisy`` commands again
    at 10 dB. Deterministic for a seed."""
    from edge_voice.bench.turn import QUESTIONS

    rng = random.Random(seed)
    piper = [v for v in voices if v.startswith("piper")] or list(voices)
    vi = 0

    def voice() -> str:
        nonlocal vi
        vi += 1
        return voices[(vi - 1) % len(voices)]

    def pick(n: int) -> list[str]:
        return rng.sample(DEVICES, n)

    def two_part(kind: str, pause: int, form: str) -> ClipSpec:
        """ "… ⟨pause⟩ and turn off the Y" (form "verb") or "… ⟨pause⟩ and the Y" (form "device")."""
        a, b = pick(2)
        on_a = rng.random() < 0.5
        on_b = (not on_a) if form == "verb" else on_a
        second = f"and {_verb(on_b, rng)} the {b}." if form == "verb" else f"and the {b}."
        parts = (f"{_verb(on_a, rng)} the {a}", second)
        exp = ((f"turn_{'on' if on_a else 'off'}", a), (f"turn_{'on' if on_b else 'off'}", b))
        return ClipSpec("", kind, parts, (pause,), exp, voice())

    cmds = [two_part("two_part", p, form) for p in PAUSES_MS for form in ("verb", "device") * 3]
    cmds += [two_part("during_reply", p, form) for p in DURING_REPLY_PAUSES_MS for form in ("verb", "device")]
    for n in (2, 2, 3, 3):  # several devices in one breath
        devs = pick(n)
        on = rng.random() < 0.5
        multi = tuple((f"turn_{'on' if on else 'off'}", d) for d in devs)
        cmds.append(ClipSpec("", "multi_device", (f"{_verb(on, rng)} {_names(devs)}.",), (), multi, voice()))
    for p in (300, 900):  # three devices over two parts
        a, b, c = pick(3)
        on = rng.random() < 0.5
        three = (f"{_verb(on, rng)} the {a} and the {b}", f"and {_verb(not on, rng)} the {c}.")
        st, ns = f"turn_{'on' if on else 'off'}", f"turn_{'off' if on else 'on'}"
        cmds.append(ClipSpec("", "three_devices", three, (p,), ((st, a), (st, b), (ns, c)), voice()))
    while len(cmds) < commands:  # single-device controls fill up to the count asked for
        (a,) = pick(1)
        on = rng.random() < 0.5
        cmds.append(
            ClipSpec(
                "",
                "single",
                (f"{_verb(on, rng)} the {a}.",),
                (),
                ((f"turn_{'on' if on else 'off'}", a),),
                voice(),
            )
        )
    if commands < len(cmds):  # a smaller set: an even spread over the kinds, seeded
        cmds = sorted(rng.sample(cmds, commands), key=cmds.index)
    out = list(cmds)
    for sentence, pause, pairs in COMPLETE[:complete]:
        out.append(ClipSpec("", "complete", sentence, (pause,), pairs, voice()))
    for q in QUESTIONS[:questions]:
        out.append(ClipSpec("", "question", (q,), (), (), piper[len(out) % len(piper)]))
    paused = [c for c in cmds if c.kind in ("two_part", "during_reply")]
    out += [dataclasses.replace(c, noisy=True) for c in rng.sample(paused, min(noisy, len(paused)))]
    return [dataclasses.replace(c, id=f"{i:02d}-{c.kind}") for i, c in enumerate(out)]


@dataclass(frozen=True, slots=True)
class PlacedClip:
    spec: ClipSpec
    start: int  # first sample of the clip (its wake phrase) in the session
    end: int  # first sample after its trailing silence
    spans: tuple[tuple[int, int], ...]  # each spoken part's voiced span


def build_session(
    specs: Sequence[ClipSpec], tail_ms: int = 10000, question_tail_ms: int = 16000
) -> tuple[Pcm, list[PlacedClip]]:
    """One WAV of every clip in turn (1 s lead-in); parts trimmed to their voiced span so a pause is the
    silence asked for, not the TTS's own tails; a noisy clip has white noise from its wake phrase to 1 s
    after its last part at ``SNR_DB``."""
    from edge_voice.audio import clips
    from edge_voice.bench.asr import _speech

    wake = clips.piper_speech("Hey Jarvis,")
    pieces: list[Pcm] = [clips.silence(1000)]
    pos = len(pieces[0])
    placed: list[PlacedClip] = []
    for k, spec in enumerate(specs):
        body: list[Pcm] = [wake, clips.silence(150)]
        spans: list[tuple[int, int]] = []
        at = len(wake) + len(body[1])
        for i, text in enumerate(spec.parts):
            if i:
                body.append(clips.silence(spec.pauses_ms[i - 1]))
                at += len(body[-1])
            speech = _speech(text, spec.voice)
            spans.append((pos + at, pos + at + len(speech)))
            body.append(speech)
            at += len(speech)
        body.append(clips.silence(1000))
        pcm = np.concatenate(body)
        if spec.noisy:
            pcm = clips.mix_at_snr(pcm, SNR_DB, seed=100 + k)
        tail = clips.silence(question_tail_ms if spec.kind == "question" else tail_ms)
        pieces += [pcm, tail]
        placed.append(PlacedClip(spec, pos, pos + len(pcm) + len(tail), tuple(spans)))
        pos += len(pcm) + len(tail)
    floor = clips.compose([("session", np.concatenate(pieces))])  # the -60 dBFS floor of the other benches
    return floor.pcm, placed


# ------------------------------------------------------------------------------------------- scoring


def slot_devices(slots: Mapping[str, Any]) -> list[str]:
    """The devices an ``intent.recognized`` payload names: ``device`` as a string or a list of strings
    (``devices`` too, for a payload that spells it so)."""
    out: list[str] = []
    for key in ("device", "devices"):
        v = slots.get(key)
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list | tuple):
            out += [str(x) for x in v]
    return [d.strip().lower() for d in out if str(d).strip()]


def acted_pairs(events: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(intent, device) of every device action in ``intent.recognized`` events, in order."""
    out: list[tuple[str, str]] = []
    for e in events:
        if e.get("type") == "intent.recognized" and e.get("name") in DEVICE_INTENTS:
            slots = e.get("slots")
            out += [(str(e["name"]), d) for d in slot_devices(slots if isinstance(slots, Mapping) else {})]
    return out


_REPLY_VERBS = {
    "turn_on": ("turning on",),
    "turn_off": ("turning off",),
    "set_brightness": ("setting",),
    "set_color": ("making",),
    "step_brightness": ("dimming", "brightening"),
}


def confirmed_pairs(expected: Iterable[tuple[str, str]], replies: Sequence[str]) -> set[tuple[str, str]]:
    """Expected (intent, device) pairs a fast-path reply spoke back ("Turning on the kitchen light and the
    fan."): what the user heard confirmed, whatever the event payload carried (a diagnostic)."""
    low = [r.lower() for r in replies]
    return {
        (n, d)
        for n, d in expected
        if any(r.startswith(_REPLY_VERBS.get(n, ("\0",))) and f"the {d}" in r for r in low)
    }


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


_FILLER = frozenset({"the", "and", "a", "of", "to", "in", "is", "on", "off", "turn", "switch", "set", "make"})


def _covered_by_text(part: str, transcripts: Sequence[str]) -> bool:
    """More than half of the part's content words (not its verb) appear in one transcript."""
    words = [w for w in _words(part) if w not in _FILLER] or _words(part)
    if not words:
        return True
    return any(sum(w in set(_words(t)) for w in words) * 2 > len(words) for t in transcripts)


def utterance_spans(
    events: Sequence[Mapping[str, Any]], lead: int = SAMPLE_RATE // 2
) -> list[tuple[int, float]]:
    """Input spans the daemon reported speech in: each ``speech_started`` (minus ``lead`` samples: it is
    decided after min_speech_ms, and carries pre-roll) to the next ``speech_stopped``'s last voiced
    sample of the same turn (open-ended if none came)."""
    spans: list[tuple[int, float]] = []
    open_at: dict[Any, int] = {}
    for e in events:
        tid = e.get("turn_id")
        if e.get("type") == "input_audio.speech_started" and isinstance(e.get("at_sample"), int):
            open_at[tid] = int(e["at_sample"]) - lead
        elif e.get("type") == "input_audio.speech_stopped" and isinstance(e.get("last_voiced_sample"), int):
            start = open_at.pop(tid, None)
            end = int(e["last_voiced_sample"])
            spans.append((start if start is not None else end - 1, float(end)))
    spans += [(s, float("inf")) for s in open_at.values()]
    return spans


def score_clip(
    spec: ClipSpec, part_spans: Sequence[tuple[int, int]], events: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """What the user got from one clip; ``events`` = every event of the turns the clip started (dicts:
    ``type``, ``turn_id`` and the payload's fields), in order."""
    expected = {(n, d.lower()) for n, d in spec.expected}
    acted = acted_pairs(events)
    counts = Counter(acted)
    hit = expected & set(acted)
    wrong = sorted({p for p in acted if p not in expected})
    transcripts = [str(e.get("text", "")) for e in events if e.get("type") == "transcript.final"]
    transcribed_turns = {
        e.get("turn_id")
        for e in events
        if e.get("type") == "transcript.final" and str(e.get("text", "")).strip()
    }
    done = [e for e in events if e.get("type") == "response.done"]
    replies = [str(e.get("reply", "")) for e in done]
    clarify = sum(1 for e in events if e.get("type") == "intent.recognized" and e.get("name") == "clarify")
    clarify += sum(
        1
        for e in done
        if str(e.get("reply", "")).lstrip().startswith("Which")
        and not any(x.get("name") == "clarify" and x.get("turn_id") == e.get("turn_id") for x in events)
    )
    speech = utterance_spans(events)
    lost = [
        i
        for i, (a, b) in enumerate(part_spans)
        if not any(s < b and e > a for s, e in speech) and not _covered_by_text(spec.parts[i], transcripts)
    ]
    stops = [
        int(e["last_voiced_sample"])
        for e in events
        if e.get("type") == "input_audio.speech_stopped" and isinstance(e.get("last_voiced_sample"), int)
    ]
    cut_off: bool | None = None
    if spec.kind == "complete" and part_spans:
        first, last = part_spans[0][0], part_spans[-1][0]
        early = any(first <= s < last for s in stops)
        cut_off = early or len(transcribed_turns) > 1
    # a cut-off the daemon made good afterwards: every part acted on, nothing wrong, the last word heard
    tail = (_words(spec.parts[-1]) or [""])[-1] if spec.parts else ""
    repaired = (
        None if not cut_off else hit == expected and not wrong and any(tail in _words(t) for t in transcripts)
    )
    v2v = [
        (str(e.get("route")), float(lat["voice_to_voice_ms"]))
        for e in done
        if e.get("status") == "done"
        and isinstance(lat := e.get("latency"), Mapping)
        and isinstance(lat.get("voice_to_voice_ms"), int | float)
    ]
    return {
        "id": spec.id,
        "kind": spec.kind,
        "text": spec.text,
        "pauses_ms": list(spec.pauses_ms),
        "pause": spec.pause_label,
        "voice": spec.voice,
        "noise": f"{SNR_DB:g} dB" if spec.noisy else "clean",
        "n_devices": spec.n_devices,
        "expected": [list(p) for p in sorted(expected)],
        "acted": [list(p) for p in acted],
        "parts_expected": len(expected),
        "parts_acted": len(hit),
        "parts_confirmed": len(confirmed_pairs(expected, replies)),
        "wrong_actions": [list(p) for p in wrong],
        "duplicate_actions": sum(n - 1 for n in counts.values() if n > 1),
        "clarifications": clarify,
        "unknown_device": sum(
            1 for e in events if e.get("type") == "intent.recognized" and e.get("name") == "unknown_device"
        ),
        "lost_parts": lost,
        "false_cut_off": cut_off,
        "cut_off_repaired": repaired,
        "turns": len({e.get("turn_id") for e in events}),
        "transcripts": transcripts,
        "replies": replies,
        "routes": [str(e.get("route")) for e in done],
        "statuses": [str(e.get("status")) for e in done],
        "cancelled": [str(e.get("reason")) for e in events if e.get("type") == "turn.cancelled"],
        "voice_to_voice_ms": v2v,
        "latency": [e.get("latency") for e in done],
    }


def _pct(xs: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(xs, dtype=np.float64), q)), 1) if xs else None


def stage_p50(rows: Sequence[Mapping[str, Any]], route: str) -> dict[str, float | None]:
    """p50 of each latency stage (``response.done`` breakdown) over the replies of ``route`` that were
    heard (status done): commands in command clips, LLM answers in question clips."""
    vals: dict[str, list[float]] = {}
    for r in rows:
        if (r["kind"] == "question") != (route == "llm"):
            continue
        for rt, status, lat in zip(r["routes"], r["statuses"], r.get("latency", []), strict=False):
            if rt != route or status != "done" or not isinstance(lat, Mapping):
                continue
            for k, v in lat.items():
                if isinstance(v, int | float):
                    vals.setdefault(str(k), []).append(float(v))
    return {k: _pct(v, 50) for k, v in sorted(vals.items())}


def summarize(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Totals over clip rows (one variant, or one category of it)."""
    exp = sum(int(r["parts_expected"]) for r in rows)
    hit = sum(int(r["parts_acted"]) for r in rows)
    complete = [r for r in rows if r["false_cut_off"] is not None]
    cmd_v2v = [
        v for r in rows if r["kind"] != "question" for route, v in r["voice_to_voice_ms"] if route == "intent"
    ]
    llm_v2v = [
        v for r in rows if r["kind"] == "question" for route, v in r["voice_to_voice_ms"] if route == "llm"
    ]
    # a command clip's replies after its first: the continuations (a paused second or third part)
    later = [
        v
        for r in rows
        if r["kind"] != "question"
        for route, v in r["voice_to_voice_ms"][1:]
        if route == "intent"
    ]
    later_start = [
        float(lat["decode_start_ms"])
        for r in rows
        if r["kind"] != "question"
        for route, lat in list(zip(r["routes"], r.get("latency", []), strict=False))[1:]
        if route == "intent"
        and isinstance(lat, Mapping)
        and isinstance(lat.get("decode_start_ms"), int | float)
    ]
    return {
        "clips": len(rows),
        "parts_expected": exp,
        "parts_acted": hit,
        "parts_acted_share": round(hit / exp, 3) if exp else None,
        "parts_confirmed_in_reply": sum(int(r.get("parts_confirmed", 0)) for r in rows),
        "clips_fully_acted": sum(
            1 for r in rows if r["parts_expected"] and r["parts_acted"] == r["parts_expected"]
        ),
        "wrong_actions": sum(len(r["wrong_actions"]) for r in rows),
        "duplicate_actions": sum(int(r["duplicate_actions"]) for r in rows),
        "clarifications": sum(int(r["clarifications"]) for r in rows),
        "unknown_device_replies": sum(int(r["unknown_device"]) for r in rows),
        "lost_parts": sum(len(r["lost_parts"]) for r in rows),
        "complete_sentences": len(complete),
        "false_cut_offs": sum(1 for r in complete if r["false_cut_off"]),
        "false_cut_offs_unrepaired": sum(
            1 for r in complete if r["false_cut_off"] and not r.get("cut_off_repaired")
        ),
        "llm_routes_in_command_clips": sum(
            1 for r in rows if r["kind"] != "question" for route in r["routes"] if route == "llm"
        ),
        "command_voice_to_voice_ms_p50": _pct(cmd_v2v, 50),
        "command_voice_to_voice_ms_p95": _pct(cmd_v2v, 95),
        "command_replies": len(cmd_v2v),
        "later_part_voice_to_voice_ms_p50": _pct(later, 50),
        "later_part_voice_to_voice_ms_p95": _pct(later, 95),
        "later_part_decode_start_ms_p50": _pct(later_start, 50),
        "later_part_replies": len(later),
        "llm_voice_to_voice_ms_p50": _pct(llm_v2v, 50),
        "llm_voice_to_voice_ms_p95": _pct(llm_v2v, 95),
        "llm_answers": len(llm_v2v),
        "command_stages_ms_p50": stage_p50(rows, "intent"),
        "llm_stages_ms_p50": stage_p50(rows, "llm"),
    }


CATEGORIES = ("pause", "n_devices", "voice", "noise", "kind")


def by_category(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """``summarize`` per value of each category (questions left out of the device ones)."""
    out: dict[str, dict[str, Any]] = {}
    for cat in CATEGORIES:
        sel = [r for r in rows if cat == "kind" or r["kind"] != "question"]
        keys = sorted(
            {str(r[cat]) for r in sel}, key=lambda k: (not k.isdigit(), int(k) if k.isdigit() else k)
        )
        out[cat] = {k: summarize([r for r in sel if str(r[cat]) == k]) for k in keys}
    return out


def events_by_clip(
    events: Sequence[Mapping[str, Any]], placed: Sequence[PlacedClip]
) -> list[list[Mapping[str, Any]]]:
    """Each clip's events: a turn belongs to the clip its first sample-stamped event falls in (the wake
    word, else its speech)."""
    starts = [p.start for p in placed]
    anchor: dict[Any, int] = {}
    for e in events:
        tid = e.get("turn_id")
        if tid is None or tid in anchor:
            continue
        for key in ("at_sample", "last_voiced_sample"):
            if e.get("type") != "response.audio.started" and isinstance(e.get(key), int):
                anchor[tid] = int(np.searchsorted(starts, int(e[key]), side="right")) - 1
                break
    out: list[list[Mapping[str, Any]]] = [[] for _ in placed]
    for e in events:
        i = anchor.get(e.get("turn_id"), -1)
        if 0 <= i < len(out):
            out[i].append(e)
    return out


# --------------------------------------------------------------------------------------------- running


def _run_variant(
    cfg: Config, engines: Any, pcm: Pcm, events_path: Path, replies_wav: Path | None, block: int = 0
) -> tuple[list[dict[str, Any]], float]:
    """One session through one daemon; returns its events (dicts, text deltas left out) and the wall
    time, and appends them as JSON lines to ``events_path`` (rescoring needs no re-run)."""
    from edge_voice.audio.sinks import WavSink
    from edge_voice.audio.sources import InputClock, WavSource
    from edge_voice.integrations.sinks import MemorySink
    from edge_voice.runtime.daemon import Daemon

    clock = InputClock()
    source = WavSource(pcm, pace="adaptive", clock=clock)
    sink = WavSink(replies_wav or events_path.with_suffix(".wav"), clock, engines.tts.sample_rate)
    memory = MemorySink()
    t = time.perf_counter()
    Daemon(cfg, engines, source, sink, [memory], clock).run()
    wall_s = time.perf_counter() - t
    if replies_wav is not None:
        sink.save(len(pcm))
    events = [
        {"type": e.type, "turn_id": e.turn_id, **e.data}
        for e in memory.events
        if e.type != "response.text.delta"
    ]
    with open(events_path, "a") as f:  # the block: turn ids restart in another process (``only`` runs)
        f.writelines(json.dumps({**e, "block": block}, default=str) + "\n" for e in events)
    return events, wall_s


def split_blocks(events: Sequence[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    """Saved events by session block: their ``block`` field, else a new block wherever a turn's first
    sample position goes back (each session's daemon counts samples from 0)."""
    out: dict[int, list[Mapping[str, Any]]] = {}
    block, last, seen = 0, -1, set()
    for e in events:
        if "block" in e:
            out.setdefault(int(e["block"]), []).append(e)
            continue
        tid = e.get("turn_id")
        pos = e.get("at_sample", e.get("last_voiced_sample"))
        if tid is not None and tid not in seen and isinstance(pos, int):
            seen.add(tid)
            if pos < last:
                block += 1
            last = pos
        out.setdefault(block, []).append(e)
    return out


def score_events(events: Sequence[Mapping[str, Any]], placed: Sequence[PlacedClip]) -> list[dict[str, Any]]:
    per_clip = events_by_clip(events, placed)
    return [score_clip(p.spec, p.spans, evs) for p, evs in zip(placed, per_clip, strict=True)]


def run(
    cfg: Config,
    out_dir: Path,
    commands: int = 40,
    complete: int = 8,
    questions: int = 10,
    noisy: int = 6,
    seed: int = 23,
    variants: str = "",
    voices: str = "",
    name: str = "turn-taking",
    save_audio: int = 0,
    blocks: int = 4,
    rescore: int = 0,
    label: str = "",
    only: str = "",
    **_: Any,
) -> dict[str, Any]:
    """``--opt commands=N complete=N questions=N noisy=N seed=N variants=baseline,new
    voices=piper:1.0,espeak:en-us name=turn-taking-baseline save_audio=1 blocks=4`` (``name``: the output
    files' stem; ``save_audio``: also the sessions and each variant's replies as WAVs; ``blocks``: the clips
    are run in this many sessions, the variants taking turns per session; ``rescore=1``: no run, score the
    events an earlier run with the same options saved; ``label``: a line saying what the run is, kept by a
    rescore; ``only=2,3``: run only these blocks, appending to the events an earlier ``only`` run of the
    other blocks saved — a long set in two shorter runs, then ``rescore=1`` scores all of it)."""
    from edge_voice.runtime.daemon import load_engines

    out_dir.mkdir(parents=True, exist_ok=True)
    voice_list = tuple(v for v in str(voices).split(",") if v) or VOICES
    chosen = [v for v in VARIANTS if not variants or v[0] in str(variants).split(",")]
    specs = make_specs(int(seed), int(commands), int(noisy), int(questions), int(complete), voice_list)
    n_blocks = max(1, min(int(blocks), len(specs)))
    t = time.perf_counter()
    sessions = [build_session(specs[i::n_blocks]) for i in range(n_blocks)]
    synth_s = time.perf_counter() - t
    if save_audio:
        from edge_voice.audio.wavio import write_wav

        for i, session in enumerate(sessions):
            write_wav(out_dir / f"{name}-session{i}.wav", session[0])
    from edge_voice.audio import clips

    clips._piper_voice.cache_clear()  # the test-speech voice is not part of the daemon
    configs: dict[str, Any] = {}
    rows_of: dict[str, list[dict[str, Any]]] = {v: [] for v, _ in chosen}
    wall_of: dict[str, float] = dict.fromkeys(rows_of, 0.0)
    load_of: dict[str, list[float]] = {v: [] for v in rows_of}
    picked = {int(x) for x in str(only).split(",") if x.strip()}
    if rescore:  # score the saved events of an earlier run of the same clip set again; no daemon
        old = json.loads((out_dir / f"{name}.json").read_text())
        for vname in rows_of:
            lines = (out_dir / f"{name}-{vname}-events.jsonl").read_text().splitlines()
            per_block = split_blocks([json.loads(x) for x in lines if x.strip()])
            for b, session in enumerate(sessions):
                rows_of[vname] += score_events(per_block.get(b, []), session[1])
            wall_of[vname] = old["results"][vname]["wall_s"]
            load_of[vname] = old["results"][vname].get("load_avg_1min_at_block_start", [])
        configs, load_ms = old["variants"], old.get("load_ms", {})
        label = label or old.get("label", "")
        sessions_to_run: list[tuple[Pcm, list[PlacedClip]]] = []
    else:
        engines = load_engines(cfg)
        load_ms = engines.load_ms
        sessions_to_run = sessions
        for v in rows_of:
            if not picked or 0 in picked:
                (out_dir / f"{name}-{v}-events.jsonl").write_text("")
    # the variants take turns block by block (order alternating), so a busy neighbour on a shared box
    # slows both alike
    for b, (pcm, placed) in enumerate(sessions_to_run):
        if not rescore and picked and b not in picked:
            continue
        for vname, overrides in chosen if b % 2 == 0 else chosen[::-1]:
            vcfg, applied, skipped = apply_overrides(cfg, overrides)
            configs[vname] = {"overrides": overrides, "applied": applied, "skipped_overrides": skipped}
            wav = out_dir / f"{name}-{vname}-replies{b}.wav" if save_audio else None
            load_of[vname].append(round(os.getloadavg()[0], 2))
            path = out_dir / f"{name}-{vname}-events.jsonl"
            events, wall_s = _run_variant(vcfg, engines, pcm, path, wav, b)
            rows_of[vname] += score_events(events, placed)
            wall_of[vname] += wall_s
    results: dict[str, Any] = {}
    for vname, rows in rows_of.items():
        rows.sort(key=lambda r: str(r["id"]))
        results[vname] = {
            "wall_s": round(wall_of[vname], 1),
            "load_avg_1min_at_block_start": load_of[vname],
            "summary": summarize(rows),
            "by": by_category(rows),
            "rows": rows,
        }
    applied_sets = [json.dumps(c["applied"], sort_keys=True) for c in configs.values()]
    kinds = Counter(s.kind for s in specs)
    result: dict[str, Any] = {
        **({"label": label} if label else {}),
        "bench": "turn-taking",
        "machine": {"cores": os.cpu_count()},
        "note": (
            "variants identical: their overrides name config keys this tree does not have"
            if len(set(applied_sets)) <= 1 and len(chosen) > 1
            else ""
        ),
        "variants_identical": len(set(applied_sets)) <= 1,
        "variants": configs,
        "clip_set": {
            "seed": int(seed),
            "clips": len(specs),
            "kinds": dict(kinds),
            "noisy": sum(1 for s in specs if s.noisy),
            "voices": list(voice_list),
            "wake": "piper 'Hey Jarvis,' + 150 ms",
            "pauses_ms": sorted({p for s in specs for p in s.pauses_ms}),
            "blocks": n_blocks,
            "session_s": round(sum(len(x[0]) for x in sessions) / SAMPLE_RATE, 1),
            "synthesis_s": round(synth_s, 1),
        },
        "endpoint": dataclasses.asdict(cfg.endpoint),
        "follow_up_window_ms": cfg.conversation.follow_up_window_ms,
        "load_ms": load_ms,
        "results": results,
    }
    (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2, default=str))
    plot(result, out_dir / f"{name}.png")
    return {
        "variants_identical": result["variants_identical"],
        "variants": configs,
        "clip_set": result["clip_set"],
        **{
            v: {"wall_s": r["wall_s"], **r["summary"], "parts_acted_by_pause": _share_by(r, "pause")}
            for v, r in results.items()
        },
    }


def _share_by(res: Mapping[str, Any], cat: str) -> dict[str, Any]:
    return {k: s["parts_acted_share"] for k, s in res["by"][cat].items()}


# ------------------------------------------------------------------------------------------------ plot

_PAUSE_ORDER = ("none", "150", "300", "600", "900", "1300", "1800", "complete")


def plot(result: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res: Mapping[str, Any] = result["results"]
    names = list(res)
    colors = ["tab:gray", "tab:green", "tab:blue", "tab:orange"]
    fig, (ax1, ax2, ax3) = plt.subplots(
        1, 3, figsize=(16, 4.8), gridspec_kw={"width_ratios": [2.2, 1.2, 1.2]}
    )
    keys = [k for k in _PAUSE_ORDER if any(k in r["by"]["pause"] for r in res.values())]
    x = np.arange(len(keys))
    w = 0.8 / max(1, len(names))
    for i, v in enumerate(names):
        by = res[v]["by"]["pause"]
        vals = [100 * (by[k]["parts_acted_share"] or 0) if k in by else 0 for k in keys]
        xs = x + (i - (len(names) - 1) / 2) * w
        bars = ax1.bar(xs, vals, w, label=f"{v}: in intent.recognized", color=colors[i % len(colors)])
        ax1.bar_label(bars, fmt="%.0f", fontsize=7)
        heard = [
            100 * by[k]["parts_confirmed_in_reply"] / by[k]["parts_expected"]
            if k in by and by[k]["parts_expected"]
            else 0
            for k in keys
        ]
        ax1.scatter(
            xs, heard, marker="_", s=200, color="black", label="named in the spoken reply" if i == 0 else None
        )
    first = res[names[0]]["by"]["pause"]
    ax1.set_xticks(
        x,
        [
            (f"{k} ms{'*' if int(k) >= 1200 else ''}" if k.isdigit() else k)
            + f"\n({first[k]['parts_expected'] if k in first else 0} parts)"
            for k in keys
        ],
        fontsize=8,
    )
    ax1.set_ylim(0, 110)
    ax1.set_ylabel("parts acted on (%)")
    ax1.set_xlabel("pause between the parts (* ≥ 1200 ms: the second part starts during the confirmation)")
    ax1.set_title("Parts of spoken commands acted on")
    ax1.legend()
    counts = (
        "lost_parts",
        "false_cut_offs",
        "wrong_actions",
        "duplicate_actions",
        "clarifications",
        "unknown_device_replies",
        "llm_routes_in_command_clips",
    )
    x2 = np.arange(len(counts))
    for i, v in enumerate(names):
        s = res[v]["summary"]
        ax2.bar(
            x2 + (i - (len(names) - 1) / 2) * w,
            [s[c] for c in counts],
            w,
            label=v,
            color=colors[i % len(colors)],
        )
    ax2.set_xticks(
        x2,
        [c.replace("_in_command_clips", "").replace("_", " ") for c in counts],
        fontsize=7,
        rotation=35,
        ha="right",
    )
    s0 = next(iter(res.values()))["summary"]
    ax2.set_title(f"Counts (false cut-offs of {s0['complete_sentences']} complete sentences)")
    ax2.legend()
    groups = ("command_voice_to_voice_ms", "later_part_voice_to_voice_ms", "llm_voice_to_voice_ms")
    x3 = np.arange(2 * len(groups))
    for i, v in enumerate(names):
        s = res[v]["summary"]
        vals = [s.get(f"{g}_{q}") or 0 for g in groups for q in ("p50", "p95")]
        bars = ax3.bar(x3 + (i - (len(names) - 1) / 2) * w, vals, w, label=v, color=colors[i % len(colors)])
        ax3.bar_label(bars, fmt="%.0f", fontsize=7)
    ax3.set_xticks(
        x3,
        [
            "command\np50",
            "command\np95",
            "later part\np50",
            "later part\np95",
            "LLM answer\np50",
            "LLM answer\np95",
        ],
        fontsize=7,
    )
    ax3.set_ylabel("end of speech → first reply sample (ms)")
    ax3.set_title("Voice-to-voice")
    ax3.legend()
    loads = [x for r in res.values() for x in r.get("load_avg_1min_at_block_start", [])]
    title = f"bench turn-taking, {result['clip_set']['clips']} clips"
    if loads:
        title += (
            f"; 1-min load average {min(loads):.1f}–{max(loads):.1f} on {result['machine']['cores']} cores"
        )
    if result.get("variants_identical"):
        title += " — variants identical on this tree (overrides not applied: keys absent)"
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
