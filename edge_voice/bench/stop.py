"""``edge-voice bench stop``: the stop word as the ASR on a short VAD-gated window, measured.

Negatives: the wake bench's generated corpus (``wake_corpus``; hours of speech, conversation, TV, music,
noise), streamed through the daemon's Silero VAD; every short utterance ``ShortUtterances`` yields is
decoded by the daemon's whisper.cpp model and judged by ``is_stop`` — a "stop" there is a false stop.
Positives: "stop" (and "stop it", "stop that") in the wake bench's Piper and espeak-ng voices, spoken
while a reply plays (its echo left at −20 dB and −10 dB under the user's voice: what echo cancellation
leaves, and a quiet speaker without it), while a timer chime rings, and in a room. Output: ``stop.json``
+ ``stop.png``: detection rate per condition, false stops per hour, windows decoded per hour and the
decode time per window (the stop check's cost).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edge_voice.bench import wake_corpus as corpus
from edge_voice.core.config import Config
from edge_voice.core.messages import SAMPLE_RATE, Pcm
from edge_voice.core.stop_word import is_stop_phrase
from edge_voice.listen.stop import STOP_PAD, ShortUtterances, StopWindow, is_stop

log = logging.getLogger(__name__)

STOP_TEXTS = ("Stop!", "Stop it.", "Stop that.", "Stop.")
PAD = STOP_PAD
REPLY = (
    "Once upon a time there was a little fox who lived at the edge of a great forest. Every morning "
    "she walked down to the river to drink, and every evening she told the owls what she had seen."
)
CONDITIONS = (
    "echo-20",
    "echo-10",
    "timer",
    "room",
    "clean",
    "reply-room-aec",
    "reply-room-aec-cold",
    "reply-room-raw",
    "timer-room-aec",
)
# Through the simulated room (``audio/echo.py``, the daemon's echo path): the device's own voice (a reply,
# or the timer's phrase said over and over: a timer ringing) comes back at about the user's level (0 dB),
# then the default canceller (``-aec``) or none (``-raw``) — what the daemon's stop word hears while it
# speaks. The same room for the negatives played during replies.
ROOM_CONDITIONS = {
    "reply-room-aec": True,
    "reply-room-aec-cold": True,
    "reply-room-raw": False,
    "timer-room-aec": True,
}
# The canceller adapts while the device speaks: in the daemon it has usually heard seconds of it before
# the user says "stop" (warm: the user speaks WARM_S later); "-cold": 1–2 s into the first reply.
WARM_S = 6
TIMER_PHRASE = "Your 5 minute timer is done."
BLOCK = 512
AHEAD = 640  # the device buffer: playback runs 40 ms ahead of the capture
TARGET_DETECT = 0.95
TARGET_FALSE_PER_HOUR = 1.0


@dataclass(frozen=True)
class Variant:
    """One way of running the stop word, measured beside the others on the same audio and VAD."""

    name: str
    prompt: str  # whisper's initial prompt for the window's decode
    judge: Callable[[str], bool]
    min_ms: int = 200
    max_ms: int = 1200
    gap_ms: int = 250


def variants(cfg: Config) -> tuple[Variant, ...]:
    """``session12``: what session 12's bench measured (no prompt, the fixed phrase set); ``daemon12``:
    what session 12's daemon did (its ASR carries the device-name prompt); ``new``: this session's judge;
    ``new-short``: and voiced runs from 100 ms (a fast "Stop!" is under 200 ms of Silero frames);
    ``stop-prompt``: and whisper prompted with "Stop." instead of the device names."""
    from edge_voice.engines.asr import asr_prompt

    daemon = asr_prompt(cfg)
    return (
        Variant("session12", "", is_stop_phrase),
        Variant("daemon12", daemon, is_stop_phrase),
        Variant("new", daemon, is_stop),
        Variant("new-short", daemon, is_stop, min_ms=100),
        Variant("stop-prompt", "Stop.", is_stop, min_ms=100),
    )


def _vad_probs(vad: Any, pcm: Pcm) -> list[float]:
    n = vad.frame_samples
    return [vad.process(pcm[i : i + n]) for i in range(0, len(pcm) - n + 1, n)]


def _windows(
    probs: list[float], n: int, gate: ShortUtterances, offset: int, thr: float = 0.5
) -> list[StopWindow]:
    out: list[StopWindow] = []
    for k, p in enumerate(probs):
        w = gate.feed(p >= thr, offset + (k + 1) * n, n)
        if w is not None:
            out.append(w)
    return out


def _cut(stream: Pcm, w: StopWindow, offset: int) -> Pcm:
    a = max(0, w.start - offset - PAD)
    return stream[a : max(a, w.end - offset + PAD)]


def _timer_chime(seconds: float) -> Pcm:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    on = (t % 1.0) < 0.5  # beep-beep every second, like a kitchen timer
    x = np.sin(2 * np.pi * 880 * t) * on + 0.5 * np.sin(2 * np.pi * 1760 * t) * on
    return (x * 8000).astype(np.int16)


def _room(seed: int) -> Any:
    from edge_voice.audio.echo import Room

    return Room(delay_ms=45.0, echo_gain_db=0.0, seed=seed)


def through_room(near: Pcm, far: Pcm, seed: int, canceller: str | None) -> Pcm:
    """``near`` (the microphone without the device) plus ``far`` (what the device plays, from sample 0,
    tiled to the length) echoed by a simulated room, then ``canceller`` ("linear"/"webrtc") with the
    playback as its reference, or none: the daemon's echo path (``RoomSource`` → ``CancelledSource``),
    block by block as the capture thread reads it. The output lags the input by one 10 ms frame."""
    from edge_voice.audio.echo import CancelledSource, PlaybackReference, RoomSource, make_canceller
    from edge_voice.audio.sources import SourceExhausted, WavSource

    far = np.resize(far, len(near)) if len(far) else np.zeros(len(near), np.int16)
    ref = PlaybackReference(capacity_s=8.0)
    aec = None if canceller is None else make_canceller(canceller)
    src = CancelledSource(RoomSource(WavSource(near, pace="fast"), ref, _room(seed)), ref, aec)
    out: list[Pcm] = []
    played = pos = 0
    while True:
        while played < len(far) and played < pos + BLOCK + AHEAD:  # the playback keeps its buffer full
            ref.write(played, far[played : played + 320])
            played += 320
        try:
            block = src.read(BLOCK)
        except SourceExhausted:
            break
        out.append(block)
        pos += len(block)
    return np.concatenate(out)[: len(near)] if out else np.zeros(0, np.int16)


def positives(
    canceller: str = "linear", conditions: tuple[str, ...] = CONDITIONS
) -> list[tuple[str, str, Pcm, int, int]]:
    """(voice, condition, clip, stop start, stop end)."""
    reply = corpus.piper(REPLY, 1.0, 1.0, 7)
    ring = np.concatenate([corpus.piper(TIMER_PHRASE, 1.0, 1.0, 7), np.zeros(SAMPLE_RATE // 2, np.int16)])
    dev_reply, dev_ring = corpus.set_level(reply, -24.0), corpus.set_level(ring, -24.0)
    out = []
    for vi, (vname, speak) in enumerate(corpus._positive_voices(6, 10)):
        stop = corpus._trim(speak(STOP_TEXTS[vi % len(STOP_TEXTS)]))
        for ci, cond in enumerate(CONDITIONS):
            if cond not in conditions:
                continue
            lead = int((1.0 + 0.3 * ((vi + ci) % 4)) * SAMPLE_RATE)
            if cond in ROOM_CONDITIONS and not cond.endswith("-cold"):
                lead += WARM_S * SAMPLE_RATE
            total = lead + len(stop) + int(1.5 * SAMPLE_RATE)
            user = np.zeros(total, np.int16)
            user[lead : lead + len(stop)] = corpus.set_level(stop, -24.0)
            x = user.astype(np.float64)
            if cond.startswith("echo"):
                bed = np.tile(corpus.set_level(reply, -24.0 + float(cond[4:])), 3)[:total]
                x += bed
            elif cond == "timer":
                x += corpus.set_level(_timer_chime(total / SAMPLE_RATE), -30.0)[:total]
            elif cond == "room":
                x = corpus.reverb(user, 0.5, 0.5, vi).astype(np.float64)
            if cond in ROOM_CONDITIONS:  # the device speaks from 0 (a second before the user at least)
                far = dev_ring if cond.startswith("timer") else dev_reply
                x = through_room(user, far, vi, canceller if ROOM_CONDITIONS[cond] else None).astype(
                    np.float64
                )
            x += corpus.noise(total, "pink", vi) * 32768 * 10 ** (-60 / 20)
            out.append((vname, cond, np.clip(x, -32768, 32767).astype(np.int16), lead, lead + len(stop)))
    return out


# The device's own voice saying "stop" (issue 20: a reply that contains the word, through the room and
# the canceller, must not end itself). Replies a device could plausibly say.
OWN_REPLIES = (
    "I can't stop the rain, but I can tell you the forecast.",
    "Okay, I will stop the music.",
    "The next bus stop is Main Street.",
    "Stop! In the Name of Love is a song by the Supremes.",
    "To stop the timer, say stop.",
    "Stop.",
    "Your timer is done. Say stop to end it.",
    "Please stop. Stop. That is enough.",
)
OWN_CONDITIONS = {"warm": "linear", "cold": "linear", "raw": None}
# part=replies / part=negatives: that negatives phase alone, into stop-<part>.json (merged by hand);
# part=positives: the positives alone
PHASES = {"replies": "negatives_during_replies", "negatives": "negatives"}


def own_voice(vs: tuple[Variant, ...], asrs: dict[str, Any], vad: Any) -> dict[str, Any]:
    """Each reply played by the device (Piper, -24 dBFS, echo at 0 dB through the simulated room) with
    nobody speaking: the microphone hears only what the canceller leaves (``warm``: after 6 s of another
    reply; ``cold``: from the start; ``raw``: no canceller). Every short window is decoded and judged as
    in the daemon; a "stop" is the device stopping itself. Each reply is said in 3 renditions."""
    n = vad.frame_samples
    warmup = corpus.set_level(corpus.piper(REPLY, 1.0, 1.0, 7), -24.0)[: WARM_S * SAMPLE_RATE]
    out: dict[str, Any] = {v.name: {c: {"self_stops": 0, "windows": 0} for c in OWN_CONDITIONS} for v in vs}
    heard_log: list[dict[str, Any]] = []
    for ri, text in enumerate(OWN_REPLIES):
        for rend in range(3):
            said = corpus.set_level(corpus.piper(text, (0.9, 1.0, 1.1)[rend], 1.0, 50 + rend), -24.0)
            for cond, canceller in OWN_CONDITIONS.items():
                far = np.concatenate([warmup if cond == "warm" else np.zeros(0, np.int16), said])
                far = np.concatenate([far, np.zeros(SAMPLE_RATE, np.int16)])
                near = (corpus.noise(len(far), "pink", ri) * 32768 * 10 ** (-60 / 20)).astype(np.int16)
                mic = through_room(near, far, 100 * ri + rend, canceller)
                vad.reset()
                probs = _vad_probs(vad, mic)
                cache: dict[tuple[int, int, str], str] = {}
                for v in vs:
                    for w in _windows(probs, n, ShortUtterances(v.min_ms, v.max_ms, v.gap_ms), 0):
                        key = (w.start, w.end, v.prompt)
                        if key not in cache:
                            cache[key] = asrs[v.prompt].decode(_cut(mic, w, 0)).text
                        got = cache[key]
                        out[v.name][cond]["windows"] += 1
                        stop = v.judge(got)
                        out[v.name][cond]["self_stops"] += stop
                        if stop:
                            heard_log.append(
                                {"variant": v.name, "reply": text, "condition": cond, "heard": got}
                            )
    return {"replies": list(OWN_REPLIES), "renditions": 3, "by_variant": out, "self_stops": heard_log[:60]}


def run(
    cfg: Config, out_dir: Path, hours: str | int = "3.25", only: str = "", part: str = "", **_: Any
) -> dict[str, Any]:
    """``only``: comma-separated conditions to measure (default all); every variant (``variants``) is
    measured on the same clips, VAD and decodes (a window decoded once per prompt). ``part=own``: only
    the device's own voice saying "stop" (``own_voice``) -> ``stop-own.json``."""
    from edge_voice.engines.asr import WhisperCppTranscriber
    from edge_voice.listen.vad import SileroVad

    out_dir.mkdir(parents=True, exist_ok=True)
    segments = corpus.plan(float(hours))
    corpus.build(segments)
    vs = variants(cfg)
    # The daemon's model, prompt and settings, but no 3 s decode limit and one thread: on a loaded shared
    # box (nice 19) the limit aborted decodes of a one-word window even at 30 s (measured, session 13),
    # which would count CPU contention as misses; one thread never waits at a ggml barrier for a core.
    asrs = {
        pr: WhisperCppTranscriber(
            replace(cfg.asr, max_decode_ms=600000, threads=1), cfg.models_path, prompt=pr
        )
        for pr in {v.prompt for v in vs}
    }
    vad = SileroVad(cfg.vad)
    n = vad.frame_samples
    if part == "own":
        own = own_voice(vs, asrs, vad)
        own["room"] = {"delay_ms": 45, "echo_gain_db": 0, "device_level_dbfs": -24, "canceller": "linear"}
        own["variants"] = {
            v.name: {"prompt": v.prompt, "judge": v.judge.__name__, "min_ms": v.min_ms} for v in vs
        }
        own["loadavg_1m"] = round(os.getloadavg()[0], 2)
        (out_dir / "stop-own.json").write_text(json.dumps(own, indent=1))
        return {k: {c: x["self_stops"] for c, x in r.items()} for k, r in own["by_variant"].items()}

    decode_ms: list[float] = []
    decoded: dict[tuple[int, int, str], str] = {}  # (window start, end, prompt) -> text: decode once

    def heard(pcm: Pcm, w: StopWindow, offset: int, prompt: str) -> str:
        key = (w.start, w.end, prompt)
        if key not in decoded:
            r = asrs[prompt].decode(_cut(pcm, w, offset))
            decode_ms.append(r.decode_ms)
            decoded[key] = r.text
        return decoded[key]

    def gate(v: Variant) -> ShortUtterances:
        return ShortUtterances(v.min_ms, v.max_ms, v.gap_ms)

    # Positives first (small): per condition, detected = a window over the stop judged "stop".
    t = time.monotonic()
    conds = tuple(c for c in CONDITIONS if not only or c in only.split(","))
    if part in PHASES:  # one negatives phase alone (a second process shares a loaded box's CPU)
        conds = ()
    pos = positives(cfg.audio.echo_canceller, conds) if conds else []
    by_cond: dict[str, dict[str, list[int]]] = {v.name: {c: [0, 0] for c in conds} for v in vs}
    clips: list[dict[str, Any]] = []
    for vname, cond, clip, a, b in pos:
        vad.reset()
        probs = _vad_probs(vad, clip)
        voiced = [k for k, p in enumerate(probs) if p >= 0.5]
        entry: dict[str, Any] = {
            "voice": vname,
            "condition": cond,
            "stop_ms": (b - a) * 1000 // SAMPLE_RATE,
            # the VAD's voiced frames relative to the stop's first sample (ms): where the gate saw it
            "voiced_ms": [
                (voiced[0] * n - a) * 1000 // SAMPLE_RATE,
                ((voiced[-1] + 1) * n - a) * 1000 // SAMPLE_RATE,
            ]
            if voiced
            else None,
        }
        decoded.clear()
        for v in vs:
            hit = False
            got = []
            for w in _windows(probs, n, gate(v), 0):
                if w.end > a and w.start < b + SAMPLE_RATE // 2:
                    text = heard(clip, w, 0, v.prompt)
                    got.append(
                        {
                            "ms": [(w.start - a) * 1000 // SAMPLE_RATE, (w.end - a) * 1000 // SAMPLE_RATE],
                            "heard": text,
                        }
                    )
                    hit = hit or v.judge(text)
            by_cond[v.name][cond][0] += hit
            by_cond[v.name][cond][1] += 1
            entry[v.name] = {"hit": hit, "windows": got}
        clips.append(entry)
    pos_s = time.monotonic() - t

    # Negatives, twice: played during replies (through the room and the canceller: what the armed stop
    # word hears while the device speaks), then as they are; one continuous VAD stream each. The JSON is
    # written after every phase (a long run on a loaded box keeps what it measured).
    result: dict[str, Any] = {
        "method": "ASR (whisper.cpp, asr.model) on VAD-gated short utterances (bounds per variant), "
        "200 ms padding; every variant on the same clips, VAD probabilities and decodes",
        "asr_model": cfg.asr.model,
        "variants": {
            v.name: {
                "prompt": v.prompt,
                "judge": v.judge.__name__,
                "voiced_ms": [v.min_ms, v.max_ms],
                "silence_either_side_ms": v.gap_ms,
            }
            for v in vs
        },
        "room": {
            "delay_ms": 45,
            "echo_gain_db": 0,
            "device_level_dbfs": -24,
            "user_level_dbfs": -24,
            "canceller": cfg.audio.echo_canceller,
            "warm_s": WARM_S,
            "note": "-aec: the daemon's default echo path, the user speaking warm_s after the device began "
            "(-cold: 1-2 s after); -raw: no cancelling; echo-20/-10: the reply "
            "mixed in directly at -20/-10 dB under the user, no room, no cancelling (session 10)",
        },
        "target": {"detection_rate": TARGET_DETECT, "false_stops_per_hour": TARGET_FALSE_PER_HOUR},
    }
    armed = [c for c in ROOM_CONDITIONS if ROOM_CONDITIONS[c] and c in conds]
    result["positives"] = {"clips": len(pos), "conditions": list(conds), "by_variant": {}}
    for v in vs:
        bc = by_cond[v.name]
        detected = sum(x[0] for x in bc.values())
        result["positives"]["by_variant"][v.name] = {
            "detected": detected,
            "detection_rate": round(detected / max(len(pos), 1), 4),
            "by_condition": {c: round(x[0] / max(x[1], 1), 4) for c, x in bc.items()},
            # what the daemon's stop word meets: the device speaking through the room, cancelled
            "during_replies": round(sum(bc[c][0] for c in armed) / max(sum(bc[c][1] for c in armed), 1), 4)
            if armed
            else None,
        }
    result["positives"]["clips_detail"] = clips
    timing: dict[str, float] = {"positives": round(pos_s, 1)}
    result["timing_s"] = timing

    def write() -> None:
        result["loadavg_1m"] = round(os.getloadavg()[0], 2)
        if part in PHASES:
            (out_dir / f"stop-{part}.json").write_text(json.dumps(result, indent=1))
            return
        (out_dir / "stop.json").write_text(json.dumps(result, indent=1))
        _plot(result, out_dir / "stop.png")

    write()
    if part == "positives":
        return {"positives": {k: v["by_condition"] for k, v in result["positives"]["by_variant"].items()}}
    reply = corpus.set_level(corpus.piper(REPLY, 1.0, 1.0, 7), -24.0)
    for key, during in (("negatives_during_replies", True), ("negatives", False)):
        if part in PHASES and PHASES[part] != key:
            continue
        t = time.monotonic()
        n0 = len(decode_ms)
        vad.reset()
        gates = {v.name: gate(v) for v in vs}
        offset = 0
        windows = dict.fromkeys(gates, 0)
        false: dict[str, list[dict[str, Any]]] = {v.name: [] for v in vs}
        vad_ns = 0
        for i, (seg, raw) in enumerate(corpus.iter_negatives(segments)):
            pcm = through_room(raw, reply, i, cfg.audio.echo_canceller) if during else raw
            c = time.thread_time_ns()
            probs = _vad_probs(vad, pcm)
            vad_ns += time.thread_time_ns() - c
            decoded.clear()
            for v in vs:
                for w in _windows(probs, n, gates[v.name], offset):
                    windows[v.name] += 1
                    text = heard(pcm, w, offset, v.prompt)
                    if v.judge(text):
                        false[v.name].append({"kind": seg.kind, "segment": seg.key, "text": text})
            offset += len(pcm) - len(pcm) % n
            if i % 20 == 0:
                log.info("bench stop %s: %d/%d segments, %s windows", key, i, len(segments), windows)
        hours_ = offset / SAMPLE_RATE / 3600
        neg_ms = decode_ms[n0:]
        result[key] = {
            "hours": round(hours_, 3),
            "by_variant": {
                v.name: {
                    "short_windows": windows[v.name],
                    "windows_per_hour": round(windows[v.name] / max(hours_, 1e-9), 1),
                    "false_stops": len(false[v.name]),
                    "false_stops_per_hour": round(len(false[v.name]) / max(hours_, 1e-9), 3),
                    "false": false[v.name][:40],
                }
                for v in vs
            },
            "decode_ms_per_window": {
                "mean": round(float(np.mean(neg_ms)), 1) if neg_ms else None,
                "p95": round(float(np.percentile(neg_ms, 95)), 1) if neg_ms else None,
            },
            "vad_cpu_s_per_hour": round(vad_ns / 1e9 / max(hours_, 1e-9), 1),
        }
        timing[key] = round(time.monotonic() - t, 1)
        write()
    for asr in asrs.values():
        asr.close()
    return {
        "positives": {k: v["by_condition"] for k, v in result["positives"]["by_variant"].items()},
        "false_stops_per_hour": {
            key: {k: v["false_stops_per_hour"] for k, v in result[key]["by_variant"].items()}
            for key in ("negatives_during_replies", "negatives")
            if key in result
        },
    }


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 4.2))
    byv = result["positives"]["by_variant"]
    conds = result["positives"]["conditions"]
    width = 0.8 / max(len(byv), 1)
    x = np.arange(len(conds))
    for i, (name, r) in enumerate(byv.items()):
        fs = []
        for key, label in (("negatives", "alone"), ("negatives_during_replies", "in replies")):
            if key in result:
                fs.append(f"{result[key]['by_variant'][name]['false_stops_per_hour']}/h {label}")
        ax.bar(
            x + i * width,
            [100 * r["by_condition"][c] for c in conds],
            width,
            label=f"{name} (false stops: {', '.join(fs) or 'pending'})",
        )
    ax.axhline(100 * TARGET_DETECT, color="red", ls="--", lw=0.8, label=f"target {100 * TARGET_DETECT:.0f} %")
    hrs = [f"{result[k]['hours']} h" for k in ("negatives", "negatives_during_replies") if k in result]
    ax.set_title(f"stop word (ASR on short VAD windows), same run; negatives {' / '.join(hrs)}", fontsize=9)
    ax.set_xticks(x + width * (len(byv) - 1) / 2, conds)
    ax.tick_params(axis="x", labelsize=7, rotation=20)
    ax.set_ylabel("detected %")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
